/// Everything a peer can get wrong in an FLV stream, a tag header or a codec
/// configuration record.
///
/// Stream offsets (`u64`) count bytes from the first byte given to the
/// [`FlvReader`](crate::FlvReader), so a failure can be found in a capture with
/// `xxd -s`. Offsets inside a tag body or record (`usize`) count from the start of the
/// slice handed to the parser.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("not an FLV stream: signature {found:02x?} at byte 0")]
    BadSignature { found: [u8; 3] },
    #[error("FLV header declares a data offset of {data_offset}, less than the 9-byte header")]
    BadDataOffset { data_offset: u32 },
    #[error(
        "FLV tag at byte {offset} has type {tag_type}, not audio (8), video (9) or script data (18)"
    )]
    UnknownTagType { tag_type: u8, offset: u64 },
    #[error(
        "FLV tag at byte {offset} (type {tag_type}) is filtered/encrypted, which is not supported"
    )]
    EncryptedTag { tag_type: u8, offset: u64 },
    #[error(
        "FLV tag at byte {offset} (type {tag_type}) declares {size} bytes, more than the {max}-byte limit"
    )]
    TagTooBig {
        tag_type: u8,
        size: usize,
        max: usize,
        offset: u64,
    },
    #[error("{what} ends early at byte {offset}")]
    Truncated { what: &'static str, offset: usize },
    #[error(
        "video codec id {codec_id} is not supported (AVC = 7, HEVC = 12 or Enhanced RTMP only)"
    )]
    UnsupportedVideoCodec { codec_id: u8 },
    #[error("Enhanced RTMP video FourCC {:?} is not supported", String::from_utf8_lossy(.fourcc))]
    UnsupportedVideoFourCc { fourcc: [u8; 4] },
    #[error(
        "audio sound format {sound_format} is not supported (AAC = 10, MP3 = 2/14 or Enhanced RTMP only)"
    )]
    UnsupportedAudioFormat { sound_format: u8 },
    #[error("Enhanced RTMP audio FourCC {:?} is not supported", String::from_utf8_lossy(.fourcc))]
    UnsupportedAudioFourCc { fourcc: [u8; 4] },
    #[error("{media} packet type {packet_type} is not supported: {reason}")]
    UnsupportedPacketType {
        media: &'static str,
        packet_type: u8,
        reason: &'static str,
    },
    #[error("{media} tag is not a sequence header")]
    NotSequenceHeader { media: &'static str },
    #[error("invalid {what}: {reason}")]
    InvalidConfig {
        what: &'static str,
        reason: &'static str,
    },
    #[error("script data: {0}")]
    Amf0(#[from] onair_amf0::Error),
    #[error("script data does not start with a handler name string")]
    NoScriptName,
    #[error("script data is {name:?}, not onMetaData")]
    NotMetadata { name: String },
}
