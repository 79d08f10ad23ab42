use std::collections::VecDeque;
use std::sync::OnceLock;

use bytes::Bytes;
use onair_flv::{MAX_TAG_PAYLOAD, PREVIOUS_TAG_SIZE_LEN, TAG_HEADER_LEN};
use onair_media::{FrameKind, MediaFrame};
use onair_policy::FrameFacts;
use onair_rtmp::MediaKind;

/// The message stream id nearly every RTMP player gets from its first `createStream`;
/// chunks for it are encoded once and shared.
const SHARED_RTMP_STREAM_ID: u32 = 1;

/// A frame on its way to viewers. Each wire form is built the first time a viewer
/// needs it and then shared by every viewer of that protocol: encode once, send many.
/// The forms viewers' sockets get are pieces around the shared payload, not copies
/// of it: a stream's ring holds each frame's bytes once, whatever its viewers speak.
#[derive(Debug)]
pub struct HubFrame {
    pub frame: MediaFrame,
    flv_tag: OnceLock<Bytes>,
    /// The HTTP chunk's bytes before and after the payload.
    flv_chunk: OnceLock<[Bytes; 2]>,
    rtmp_chunks: OnceLock<Box<[Bytes]>>,
}

/// What the GOP cache and the skip policy read of a frame.
impl FrameFacts for HubFrame {
    fn media(&self) -> &MediaFrame {
        &self.frame
    }
}

impl HubFrame {
    pub fn new(frame: MediaFrame) -> Self {
        Self {
            frame,
            flv_tag: OnceLock::new(),
            flv_chunk: OnceLock::new(),
            rtmp_chunks: OnceLock::new(),
        }
    }

    /// A copy carrying `timestamp` instead, with its wire forms built afresh.
    pub fn restamped(&self, timestamp: u32) -> Self {
        Self::new(MediaFrame {
            timestamp,
            ..self.frame.clone()
        })
    }

    pub fn is_video_keyframe(&self) -> bool {
        FrameFacts::is_video_keyframe(self)
    }

    /// The frame as a complete FLV tag (header, body, previous-tag-size).
    pub fn flv_tag(&self) -> Bytes {
        self.flv_tag
            .get_or_init(|| {
                onair_flv::encode_tag(self.frame.kind, self.frame.timestamp, &self.frame.payload)
            })
            .clone()
    }

    /// Appends the FLV tag as one HTTP/1.1 chunk (`size CRLF tag CRLF`), in pieces,
    /// for HTTP-FLV responses written directly to the socket. Returns its length.
    pub fn push_flv_chunk(&self, out: &mut VecDeque<Bytes>) -> usize {
        let payload = self
            .frame
            .payload
            .slice(..self.frame.payload.len().min(MAX_TAG_PAYLOAD));
        let [before, after] = self.flv_chunk.get_or_init(|| {
            let tag_len = TAG_HEADER_LEN + payload.len() + PREVIOUS_TAG_SIZE_LEN;
            let mut before = format!("{tag_len:x}\r\n").into_bytes();
            before.extend_from_slice(&onair_flv::tag_header(
                self.frame.kind,
                self.frame.timestamp,
                payload.len(),
            ));
            let mut after = onair_flv::previous_tag_size(payload.len()).to_vec();
            after.extend_from_slice(b"\r\n");
            [Bytes::from(before), Bytes::from(after)]
        });
        let len = before.len() + payload.len() + after.len();
        out.extend([before.clone(), payload, after.clone()]);
        len
    }

    /// Appends the frame as self-contained RTMP chunks for message stream
    /// `stream_id`, in pieces. Returns their length.
    pub fn push_rtmp_chunks(
        &self,
        stream_id: u32,
        chunk_size: u32,
        out: &mut VecDeque<Bytes>,
    ) -> usize {
        let encode = || {
            onair_rtmp::media_chunk_parts(
                rtmp_kind(self.frame.kind),
                stream_id,
                self.frame.timestamp,
                &self.frame.payload,
                chunk_size,
            )
        };
        let before = out.len();
        if stream_id == SHARED_RTMP_STREAM_ID {
            let parts = self.rtmp_chunks.get_or_init(|| encode().into());
            out.extend(parts.iter().cloned());
        } else {
            out.extend(encode());
        }
        out.range(before..).map(Bytes::len).sum()
    }
}

/// `data` framed as one chunk of a chunked HTTP/1.1 body.
pub fn http_chunk(data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 12);
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

fn rtmp_kind(kind: FrameKind) -> MediaKind {
    match kind {
        FrameKind::Audio => MediaKind::Audio,
        FrameKind::Video => MediaKind::Video,
        FrameKind::Script => MediaKind::Data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: usize) -> HubFrame {
        HubFrame::new(MediaFrame {
            kind: FrameKind::Video,
            timestamp: 0x0123_4567,
            keyframe: true,
            sequence_header: false,
            payload: Bytes::from((0..len).map(|i| i as u8).collect::<Vec<_>>()),
        })
    }

    #[test]
    fn flv_chunk_pieces_are_the_tag_as_an_http_chunk() {
        for len in [0, 1, 5000] {
            let frame = frame(len);
            let mut out = VecDeque::new();
            let written = frame.push_flv_chunk(&mut out);
            let bytes: Vec<u8> = out.iter().flat_map(|b| b.to_vec()).collect();
            assert_eq!(bytes, http_chunk(&frame.flv_tag()).to_vec());
            assert_eq!(written, bytes.len());
        }
    }

    #[test]
    fn rtmp_chunk_pieces_are_the_encoded_chunks_on_any_stream_id() {
        for stream_id in [1, 3] {
            let frame = frame(9000);
            let mut out = VecDeque::new();
            let written = frame.push_rtmp_chunks(stream_id, 4096, &mut out);
            let bytes: Vec<u8> = out.iter().flat_map(|b| b.to_vec()).collect();
            let whole = onair_rtmp::encode_media_chunks(
                onair_rtmp::MediaKind::Video,
                stream_id,
                frame.frame.timestamp,
                &frame.frame.payload,
                4096,
            );
            assert_eq!(bytes, whole.to_vec());
            assert_eq!(written, bytes.len());
        }
    }
}
