//! The GOP cache: what a late viewer starts with.

use std::sync::Arc;

use crate::FrameFacts;

/// The frames since the last video keyframe, so a late viewer can start decoding at once.
///
/// Bounded in frames and bytes: when a GOP outgrows either, the cache is emptied and
/// stays empty until the next keyframe (late viewers then wait for it). Frames are
/// shared (`Arc<F>`): the cache holds the same frames the stream's ring does. The
/// caller keeps codec headers and metadata apart and pushes media only.
#[derive(Debug)]
pub struct GopCache<F> {
    frames: Vec<Arc<F>>,
    bytes: usize,
    max_frames: usize,
    max_bytes: usize,
    /// True between an overflow and the next keyframe.
    overflowed: bool,
}

impl<F: FrameFacts> GopCache<F> {
    pub fn new(max_frames: usize, max_bytes: usize) -> Self {
        Self {
            frames: Vec::new(),
            bytes: 0,
            max_frames,
            max_bytes,
            overflowed: false,
        }
    }

    pub fn push(&mut self, frame: &Arc<F>) {
        if frame.is_video_keyframe() {
            self.clear();
            self.overflowed = false;
        } else if self.frames.is_empty() || self.overflowed {
            // Nothing decodable to append to.
            return;
        }
        let size = frame.payload_len();
        if self.frames.len() >= self.max_frames || self.bytes + size > self.max_bytes {
            self.clear();
            self.overflowed = true;
            return;
        }
        self.bytes += size;
        self.frames.push(Arc::clone(frame));
    }

    pub fn frames(&self) -> &[Arc<F>] {
        &self.frames
    }

    /// Empties the cache (a new publisher, the stream's end); the next keyframe starts
    /// it again.
    pub fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onair_media::{FrameKind, MediaFrame};

    use crate::fixtures;

    fn frame(kind: FrameKind, keyframe: bool, size: usize) -> Arc<MediaFrame> {
        Arc::new(fixtures::frame(kind, 0, keyframe, size))
    }

    #[test]
    fn starts_at_a_keyframe_and_restarts_on_the_next() {
        let mut gop = GopCache::new(100, 1 << 20);
        gop.push(&frame(FrameKind::Audio, false, 10));
        assert!(gop.frames().is_empty());
        gop.push(&frame(FrameKind::Video, true, 10));
        gop.push(&frame(FrameKind::Audio, false, 10));
        gop.push(&frame(FrameKind::Video, false, 10));
        assert_eq!(gop.frames().len(), 3);
        gop.push(&frame(FrameKind::Video, true, 10));
        assert_eq!(gop.frames().len(), 1);
    }

    #[test]
    fn overflow_empties_until_next_keyframe() {
        let mut gop = GopCache::new(3, 1 << 20);
        gop.push(&frame(FrameKind::Video, true, 10));
        for _ in 0..5 {
            gop.push(&frame(FrameKind::Video, false, 10));
        }
        assert!(gop.frames().is_empty());
        gop.push(&frame(FrameKind::Video, true, 10));
        assert_eq!(gop.frames().len(), 1);

        let mut small = GopCache::new(100, 25);
        small.push(&frame(FrameKind::Video, true, 10));
        small.push(&frame(FrameKind::Video, false, 10));
        small.push(&frame(FrameKind::Video, false, 10));
        assert!(small.frames().is_empty());
    }

    #[test]
    fn holds_exactly_its_frame_bound() {
        let mut gop = GopCache::new(3, 1 << 20);
        gop.push(&frame(FrameKind::Video, true, 10));
        gop.push(&frame(FrameKind::Video, false, 10));
        gop.push(&frame(FrameKind::Audio, false, 10));
        assert_eq!(gop.frames().len(), 3, "the bound itself fits");
        gop.push(&frame(FrameKind::Audio, false, 10));
        assert!(gop.frames().is_empty(), "one more empties the cache");
    }

    #[test]
    fn holds_exactly_its_byte_bound() {
        let mut gop = GopCache::new(100, 30);
        gop.push(&frame(FrameKind::Video, true, 10));
        gop.push(&frame(FrameKind::Video, false, 20));
        assert_eq!(gop.frames().len(), 2, "30 of 30 bytes fit");
        gop.push(&frame(FrameKind::Audio, false, 1));
        assert!(gop.frames().is_empty(), "31 bytes do not");
    }

    #[test]
    fn a_keyframe_larger_than_the_bound_is_not_cached() {
        let mut gop = GopCache::new(100, 50);
        gop.push(&frame(FrameKind::Video, true, 51));
        assert!(gop.frames().is_empty());
        // The GOP it starts stays out too, however small its frames.
        gop.push(&frame(FrameKind::Video, false, 1));
        gop.push(&frame(FrameKind::Audio, false, 1));
        assert!(gop.frames().is_empty());
        gop.push(&frame(FrameKind::Video, true, 50));
        assert_eq!(gop.frames().len(), 1);
    }

    #[test]
    fn after_an_overflow_nothing_is_kept_until_the_next_keyframe() {
        let mut gop = GopCache::new(2, 1 << 20);
        gop.push(&frame(FrameKind::Video, true, 10));
        gop.push(&frame(FrameKind::Video, false, 10));
        gop.push(&frame(FrameKind::Video, false, 10));
        assert!(gop.frames().is_empty());
        for _ in 0..10 {
            gop.push(&frame(FrameKind::Video, false, 1));
            gop.push(&frame(FrameKind::Audio, false, 1));
            assert!(gop.frames().is_empty());
        }
        let key = frame(FrameKind::Video, true, 10);
        gop.push(&key);
        assert!(
            Arc::ptr_eq(&gop.frames()[0], &key),
            "the frame itself, shared"
        );
    }

    #[test]
    fn clear_waits_for_the_next_keyframe() {
        let mut gop = GopCache::new(100, 1 << 20);
        gop.push(&frame(FrameKind::Video, true, 10));
        gop.clear();
        gop.push(&frame(FrameKind::Video, false, 10));
        assert!(gop.frames().is_empty());
        gop.push(&frame(FrameKind::Video, true, 10));
        gop.push(&frame(FrameKind::Video, false, 10));
        assert_eq!(gop.frames().len(), 2);
    }
}
