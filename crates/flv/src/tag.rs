//! FLV container framing: the 9-byte file header and the tag that wraps every audio,
//! video and script-data body.

use bytes::{BufMut, Bytes, BytesMut};
use onair_media::FrameKind;

/// Length of the FLV file header (`FLV`, version, flags, data offset).
pub const FLV_HEADER_LEN: usize = 9;

/// Length of a tag header: type, 24-bit size, 24+8-bit timestamp, 24-bit stream id.
pub const TAG_HEADER_LEN: usize = 11;

/// Length of the `PreviousTagSize` back-pointer after the header and every tag.
pub const PREVIOUS_TAG_SIZE_LEN: usize = 4;

/// The largest body a tag's 24-bit size field can describe.
pub const MAX_TAG_PAYLOAD: usize = 0xFF_FFFF;

/// What the FLV file header says about the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub version: u8,
    pub has_audio: bool,
    pub has_video: bool,
}

/// One FLV tag body with its type and timestamp, as read by
/// [`FlvReader`](crate::FlvReader).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub kind: FrameKind,
    /// Milliseconds, with the extended byte already folded in.
    pub timestamp: u32,
    pub payload: Bytes,
}

/// The 9-byte FLV file header followed by `PreviousTagSize0` (four zero bytes): what
/// an HTTP-FLV response or an FLV file starts with.
pub fn file_header(has_audio: bool, has_video: bool) -> Bytes {
    let flags = (u8::from(has_audio) << 2) | u8::from(has_video);
    let mut buf = BytesMut::with_capacity(FLV_HEADER_LEN + PREVIOUS_TAG_SIZE_LEN);
    buf.put_slice(b"FLV");
    buf.put_u8(1);
    buf.put_u8(flags);
    buf.put_u32(FLV_HEADER_LEN as u32);
    buf.put_u32(0);
    buf.freeze()
}

/// One complete FLV tag: the 11-byte header (type, 24-bit size, timestamp as 24 low
/// bits plus an extension byte, stream id 0), the payload and the 4-byte
/// `PreviousTagSize`.
///
/// A payload longer than [`MAX_TAG_PAYLOAD`] cannot be described by FLV; it is cut to
/// that length so the output stays well-formed (sizes and back-pointer agree). RTMP
/// message lengths are 24-bit as well, so nothing received over RTMP is ever cut.
pub fn encode_tag(kind: FrameKind, timestamp: u32, payload: &[u8]) -> Bytes {
    let payload = payload.get(..MAX_TAG_PAYLOAD).unwrap_or(payload);
    let mut buf = BytesMut::with_capacity(TAG_HEADER_LEN + payload.len() + PREVIOUS_TAG_SIZE_LEN);
    buf.put_slice(&tag_header(kind, timestamp, payload.len()));
    buf.put_slice(payload);
    buf.put_slice(&previous_tag_size(payload.len()));
    buf.freeze()
}

/// The 11 bytes before a tag's body of `len` bytes (at most [`MAX_TAG_PAYLOAD`]).
pub fn tag_header(kind: FrameKind, timestamp: u32, len: usize) -> [u8; TAG_HEADER_LEN] {
    let size = (len.min(MAX_TAG_PAYLOAD) as u32).to_be_bytes();
    let ts = timestamp.to_be_bytes();
    [
        kind as u8, size[1], size[2], size[3], ts[1], ts[2], ts[3], ts[0], 0, 0, 0,
    ]
}

/// The 4 bytes after a tag's body of `len` bytes: the size of the whole tag.
pub fn previous_tag_size(len: usize) -> [u8; PREVIOUS_TAG_SIZE_LEN] {
    (TAG_HEADER_LEN as u32 + len.min(MAX_TAG_PAYLOAD) as u32).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_header_layout() {
        assert_eq!(
            &file_header(true, true)[..],
            b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"
        );
        assert_eq!(file_header(false, true)[4], 0x01);
        assert_eq!(file_header(true, false)[4], 0x04);
        assert_eq!(file_header(false, false)[4], 0x00);
    }

    #[test]
    fn tag_layout_with_extended_timestamp() {
        let tag = encode_tag(FrameKind::Video, 0x1234_5678, &[0xaa, 0xbb]);
        assert_eq!(
            &tag[..],
            &[
                9, 0, 0, 2, // type, size
                0x34, 0x56, 0x78, 0x12, // timestamp low 24 bits, then bits 24..32
                0, 0, 0, // stream id
                0xaa, 0xbb, // payload
                0, 0, 0, 13, // previous tag size
            ]
        );
        let script = encode_tag(FrameKind::Script, 0, &[]);
        assert_eq!(
            &script[..],
            &[18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11]
        );
    }

    #[test]
    fn oversized_payload_is_cut_to_what_flv_can_describe() {
        let payload = vec![0u8; MAX_TAG_PAYLOAD + 3];
        let tag = encode_tag(FrameKind::Audio, 0, &payload);
        assert_eq!(&tag[1..4], &[0xff, 0xff, 0xff]);
        assert_eq!(
            tag.len(),
            TAG_HEADER_LEN + MAX_TAG_PAYLOAD + PREVIOUS_TAG_SIZE_LEN
        );
        let back = &tag[tag.len() - 4..];
        assert_eq!(back, &(MAX_TAG_PAYLOAD as u32 + 11).to_be_bytes());
    }
}
