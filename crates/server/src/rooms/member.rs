use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use onair_media::StreamPath;
use onair_rooms::{CloseReason, ConnId, Envelope, Error, Identity, Sampler, Seq};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, oneshot};

use super::{now, RoomCell, RoomHub};

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Why a member stops receiving.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberEnd {
    #[error("closed by the room: {}", .0.as_str())]
    Closed(CloseReason),
    #[error("too slow: fell further behind than the room's history reaches")]
    TooSlow,
    #[error("the room was dropped")]
    RoomGone,
}

/// One connection's membership of a room: what it has yet to be sent, its sampler,
/// and its place in the room's fan-out. Leaving the room happens on drop.
#[derive(Debug)]
pub struct Member {
    hub: Arc<RoomHub>,
    cell: Arc<RoomCell>,
    conn: ConnId,
    receiver: broadcast::Receiver<Arc<Envelope>>,
    sampler: Sampler,
    pending: VecDeque<Arc<Envelope>>,
    closed: oneshot::Receiver<CloseReason>,
}

impl Member {
    /// Joins the room of `path`; the welcome and any missed events come first.
    pub fn join(
        hub: &Arc<RoomHub>,
        path: &StreamPath,
        identity: Identity,
        since: Option<Seq>,
    ) -> Result<Self, Error> {
        hub.check_join(&identity)?;
        let cell = hub.room(path)?;
        let conn = ConnId(NEXT_CONN.fetch_add(1, Ordering::Relaxed));
        // Subscribe first: the sampler drops whatever the backlog already carries.
        let receiver = cell.subscribe();
        let closed = cell.on_close(conn);
        let joined = match cell.with_room(|room| room.join(conn, identity, since, now())) {
            Ok(joined) => joined,
            Err(error) => {
                cell.leave(conn);
                return Err(error);
            }
        };
        let mut pending = VecDeque::with_capacity(1 + joined.backlog.len());
        pending.push_back(joined.welcome);
        pending.extend(joined.backlog);
        Ok(Self {
            hub: Arc::clone(hub),
            cell,
            conn,
            receiver,
            sampler: joined.sampler,
            pending,
            closed,
        })
    }

    pub fn conn(&self) -> ConnId {
        self.conn
    }

    /// Chat this connection's sampler has left out so far.
    pub fn skipped_chat(&self) -> u64 {
        self.sampler.skipped_total()
    }

    /// A text frame from this member's client. An error goes back to this client only.
    pub fn handle_text(&self, text: &str) -> Result<(), Error> {
        self.hub.handle_text(&self.cell, self.conn, text)
    }

    /// Waits for at least one event to send, then takes up to `max` that are ready.
    /// Cancel-safe.
    pub async fn next_batch(
        &mut self,
        out: &mut Vec<Arc<Envelope>>,
        max: usize,
    ) -> Result<(), MemberEnd> {
        while out.is_empty() {
            if !self.pending.is_empty() {
                break;
            }
            let skipped_due = self.sampler.poll_timeout();
            let notice = async {
                match skipped_due {
                    Some(at) => {
                        let wait = at.as_u64().saturating_sub(now().as_u64());
                        tokio::time::sleep(Duration::from_millis(wait)).await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                reason = &mut self.closed => {
                    return Err(reason.map_or(MemberEnd::RoomGone, MemberEnd::Closed));
                }
                received = self.receiver.recv() => self.accept(received)?,
                _ = notice => {
                    if let Some(skipped) = self.sampler.poll_skipped(now()) {
                        self.pending.push_back(skipped);
                    }
                }
            }
        }
        while out.len() < max {
            if let Some(event) = self.pending.pop_front() {
                out.push(event);
                continue;
            }
            let received = match self.receiver.try_recv() {
                Ok(event) => Ok(event),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
                Err(TryRecvError::Closed) => Err(RecvError::Closed),
            };
            self.accept(received)?;
        }
        Ok(())
    }

    fn accept(&mut self, received: Result<Arc<Envelope>, RecvError>) -> Result<(), MemberEnd> {
        match received {
            Ok(event) => {
                if self.sampler.admit(&event, now()) {
                    self.pending.push_back(event);
                }
                Ok(())
            }
            Err(RecvError::Lagged(missed)) => self.catch_up(missed),
            Err(RecvError::Closed) => Err(MemberEnd::RoomGone),
        }
    }

    /// Fell off the fan-out ring: refill the kept events from history (the ephemeral
    /// ones, likes and viewer counts, are superseded by the next anyway).
    fn catch_up(&mut self, missed: u64) -> Result<(), MemberEnd> {
        let since = self.sampler.last_seq();
        let resume = self.cell.with_room(|room| room.since(since, now()));
        if !resume.is_complete() {
            return Err(MemberEnd::TooSlow);
        }
        tracing::debug!(room = self.cell.key(), conn = %self.conn, missed, "member caught up from history");
        let now = now();
        for event in resume.events {
            if self.sampler.admit(&event, now) {
                self.pending.push_back(event);
            }
        }
        Ok(())
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.cell.leave(self.conn);
    }
}
