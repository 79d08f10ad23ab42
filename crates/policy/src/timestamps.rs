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

/// Maps one publisher's timestamps onto the timeline its viewers see: continuous
/// across an encoder restart or a jump, never backwards within a track. One per
/// stream; a new publisher of the same stream continues the same timeline.
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

    #[test]
    fn publisher_restart_continues_both_tracks() {
        // A publisher at 5 minutes reconnects and its encoder starts again from 0.
        let mut r = TimestampRebaser::default();
        for i in 0..10 {
            r.rebase(Video, 300_000 + i * 40);
            r.rebase(Audio, 300_000 + i * 40 + 3);
        }
        // Last out: video 300_360, audio 300_363.
        let video = r.rebase(Video, 0);
        assert_eq!(
            video,
            300_363 + 40,
            "one video step after the last frame of any track"
        );
        assert_eq!(r.discontinuities, 1);
        // Both tracks share the new offset: the new clock's spacing is kept.
        assert_eq!(r.rebase(Audio, 23), video + 23);
        assert_eq!(r.rebase(Video, 40), video + 40);
        assert_eq!(r.rebase(Audio, 46), video + 46);
        assert_eq!(r.discontinuities, 1);
    }

    #[test]
    fn restart_without_a_known_step_uses_the_default() {
        let mut r = TimestampRebaser::default();
        assert_eq!(r.rebase(Video, 50_000), 50_000);
        assert_eq!(r.rebase(Video, 0), 50_000 + 20);
    }

    #[test]
    fn forward_jump_keeps_the_spacing_after_it() {
        let mut r = TimestampRebaser::default();
        for ts in [0, 40, 80] {
            assert_eq!(r.rebase(Video, ts), ts);
        }
        // The encoder's clock leaps an hour ahead: closed to one frame step.
        assert_eq!(r.rebase(Video, 3_600_080), 120);
        assert_eq!(r.rebase(Video, 3_600_120), 160);
        assert_eq!(r.rebase(Audio, 3_600_130), 170);
        assert_eq!(r.discontinuities, 1);
    }

    #[test]
    fn a_gap_up_to_ten_seconds_is_media_not_a_discontinuity() {
        let mut r = TimestampRebaser::default();
        r.rebase(Video, 1_000);
        assert_eq!(r.rebase(Video, 11_000), 11_000, "10 s exactly is kept");
        // 10 s and 1 ms is closed, to one step (capped at a second) after the last.
        assert_eq!(r.rebase(Video, 21_001), 12_000);
        assert_eq!(r.discontinuities, 1);
    }

    #[test]
    fn the_step_after_a_discontinuity_is_capped_at_a_second() {
        let mut r = TimestampRebaser::default();
        r.rebase(Video, 0);
        r.rebase(Video, 5_000);
        assert_eq!(r.rebase(Video, 100_000), 6_000);
    }

    #[test]
    fn each_track_is_monotonic_on_its_own() {
        let mut r = TimestampRebaser::default();
        assert_eq!(r.rebase(Audio, 1_000), 1_000);
        assert_eq!(r.rebase(Video, 900), 900, "video may sit behind audio");
        assert_eq!(r.rebase(Audio, 990), 1_000, "audio held at its own last");
        assert_eq!(r.rebase(Video, 880), 900, "video held at its own last");
        assert_eq!(r.rebase(Video, 940), 940);
        assert_eq!(r.rebase(Audio, 1_023), 1_023);
        assert_eq!(r.discontinuities, 0);
    }

    #[test]
    fn script_data_kind_counts_as_video() {
        // The hub never rebases script data, but the rebaser must not panic on it.
        let mut r = TimestampRebaser::default();
        assert_eq!(r.rebase(FrameKind::Script, 10), 10);
        assert_eq!(r.rebase(Video, 5), 10);
    }
}
