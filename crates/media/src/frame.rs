use bytes::Bytes;

/// What a [`MediaFrame`] carries. The numbers are the FLV / RTMP message type ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    Audio = 8,
    Video = 9,
    /// Script data such as `onMetaData`, already stripped of `@setDataFrame`.
    Script = 18,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VideoCodec {
    H264,
    Hevc,
    Av1,
    Vp9,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AudioCodec {
    Aac,
    Mp3,
    Opus,
}

/// One unit of media as the server moves it: the body of an FLV tag / RTMP message
/// (including the FLV audio/video tag header, legacy or Enhanced RTMP), its timestamp
/// and the flags the hub needs to make decisions without reparsing it.
///
/// Keeping the FLV body as the canonical payload means RTMP and HTTP-FLV egress are
/// a header away, and new codecs (HEVC, AV1, Opus via Enhanced RTMP) need no new
/// frame type, only new parsing in the `flv` crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaFrame {
    pub kind: FrameKind,
    /// Milliseconds, the RTMP/FLV 32-bit timeline.
    pub timestamp: u32,
    /// A video frame that starts a group of pictures.
    pub keyframe: bool,
    /// A codec configuration record (AVC/HEVC decoder config, AAC AudioSpecificConfig).
    pub sequence_header: bool,
    pub payload: Bytes,
}
