use std::sync::OnceLock;

use bytes::Bytes;
use onair_media::{FrameKind, MediaFrame};
use onair_rtmp::MediaKind;

/// The message stream id nearly every RTMP player gets from its first `createStream`;
/// chunks for it are encoded once and shared.
const SHARED_RTMP_STREAM_ID: u32 = 1;

/// A frame on its way to viewers. Each wire form is built the first time a viewer
/// needs it and then shared by every viewer of that protocol: encode once, send many.
#[derive(Debug)]
pub struct HubFrame {
    pub frame: MediaFrame,
    flv_tag: OnceLock<Bytes>,
    flv_chunk: OnceLock<Bytes>,
    rtmp_chunks: OnceLock<Bytes>,
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
        self.frame.kind == FrameKind::Video && self.frame.keyframe && !self.frame.sequence_header
    }

    /// The frame as a complete FLV tag (header, body, previous-tag-size).
    pub fn flv_tag(&self) -> Bytes {
        self.flv_tag
            .get_or_init(|| {
                onair_flv::encode_tag(self.frame.kind, self.frame.timestamp, &self.frame.payload)
            })
            .clone()
    }

    /// The FLV tag as one HTTP/1.1 chunk (`size CRLF tag CRLF`), for HTTP-FLV
    /// responses written directly to the socket.
    pub fn flv_chunk(&self) -> Bytes {
        self.flv_chunk
            .get_or_init(|| http_chunk(&self.flv_tag()))
            .clone()
    }

    /// The frame as self-contained RTMP chunks for message stream `stream_id`.
    pub fn rtmp_chunks(&self, stream_id: u32, chunk_size: u32) -> Bytes {
        let encode = || {
            onair_rtmp::encode_media_chunks(
                rtmp_kind(self.frame.kind),
                stream_id,
                self.frame.timestamp,
                &self.frame.payload,
                chunk_size,
            )
        };
        if stream_id == SHARED_RTMP_STREAM_ID {
            self.rtmp_chunks.get_or_init(encode).clone()
        } else {
            encode()
        }
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
