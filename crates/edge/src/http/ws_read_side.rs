//! The read half of a room connection's socket, as tungstenite sees it: reads come
//! from the socket, writes (pongs, pings, the close frame) are kept for the connection
//! to hand to its seat, which writes them between event batches.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Most control bytes kept before the connection takes them; tungstenite writes a
/// frame or two between takes.
const MAX_WRITTEN: usize = 16 * 1024;

pub(super) struct ReadSide<R> {
    read: R,
    written: Vec<u8>,
}

impl<R> ReadSide<R> {
    pub(super) fn new(read: R) -> Self {
        Self {
            read,
            written: Vec::new(),
        }
    }

    /// What tungstenite wrote since the last take, if anything.
    pub(super) fn take_written(&mut self) -> Option<Bytes> {
        (!self.written.is_empty()).then(|| Bytes::from(std::mem::take(&mut self.written)))
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for ReadSide<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl<R: Unpin> AsyncWrite for ReadSide<R> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.written.len() + buf.len() > MAX_WRITTEN {
            return Poll::Ready(Err(io::Error::other("control frames not taken")));
        }
        self.written.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::AsyncWriteExt;
    use tokio_tungstenite::tungstenite::protocol::Role;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::WebSocketStream;

    use super::*;

    #[tokio::test]
    async fn a_ping_read_leaves_its_pong_to_be_taken_and_writes_are_bounded() {
        let (near, far) = tokio::io::duplex(1024);
        let (near_read, _near_write) = tokio::io::split(near);
        let (_far_read, mut far_write) = tokio::io::split(far);
        let mut server =
            WebSocketStream::from_raw_socket(ReadSide::new(near_read), Role::Server, None).await;
        // A masked ping from a client, payload "hi".
        far_write
            .write_all(&[0x89, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2])
            .await
            .unwrap();
        match server.next().await {
            Some(Ok(Message::Ping(payload))) => assert_eq!(&payload[..], b"hi"),
            other => panic!("expected a ping, got {other:?}"),
        }
        server.flush().await.unwrap();
        let pong = server.get_mut().take_written().expect("a pong");
        assert_eq!(&pong[..], &[0x8a, 2, b'h', b'i']);
        assert!(server.get_mut().take_written().is_none());

        let mut side = ReadSide::new(tokio::io::empty());
        let big = vec![0u8; MAX_WRITTEN];
        assert!(side.write_all(&big).await.is_ok());
        assert!(side.write_all(&[1]).await.is_err());
    }
}
