//! Message types, and the protocol control and user control messages (RTMP spec 5.4, 6.2, 7.1.7).

use bytes::{BufMut, Bytes, BytesMut};

use crate::Error;

/// Message type ids.
pub mod type_id {
    /// Protocol control: Set Chunk Size.
    pub const SET_CHUNK_SIZE: u8 = 1;
    /// Protocol control: Abort Message.
    pub const ABORT: u8 = 2;
    /// Protocol control: Acknowledgement.
    pub const ACKNOWLEDGEMENT: u8 = 3;
    /// User control message.
    pub const USER_CONTROL: u8 = 4;
    /// Protocol control: Window Acknowledgement Size.
    pub const WINDOW_ACK_SIZE: u8 = 5;
    /// Protocol control: Set Peer Bandwidth.
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    /// Audio data.
    pub const AUDIO: u8 = 8;
    /// Video data.
    pub const VIDEO: u8 = 9;
    /// Data message in AMF3 (a format byte, then AMF0 in practice).
    pub const DATA_AMF3: u8 = 15;
    /// Shared object in AMF3 (not supported).
    pub const SHARED_OBJECT_AMF3: u8 = 16;
    /// Command in AMF3 (a format byte, then AMF0 in practice).
    pub const COMMAND_AMF3: u8 = 17;
    /// Data message in AMF0 (`@setDataFrame`, `onMetaData`, ...).
    pub const DATA_AMF0: u8 = 18;
    /// Shared object in AMF0 (not supported).
    pub const SHARED_OBJECT_AMF0: u8 = 19;
    /// Command in AMF0.
    pub const COMMAND_AMF0: u8 = 20;
    /// Aggregate message (several audio/video/data messages in one).
    pub const AGGREGATE: u8 = 22;
}

/// Chunk stream for protocol control and user control messages.
pub const CSID_PROTOCOL_CONTROL: u32 = 2;
/// Chunk stream this crate sends every command on.
pub const CSID_COMMAND: u32 = 3;
/// Chunk stream for audio written by [`encode_media_chunks`](crate::encode_media_chunks).
pub const CSID_AUDIO: u32 = 4;
/// Chunk stream for data messages written by [`encode_media_chunks`](crate::encode_media_chunks).
pub const CSID_DATA: u32 = 5;
/// Chunk stream for video written by [`encode_media_chunks`](crate::encode_media_chunks).
pub const CSID_VIDEO: u32 = 6;

/// One whole message as reassembled from chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// Chunk stream it arrived on.
    pub csid: u32,
    /// Absolute timestamp in milliseconds (deltas accumulated, wrapping).
    pub timestamp: u32,
    /// Message type id, see [`type_id`].
    pub type_id: u8,
    /// Message stream id (0 for the connection, else a stream from createStream).
    pub stream_id: u32,
    /// The message body.
    pub payload: Bytes,
}

/// What a media message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// Message type 8.
    Audio,
    /// Message type 9.
    Video,
    /// Message type 18 (AMF0 data), or 15 (AMF3 data) with its format byte skipped.
    Data,
}

impl MediaKind {
    /// The message type id this kind is sent as.
    pub fn type_id(self) -> u8 {
        match self {
            MediaKind::Audio => type_id::AUDIO,
            MediaKind::Video => type_id::VIDEO,
            MediaKind::Data => type_id::DATA_AMF0,
        }
    }

    /// The fixed chunk stream id this kind is sent on.
    pub fn csid(self) -> u32 {
        match self {
            MediaKind::Audio => CSID_AUDIO,
            MediaKind::Video => CSID_VIDEO,
            MediaKind::Data => CSID_DATA,
        }
    }

    /// The kind of a media message type id (8, 9, 18, 15).
    pub fn from_type_id(type_id: u8) -> Option<Self> {
        match type_id {
            type_id::AUDIO => Some(MediaKind::Audio),
            type_id::VIDEO => Some(MediaKind::Video),
            type_id::DATA_AMF0 | type_id::DATA_AMF3 => Some(MediaKind::Data),
            _ => None,
        }
    }
}

/// A user control event (message type 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserControl {
    /// The stream is ready to be used (event 0).
    StreamBegin(u32),
    /// Playback of the stream ended (event 1).
    StreamEof(u32),
    /// No more data on the stream for now (event 2).
    StreamDry(u32),
    /// The client's buffer length in milliseconds (event 3).
    SetBufferLength { stream_id: u32, buffer_ms: u32 },
    /// The stream is recorded (event 4).
    StreamIsRecorded(u32),
    /// Ping request with the sender's timestamp (event 6).
    PingRequest(u32),
    /// Ping response echoing the request's timestamp (event 7).
    PingResponse(u32),
    /// Any other event, kept raw.
    Other { event_type: u16, data: Bytes },
}

