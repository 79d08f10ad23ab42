use std::sync::Arc;

use super::frame::HubFrame;

/// The frames since the last video keyframe, so a late viewer can start decoding at once.
///
/// Bounded in frames and bytes: when a GOP outgrows either, the cache is emptied and
/// stays empty until the next keyframe (late viewers then wait for it).
#[derive(Debug)]
pub struct GopCache {
    frames: Vec<Arc<HubFrame>>,
    bytes: usize,
    max_frames: usize,
    max_bytes: usize,
    /// True between an overflow and the next keyframe.
    overflowed: bool,
}

impl GopCache {
    pub fn new(max_frames: usize, max_bytes: usize) -> Self {
        Self {
            frames: Vec::new(),
            bytes: 0,
            max_frames,
            max_bytes,
            overflowed: false,
        }
    }

    pub fn push(&mut self, frame: &Arc<HubFrame>) {
        if frame.is_video_keyframe() {
            self.clear();
            self.overflowed = false;
        } else if self.frames.is_empty() || self.overflowed {
            // Nothing decodable to append to.
            return;
        }
        let size = frame.frame.payload.len();
        if self.frames.len() >= self.max_frames || self.bytes + size > self.max_bytes {
            self.clear();
            self.overflowed = true;
            return;
        }
        self.bytes += size;
        self.frames.push(Arc::clone(frame));
    }

    pub fn frames(&self) -> &[Arc<HubFrame>] {
        &self.frames
    }

    pub fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use onair_media::{FrameKind, MediaFrame};

    fn frame(kind: FrameKind, keyframe: bool, size: usize) -> Arc<HubFrame> {
        Arc::new(HubFrame::new(MediaFrame {
            kind,
            timestamp: 0,
            keyframe,
            sequence_header: false,
            payload: Bytes::from(vec![0u8; size]),
        }))
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
}
