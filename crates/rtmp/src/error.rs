use crate::handshake::HandshakeError;

/// Everything an RTMP peer can do wrong. After any of these the connection must be closed:
/// the session's state is no longer in step with the peer's.
///
/// Variants carry the chunk stream id (`csid`), message type id and sizes involved, so a
/// failure can be found in a packet capture.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The handshake failed.
    #[error("RTMP handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// A Set Chunk Size of 0, above the limit, or with the top bit set.
    #[error("set chunk size {size} is invalid (allowed 1..={max})")]
    BadChunkSize { size: u32, max: u32 },
    /// A chunk header declared a message longer than [`Limits::max_message_size`](crate::Limits).
    #[error("chunk stream {csid}: message type {type_id} declares {size} bytes, more than the limit of {max}")]
    MessageTooLarge {
        csid: u32,
        type_id: u8,
        size: u32,
        max: u32,
    },
    /// Partially received messages on all chunk streams together hold too many bytes.
    #[error("chunk stream {csid}: partial messages would hold {buffered} bytes, more than the limit of {max}")]
    TooMuchBuffered {
        csid: u32,
        buffered: usize,
        max: usize,
    },
    /// The peer used more distinct chunk stream ids than [`Limits::max_chunk_streams`](crate::Limits).
    #[error("chunk stream {csid} would be chunk stream number {}, more than the limit of {max}", max + 1)]
    TooManyChunkStreams { csid: u32, max: usize },
    /// A chunk with a type 2 or 3 header on a chunk stream that had no full header yet.
    #[error(
        "chunk stream {csid}: header type {fmt} before any message header on that chunk stream"
    )]
    MissingChunkHeader { csid: u32, fmt: u8 },
    /// A protocol control or user control message with a payload too short for its type.
    #[error("chunk stream {csid}: message type {type_id} has {len} bytes, too short")]
    Truncated { csid: u32, type_id: u8, len: usize },
    /// A command or data message that is not valid AMF0 (or nests too deep).
    #[error("chunk stream {csid}: message type {type_id}: {source}")]
    Amf {
        csid: u32,
        type_id: u8,
        #[source]
        source: onair_amf0::Error,
    },
    /// A command whose shape is wrong: no name, or a required argument missing.
    #[error("command {name:?}: {reason}")]
    BadCommand { name: String, reason: &'static str },
    /// More message streams created (createStream) than one connection may hold.
    #[error("more than {max} message streams on one connection")]
    TooManyStreams { max: usize },
}
