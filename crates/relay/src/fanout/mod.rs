//! Delivery groups: a few tasks that write what many connections are sent straight to
//! their sockets. The media hub seats its RTMP and HTTP-FLV viewers here, the rooms
//! their WebSocket members.
//!
//! A task per connection, woken for every frame or event, costs a wake-up, a poll
//! through the connection's `select!` and a channel read for each one and connection,
//! more than the write itself. A group holds up to [`GROUP_SIZE`] connections' sockets
//! ([`Seat`](seat::Seat)s), each with its [`Feed`]: the source wakes the group once,
//! and the group asks each feed what it has and writes it to that socket, without
//! waiting for any. A socket that takes nothing registers the group's waker and keeps
//! its unwritten bytes; its feed is not asked for more until those are out, so a slow
//! connection falls behind in its source exactly as it did with a task of its own,
//! and the others never wait for it.
//!
//! Groups are tasks of their own, so a source's connections spread over the runtime's
//! worker threads. A group ends when its last seat does.

mod group;
mod seat;

use std::collections::VecDeque;
use tokio::time::Instant;

use bytes::Bytes;

pub use group::{Fanout, GROUP_SIZE};
pub use seat::{BoxedWriter, SeatEnd, SeatEndReason, SeatHandle, MAX_QUEUED_CONTROL};

/// What a seat's connection is sent: the source side of one seat.
pub trait Feed: Send + 'static {
    /// Why the feed ends its seat.
    type End: std::fmt::Display + std::fmt::Debug + Send;
    /// Space a group lends each feed in turn while it fills (so a seat keeps none).
    type Scratch: Default + Send;

    /// Appends what is ready to go out to `out`, in order, as of `now` (the time of the
    /// group's round, the same for every seat in it). Returns how much it added, in the
    /// unit [`count`](Self::count) takes; 0 when nothing is ready.
    fn fill(
        &mut self,
        scratch: &mut Self::Scratch,
        out: &mut VecDeque<Bytes>,
        now: Instant,
    ) -> Result<usize, Self::End>;

    /// When `fill` may have something that no wake-up of the group announces (a
    /// timer of the feed's own), if ever.
    fn deadline(&self) -> Option<Instant> {
        None
    }

    /// Until when `fill` will add nothing, whatever the source does (a feed that
    /// paces its writes); `None` if it may add something at any time. While every
    /// seat of a group is quiet, a wake-up from the source costs the group nothing.
    fn quiet_until(&self) -> Option<Instant> {
        None
    }

    /// Called once per round of a group, on one of its feeds, with the sum of what
    /// every fill of the round added: the feeds of one group share one source, and its
    /// counters are best touched once.
    fn count(&self, _total: usize) {}
}
