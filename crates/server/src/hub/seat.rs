//! A viewer whose frames its stream's delivery group writes straight to the viewer's
//! socket (see [`fanout`](super::fanout)), and the handle its connection keeps.
//!
//! A connection lends the group the write half of its socket for as long as it plays.
//! It still reads the socket itself; what its protocol has to say in the meantime
//! (acknowledgements, replies) goes through the handle and out after the frames
//! already queued, at a message boundary. When the seat ends, for whatever reason,
//! the connection gets the socket back with the bytes not yet written.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use tokio::sync::oneshot;

use super::fanout::Group;
use super::frame::HubFrame;
use super::viewer::{Viewer, ViewerEnd};
use crate::write::poll_write_queue;

/// The write half of a viewer's socket, whatever its transport (TCP, TLS).
pub type BoxedWriter = Box<dyn AsyncWrite + Send + Unpin>;

/// Control messages a connection may have queued on its seat at most. A player asks
/// for a reply now and then; a peer that keeps asking while not reading is let go.
pub const MAX_QUEUED_CONTROL: usize = 64;

/// Frames gathered into one write.
const MAX_BATCH: usize = 128;

/// How frames are put on a seat's wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    /// RTMP chunks on message stream `stream_id`.
    Rtmp { stream_id: u32, chunk_size: u32 },
    /// FLV tags, each one chunk of a chunked HTTP/1.1 response.
    HttpFlv,
}

impl WireFormat {
    /// Appends `frame`'s wire form to `out`; returns its length.
    fn push(self, frame: &HubFrame, out: &mut VecDeque<Bytes>) -> usize {
        match self {
            WireFormat::Rtmp {
                stream_id,
                chunk_size,
            } => frame.push_rtmp_chunks(stream_id, chunk_size, out),
            WireFormat::HttpFlv => frame.push_flv_chunk(out),
        }
    }
}

/// Why a seat's delivery stopped.
#[derive(Debug, thiserror::Error)]
pub enum SeatEndReason {
    #[error("the connection stopped playing")]
    Stopped,
    #[error("{0}")]
    Viewer(ViewerEnd),
    #[error("write failed: {0}")]
    Write(io::Error),
    #[error("viewer socket accepted nothing for {0:?}")]
    WriteTimeout(Duration),
}

/// What a connection gets back when its seat ends.
pub struct SeatEnd {
    pub viewer: Viewer,
    pub writer: BoxedWriter,
    /// Bytes queued but not written, to go out before anything else.
    pub unwritten: VecDeque<Bytes>,
    pub reason: SeatEndReason,
}

/// What a connection and the group share about one seat.
pub(super) struct Inbox {
    control: Mutex<VecDeque<Bytes>>,
    /// Set when `control` holds something or `stop` is set: the group looks at the
    /// lock only then.
    flagged: AtomicBool,
    stop: AtomicBool,
    group: Arc<Group>,
}

