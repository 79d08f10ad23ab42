use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use onair_rooms::{CatchUp, CloseReason, ConnId, Draft, Idle, Millis, Output, Resume, Room, Seq};
use tokio::sync::{oneshot, Notify};
use tokio_util::sync::CancellationToken;

use super::backend::{RoomBackend, RoomChannel, Subscription};
use super::now;
use super::seat::MemberFeed;
use super::tap::EventTap;
use onair_relay::fanout::Fanout;

/// Events taken from the shared log at a time ([`Sequencing::External`](onair_rooms::Sequencing)).
const FOLLOW_BATCH: usize = 256;
/// Wait before asking the shared log again after a failure.
const FOLLOW_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// One room behind its own lock, with its channel in the room backend. Every change
/// goes through [`with_room`](RoomCell::with_room), which drains the room's outputs
/// while the lock is held so events leave in the order the room made them.
#[derive(Debug)]
pub struct RoomCell {
    key: String,
    room: Mutex<Room>,
    channel: Box<dyn RoomChannel>,
    closers: Mutex<BTreeMap<ConnId, oneshot::Sender<CloseReason>>>,
    /// Connections the room has closed so far; members look at their close channel
    /// when it moves.
    closes: AtomicU64,
    /// The room's member count, as of its last change.
    members: AtomicUsize,
    /// Wakes the room's timer task when the next deadline may have moved earlier.
    wake: Notify,
    /// Ends the timer task (and the log-following one) when the room is dropped.
    pub(super) stop: CancellationToken,
    tap: Option<EventTap>,
    /// The delivery groups of the room's WebSocket members, woken for what it sends.
    fanout: Fanout<MemberFeed>,
}

