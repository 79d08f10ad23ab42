//! Writing many shared buffers to one socket with as few system calls as possible.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::AsyncWrite;

/// Buffers handed to one vectored write.
const MAX_IOVECS: usize = 64;

/// Writes every buffer in `queue`, front to back, emptying it.
pub async fn write_queue<W: AsyncWrite + Unpin + ?Sized>(
    writer: &mut W,
    queue: &mut VecDeque<Bytes>,
) -> io::Result<()> {
    let mut written = 0;
    std::future::poll_fn(|cx| poll_write_queue(writer, cx, queue, &mut written)).await
}

/// Writes from the front of `queue` until it is empty (`Ready(Ok)`), the socket is
/// full (`Pending`, with the task's waker registered) or an error. What was written is
/// taken off the queue either way, and added to `written`.
pub fn poll_write_queue<W: AsyncWrite + Unpin + ?Sized>(
    writer: &mut W,
    cx: &mut Context<'_>,
    queue: &mut VecDeque<Bytes>,
    written: &mut usize,
) -> Poll<io::Result<()>> {
    while !queue.is_empty() {
        let wrote = {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut count = 0;
            for (slot, buf) in slices.iter_mut().zip(queue.iter()) {
                *slot = IoSlice::new(buf);
                count += 1;
            }
            ready!(Pin::new(&mut *writer).poll_write_vectored(cx, &slices[..count]))?
        };
        if wrote == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        *written += wrote;
        advance(queue, wrote);
    }
    Poll::Ready(Ok(()))
}

fn advance(queue: &mut VecDeque<Bytes>, mut written: usize) {
    while written > 0 {
        let Some(front) = queue.front_mut() else {
            return;
        };
        if written >= front.len() {
            written -= front.len();
            queue.pop_front();
        } else {
            front.advance(written);
            return;
        }
    }
    while queue.front().is_some_and(Bytes::is_empty) {
        queue.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_everything_in_order() {
        let mut queue: VecDeque<Bytes> = (0..200u8)
            .map(|i| Bytes::from(vec![i; usize::from(i % 7)]))
            .collect();
        let expected: Vec<u8> = queue.iter().flat_map(|b| b.to_vec()).collect();
        let mut out = Vec::new();
        write_queue(&mut out, &mut queue).await.unwrap();
        assert_eq!(out, expected);
        assert!(queue.is_empty());
    }

    #[test]
    fn advance_handles_partial_buffers() {
        let mut queue: VecDeque<Bytes> = [&b"abc"[..], b"de", b"f"].map(Bytes::from_static).into();
        advance(&mut queue, 4);
        assert_eq!(queue.front().unwrap().as_ref(), b"e");
        advance(&mut queue, 2);
        assert!(queue.is_empty());
    }
}
