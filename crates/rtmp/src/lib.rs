//! RTMP without IO: the handshake, the chunk stream, protocol control and user control
//! messages, AMF0 commands, and the server and client session state machines built on them.
//!
//! The caller owns the socket, the clock and the randomness: it feeds received bytes to
//! `handle_input`, writes what `poll_transmit` returns, and reads `poll_event`
//! ([`ServerSession`], [`ClientSession`]). Media is encoded once with
//! [`encode_media_chunks`] (self-contained chunks on fixed chunk stream ids: audio 4,
//! data 5, video 6) so the same bytes can go to every viewer.
//!
//! Every buffer a peer can grow is capped by [`Limits`]; crossing a cap is an [`Error`]
//! that ends that one connection.
//!
//! Chunk stream ids the sessions send on: 2 for protocol and user control, 3 for every
//! command, and only media (plus the self-contained `|RtmpSampleAccess` data message) on
//! 4, 5 and 6. Every message is written with a type 0 header
//! first, so no header state is shared between messages and `poll_transmit` output always ends
//! on a message boundary. The server hands out message stream ids from 1 upwards
//! (createStream); at most [`MAX_STREAMS_PER_CONNECTION`] exist at once.
//!
//! Deliberately absent: RTMPE (encrypted) and RTMPT (tunnelled over HTTP), AMF3 command
//! encoding (a type 17 "AMF3 command" is read by skipping its format byte and decoding AMF0,
//! as servers do for Flash clients; type 15 data likewise), and shared objects (types 16 and
//! 19 are ignored).

mod chunk;
mod client;
mod command;
mod error;
mod handshake;
mod limits;
pub mod message;
mod server;
mod session;

pub use chunk::{
    encode_media_chunks, media_chunk_parts, ChunkReader, ChunkWriter, DEFAULT_CHUNK_SIZE,
    DEFAULT_OUT_CHUNK_SIZE,
};
pub use client::{ClientConfig, ClientEvent, ClientSession};
pub use command::{data_message, status_object, Command};
pub use error::Error;
pub use handshake::{ClientHandshake, HandshakeError, ServerHandshake, RANDOM_LEN};
pub use limits::Limits;
pub use message::{ControlMessage, MediaKind, RawMessage, UserControl};
pub use server::{ServerConfig, ServerEvent, ServerSession, MAX_STREAMS_PER_CONNECTION};
