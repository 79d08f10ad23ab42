//! What a viewer that falls behind its stream does: skip to a keyframe, and go when it
//! keeps falling behind.

use std::collections::VecDeque;
use std::time::Duration;

use crate::{FrameFacts, Moment};

/// The window the skips are counted in: `hub.viewer_max_skips_per_minute`.
pub const SKIP_WINDOW: Duration = Duration::from_secs(60);

/// What a viewer that fell off the ring does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lag<P> {
    /// More skips than allowed within [`SKIP_WINDOW`], this one included: the viewer
    /// is disconnected.
    TooSlow { skips: usize },
    /// Jump to the newest keyframe still buffered, at `P`, with the codec headers sent
    /// again first (one may have been among the frames skipped).
    JumpTo(P),
    /// No keyframe buffered: read on, but media goes through
    /// [`SkipPolicy::drop_until_keyframe`] until the next keyframe, so picture and
    /// sound restart together.
    WaitForKeyframe,
    /// No keyframe buffered and no video to wait for: read on from where the ring
    /// resumes.
    ReadOn,
}

/// What [`SkipPolicy::drop_until_keyframe`] did to a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyframeWait {
    /// The viewer is not waiting: the batch is untouched.
    NotWaiting,
    /// No keyframe in the batch: its `dropped` media frames are gone, codec headers
    /// and metadata kept. Still waiting.
    Waiting { dropped: u64 },
    /// The `dropped` frames before the batch's first keyframe are gone, and the batch
    /// now starts at it. The wait is over; the caller puts the codec headers first.
    Resumed { dropped: u64 },
}

/// One viewer's skip policy: it remembers the viewer's recent skips and whether it
/// waits for a keyframe. The viewer keeps its cursor, its ring and its counters, and
/// asks this what to do.
///
/// ```
/// use std::time::Duration;
/// use onair_policy::{Lag, SkipPolicy};
///
/// // Time is a Duration since an origin here; the relay passes Instants.
/// let mut skips = SkipPolicy::new(2);
/// let t = |s| Duration::from_secs(s);
/// assert_eq!(skips.handle_lag(t(0), Some(7u64), true), Lag::JumpTo(7));
/// assert_eq!(skips.handle_lag(t(1), None::<u64>, true), Lag::WaitForKeyframe);
/// assert_eq!(skips.handle_lag(t(2), Some(9u64), true), Lag::TooSlow { skips: 3 });
/// ```
#[derive(Debug, Clone)]
pub struct SkipPolicy<T> {
    max_skips_per_minute: usize,
    /// When each skip within the window happened, oldest first.
    recent_skips: VecDeque<T>,
    waiting_for_keyframe: bool,
}

impl<T: Moment> SkipPolicy<T> {
    pub fn new(max_skips_per_minute: usize) -> Self {
        Self {
            max_skips_per_minute,
            recent_skips: VecDeque::new(),
            waiting_for_keyframe: false,
        }
    }

    /// The viewer fell off the ring at `now`. `newest_keyframe` is the position of the
    /// newest video keyframe still buffered past the viewer's cursor, `has_video`
    /// whether the stream has a video codec header.
    ///
    /// A viewer already waiting for a keyframe stays waiting when it jumps: the
    /// keyframe it jumps to ends the wait when it is read.
    pub fn handle_lag<P>(&mut self, now: T, newest_keyframe: Option<P>, has_video: bool) -> Lag<P> {
        while self
            .recent_skips
            .front()
            .is_some_and(|&at| now > at + SKIP_WINDOW)
        {
            self.recent_skips.pop_front();
        }
        self.recent_skips.push_back(now);
        if self.recent_skips.len() > self.max_skips_per_minute {
            return Lag::TooSlow {
                skips: self.recent_skips.len(),
            };
        }
        match newest_keyframe {
            Some(keyframe) => Lag::JumpTo(keyframe),
            None => {
                self.waiting_for_keyframe = has_video;
                if has_video {
                    Lag::WaitForKeyframe
                } else {
                    Lag::ReadOn
                }
            }
        }
    }

    /// Whether media is being dropped until the next video keyframe.
    pub fn is_waiting_for_keyframe(&self) -> bool {
        self.waiting_for_keyframe
    }

