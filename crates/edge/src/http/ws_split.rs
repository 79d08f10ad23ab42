//! Takes an upgraded room connection apart: the write half goes to the room's delivery
//! group, the read half stays with the connection's task.
//!
//! A plain TCP connection is taken down to its socket: the socket's own halves, with
//! no lock between them, the write half sending with `sendmsg` (`send.rs`). Anything
//! else (TLS) is split with tokio's `split`, a lock taken by every read and write.

use bytes::{Bytes, BytesMut};
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto::upgrade::downcast;
use tokio::io::AsyncRead;

use super::listener::{ConnectionHold, LimitedStream};
use super::serve::Rewind;
use super::ws_upgrade::WsIo;
use crate::fanout::BoxedWriter;
use crate::send::SendHalf;

/// The read side is boxed: the client sends little, so a read costs little either way.
pub(super) type BoxedReader = Box<dyn AsyncRead + Send + Unpin>;

pub(super) struct Halves {
    pub(super) read: BoxedReader,
    pub(super) write: BoxedWriter,
    /// A plain connection's place under the connection limits, kept by the reader.
    pub(super) hold: Option<ConnectionHold>,
}

pub(super) fn split(io: WsIo) -> Halves {
    match downcast::<TokioIo<Rewind<LimitedStream>>>(io.into_inner()) {
        Ok(parts) => {
            // hyper's read-ahead comes first, then what it never read of the head.
            let (head_rest, stream) = parts.io.into_inner().into_parts();
            let unread = join(parts.read_buf, head_rest);
            let (read, write, hold) = stream.into_split();
            Halves {
                read: Box::new(Rewind::new(unread, read)),
                write: Box::new(SendHalf::new(write)),
                hold: Some(hold),
            }
        }
        Err(upgraded) => {
            let (read, write) = tokio::io::split(TokioIo::new(upgraded));
            Halves {
                read: Box::new(read),
                write: Box::new(write),
                hold: None,
            }
        }
    }
}

/// Both, copied out: each is a slice of a read buffer (hyper's is 8 KiB or more), and a
/// slice keeps its whole buffer alive, even an empty one.
fn join(first: Bytes, then: Bytes) -> Bytes {
    if first.is_empty() && then.is_empty() {
        return Bytes::new();
    }
    let mut joined = BytesMut::with_capacity(first.len() + then.len());
    joined.extend_from_slice(&first);
    joined.extend_from_slice(&then);
    joined.freeze()
}
