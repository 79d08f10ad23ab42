//! The rooms runtime: the interaction rooms with IO. One [`RoomCell`] per stream path
//! (its own lock, and its channel in the [`RoomBackend`] for fan-out and history), kept
//! in the rooms crate's bounded [`Registry`], driven by timers and by whether streams
//! are live ([`StreamLiveness`]). WebSocket and SSE connections take part through a
//! [`Member`]; WebSocket members are written by the relay's delivery groups
//! ([`MemberFeed`]). Moderation changes are saved through a [`ModerationStore`] before
//! they take effect.
//!
//! What it owns: the room registry and each room's lock, timer task and delivery
//! groups; members and their sampling and catch-up; the saved-moderation mirror new
//! rooms start from; the rooms' counters ([`RoomCounters`]).
//!
//! Deliberately absent: the transports (the WebSocket and SSE handlers are the HTTP
//! edge's), the database (the control plane's, behind [`ModerationStore`]), the media
//! hub (behind [`StreamLiveness`]), and the metrics registry (connections count
//! themselves through [`MemberStats`]). Its dependency tree has no SQLite, axum or HTTP
//! client.

mod backend;
mod cell;
mod counters;
mod member;
mod memory;
mod moderation;
mod saved;
mod seat;
#[cfg(test)]
mod shared_log_tests;
mod storage;
mod tap;
mod write_budget;

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime};

