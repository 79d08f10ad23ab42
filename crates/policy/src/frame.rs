//! What the policies need to know of a frame.

use std::sync::Arc;

use onair_media::{FrameKind, MediaFrame};

/// A frame as the policies see it: the [`MediaFrame`] it carries. The relay's
/// `HubFrame` (a frame with its wire forms) implements it, as does `MediaFrame`
/// itself; the provided methods are what the GOP cache and the skip policy read.
pub trait FrameFacts {
    /// The frame as the publisher sent it (timestamp rebased by the hub).
    fn media(&self) -> &MediaFrame;

    /// Bytes the frame holds, for the GOP cache's byte bound.
    fn payload_len(&self) -> usize {
        self.media().payload.len()
    }

    /// A video frame that starts a group of pictures (never a sequence header).
    fn is_video_keyframe(&self) -> bool {
        let frame = self.media();
        frame.kind == FrameKind::Video && frame.keyframe && !frame.sequence_header
    }

    /// A codec header or script data (metadata): what a viewer waiting for a keyframe
    /// still gets.
    fn is_header(&self) -> bool {
        let frame = self.media();
        frame.sequence_header || frame.kind == FrameKind::Script
    }
}

impl FrameFacts for MediaFrame {
    fn media(&self) -> &MediaFrame {
        self
    }
}

impl<F: FrameFacts + ?Sized> FrameFacts for Arc<F> {
    fn media(&self) -> &MediaFrame {
        (**self).media()
    }

    fn payload_len(&self) -> usize {
        (**self).payload_len()
    }

    fn is_video_keyframe(&self) -> bool {
        (**self).is_video_keyframe()
    }

    fn is_header(&self) -> bool {
        (**self).is_header()
    }
}
