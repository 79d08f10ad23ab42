//! Writing to a plain TCP socket with `sendmsg` instead of `writev`.
//!
//! Both move the same bytes; `sendmsg` goes to the socket layer directly where `writev`
//! first passes through the file layer (position lock, access checks, notifications),
//! which at a thousand viewers times thirty frames a second is a measurable share of
//! the server's CPU.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use socket2::SockRef;
use tokio::io::{AsyncWrite, Interest};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

/// Writes `bufs` to `stream` with one `sendmsg`, waiting for room if there is none.
pub fn poll_send_vectored(
    stream: &TcpStream,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    loop {
        ready!(stream.poll_write_ready(cx))?;
        match stream.try_io(Interest::WRITABLE, || {
            SockRef::from(stream).send_vectored(bufs)
        }) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            result => return Poll::Ready(result),
        }
    }
}

/// A plain TCP socket's write half that writes with `sendmsg`.
pub struct SendHalf(OwnedWriteHalf);

impl SendHalf {
    pub fn new(half: OwnedWriteHalf) -> Self {
        Self(half)
    }
}

impl AsyncWrite for SendHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        poll_send_vectored(self.0.as_ref(), cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn writes_every_buffer_in_order() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let (_read, write) = client.into_split();
        let mut half = SendHalf::new(write);
        let mut queue: std::collections::VecDeque<bytes::Bytes> = [&b"ab"[..], b"", b"cde", b"f"]
            .map(bytes::Bytes::from_static)
            .into();
        crate::write::write_queue(&mut half, &mut queue)
            .await
            .unwrap();
        half.write_all(b"g").await.unwrap();
        half.shutdown().await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"abcdefg");
    }
}
