//! What can go wrong turning a publisher's frames into MPEG-TS.

/// A frame the MPEG-TS segmenter cannot use. The segmenter stays usable: the caller
/// drops the frame (or the rendition) and goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Flv(#[from] onair_flv::Error),
    #[error("video codec {0:?} cannot go into the MPEG-TS rendition (H.264 only)")]
    UnsupportedVideoCodec(onair_media::VideoCodec),
    #[error("audio codec {0:?} cannot go into the MPEG-TS rendition (AAC only)")]
    UnsupportedAudioCodec(onair_media::AudioCodec),
    #[error("invalid AVC decoder configuration record: {0}")]
    AvcConfig(&'static str),
    #[error("invalid AAC AudioSpecificConfig: {0}")]
    AacConfig(&'static str),
    #[error("H.264 frame at {timestamp} ms: NAL unit length at byte {offset} runs past the frame")]
    TruncatedNal { timestamp: u32, offset: usize },
    #[error("MPEG-TS packet writer: {0}")]
    Mux(String),
}
