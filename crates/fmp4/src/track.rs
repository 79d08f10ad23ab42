//! One track's timeline and the samples of the part being built: turns the hub's
//! millisecond timestamps into decode times in the track's timescale and gives every
//! sample a duration that is never zero or negative.
//!
//! The rules (the hub's timeline is monotonic per track, so these are for bad input):
//! - Timestamps are unwrapped across the 32-bit millisecond wrap.
//! - Video: a sample lasts until the next one starts. A timestamp equal to or up to
//!   1 s before the previous one gives the previous sample a 1-tick duration; a jump
//!   back of 1 s or more gives it the usual frame duration and shifts the track's
//!   timeline so it continues from there.
//! - Audio: a frame lasts 1024 samples (2048 with explicit SBR). A timestamp within
//!   half a frame of where the previous frame ends is taken as that end (millisecond
//!   rounding and jitter); later than that is a gap, which lengthens the previous
//!   frame when it is still in the open part, else shows as a jump of the next part's
//!   `tfdt`; earlier is ignored (the frame is placed right after the previous one).
//! - A forward gap is kept up to 10 s; anything beyond is cut out by shifting the
//!   track's timeline, so one stalled publisher cannot produce a sample lasting hours.

use bytes::Bytes;

use crate::fragment::Sample;

const MAX_GAP_SECS: i64 = 10;
const BACKWARD_RESET_SECS: i64 = 1;

#[derive(Debug, Clone, Copy)]
struct Last {
    dts: i64,
    /// `None` while the duration waits for the next sample (video).
    duration: Option<u32>,
}

#[derive(Debug)]
pub(crate) struct Track {
    pub(crate) timescale: u32,
    /// Audio: the fixed frame duration. Video: the duration used when a sample must
    /// be closed before the next one arrives, updated from real durations.
    frame_duration: u32,
    fixed_frames: bool,
    /// The last input timestamp (ms) and its unwrapped value.
    last_in: Option<(u32, i64)>,
    /// Ticks added to every mapped timestamp (see the module docs).
    offset: i64,
    last: Option<Last>,
    /// The samples of the part being built.
    pub(crate) samples: Vec<Sample>,
    pub(crate) bytes: usize,
}

impl Track {
    pub(crate) fn video(timescale: u32) -> Self {
        Self::new(timescale, timescale / 30, false)
    }

    pub(crate) fn audio(timescale: u32, frame_samples: u32) -> Self {
        Self::new(timescale, frame_samples, true)
    }

    fn new(timescale: u32, frame_duration: u32, fixed_frames: bool) -> Self {
        Self {
            timescale,
            frame_duration: frame_duration.max(1),
            fixed_frames,
            last_in: None,
            offset: 0,
            last: None,
            samples: Vec::new(),
            bytes: 0,
        }
    }

    /// Ticks for a duration, in this track's timescale.
    pub(crate) fn ticks(&self, d: std::time::Duration) -> u64 {
        let t = d.as_nanos() * u128::from(self.timescale) / 1_000_000_000;
        u64::try_from(t).unwrap_or(u64::MAX)
    }

    fn map(&mut self, ms: u32) -> i64 {
        let ext = match self.last_in {
            None => i64::from(ms),
            // Reinterpreting the wrapped difference as signed unwraps the 32-bit clock.
            Some((raw, ext)) => ext + i64::from(ms.wrapping_sub(raw) as i32),
        };
        self.last_in = Some((ms, ext));
        ext * i64::from(self.timescale) / 1000 + self.offset
    }

    /// Decides the decode time of a new sample stamped `ms`, finalising the previous
    /// sample's duration. Call [`push`](Self::push) with the result afterwards.
    pub(crate) fn place(&mut self, ms: u32) -> u64 {
        let r = self.map(ms);
        let scale = i64::from(self.timescale);
        let max_gap = MAX_GAP_SECS * scale;
        let Some(last) = self.last else {
            if r < 0 {
                self.offset -= r;
            }
            return r.max(0) as u64;
        };
        let dts = match last.duration {
            // An open video sample: it lasts until this one.
            None => {
                let mut d = r - last.dts;
                if d > max_gap {
                    self.offset -= d - max_gap;
                    d = max_gap;
                } else if d <= -BACKWARD_RESET_SECS * scale {
                    d = i64::from(self.frame_duration);
                    self.offset += last.dts + d - r;
                } else if d <= 0 {
                    d = 1;
                } else if !self.fixed_frames {
                    self.frame_duration = u32::try_from(d).unwrap_or(self.frame_duration);
                }
                self.set_last_duration(last.dts, d);
                last.dts + d
            }
            Some(duration) => {
                let next = last.dts + i64::from(duration);
                let mut d = r - next;
                let tolerance = if self.fixed_frames {
                    i64::from(self.frame_duration / 2)
                } else {
                    0
                };
                if d.abs() <= tolerance {
                    d = 0;
                } else if d > max_gap {
                    self.offset -= d - max_gap;
                    d = max_gap;
                } else if d < 0 {
                    if d <= -BACKWARD_RESET_SECS * scale {
                        self.offset += next - r;
                    }
                    d = 0;
                }
                if d > 0 {
                    self.set_last_duration(last.dts, i64::from(duration) + d);
                }
                next + d
            }
        };
        dts.max(0) as u64
    }