/// A protocol control message (types 1, 2, 3, 5, 6) or a user control message (type 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlMessage {
    /// Chunk size for what the sender sends next.
    SetChunkSize(u32),
    /// Discard the partial message on this chunk stream.
    Abort { csid: u32 },
    /// Bytes received so far by the sender.
    Acknowledgement { sequence: u32 },
    /// Send an Acknowledgement after this many bytes.
    WindowAckSize(u32),
    /// Limit output bandwidth; `limit_type` 0 hard, 1 soft, 2 dynamic.
    SetPeerBandwidth { size: u32, limit_type: u8 },
    /// A user control event.
    UserControl(UserControl),
}

fn be32(payload: &[u8], at: usize) -> Option<u32> {
    let bytes = payload.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

impl ControlMessage {
    /// Decodes a control message; `Ok(None)` when `msg` is not a control message type.
    pub fn decode(msg: &RawMessage) -> Result<Option<Self>, Error> {
        let p = &msg.payload[..];
        let short = || Error::Truncated {
            csid: msg.csid,
            type_id: msg.type_id,
            len: p.len(),
        };
        let word = |at: usize| be32(p, at).ok_or_else(short);
        Ok(Some(match msg.type_id {
            type_id::SET_CHUNK_SIZE => ControlMessage::SetChunkSize(word(0)?),
            type_id::ABORT => ControlMessage::Abort { csid: word(0)? },
            type_id::ACKNOWLEDGEMENT => ControlMessage::Acknowledgement { sequence: word(0)? },
            type_id::WINDOW_ACK_SIZE => ControlMessage::WindowAckSize(word(0)?),
            type_id::SET_PEER_BANDWIDTH => ControlMessage::SetPeerBandwidth {
                size: word(0)?,
                // Some encoders leave the limit type out; treat that as dynamic.
                limit_type: p.get(4).copied().unwrap_or(2),
            },
            type_id::USER_CONTROL => {
                let (Some(&hi), Some(&lo)) = (p.first(), p.get(1)) else {
                    return Err(short());
                };
                let event_type = u16::from_be_bytes([hi, lo]);
                ControlMessage::UserControl(match event_type {
                    0 => UserControl::StreamBegin(word(2)?),
                    1 => UserControl::StreamEof(word(2)?),
                    2 => UserControl::StreamDry(word(2)?),
                    3 => UserControl::SetBufferLength {
                        stream_id: word(2)?,
                        buffer_ms: word(6)?,
                    },
                    4 => UserControl::StreamIsRecorded(word(2)?),
                    6 => UserControl::PingRequest(word(2)?),
                    7 => UserControl::PingResponse(word(2)?),
                    _ => UserControl::Other {
                        event_type,
                        data: msg.payload.slice(2..),
                    },
                })
            }
            _ => return Ok(None),
        }))
    }

    /// The message type id this is sent as.
    pub fn type_id(&self) -> u8 {
        match self {
            ControlMessage::SetChunkSize(_) => type_id::SET_CHUNK_SIZE,
            ControlMessage::Abort { .. } => type_id::ABORT,
            ControlMessage::Acknowledgement { .. } => type_id::ACKNOWLEDGEMENT,
            ControlMessage::WindowAckSize(_) => type_id::WINDOW_ACK_SIZE,
            ControlMessage::SetPeerBandwidth { .. } => type_id::SET_PEER_BANDWIDTH,
            ControlMessage::UserControl(_) => type_id::USER_CONTROL,
        }
    }

    /// The message body.
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(10);
        match self {
            ControlMessage::SetChunkSize(size) => buf.put_u32(size & 0x7fff_ffff),
            ControlMessage::Abort { csid } => buf.put_u32(*csid),
            ControlMessage::Acknowledgement { sequence } => buf.put_u32(*sequence),
            ControlMessage::WindowAckSize(size) => buf.put_u32(*size),
            ControlMessage::SetPeerBandwidth { size, limit_type } => {
                buf.put_u32(*size);
                buf.put_u8(*limit_type);
            }
            ControlMessage::UserControl(event) => {
                let (event_type, a, b) = match event {
                    UserControl::StreamBegin(id) => (0, *id, None),
                    UserControl::StreamEof(id) => (1, *id, None),
                    UserControl::StreamDry(id) => (2, *id, None),
                    UserControl::SetBufferLength {
                        stream_id,
                        buffer_ms,
                    } => (3, *stream_id, Some(*buffer_ms)),
                    UserControl::StreamIsRecorded(id) => (4, *id, None),
                    UserControl::PingRequest(ts) => (6, *ts, None),
                    UserControl::PingResponse(ts) => (7, *ts, None),
                    UserControl::Other { event_type, data } => {
                        buf.put_u16(*event_type);
                        buf.put_slice(data);
                        return buf.freeze();
                    }
                };
                buf.put_u16(event_type);
                buf.put_u32(a);
                if let Some(b) = b {
                    buf.put_u32(b);
                }
            }
        }
        buf.freeze()
    }
}