impl Inbox {
    pub(super) fn new(group: Arc<Group>) -> Self {
        Self {
            control: Mutex::new(VecDeque::new()),
            flagged: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            group,
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Bytes>> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn flag(&self) {
        self.flagged.store(true, Ordering::SeqCst);
        self.group.wake();
    }
}

/// The connection's side of a seat.
pub struct SeatHandle {
    inbox: Arc<Inbox>,
    ended: oneshot::Receiver<Box<SeatEnd>>,
}

impl SeatHandle {
    pub(super) fn new(inbox: Arc<Inbox>, ended: oneshot::Receiver<Box<SeatEnd>>) -> Self {
        Self { inbox, ended }
    }

    /// Queues `bytes` (whole protocol messages) to go out after what is queued
    /// already. False when [`MAX_QUEUED_CONTROL`] are waiting: the peer is not reading.
    pub fn send(&self, bytes: Bytes) -> bool {
        {
            let mut control = self.inbox.lock();
            if control.len() >= MAX_QUEUED_CONTROL {
                return false;
            }
            control.push_back(bytes);
        }
        self.inbox.flag();
        true
    }

    /// Asks the group to end the seat; [`ended`](Self::ended) then yields it.
    pub fn stop(&self) {
        self.inbox.stop.store(true, Ordering::SeqCst);
        self.inbox.flag();
    }

    /// Waits for the seat to end. Cancel-safe. `None` only if the group went away
    /// without handing the socket back (the runtime is shutting down). Boxed: the
    /// channel's slot is allocated for the seat's life, the end only at the end.
    pub async fn ended(&mut self) -> Option<Box<SeatEnd>> {
        (&mut self.ended).await.ok()
    }

    /// Stops the seat and waits for the socket to come back.
    pub async fn stop_and_wait(mut self) -> Option<Box<SeatEnd>> {
        self.stop();
        self.ended().await
    }
}

/// One viewer as its delivery group holds it.
pub(super) struct Seat {
    viewer: Viewer,
    writer: BoxedWriter,
    format: WireFormat,
    out: VecDeque<Bytes>,
    inbox: Arc<Inbox>,
    done: oneshot::Sender<Box<SeatEnd>>,
    write_timeout: Duration,
    /// Since when the socket has taken nothing while bytes wait.
    blocked_since: Option<Instant>,
}

impl Seat {
    pub(super) fn new(
        viewer: Viewer,
        writer: BoxedWriter,
        initial: VecDeque<Bytes>,
        format: WireFormat,
        write_timeout: Duration,
        inbox: Arc<Inbox>,
        done: oneshot::Sender<Box<SeatEnd>>,
    ) -> Self {
        Self {
            viewer,
            writer,
            format,
            out: initial,
            inbox,
            done,
            write_timeout,
            blocked_since: None,
        }
    }

    pub(super) fn is_blocked(&self) -> bool {
        self.blocked_since.is_some()
    }

    /// Moves control bytes and ready frames to the socket as far as it takes them,
    /// registering the group's waker where it has to wait, and adds the frames' bytes
    /// to `bytes_out`. `Some` when the seat is over.
    pub(super) fn service(
        &mut self,
        cx: &mut Context<'_>,
        batch: &mut Vec<std::sync::Arc<HubFrame>>,
        now: Instant,
        bytes_out: &mut usize,
    ) -> Option<SeatEndReason> {
        if self.inbox.stop.load(Ordering::SeqCst) {
            return Some(SeatEndReason::Stopped);
        }
        loop {
            // Control messages wait in the inbox (bounded) until the socket has taken
            // what was queued before them.
            if self.out.is_empty() && self.inbox.flagged.load(Ordering::SeqCst) {
                // Cleared before taking, so a message queued meanwhile flags again.
                self.inbox.flagged.store(false, Ordering::SeqCst);
                self.out.extend(self.inbox.lock().drain(..));
            }
            if self.out.is_empty() {
                batch.clear();
                match self.viewer.read_ready(batch, MAX_BATCH) {
                    Err(end) => return Some(SeatEndReason::Viewer(end)),
                    Ok(false) => {
                        self.blocked_since = None;
                        return None;
                    }
                    Ok(true) => {
                        for frame in batch.drain(..) {
                            *bytes_out += self.format.push(&frame, &mut self.out);
                        }
                    }
                }
            }
            let mut written = 0;
            match poll_write_queue(&mut self.writer, cx, &mut self.out, &mut written) {
                Poll::Ready(Ok(())) => {
                    self.blocked_since = None;
                    self.out.shrink_to(SMALL_QUEUE);
                }
                Poll::Ready(Err(error)) => return Some(SeatEndReason::Write(error)),
                Poll::Pending => {
                    let since = if written > 0 {
                        *self.blocked_since.insert(now)
                    } else {
                        *self.blocked_since.get_or_insert(now)
                    };
                    if now.duration_since(since) >= self.write_timeout {
                        return Some(SeatEndReason::WriteTimeout(self.write_timeout));
                    }
                    return None;
                }
            }
        }
    }

    /// Hands the socket back to the connection.
    pub(super) fn end(self, reason: SeatEndReason) {
        let end = Box::new(SeatEnd {
            viewer: self.viewer,
            writer: self.writer,
            unwritten: self.out,
            reason,
        });
        // A connection that is gone has nothing to take back; the viewer is dropped.
        let _ = self.done.send(end);
    }
}

/// Capacity a seat's queue shrinks back to after a large batch (the initial GOP).
const SMALL_QUEUE: usize = 16;
