use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use onair_rooms::{CloseReason, ConnId, Envelope, Idle, Millis, Output, Room};
use tokio::sync::{broadcast, oneshot, Notify};
use tokio_util::sync::CancellationToken;

use super::now;
use super::tap::EventTap;

/// One room behind its own lock, with the channel its events fan out on. Every change
/// goes through [`with_room`](RoomCell::with_room), which drains the room's outputs
/// while the lock is held so events leave in the order the room made them.
#[derive(Debug)]
pub struct RoomCell {
    key: String,
    room: Mutex<Room>,
    fanout: broadcast::Sender<Arc<Envelope>>,
    closers: Mutex<HashMap<ConnId, oneshot::Sender<CloseReason>>>,
    /// Wakes the room's timer task when the next deadline may have moved earlier.
    wake: Notify,
    /// Ends the timer task when the room is dropped.
    pub(super) stop: CancellationToken,
    tap: Option<EventTap>,
}

impl RoomCell {
    pub(super) fn new(room: Room, fanout_capacity: usize, tap: Option<EventTap>) -> Arc<Self> {
        let (fanout, _) = broadcast::channel(fanout_capacity);
        Arc::new(Self {
            key: room.key().to_owned(),
            room: Mutex::new(room),
            fanout,
            closers: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            stop: CancellationToken::new(),
            tap,
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// Runs `f` on the room, then hands out whatever it produced.
    pub fn with_room<T>(&self, f: impl FnOnce(&mut Room) -> T) -> T {
        let mut room = self.lock();
        let before = room.poll_timeout();
        let result = f(&mut room);
        while let Some(output) = room.poll_output() {
            match output {
                Output::Broadcast(event) => {
                    if let Some(tap) = &self.tap {
                        tap.call(&self.key, &event);
                    }
                    // No receivers is not an error: nobody is in the room right now.
                    let _ = self.fanout.send(event);
                }
                Output::Close { conn, reason } => {
                    if let Some(closer) = self.closers().remove(&conn) {
                        let _ = closer.send(reason);
                    }
                }
                // Only with external sequencing, which the in-memory store does not use.
                _ => {}
            }
        }
        let after = room.poll_timeout();
        drop(room);
        if after.is_some() && (before.is_none() || after < before) {
            self.wake.notify_one();
        }
        result
    }

    /// A receiver for every event broadcast from now on; take it before joining.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Envelope>> {
        self.fanout.subscribe()
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

    fn closers(&self) -> MutexGuard<'_, HashMap<ConnId, oneshot::Sender<CloseReason>>> {
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
