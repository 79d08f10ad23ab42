//! The storage seam: the only way the room machinery hands out a room's events and
//! reads them back. A [`RoomBackend`] opens one [`RoomChannel`] per room on this node.
//!
//! The split follows Centrifugo's broker (publish, subscribe, history since a
//! position): [`publish`](RoomChannel::publish) and [`subscribe`](RoomChannel::subscribe)
//! are this node's fan-out of finished envelopes; [`append`](RoomChannel::append),
//! [`follow`](RoomChannel::follow) and [`history`](RoomChannel::history) are the shared
//! log that numbers events when the backend sequences them ([`Sequencing::External`]).
//!
//! - [`MemoryBackend`](super::MemoryBackend) (`rooms.backend = "memory"`): one node. The
//!   room numbers its own events ([`Sequencing::Local`]), its `History` is the store, and
//!   fan-out is a tokio broadcast ring. `append`, `follow` and `history` are never called.
//! - A shared log (Redis Streams): `append` is XADD, `follow` is XREAD BLOCK after the
//!   last seq this node has, `history` is XRANGE. Every node, the appending one included,
//!   gets each event back through `follow`, keeps it in the room's local history mirror
//!   and publishes it to its own connections.

use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use onair_rooms::{Draft, Envelope, Event, RoomSettings, Seq, Sequencing};
use tokio::sync::broadcast;

use super::MemoryBackend;

/// What a connection reads a room's events from: a cursor in the room's fan-out ring.
/// Falling off the end of the ring is `Lagged`; the member then catches up from history.
pub type Subscription = broadcast::Receiver<Arc<Envelope>>;

/// The outcome of a backend call that may do IO.
pub type BackendFuture<T> = BoxFuture<'static, Result<T, BackendError>>;

/// Why a backend call failed. Each ends the one operation, never the room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// This backend does not do that (e.g. a shared-log call on a backend that lets
    /// rooms sequence locally).
    #[error("the {backend} room backend does not support {operation}")]
    Unsupported {
        backend: &'static str,
        operation: &'static str,
    },
    /// Too many appends are waiting for the store; the event is not appended.
    #[error("the room backend is busy: {pending} appends waiting")]
    Busy { pending: usize },
    /// The store cannot be reached or refused the call.
    #[error("the room backend is unavailable: {reason}")]
    Unavailable { reason: String },
    /// `rooms.backend` names no backend this build has.
    #[error("unknown rooms.backend {name:?}")]
    Unknown { name: String },
    /// The room's channel was closed on this node.
    #[error("the room's channel is closed")]
    Closed,
}

/// Where every room's events go: one per server, shared by every room.
pub trait RoomBackend: Send + Sync + fmt::Debug {
    /// Who numbers the events rooms keep in history. Rooms are created with this.
    fn sequencing(&self) -> Sequencing;

    /// This node starts carrying room `key` (`app/name`). Called once per room when it
    /// is created, under the registry lock: it must not wait or do IO (a backend that
    /// needs IO to subscribe starts it here and does it in [`RoomChannel::follow`]).
    fn open(&self, key: &str) -> Box<dyn RoomChannel>;
}

/// One room's link to the backend on this node.
///
/// [`publish`](Self::publish) and [`append`](Self::append) are called with the room's
/// lock held, in the order the room produced the events: they must return at once and
/// keep that order. Every event is published as one `Arc<Envelope>`, encoded once.
pub trait RoomChannel: Send + Sync + fmt::Debug {
    /// Hands `event` to every subscriber on this node, in call order. Never waits: a
    /// subscriber that cannot keep up falls behind (`Lagged`), it never slows the room.
    fn publish(&self, event: Arc<Envelope>);

    /// A cursor that receives everything published from now on.
    fn subscribe(&self) -> Subscription;

    /// [`Sequencing::External`]: appends `draft` to the shared log, which gives it the
    /// next seq. The place in the log is fixed by the call, not by polling the future
    /// (queue it before returning), so calls made in order land in order. The event
    /// comes back to every node, this one included, through [`follow`](Self::follow);
    /// the future says which seq it got, or why it was not appended. A backend bounds
    /// the appends it has waiting and fails with [`BackendError::Busy`] beyond.
    fn append(&self, draft: Draft) -> BackendFuture<Seq>;

    /// [`Sequencing::External`]: waits until the shared log holds events after `after`,
    /// then returns up to `max` of them, oldest first, each with its seq (an empty list
    /// after a backend's own wait limit is fine: the caller asks again). Dropping the
    /// future loses nothing: the next call asks again from the caller's last seq.
    fn follow(&self, after: Seq, max: usize) -> BackendFuture<Vec<Event>>;

    /// The events the backend keeps after `since`, up to `max`, oldest first, without
    /// waiting for new ones: what a node loads into a room's local history when it
    /// starts carrying the room. `None`: the backend keeps no history of its own (with
    /// [`Sequencing::Local`] the room's `History` is the store).
    fn history(&self, since: Seq, max: usize) -> BackendFuture<Option<Vec<Event>>>;
}

/// The backend `settings.backend` names; `fanout_capacity` is each room's ring size on
/// this node. `RoomSettings::validate` refuses names not handled here.
pub fn from_settings(
    settings: &RoomSettings,
    fanout_capacity: usize,
) -> Result<Arc<dyn RoomBackend>, BackendError> {
    match settings.backend.as_str() {
        "memory" => Ok(Arc::new(MemoryBackend::new(fanout_capacity))),
        name => Err(BackendError::Unknown {
            name: name.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_the_default_and_sequences_locally() {
        let settings = RoomSettings::default();
        settings.validate().unwrap();
        let backend = from_settings(&settings, 16).unwrap();
        assert_eq!(backend.sequencing(), Sequencing::Local);
    }

    #[test]
    fn an_unknown_backend_is_refused_by_validate_and_by_name() {
        let mut settings = RoomSettings {
            backend: "redis".into(),
            ..RoomSettings::default()
        };
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.contains("backend"), "{error}");
        assert_eq!(
            from_settings(&settings, 16).unwrap_err(),
            BackendError::Unknown {
                name: "redis".into()
            }
        );
        settings.backend = "memory".into();
        settings.validate().unwrap();
    }
}
