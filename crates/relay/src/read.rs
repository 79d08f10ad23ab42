//! Reading a socket without holding a buffer between reads.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};

/// The most one read returns.
pub const MAX_READ: usize = 64 * 1024;

/// Reads up to `max` bytes (at most [`MAX_READ`]) into a buffer on the stack and
/// copies what came into a `Bytes` of that size. A connection that is mostly idle,
/// like a viewer's, then holds no read buffer while it waits. Empty at end of stream.
pub async fn read_some<R: AsyncRead + Unpin + ?Sized>(
    reader: &mut R,
    max: usize,
) -> io::Result<Bytes> {
    std::future::poll_fn(|cx| poll_read_some(reader, cx, max)).await
}

fn poll_read_some<R: AsyncRead + Unpin + ?Sized>(
    reader: &mut R,
    cx: &mut Context<'_>,
    max: usize,
) -> Poll<io::Result<Bytes>> {
    let mut stack = [MaybeUninit::<u8>::uninit(); MAX_READ];
    let mut buf = ReadBuf::uninit(&mut stack[..max.clamp(1, MAX_READ)]);
    ready!(Pin::new(reader).poll_read(cx, &mut buf))?;
    Poll::Ready(Ok(Bytes::copy_from_slice(buf.filled())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn reads_what_is_there_then_eof() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        a.write_all(b"hello world").await.unwrap();
        assert_eq!(&read_some(&mut b, 5).await.unwrap()[..], b"hello");
        assert_eq!(&read_some(&mut b, 100).await.unwrap()[..], b" world");
        drop(a);
        assert!(read_some(&mut b, 100).await.unwrap().is_empty());
    }
}