    /// Sets the duration of the previous sample if it is still in the open part.
    fn set_last_duration(&mut self, dts: i64, d: i64) {
        let d = u32::try_from(d).unwrap_or(u32::MAX);
        if let Some(s) = self.samples.last_mut() {
            if s.dts as i64 == dts {
                s.duration = d;
            }
        }
        if let Some(last) = &mut self.last {
            last.duration = Some(d);
        }
    }

    /// Appends a sample placed at `dts`. Audio samples get their frame duration;
    /// video samples stay open until the next one is placed or [`close`](Self::close).
    pub(crate) fn push(&mut self, dts: u64, keyframe: bool, cts: i32, data: Bytes) {
        let duration = self.fixed_frames.then_some(self.frame_duration);
        self.last = Some(Last {
            dts: dts as i64,
            duration,
        });
        self.bytes += data.len();
        self.samples.push(Sample {
            dts,
            duration: duration.unwrap_or(0),
            keyframe,
            cts,
            data,
        });
    }

    /// Gives an open sample the previous sample's duration, for a part that must be
    /// emitted before the next sample arrives (end of stream, codec change, bounds).
    pub(crate) fn close(&mut self) {
        if let Some(Last {
            dts,
            duration: None,
        }) = self.last
        {
            self.set_last_duration(dts, i64::from(self.frame_duration));
        }
    }

    /// Takes the part's samples, leaving the timeline as it is.
    pub(crate) fn take(&mut self) -> Vec<Sample> {
        self.bytes = 0;
        std::mem::take(&mut self.samples)
    }

    pub(crate) fn duration_sum(samples: &[Sample]) -> u64 {
        samples.iter().map(|s| u64::from(s.duration)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place_push(t: &mut Track, ms: u32) -> u64 {
        let dts = t.place(ms);
        t.push(dts, false, 0, Bytes::from_static(b"x"));
        dts
    }

    fn durations(t: &Track) -> Vec<u32> {
        t.samples.iter().map(|s| s.duration).collect()
    }

    #[test]
    fn video_durations_come_from_the_next_timestamp() {
        let mut t = Track::video(90_000);
        for ms in [0, 33, 67, 100] {
            place_push(&mut t, ms);
        }
        assert_eq!(durations(&t), vec![2970, 3060, 2970, 0]);
        t.close();
        assert_eq!(durations(&t)[3], 2970);
    }

    #[test]
    fn video_never_goes_backwards() {
        let mut t = Track::video(90_000);
        let a = place_push(&mut t, 3000);
        let b = place_push(&mut t, 3000);
        let c = place_push(&mut t, 2990);
        assert!(a < b && b < c);
        // A reset far back continues the timeline from the last sample.
        let d = place_push(&mut t, 5);
        let e = place_push(&mut t, 38);
        assert!(d > c && e > d);
        assert_eq!(e - d, 33 * 90);
        assert!(durations(&t).iter().take(4).all(|&d| d > 0));
    }

    #[test]
    fn long_gaps_are_capped_and_the_32_bit_wrap_is_unwrapped() {
        let mut t = Track::video(90_000);
        place_push(&mut t, 0);
        let b = place_push(&mut t, 60_000);
        assert_eq!(b, 10 * 90_000);
        let c = place_push(&mut t, 60_040);
        assert_eq!(c - b, 40 * 90);

        let mut w = Track::video(1000);
        place_push(&mut w, u32::MAX - 10);
        let next = place_push(&mut w, 20);
        assert_eq!(next, u64::from(u32::MAX - 10) + 31);
    }

    #[test]
    fn audio_counts_frames_through_jitter_and_keeps_gaps() {
        let mut t = Track::audio(44_100, 1024);
        // 1024 samples at 44.1 kHz is 23.22 ms; FLV rounds to whole ms.
        let mut dts = Vec::new();
        for ms in [0, 23, 46, 70, 93] {
            dts.push(place_push(&mut t, ms));
        }
        assert_eq!(dts, vec![0, 1024, 2048, 3072, 4096]);
        // A 200 ms gap lengthens the frame before it.
        let gap = place_push(&mut t, 93 + 23 + 200);
        assert_eq!(gap, 44_100 * 316 / 1000);
        assert_eq!(durations(&t)[4], (gap - 4096) as u32);
        // Going backwards keeps counting.
        let after = place_push(&mut t, 10);
        assert_eq!(after, gap + 1024);
    }
}
