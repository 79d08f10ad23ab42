//! A connection whose delivery group writes straight to its socket, and the handle
//! the connection keeps.
//!
//! A connection lends the group the write half of its socket for as long as it is
//! seated. It still reads the socket itself; what its protocol has to say in the
//! meantime (acknowledgements, replies, pongs) goes through the handle and out after
//! what is already queued, at a message boundary. When the seat ends, for whatever
//! reason, the connection gets its feed and socket back with the bytes not yet written.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWrite;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::group::Group;
use super::Feed;
use crate::write::poll_write_queue;

/// The write half of a connection's socket, whatever its transport (TCP, TLS).
pub type BoxedWriter = Box<dyn AsyncWrite + Send + Unpin>;

/// Control messages a connection may have queued on its seat at most. A peer asks
/// for a reply now and then; one that keeps asking while not reading is let go.
pub const MAX_QUEUED_CONTROL: usize = 64;

/// Capacity a seat's queue shrinks back to after a large batch (an initial GOP).
const SMALL_QUEUE: usize = 16;

/// Why a seat's delivery stopped.
#[derive(Debug, thiserror::Error)]
pub enum SeatEndReason<E> {
    #[error("the connection stopped")]
    Stopped,
    #[error("{0}")]
    Feed(E),
    #[error("write failed: {0}")]
    Write(io::Error),
    #[error("socket accepted nothing for {0:?}")]
    WriteTimeout(Duration),
}

/// What a connection gets back when its seat ends.
pub struct SeatEnd<F: Feed> {
    pub feed: F,
    pub writer: BoxedWriter,
    /// Bytes queued but not written, to go out before anything else.
    pub unwritten: VecDeque<Bytes>,
    pub reason: SeatEndReason<F::End>,
}

/// What a connection and the group share about one seat.
pub(super) struct Inbox<F: Feed> {
    control: Mutex<VecDeque<Bytes>>,
    /// Set when `control` holds something or `stop` is set: the group looks at the
    /// lock only then.
    flagged: AtomicBool,
    stop: AtomicBool,
    group: Arc<Group<F>>,
}

impl<F: Feed> Inbox<F> {
    pub(super) fn new(group: Arc<Group<F>>) -> Self {
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
        self.group.wake_for_control();
    }
}

/// The connection's side of a seat.
pub struct SeatHandle<F: Feed> {
    inbox: Arc<Inbox<F>>,
    ended: oneshot::Receiver<Box<SeatEnd<F>>>,
}

impl<F: Feed> SeatHandle<F> {
    pub(super) fn new(inbox: Arc<Inbox<F>>, ended: oneshot::Receiver<Box<SeatEnd<F>>>) -> Self {
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

    /// Has the group look at its seats now, this one's feed included: the feed has
    /// something that did not come from the source.
    pub fn wake(&self) {
        self.inbox.group.wake_for_control();
    }

    /// Asks the group to end the seat; [`ended`](Self::ended) then yields it.
    pub fn stop(&self) {
        self.inbox.stop.store(true, Ordering::SeqCst);
        self.inbox.flag();
    }

    /// Waits for the seat to end. Cancel-safe. `None` only if the group went away
    /// without handing the socket back (the runtime is shutting down). Boxed: the
    /// channel's slot is allocated for the seat's life, the end only at the end.
    pub async fn ended(&mut self) -> Option<Box<SeatEnd<F>>> {
        (&mut self.ended).await.ok()
    }

    /// Stops the seat and waits for the socket to come back.
    pub async fn stop_and_wait(mut self) -> Option<Box<SeatEnd<F>>> {
        self.stop();
        self.ended().await
    }
}

/// One connection as its delivery group holds it.
pub(super) struct Seat<F: Feed> {
    feed: F,
    writer: BoxedWriter,
    out: VecDeque<Bytes>,
    inbox: Arc<Inbox<F>>,
    done: oneshot::Sender<Box<SeatEnd<F>>>,
    write_timeout: Duration,
    /// Since when the socket has taken nothing while bytes wait.
    blocked_since: Option<Instant>,
}

impl<F: Feed> Seat<F> {
    pub(super) fn new(
        feed: F,
        writer: BoxedWriter,
        initial: VecDeque<Bytes>,
        write_timeout: Duration,
        inbox: Arc<Inbox<F>>,
        done: oneshot::Sender<Box<SeatEnd<F>>>,
    ) -> Self {
        Self {
            feed,
            writer,
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

    pub(super) fn deadline(&self) -> Option<Instant> {
        self.feed.deadline()
    }

    pub(super) fn quiet_until(&self) -> Option<Instant> {
        self.feed.quiet_until()
    }

    pub(super) fn count(&self, total: usize) {
        self.feed.count(total);
    }

    /// Moves control bytes and what the feed has to the socket as far as it takes
    /// them, registering the group's waker where it has to wait, and adds what the
    /// feed added to `added`. `Some` when the seat is over.
    pub(super) fn service(
        &mut self,
        cx: &mut Context<'_>,
        scratch: &mut F::Scratch,
        now: Instant,
        added: &mut usize,
    ) -> Option<SeatEndReason<F::End>> {
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
                match self.feed.fill(scratch, &mut self.out, now) {
                    Err(end) => return Some(SeatEndReason::Feed(end)),
                    Ok(0) => {
                        self.blocked_since = None;
                        return None;
                    }
                    Ok(n) => *added += n,
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

    /// Hands the feed and socket back to the connection.
    pub(super) fn end(self, reason: SeatEndReason<F::End>) {
        let end = Box::new(SeatEnd {
            feed: self.feed,
            writer: self.writer,
            unwritten: self.out,
            reason,
        });
        // A connection that is gone has nothing to take back; the feed is dropped.
        let _ = self.done.send(end);
    }
}
