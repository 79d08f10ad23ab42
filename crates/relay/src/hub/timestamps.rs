//! Keeps the timestamps viewers see monotonic per track, whatever the encoder does.
//!
//! Encoders restart their clock on reconnect, jump after a hiccup, or (rarely) step
//! backwards. Players handle none of that well, so the hub maps the incoming timeline
//! onto an outgoing one with an offset that changes only at discontinuities.

use onair_media::FrameKind;

/// A step bigger than this (either way) is a discontinuity, not a gap in the media.
const MAX_JUMP_MS: i64 = 10_000;
/// Duration assumed for the frame before a discontinuity when none is known.
const DEFAULT_STEP_MS: i64 = 20;

#[derive(Debug, Default)]
pub struct TimestampRebaser {
    offset: i64,
    /// Last outgoing timestamp of any track.
    last_out: Option<i64>,
    audio: Track,
    video: Track,
    /// Discontinuities seen, for stats.
    pub discontinuities: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Track {
    last_out: Option<i64>,
    last_step: Option<i64>,
}

impl TimestampRebaser {
    /// Maps an incoming timestamp to the outgoing timeline.
    pub fn rebase(&mut self, kind: FrameKind, timestamp: u32) -> u32 {
        let incoming = i64::from(timestamp);
        let mut out = incoming + self.offset;
        if let Some(last) = self.last_out {
            if (out - last).abs() > MAX_JUMP_MS {
                // Continue just after the last frame, as if no time had been lost.
                let step = self.track(kind).last_step.unwrap_or(DEFAULT_STEP_MS);
                self.offset = last + step - incoming;
                out = last + step;
                self.discontinuities += 1;
            }
        }
        let track = self.track_mut(kind);
        if let Some(track_last) = track.last_out {
            if out < track_last {
                // A small step back within one track: hold the clock instead.
                out = track_last;
            }
            let step = out - track_last;
            if step > 0 {
                track.last_step = Some(step.min(1_000));
            }
        }
        track.last_out = Some(out);
        self.last_out = Some(self.last_out.map_or(out, |last| last.max(out)));
        (out.max(0) as u64 & 0xffff_ffff) as u32
    }

    fn track(&self, kind: FrameKind) -> Track {
        match kind {
            FrameKind::Audio => self.audio,
            _ => self.video,
        }
    }

    fn track_mut(&mut self, kind: FrameKind) -> &mut Track {
        match kind {
            FrameKind::Audio => &mut self.audio,
            _ => &mut self.video,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FrameKind::{Audio, Video};

    #[test]
    fn passes_a_normal_timeline_through() {
        let mut r = TimestampRebaser::default();
        let input = [
            (Video, 0),
            (Audio, 0),
            (Audio, 23),
            (Video, 33),
            (Audio, 46),
            (Video, 66),
        ];
        for (kind, ts) in input {
            assert_eq!(r.rebase(kind, ts), ts);
        }
        assert_eq!(r.discontinuities, 0);
    }

    #[test]
    fn encoder_restart_continues_the_timeline() {
        let mut r = TimestampRebaser::default();
        r.rebase(Video, 100_000);
        r.rebase(Video, 100_040);
        assert_eq!(r.rebase(Video, 0), 100_080);
        assert_eq!(r.rebase(Video, 40), 100_120);
        assert_eq!(r.rebase(Audio, 20), 100_100);
        assert_eq!(r.discontinuities, 1);
    }

    #[test]
    fn forward_jump_is_closed() {
        let mut r = TimestampRebaser::default();
        r.rebase(Video, 0);
        r.rebase(Video, 33);
        assert_eq!(r.rebase(Video, 3_600_000), 66);
    }

    #[test]
    fn small_step_back_is_held_per_track() {
        let mut r = TimestampRebaser::default();
        r.rebase(Video, 100);
        assert_eq!(r.rebase(Video, 90), 100);
        // Audio is a separate track and may sit slightly behind video.
        assert_eq!(r.rebase(Audio, 95), 95);
        assert_eq!(r.rebase(Video, 133), 133);
    }

    #[test]
    fn output_never_goes_backwards_per_track() {
        let mut r = TimestampRebaser::default();
        let mut last = [0u32; 2];
        let mut ts: u32 = 5;
        for i in 0..2_000u32 {
            ts = match i % 97 {
                0 => ts.saturating_sub(40_000).max(1),
                13 => ts.wrapping_add(50_000),
                _ => ts.wrapping_add((i % 7) * 7),
            };
            let kind = if i % 3 == 0 { Audio } else { Video };
            let out = r.rebase(kind, ts.saturating_sub(i % 5));
            let slot = usize::from(kind == Video);
            assert!(out >= last[slot], "step {i}: {out} < {}", last[slot]);
            last[slot] = out;
        }
    }
}