use onair_media::StreamPath;
use onair_rooms::{
    ClientMessage, ConnId, Error, Identity, Millis, Moderation, Registry, Room, RoomSettings, Sent,
    Sequencing, StreamState,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use backend::{
    from_settings as backend_from_settings, BackendError, BackendFuture, RoomBackend, RoomChannel,
    Subscription,
};
use cell::Entry;
pub use cell::RoomCell;
pub use counters::RoomCounters;
pub use member::{Member, MemberEnd, Spoken, Voice};
pub use memory::MemoryBackend;
pub use moderation::ModerationError;
pub use onair_rooms::{AggregatedEvent, Role, User};
use saved::SavedModeration;
pub use seat::{MemberFeed, MemberSeat, MemberSeatEnd, MemberStats};
pub use storage::{
    ModerationKind, ModerationRecord, ModerationStore, NoModerationStore, SavedModerationRows,
    StoreFailure, StoreFuture, StreamLiveness,
};
pub use tap::EventTap;
pub use write_budget::WriteBudget;

/// How often idle rooms are swept and media viewer counts refreshed.
const TICK: Duration = Duration::from_secs(1);

/// The wall clock as the rooms crate wants it.
pub fn now() -> Millis {
    let ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Millis(ms)
}

#[derive(Debug)]
pub struct RoomHub {
    registry: Mutex<Registry<Entry>>,
    settings: Arc<RoomSettings>,
    backend: Arc<dyn RoomBackend>,
    media: Arc<dyn StreamLiveness>,
    timers: TaskTracker,
    tap: OnceLock<EventTap>,
    store: Arc<dyn ModerationStore>,
    /// Saved moderation that new rooms start with.
    saved: Mutex<SavedModeration>,
    /// Held through each moderation change (see `moderation.rs`).
    moderation_writes: tokio::sync::Mutex<()>,
    /// Messages accepted and refused, events broadcast (read by `/metrics`).
    counters: Arc<RoomCounters>,
}

impl RoomHub {
    /// Rooms publish and read back their events through `backend` (see
    /// [`backend_from_settings`]) and learn whether their stream is live from `media`.
    /// `saved` is the moderation the store held at start, at most `max_saved` entries
    /// over all rooms; rooms are created with it, and changes are written to `store`.
    pub fn new(
        settings: RoomSettings,
        backend: Arc<dyn RoomBackend>,
        media: Arc<dyn StreamLiveness>,
        store: Arc<dyn ModerationStore>,
        saved: SavedModerationRows,
        max_saved: usize,
    ) -> Arc<Self> {
        let saved = SavedModeration::from_rows(saved, max_saved, settings.max_moderation_entries);
        if saved.len() > 0 {
            tracing::info!(entries = saved.len(), "saved room moderation loaded");
        }
        let settings = Arc::new(settings);
        Arc::new(Self {
            registry: Mutex::new(Registry::new(Arc::clone(&settings))),
            settings,
            backend,
            media,
            timers: TaskTracker::new(),
            tap: OnceLock::new(),
            store,
            saved: Mutex::new(saved),
            moderation_writes: tokio::sync::Mutex::new(()),
            counters: Arc::default(),
        })
    }

    /// Installs the tap every room created from now on calls for each event it
    /// broadcasts. Returns false if one was already installed.
    pub fn set_event_tap(&self, tap: EventTap) -> bool {
        self.tap.set(tap).is_ok()
    }

    pub fn settings(&self) -> &Arc<RoomSettings> {
        &self.settings
    }

    /// The room of `path`, created (knowing whether the stream is live) if needed.
    pub fn room(&self, path: &StreamPath) -> Result<Arc<RoomCell>, Error> {
        let key = path.to_string();
        let mut created = None;
        let mut registry = self.registry();
        let entry = registry.get_or_insert_with(&key, || {
            let room = self.fresh_room(path);
            let cell = RoomCell::new(room, self.backend.as_ref(), self.tap.get().cloned());
            created = Some(Arc::clone(&cell));
            Entry(cell)
        })?;
        let cell = Arc::clone(&entry.0);
        drop(registry);
        if let Some(cell) = created {
            if self.backend.sequencing() == Sequencing::External {
                self.timers.spawn(Arc::clone(&cell).follow_log());
            }
            self.timers.spawn(cell.run_timers());
        }
        Ok(cell)
    }

    /// A room for `path` as it would be created now (saved moderation, live state),
    /// registered nowhere: what a room that does not exist yet would show.
    pub fn fresh_room(&self, path: &StreamPath) -> Room {
        let now = now();
        let sequencing = self.backend.sequencing();
        let mut room = Room::with_sequencing(
            path.to_string(),
            Arc::clone(&self.settings),
            sequencing,
            now,
        );
        self.saved().apply(&mut room, now);
        if let Some(viewers) = self.media.media_viewers(path) {
            room.set_stream_state(StreamState::Live, now);
            room.set_media_viewers(viewers, now);
        }
        room
    }

    /// Whether `path` has a room or could be given one without a guess: its room is
    /// open, its stream is live, or moderation is saved for it. The control plane may
    /// know the stream too (a key, a title).
    pub fn knows(&self, path: &StreamPath) -> bool {
        self.existing(path).is_some()
            || self.media.media_viewers(path).is_some()
            || self.saved().has(&path.to_string())
    }

    /// The room of `path` if it exists.
    pub fn existing(&self, path: &StreamPath) -> Option<Arc<RoomCell>> {
        self.registry()
            .get(&path.to_string())
            .map(|e| Arc::clone(&e.0))
    }

    /// The audience members of `path`'s room ([`Room::audience_members`]); 0 when it
    /// has no room. Does not create the room. The REST views count people with it by
    /// the room's rule ([`Room::viewers`]), so they and the room's `viewers` event agree.
    pub fn audience_members(&self, path: &StreamPath) -> u64 {
        self.existing(path).map_or(0, |cell| {
            cell.with_room(|room| room.audience_members() as u64)
        })
    }

    /// Rooms that exist now.
    pub fn len(&self) -> usize {
        self.registry().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Text frames from one member's client (`conn`, signed in as `user_id` since it
    /// joined), handled with one take of the room's lock: each is parsed, checked
    /// against the global mute list, then handed to the room. Its own messages go to
    /// `own` before the lock is let go (see [`OwnMessages`](member::OwnMessages)).
    /// Answers with each message's outcome, in order.
    pub(crate) fn handle_texts<S: AsRef<str>>(
        &self,
        cell: &RoomCell,
        conn: ConnId,
        user_id: Option<&str>,
        texts: &[S],
        own: &member::OwnMessages,
    ) -> Vec<Result<Sent, Error>> {
        let now = now();
        let muted = user_id.and_then(|id| self.global().check_send(id, now).err());
        let mut actions = Vec::with_capacity(texts.len());
        let parsed: Vec<Result<ClientMessage, Error>> = texts
            .iter()
            .map(|text| {
                let message = ClientMessage::parse(text.as_ref(), &self.settings);
                actions.push(message.as_ref().ok().map(ClientMessage::action));
                match &muted {
                    Some(error) => message.and_then(|_| Err(error.clone())),
                    None => message,
                }
            })
            .collect();
        let outcomes = cell.with_room_then(
            |room| {
                parsed
                    .into_iter()
                    .map(|message| message.and_then(|m| room.handle_message_sent(conn, m, now)))
                    .collect::<Vec<_>>()
            },
            |outcomes| own.record(outcomes.iter().filter_map(|o| o.as_ref().ok())),
        );
        for (action, outcome) in actions.into_iter().zip(&outcomes) {
            self.counters.record_message(action, outcome.as_ref());
        }
        outcomes
    }

    /// Messages accepted, shed, aggregated and refused, events broadcast, for `/metrics`.
    pub fn counters(&self) -> &Arc<RoomCounters> {
        &self.counters
    }

    pub(crate) fn check_join(&self, identity: &Identity) -> Result<(), Error> {
        self.global().check_join(identity, now())
    }

    /// Follows the media hub and sweeps idle rooms until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut changes = self.media.live_changes();
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                change = changes.recv() => match change {
                    Ok(change) => {
                        if let Some(cell) = self.existing(&change.path) {
                            let state = if change.live { StreamState::Live } else { StreamState::Offline };
                            cell.with_room(|room| room.set_stream_state(state, now()));
                        }
                    }
                    // Missed some: the tick below brings every room up to date.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => self.refresh_media(),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
                _ = tick.tick() => {
                    self.refresh_media();
                    self.sweep();
                }
            }
        }
        self.stop_all().await;
    }

    /// Brings each room's live state and media viewer count in line with the hub.
    fn refresh_media(&self) {
        for cell in self.cells() {
            let Ok(path) = StreamPath::parse(cell.key()) else {
                continue;
            };
            let media = self.media.media_viewers(&path);
            let viewers = media.unwrap_or(0);
            let state = if media.is_some() {
                StreamState::Live
            } else {
                StreamState::Offline
            };
            cell.with_room(|room| {
                let now = now();
                room.set_media_viewers(viewers, now);
                room.set_stream_state(state, now);
            });
        }
    }

    /// Every room now, taken out of the registry lock so each can be locked alone.
    fn cells(&self) -> Vec<Arc<RoomCell>> {
        self.registry()
            .iter()
            .map(|(_, e)| Arc::clone(&e.0))
            .collect()
    }

    fn sweep(&self) {
        for (key, entry) in self.registry().sweep(now()) {
            tracing::debug!(room = %key, "idle room dropped");
            entry.0.stop.cancel();
        }
    }

    async fn stop_all(&self) {
        for cell in self.cells() {
            cell.stop.cancel();
        }
        self.timers.close();
        self.timers.wait().await;
    }

    fn global(&self) -> MappedGlobal<'_> {
        MappedGlobal(self.registry())
    }

    fn registry(&self) -> MutexGuard<'_, Registry<Entry>> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Taken alone or inside the registry lock, never the other way round.
    fn saved(&self) -> MutexGuard<'_, SavedModeration> {
        self.saved.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The registry's global moderation lists, under the registry lock.
struct MappedGlobal<'a>(MutexGuard<'a, Registry<Entry>>);

impl std::ops::Deref for MappedGlobal<'_> {
    type Target = Moderation;

    fn deref(&self) -> &Moderation {
        self.0.global()
    }
}

/// A room hub on the memory backend with default settings, for unit tests.
#[cfg(test)]
pub(crate) fn test_room_hub() -> Arc<RoomHub> {
    RoomHub::new(
        RoomSettings::default(),
        Arc::new(MemoryBackend::new(64)),
        onair_relay::hub::Hub::new(onair_relay::HubSettings::default(), 4096),
        Arc::new(NoModerationStore),
        SavedModerationRows::default(),
        100_000,
    )
}
