//! What the hub tells the rest of the server about publishers and viewers coming and
//! going (the webhooks listen here). The hub does not know who listens: the server
//! installs one observer at start, and the hub calls it inline, so an observer must
//! only hand the event off (a `try_send`), never wait.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use onair_media::StreamPath;

use super::viewer::Protocol;
use crate::trace_context::TraceContext;

/// Who is on the other end of a publish or a play.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The connection's id in log lines; 0 when the caller did not say.
    pub conn_id: u64,
    pub peer: Option<SocketAddr>,
    /// The query string that came with the stream name (`key=K&uid=7`), as sent. It
    /// may carry secrets, so it is never logged and `Debug` leaves it out.
    pub query: String,
    /// The trace this connection belongs to: the request's `traceparent`, or one
    /// started for the connection. Webhooks it causes carry it on.
    pub trace: Option<TraceContext>,
}

impl ClientInfo {
    pub fn new(conn_id: u64, peer: Option<SocketAddr>, query: impl Into<String>) -> Self {
        Self {
            conn_id,
            peer,
            query: query.into(),
            trace: None,
        }
    }

    pub fn with_trace(mut self, trace: TraceContext) -> Self {
        self.trace = Some(trace);
        self
    }
}

impl fmt::Debug for ClientInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientInfo")
            .field("conn_id", &self.conn_id)
            .field("peer", &self.peer)
            .field("trace", &self.trace)
            .finish_non_exhaustive()
    }
}

/// One publisher's figures, from its start to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishStats {
    pub duration: Duration,
    pub bytes_in: u64,
    pub frames_in: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubEventKind {
    /// A publisher claimed the stream (a new stream, or a takeover).
    Published,
    /// A publisher left. With a takeover this may follow the new publisher's
    /// `Published`; `client.conn_id` tells the two apart.
    Unpublished(PublishStats),
    PlayStarted,
    PlayStopped {
        duration: Duration,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubEvent {
    pub path: StreamPath,
    /// How the publisher sends or the viewer watches.
    pub protocol: Protocol,
    pub client: ClientInfo,
    pub kind: HubEventKind,
}

/// Called for every [`HubEvent`], inline: it must not block.
pub type HubObserver = Arc<dyn Fn(&HubEvent) + Send + Sync>;

/// The observer the server installs once.
#[derive(Default)]
pub(super) struct ObserverSlot(OnceLock<HubObserver>);

impl ObserverSlot {
    /// Installs `observer`; false when one is already installed.
    pub(super) fn set(&self, observer: HubObserver) -> bool {
        self.0.set(observer).is_ok()
    }

    pub(super) fn get(&self) -> Option<&HubObserver> {
        self.0.get()
    }
}

impl fmt::Debug for ObserverSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.0.get().is_some() {
            "installed"
        } else {
            "none"
        };
        f.debug_tuple("ObserverSlot").field(&state).finish()
    }
}

/// A viewer's link to the observer, so its drop can report the play's end.
pub(super) struct Watch {
    pub observer: HubObserver,
    pub client: ClientInfo,
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}
