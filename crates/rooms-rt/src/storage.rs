//! The rooms' two windows on the rest of the server, as small traits: where saved
//! moderation goes ([`ModerationStore`]: the control plane's database) and whether a
//! room's stream is live ([`StreamLiveness`]: the relay's hub). The rooms reach neither
//! the database nor the hub any other way, so a node that carries only rooms, or a
//! test, plugs in what it has.

use std::fmt;

use futures_util::future::BoxFuture;
use onair_media::StreamPath;
use onair_relay::hub::LiveChange;
use onair_rooms::AggregatedEvent;
use tokio::sync::broadcast;

/// Which list a moderation entry is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModerationKind {
    Mute,
    Ban,
}

impl ModerationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ModerationKind::Mute => "mute",
            ModerationKind::Ban => "ban",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "mute" => Some(ModerationKind::Mute),
            "ban" => Some(ModerationKind::Ban),
            _ => None,
        }
    }
}

/// One mute or ban of one user in one room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModerationRecord {
    /// The room's key, `app/name`.
    pub room: String,
    pub kind: ModerationKind,
    pub user_id: String,
    /// Unix milliseconds it ends at; `None`: until lifted.
    pub until_ms: Option<u64>,
}

impl ModerationRecord {
    pub fn new(room: &str, kind: ModerationKind, user_id: &str, until_ms: Option<u64>) -> Self {
        Self {
            room: room.to_owned(),
            kind,
            user_id: user_id.to_owned(),
            until_ms,
        }
    }
}

/// Everything saved and still in force, as loaded at start.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SavedModerationRows {
    pub entries: Vec<ModerationRecord>,
    /// `(room, slow mode period in ms)`.
    pub slow_modes: Vec<(String, u64)>,
    /// `(room, the aggregated events declared for it alone)`.
    pub aggregated_events: Vec<(String, Vec<AggregatedEvent>)>,
    /// Rows left unloaded because there were more than the store keeps in memory.
    pub left_out: usize,
}

/// Why the store did not save or delete: its own error, kept whole for the log.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StoreFailure(pub Box<dyn std::error::Error + Send + Sync>);

/// An answer from the store, later.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, StoreFailure>>;

/// Where moderation changes are saved so they outlive the process. Called through
/// [`crate::RoomHub`]'s moderation methods, one change at a time, with no room lock
/// held: an implementation may take as long as its disk does, and must not call back
/// into the rooms.
pub trait ModerationStore: Send + Sync + fmt::Debug {
    /// Adds or replaces `record`, and may forget entries expired by `now_ms`.
    fn save_moderation(&self, record: ModerationRecord, now_ms: u64) -> StoreFuture<'_, ()>;
    /// Lifts a mute or ban; false if none was saved.
    fn delete_moderation<'a>(
        &'a self,
        room: &'a str,
        kind: ModerationKind,
        user_id: &'a str,
    ) -> StoreFuture<'a, bool>;
    /// Saves `room`'s slow mode; `None` forgets it (the room follows the default).
    fn save_slow_mode<'a>(
        &'a self,
        room: &'a str,
        period_ms: Option<u64>,
        now_ms: u64,
    ) -> StoreFuture<'a, ()>;
    /// Saves the aggregated events declared for `room` alone; an empty list forgets
    /// them (the room follows its app's).
    fn save_aggregated_events<'a>(
        &'a self,
        room: &'a str,
        events: &'a [AggregatedEvent],
        now_ms: u64,
    ) -> StoreFuture<'a, ()>;
}

/// Whether streams are live, and how many watch them over media protocols. Called
/// with a room's lock held (from the room registry): must answer at once, from memory.
pub trait StreamLiveness: Send + Sync + fmt::Debug {
    /// The media viewers of `path` while it is live; `None` while it is not.
    fn media_viewers(&self, path: &StreamPath) -> Option<u64>;
    /// Streams going live or offline from now on.
    fn live_changes(&self) -> broadcast::Receiver<LiveChange>;
}

/// The relay's hub is the liveness of a node that carries media.
impl StreamLiveness for onair_relay::hub::Hub {
    fn media_viewers(&self, path: &StreamPath) -> Option<u64> {
        self.stream(path).map(|stream| stream.media_viewers())
    }

    fn live_changes(&self) -> broadcast::Receiver<LiveChange> {
        onair_relay::hub::Hub::live_changes(self)
    }
}

/// Saves nothing: for a node without a database, and for tests.
#[derive(Debug, Default)]
pub struct NoModerationStore;

impl ModerationStore for NoModerationStore {
    fn save_moderation(&self, _: ModerationRecord, _: u64) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn delete_moderation<'a>(
        &'a self,
        _: &'a str,
        _: ModerationKind,
        _: &'a str,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async { Ok(false) })
    }

    fn save_slow_mode<'a>(&'a self, _: &'a str, _: Option<u64>, _: u64) -> StoreFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    fn save_aggregated_events<'a>(
        &'a self,
        _: &'a str,
        _: &'a [AggregatedEvent],
        _: u64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
}
