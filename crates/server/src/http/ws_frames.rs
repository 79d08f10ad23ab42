//! Writes complete, pre-encoded WebSocket frames to a socket: a batch of room events in
//! one system call when the socket takes it all. Each room event is framed once for
//! every connection ([`Envelope::ws_frame`](onair_rooms::Envelope::ws_frame)).
//!
//! A batch up to [`COPY_MAX`] is copied into one buffer and written with a plain write:
//! measured at 10,000 connections on Linux, the kernel's copy from a vector of small
//! slices cost far more than one copy in user space plus a contiguous write. Larger
//! batches are written vectored, uncopied.

use std::io::{self, IoSlice};

use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Most frames in one vectored write (Linux takes up to 1024 slices).
const MAX_SLICES: usize = 64;
/// Largest batch copied into one buffer for a contiguous write; the buffer lives only
/// for the write, so an idle connection keeps none.
const COPY_MAX: usize = 16 * 1024;

/// Writes every frame of `frames`, in order, then flushes `io`. On an error some of
/// them may have been written.
pub(super) async fn write_frames<W>(io: &mut W, frames: &[&[u8]]) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let total: usize = frames.iter().map(|f| f.len()).sum();
    if frames.len() == 1 || total <= COPY_MAX || !io.is_write_vectored() {
        if let [frame] = frames {
            io.write_all(frame).await?;
        } else {
            io.write_all(&frames.concat()).await?;
        }
    } else {
        for chunk in frames.chunks(MAX_SLICES) {
            write_vectored_all(io, chunk).await?;
        }
    }
    io.flush().await
}

async fn write_vectored_all<W>(io: &mut W, frames: &[&[u8]]) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut slices: Vec<IoSlice<'_>> = frames
        .iter()
        .filter(|f| !f.is_empty())
        .map(|f| IoSlice::new(f))
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let written = io.write_vectored(rest).await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, written);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use futures_util::StreamExt;
    use onair_rooms::{Envelope, Event, Millis, Seq, SystemEvent};
    use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::WebSocketStream;

    use super::*;

    /// Takes at most `step` bytes per write (vectored or not), `Pending` every other call.
    struct Trickle {
        out: Vec<u8>,
        step: usize,
        vectored: bool,
        calls: usize,
        pending_next: bool,
    }

    impl Trickle {
        fn new(step: usize, vectored: bool) -> Self {
            Self {
                out: Vec::new(),
                step,
                vectored,
                calls: 0,
                pending_next: false,
            }
        }

        fn take(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
            self.pending_next = !self.pending_next;
            if self.pending_next {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.calls += 1;
            let mut room = self.step;
            for buf in bufs {
                let n = buf.len().min(room);
                self.out.extend_from_slice(&buf[..n]);
                room -= n;
                if room == 0 {
                    break;
                }
            }
            Poll::Ready(Ok(self.step - room))
        }
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.take(cx, &[IoSlice::new(buf)])
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            self.take(cx, bufs)
        }

        fn is_write_vectored(&self) -> bool {
            self.vectored
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn events(lengths: &[usize]) -> Vec<Envelope> {
        lengths
            .iter()
            .enumerate()
            .map(|(i, len)| {
                Envelope::new(Event::System(SystemEvent {
                    seq: Seq(i as u64 + 1),
                    ts: Millis(7),
                    text: "é".repeat(*len),
                }))
            })
            .collect()
    }

    fn frames(events: &[Envelope]) -> Vec<&[u8]> {
        events.iter().map(|e| e.ws_frame().as_ref()).collect()
    }

    #[tokio::test]
    async fn partial_writes_put_every_byte_out_in_order() {
        // Above COPY_MAX in total: written vectored; or copied when not vectored.
        let events = events(&[0, 10, 100, 40_000, 3]);
        let expected: Vec<u8> = frames(&events).concat();
        for vectored in [true, false] {
            for step in [1, 7, 200, 1 << 20] {
                let mut io = Trickle::new(step, vectored);
                write_frames(&mut io, &frames(&events)).await.unwrap();
                assert_eq!(io.out, expected, "step {step}, vectored {vectored}");
            }
        }
        // A socket that takes everything gets the batch in one call.
        let mut io = Trickle::new(1 << 20, true);
        write_frames(&mut io, &frames(&events)).await.unwrap();
        assert_eq!(io.calls, 1);
    }

    #[tokio::test]
    async fn a_small_batch_is_copied_into_one_write_and_may_be_taken_in_parts() {
        let events = events(&[0, 10, 100, 3]);
        let expected: Vec<u8> = frames(&events).concat();
        assert!(expected.len() <= COPY_MAX);
        for step in [1, 7, 1 << 20] {
            let mut io = Trickle::new(step, true);
            write_frames(&mut io, &frames(&events)).await.unwrap();
            assert_eq!(io.out, expected, "step {step}");
            assert_eq!(io.calls, expected.len().div_ceil(step), "step {step}");
        }
    }

    #[tokio::test]
    async fn more_frames_than_one_call_takes_are_all_written() {
        let events = events(&vec![100; MAX_SLICES * 2 + 3]);
        assert!(frames(&events).concat().len() > COPY_MAX);
        let mut io = Trickle::new(1 << 20, true);
        write_frames(&mut io, &frames(&events)).await.unwrap();
        assert_eq!(io.out, frames(&events).concat());
        assert_eq!(io.calls, 3);
    }

    #[tokio::test]
    async fn a_socket_that_takes_nothing_is_an_error() {
        let events = events(&[1]);
        let mut io = Trickle::new(0, true);
        let error = write_frames(&mut io, &frames(&events)).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WriteZero);
    }

    #[tokio::test]
    async fn a_websocket_client_reads_the_frames_as_the_events_text_then_a_close() {
        let events = events(&[0, 1, 60, 125, 126, 20_000, 70_000]);
        let (server, client) = tokio::io::duplex(1 << 10);
        let (mut server_read, mut server_write) = tokio::io::split(server);
        let writer = {
            let frames: Vec<Bytes> = events.iter().map(|e| e.ws_frame().clone()).collect();
            tokio::spawn(async move {
                let slices: Vec<&[u8]> = frames.iter().map(|f| f.as_ref()).collect();
                write_frames(&mut server_write, &slices).await.unwrap();
                // A close frame (code 1001) written by hand after the events.
                write_frames(&mut server_write, &[&[0x88, 2, 0x03, 0xe9]])
                    .await
                    .unwrap();
                // Keep reading so the client's close reply does not block it.
                let mut sink = Vec::new();
                let _ = tokio::io::AsyncReadExt::read_to_end(&mut server_read, &mut sink).await;
            })
        };
        let config = WebSocketConfig::default().max_message_size(Some(1 << 20));
        let mut client = WebSocketStream::from_raw_socket(client, Role::Client, Some(config)).await;
        for event in &events {
            match client.next().await {
                Some(Ok(Message::Text(text))) => assert_eq!(text.as_bytes(), event.json().as_ref()),
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
        match client.next().await {
            Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1001),
            other => panic!("expected a close frame, got {other:?}"),
        }
        drop(client);
        writer.await.unwrap();
    }
}