impl RoomCell {
    /// `room` must sequence the way `backend` says ([`RoomBackend::sequencing`]).
    pub(super) fn new(room: Room, backend: &dyn RoomBackend, tap: Option<EventTap>) -> Arc<Self> {
        Arc::new(Self {
            key: room.key().to_owned(),
            channel: backend.open(room.key()),
            room: Mutex::new(room),
            closers: Mutex::new(BTreeMap::new()),
            closes: AtomicU64::new(0),
            members: AtomicUsize::new(0),
            wake: Notify::new(),
            stop: CancellationToken::new(),
            tap,
            fanout: Fanout::default(),
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// Runs `f` on the room, then hands out whatever it produced.
    pub fn with_room<T>(&self, f: impl FnOnce(&mut Room) -> T) -> T {
        self.with_room_then(f, |_| {})
    }

    /// [`with_room`](Self::with_room), then `after` on `f`'s result once what the room
    /// produced is out, still under the room's lock: nothing the room says later can
    /// overtake what `after` does.
    pub fn with_room_then<T>(&self, f: impl FnOnce(&mut Room) -> T, after: impl FnOnce(&T)) -> T {
        let mut room = self.lock();
        let before = room.poll_timeout();
        let result = f(&mut room);
        self.members.store(room.member_count(), Ordering::Relaxed);
        let mut wake_members = false;
        while let Some(output) = room.poll_output() {
            match output {
                Output::Broadcast(event) => {
                    wake_members = true;
                    if let Some(tap) = &self.tap {
                        tap.call(&self.key, &event);
                    }
                    self.channel.publish(event);
                }
                Output::Append(draft) => self.append(draft),
                Output::Close { conn, reason } => {
                    if let Some(closer) = self.closers().remove(&conn) {
                        let _ = closer.send(reason);
                        self.closes.fetch_add(1, Ordering::SeqCst);
                        wake_members = true;
                    }
                }
                _ => {}
            }
        }
        after(&result);
        let next = room.poll_timeout();
        drop(room);
        if wake_members {
            self.fanout.wake();
        }
        if next.is_some() && (before.is_none() || next < before) {
            self.wake.notify_one();
        }
        result
    }

    pub fn fanout(&self) -> &Fanout<MemberFeed> {
        &self.fanout
    }

    /// A receiver for every event broadcast from now on; take it before joining.
    pub fn subscribe(&self) -> Subscription {
        self.channel.subscribe()
    }

    /// What a connection that has everything up to `since` missed, from the room's
    /// history (the store with local sequencing, this node's mirror of the log else).
    pub fn since(&self, since: Seq) -> Resume {
        self.with_room(|room| room.since(since, now()))
    }

    /// What a connection that was offered everything up to `after` and then fell
    /// behind the room gets back (`onair_rooms::History::catch_up`).
    pub fn catch_up(&self, after: Seq) -> CatchUp {
        self.with_room(|room| room.catch_up(after, now()))
    }

    /// Hands a draft to the shared log. Called under the room's lock: the channel fixes
    /// its place at once; the outcome is awaited elsewhere, only to report a failure
    /// (the event itself comes back through [`follow_log`](Self::follow_log)).
    fn append(&self, draft: Draft) {
        let kind = draft.event().kind();
        let appended = self.channel.append(draft);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(room = %self.key, %kind, "room event not appended: no runtime");
            return;
        };
        let key = self.key.clone();
        runtime.spawn(async move {
            if let Err(error) = appended.await {
                tracing::warn!(room = %key, %kind, %error, "room event not appended to the shared log");
            }
        });
    }

    /// [`Sequencing::External`](onair_rooms::Sequencing): loads what the log keeps into
    /// the room's history, then feeds the room every event the log sequences, from any
    /// node, until stopped. Not run with local sequencing.
    pub(super) async fn follow_log(self: Arc<Self>) {
        let max = self.lock().settings().history_max_events.max(1);
        let loaded = tokio::select! {
            _ = self.stop.cancelled() => return,
            loaded = self.channel.history(Seq::ZERO, max) => loaded,
        };
        match loaded {
            Ok(events) => self.handle_sequenced(events.unwrap_or_default()),
            Err(error) => {
                tracing::warn!(room = %self.key, %error, "room history not loaded from the shared log");
            }
        }
        loop {
            let after = self.lock().last_seq();
            let followed = tokio::select! {
                _ = self.stop.cancelled() => return,
                followed = self.channel.follow(after, FOLLOW_BATCH) => followed,
            };
            match followed {
                Ok(events) => self.handle_sequenced(events),
                Err(error) => {
                    tracing::warn!(room = %self.key, %error, "following the shared log failed; retrying");
                    tokio::select! {
                        _ = self.stop.cancelled() => return,
                        _ = tokio::time::sleep(FOLLOW_RETRY) => {}
                    }
                }
            }
        }
    }

    fn handle_sequenced(&self, events: Vec<onair_rooms::Event>) {
        if events.is_empty() {
            return;
        }
        self.with_room(|room| {
            let now = now();
            for event in events {
                // Already had (a seq at or before ours): the log delivered it twice.
                if let Err(error) = room.handle_sequenced(event, now) {
                    tracing::debug!(room = %self.key, %error, "sequenced event skipped");
                }
            }
        });
    }

    /// The room's members (WebSocket and SSE connections).
    pub fn members(&self) -> usize {
        self.members.load(Ordering::Relaxed)
    }

    /// How many connections the room has closed (see [`on_close`](Self::on_close)).
    pub fn closes(&self) -> u64 {
        self.closes.load(Ordering::SeqCst)
    }

    /// Registers `conn` to be told when the room closes it (a ban).
    pub fn on_close(&self, conn: ConnId) -> oneshot::Receiver<CloseReason> {
        let (tx, rx) = oneshot::channel();
        self.closers().insert(conn, tx);
        rx
    }

    pub fn leave(&self, conn: ConnId) {
        self.closers().remove(&conn);
        self.with_room(|room| room.leave(conn, now()));
    }

    /// Fires the room's timers (like aggregation, viewer counts) until stopped.
    pub(super) async fn run_timers(self: Arc<Self>) {
        loop {
            let deadline = self.lock().poll_timeout();
            let sleep = async {
                match deadline {
                    Some(at) => {
                        let wait = at.as_u64().saturating_sub(now().as_u64());
                        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = self.wake.notified() => continue,
                _ = sleep => {}
            }
            self.with_room(|room| room.handle_timeout(now()));
        }
    }

    fn lock(&self) -> MutexGuard<'_, Room> {
        self.room.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn closers(&self) -> MutexGuard<'_, BTreeMap<ConnId, oneshot::Sender<CloseReason>>> {
        self.closers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the registry holds for a room.
#[derive(Debug, Clone)]
pub(super) struct Entry(pub Arc<RoomCell>);

impl Idle for Entry {
    fn is_idle(&self, now: Millis) -> bool {
        self.0.lock().is_idle(now)
    }
}
