use onair_media::{AudioCodec, VideoCodec};

/// Why one frame could not be segmented. The segmenter stays usable after any of
/// these; the frame is dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The FLV audio/video tag header or the codec configuration record is malformed
    /// or names a codec FLV parsing does not know.
    #[error("{0}")]
    Flv(#[from] onair_flv::Error),
    #[error("video codec {codec:?} is not supported in fMP4 yet (H.264 and HEVC are)")]
    UnsupportedVideoCodec { codec: VideoCodec },
    #[error("audio codec {codec:?} is not supported in fMP4 yet (AAC is)")]
    UnsupportedAudioCodec { codec: AudioCodec },
    #[error("{what} is {size} bytes, more than the {max}-byte limit")]
    ConfigTooLarge {
        what: &'static str,
        size: usize,
        max: usize,
    },
    #[error(
        "{media} frame at {timestamp} ms is {size} bytes, more than the {max}-byte part limit"
    )]
    FrameTooLarge {
        media: &'static str,
        timestamp: u32,
        size: usize,
        max: usize,
    },
}