    /// Skips counted in the window as of the last lag.
    pub fn recent_skips(&self) -> usize {
        self.recent_skips.len()
    }

    /// Run over every batch the viewer reads from the ring: while waiting, keeps codec
    /// headers and metadata and drops media (audio too) until a video keyframe.
    pub fn drop_until_keyframe<F: FrameFacts>(&mut self, out: &mut Vec<F>) -> KeyframeWait {
        if !self.waiting_for_keyframe {
            return KeyframeWait::NotWaiting;
        }
        let before = out.len();
        let Some(at) = out.iter().position(FrameFacts::is_video_keyframe) else {
            out.retain(FrameFacts::is_header);
            return KeyframeWait::Waiting {
                dropped: (before - out.len()) as u64,
            };
        };
        self.waiting_for_keyframe = false;
        out.drain(..at);
        KeyframeWait::Resumed { dropped: at as u64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onair_media::{FrameKind, MediaFrame};

    use crate::fixtures::{audio, header, keyframe, metadata, picture};

    fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn timestamps(frames: &[MediaFrame]) -> Vec<(FrameKind, u32)> {
        frames.iter().map(|f| (f.kind, f.timestamp)).collect()
    }

    #[test]
    fn lag_jumps_to_the_newest_keyframe() {
        let mut skips = SkipPolicy::new(6);
        assert_eq!(skips.handle_lag(at(0), Some(40u64), true), Lag::JumpTo(40));
        assert!(!skips.is_waiting_for_keyframe());
        let mut batch = vec![keyframe(0), audio(0), picture(40)];
        assert_eq!(
            skips.drop_until_keyframe(&mut batch),
            KeyframeWait::NotWaiting
        );
        assert_eq!(batch.len(), 3);
    }

    #[test]
    fn with_no_keyframe_buffered_media_is_dropped_until_one_arrives() {
        let mut skips = SkipPolicy::new(6);
        assert_eq!(
            skips.handle_lag(at(0), None::<u64>, true),
            Lag::WaitForKeyframe
        );
        assert!(skips.is_waiting_for_keyframe());

        // Pictures and sound are dropped; headers and metadata are not.
        let mut batch = vec![
            picture(0),
            audio(5),
            header(FrameKind::Video, &[1, 0x64, 0, 0x1f]),
            metadata(&[]),
            picture(40),
        ];
        assert_eq!(
            skips.drop_until_keyframe(&mut batch),
            KeyframeWait::Waiting { dropped: 3 }
        );
        assert!(batch
            .iter()
            .all(|f| f.sequence_header || f.kind == FrameKind::Script));
        assert!(skips.is_waiting_for_keyframe());

        // The batch with the keyframe starts at it.
        let mut batch = vec![
            audio(75),
            picture(80),
            keyframe(120),
            audio(121),
            picture(160),
        ];
        assert_eq!(
            skips.drop_until_keyframe(&mut batch),
            KeyframeWait::Resumed { dropped: 2 }
        );
        assert_eq!(
            timestamps(&batch),
            [
                (FrameKind::Video, 120),
                (FrameKind::Audio, 121),
                (FrameKind::Video, 160)
            ]
        );
        assert!(!skips.is_waiting_for_keyframe());

        // And then batches pass untouched.
        let mut batch = vec![audio(170), picture(200)];
        assert_eq!(
            skips.drop_until_keyframe(&mut batch),
            KeyframeWait::NotWaiting
        );
        assert_eq!(batch.len(), 2);
    }

    #[test]
    fn a_sequence_header_marked_key_is_not_the_keyframe_waited_for() {
        let mut skips = SkipPolicy::new(6);
        skips.handle_lag(at(0), None::<u64>, true);
        let mut seq = header(FrameKind::Video, &[1, 0x64, 0, 0x1f]);
        seq.keyframe = true;
        let mut batch = vec![picture(0), seq];
        assert_eq!(
            skips.drop_until_keyframe(&mut batch),
            KeyframeWait::Waiting { dropped: 1 }
        );
    }

    #[test]
    fn audio_only_streams_read_on() {
        let mut skips = SkipPolicy::new(6);
        assert_eq!(skips.handle_lag(at(0), None::<u64>, false), Lag::ReadOn);
        assert!(!skips.is_waiting_for_keyframe());
        let mut batch = vec![audio(0), audio(23)];
        assert_eq!(
            skips.drop_until_keyframe(&mut batch),
            KeyframeWait::NotWaiting
        );
        assert_eq!(batch.len(), 2);
    }

    #[test]
    fn a_lag_without_video_ends_a_wait() {
        // The stream's video header went away (a new publisher without video).
        let mut skips = SkipPolicy::new(6);
        skips.handle_lag(at(0), None::<u64>, true);
        assert!(skips.is_waiting_for_keyframe());
        assert_eq!(skips.handle_lag(at(1), None::<u64>, false), Lag::ReadOn);
        assert!(!skips.is_waiting_for_keyframe());
    }

    #[test]
    fn a_jump_while_waiting_keeps_waiting_until_the_keyframe_is_read() {
        let mut skips = SkipPolicy::new(6);
        skips.handle_lag(at(0), None::<u64>, true);
        assert_eq!(skips.handle_lag(at(1), Some(9u64), true), Lag::JumpTo(9));
        assert!(skips.is_waiting_for_keyframe());
        let mut batch = vec![keyframe(360), picture(400)];
        assert_eq!(
            skips.drop_until_keyframe(&mut batch),
            KeyframeWait::Resumed { dropped: 0 }
        );
        assert_eq!(batch.len(), 2);
    }

    #[test]
    fn too_many_skips_within_a_minute_is_too_slow() {
        let mut skips = SkipPolicy::new(3);
        for s in 0..3 {
            assert_eq!(
                skips.handle_lag(at(s * 1_000), Some(s), true),
                Lag::JumpTo(s)
            );
        }
        assert_eq!(
            skips.handle_lag(at(3_000), Some(3u64), true),
            Lag::TooSlow { skips: 4 }
        );
    }

    #[test]
    fn zero_skips_allowed_means_the_first_lag_ends_the_viewer() {
        let mut skips = SkipPolicy::new(0);
        assert_eq!(
            skips.handle_lag(at(0), None::<u64>, true),
            Lag::TooSlow { skips: 1 }
        );
    }

    #[test]
    fn old_skips_age_out_of_the_window() {
        let mut skips = SkipPolicy::new(3);
        for s in [0, 10_000, 20_000] {
            assert!(matches!(
                skips.handle_lag(at(s), Some(0u64), true),
                Lag::JumpTo(_)
            ));
        }
        // 60 s after the first skip it still counts (the window is inclusive)...
        let mut exactly = skips.clone();
        assert_eq!(
            exactly.handle_lag(at(60_000), Some(0u64), true),
            Lag::TooSlow { skips: 4 }
        );
        // ...a millisecond later it has aged out.
        assert_eq!(
            skips.handle_lag(at(60_001), Some(0u64), true),
            Lag::JumpTo(0)
        );
        assert_eq!(skips.recent_skips(), 3);
        // A viewer that skips once every 21 s forever is never too slow (three skips
        // in any minute)...
        for s in 1..100 {
            assert!(matches!(
                skips.handle_lag(at(60_001 + s * 21_000), Some(0u64), true),
                Lag::JumpTo(_)
            ));
        }
        // ...but one skip more within the minute is.
        let t = 60_001 + 100 * 21_000;
        assert!(matches!(
            skips.handle_lag(at(t), Some(0u64), true),
            Lag::JumpTo(_)
        ));
        assert_eq!(
            skips.handle_lag(at(t + 1), Some(0u64), true),
            Lag::TooSlow { skips: 4 }
        );
    }

    #[test]
    fn works_over_shared_frames_as_the_relay_holds_them() {
        use std::sync::Arc;
        let mut skips = SkipPolicy::new(6);
        skips.handle_lag(at(0), None::<u64>, true);
        let mut batch: Vec<Arc<MediaFrame>> = vec![Arc::new(picture(0)), Arc::new(keyframe(40))];
        assert_eq!(
            skips.drop_until_keyframe(&mut batch),
            KeyframeWait::Resumed { dropped: 1 }
        );
    }
}
