//! Writing many shared buffers to one socket with as few system calls as possible.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Buffers handed to one vectored write.
const MAX_IOVECS: usize = 16;

/// Writes every buffer in `queue`, front to back, emptying it.
pub async fn write_queue<W: AsyncWrite + Unpin>(
    writer: &mut W,
    queue: &mut VecDeque<Bytes>,
) -> io::Result<()> {
    while !queue.is_empty() {
        let written = {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut count = 0;
            for (slot, buf) in slices.iter_mut().zip(queue.iter()) {
                *slot = IoSlice::new(buf);
                count += 1;
            }
            writer.write_vectored(&slices[..count]).await?
        };
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        advance(queue, written);
    }
    Ok(())
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