/// The audio, video and data messages inside an aggregate message (type 22), in order, with
/// timestamps rebased onto the aggregate's own and payloads sharing its buffer. Other types
/// inside are skipped; a truncated tail is dropped.
pub fn split_aggregate(msg: &RawMessage) -> Vec<RawMessage> {
    let p = &msg.payload;
    let mut out = Vec::new();
    let mut pos = 0usize;
    let mut first_ts = None;
    while let Some(h) = p.get(pos..pos + 11) {
        let sub_type = h[0];
        let size = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
        let ts = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        let start = pos + 11;
        let end = start + size;
        if end > p.len() {
            break;
        }
        let base = *first_ts.get_or_insert(ts);
        if MediaKind::from_type_id(sub_type).is_some() {
            out.push(RawMessage {
                csid: msg.csid,
                timestamp: msg.timestamp.wrapping_add(ts.wrapping_sub(base)),
                type_id: sub_type,
                stream_id: msg.stream_id,
                payload: p.slice(start..end),
            });
        }
        // Skip the 4-byte back pointer.
        pos = end + 4;
    }
    out
}

/// Acknowledgement bookkeeping shared by both session roles: when to send an
/// Acknowledgement, and whether a Set Peer Bandwidth needs a Window Ack Size reply.
#[derive(Debug, Default)]
pub(crate) struct AckState {
    /// Window the peer asked us to acknowledge (its Window Ack Size), 0 until it sends one.
    pub(crate) peer_window: u32,
    /// Bytes received when we last sent an Acknowledgement.
    pub(crate) last_ack_at: u64,
    /// Last sequence number the peer acknowledged.
    pub(crate) peer_acked: Option<u32>,
    /// The last Window Ack Size we sent.
    pub(crate) window_sent: Option<u32>,
}

impl AckState {
    /// An Acknowledgement to send now, if a window's worth of bytes came in since the last one.
    pub(crate) fn ack_due(&mut self, bytes_received: u64) -> Option<ControlMessage> {
        if self.peer_window == 0
            || bytes_received.saturating_sub(self.last_ack_at) < u64::from(self.peer_window)
        {
            return None;
        }
        self.last_ack_at = bytes_received;
        Some(ControlMessage::Acknowledgement {
            // The sequence number wraps at 2^32 like the peer's counter.
            sequence: bytes_received as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(type_id: u8, payload: &[u8]) -> RawMessage {
        RawMessage {
            csid: 2,
            timestamp: 0,
            type_id,
            stream_id: 0,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    #[test]
    fn control_messages_round_trip() {
        let all = [
            ControlMessage::SetChunkSize(4096),
            ControlMessage::Abort { csid: 6 },
            ControlMessage::Acknowledgement { sequence: 123 },
            ControlMessage::WindowAckSize(2_500_000),
            ControlMessage::SetPeerBandwidth {
                size: 2_500_000,
                limit_type: 2,
            },
            ControlMessage::UserControl(UserControl::StreamBegin(1)),
            ControlMessage::UserControl(UserControl::StreamEof(1)),
            ControlMessage::UserControl(UserControl::StreamDry(1)),
            ControlMessage::UserControl(UserControl::SetBufferLength {
                stream_id: 1,
                buffer_ms: 3000,
            }),
            ControlMessage::UserControl(UserControl::StreamIsRecorded(1)),
            ControlMessage::UserControl(UserControl::PingRequest(77)),
            ControlMessage::UserControl(UserControl::PingResponse(77)),
            ControlMessage::UserControl(UserControl::Other {
                event_type: 31,
                data: Bytes::from_static(&[0, 0, 0, 1]),
            }),
        ];
        for msg in all {
            let back = ControlMessage::decode(&raw(msg.type_id(), &msg.encode()));
            assert_eq!(back.ok().flatten(), Some(msg));
        }
    }

    #[test]
    fn short_control_messages_are_errors() {
        for (type_id, payload) in [
            (type_id::SET_CHUNK_SIZE, &[0u8, 0, 1][..]),
            (type_id::USER_CONTROL, &[0][..]),
            (type_id::USER_CONTROL, &[0, 3, 0, 0, 0, 1, 0][..]),
            (type_id::WINDOW_ACK_SIZE, &[][..]),
        ] {
            assert!(matches!(
                ControlMessage::decode(&raw(type_id, payload)),
                Err(Error::Truncated { .. })
            ));
        }
        assert_eq!(
            ControlMessage::decode(&raw(type_id::AUDIO, &[1, 2])).ok(),
            Some(None)
        );
    }

    #[test]
    fn ack_due_after_each_window() {
        let mut ack = AckState {
            peer_window: 100,
            ..AckState::default()
        };
        assert_eq!(ack.ack_due(99), None);
        assert_eq!(
            ack.ack_due(150),
            Some(ControlMessage::Acknowledgement { sequence: 150 })
        );
        assert_eq!(ack.ack_due(249), None);
        assert!(ack.ack_due(250).is_some());
    }
}
