//! The stream hub: one publisher per stream path, any number of viewers.
//!
//! The publisher's task pushes [`MediaFrame`]s into its [`Stream`]; the stream rebases
//! timestamps, keeps the codec headers and the current GOP for late viewers, and puts
//! each frame once into a bounded broadcast ring that every [`Viewer`] reads at its own
//! pace. A viewer that falls off the end of the ring skips to the next keyframe; one
//! that keeps falling behind is told to go. The publisher never waits for a viewer.
//!
//! The rules themselves (the GOP cache's bounds, timestamp rebasing, the skip policy,
//! what the headers say) are `onair_policy`'s, sans-IO and tested in virtual time; the
//! hub holds the shared state, the locks and the counters, and asks them.

mod frame;
mod observer;
mod rates;
mod ring;
mod seat;
mod stream;
mod totals;
mod viewer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use onair_media::StreamPath;

use crate::HubSettings;
use observer::{ObserverSlot, Watch};

pub use crate::fanout::MAX_QUEUED_CONTROL;
pub use frame::{http_chunk, HubFrame};
pub use observer::{ClientInfo, HubEvent, HubEventKind, HubObserver, PublishStats};
pub use onair_policy::CodecInfo;
pub use rates::Rates;
pub use seat::{BoxedWriter, SeatEnd, SeatEndReason, SeatHandle, ViewerFeed, WireFormat};
pub use stream::{Publisher, Stream, StreamSnapshot};
pub use totals::{HubTotals, TotalsSnapshot};
pub use viewer::{Protocol, Viewer, ViewerEnd};

/// Why a publish was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error("stream {0} is already being published")]
    AlreadyPublishing(StreamPath),
    #[error("the server already carries its maximum of {0} streams")]
    TooManyStreams(usize),
}

/// A stream went live or offline; the rooms follow these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveChange {
    pub path: StreamPath,
    pub live: bool,
}

/// Live changes a slow listener may fall behind by before it misses some.
const LIVE_CHANGES_CAPACITY: usize = 1024;

/// Registry of live streams.
#[derive(Debug)]
pub struct Hub {
    streams: Mutex<HashMap<StreamPath, Arc<Stream>>>,
    settings: HubSettings,
    out_chunk_size: u32,
    next_publisher_id: AtomicU64,
    live_changes: tokio::sync::broadcast::Sender<LiveChange>,
    observer: ObserverSlot,
    totals: Arc<HubTotals>,
}

impl Hub {
    pub fn new(settings: HubSettings, out_chunk_size: u32) -> Arc<Self> {
        Arc::new(Self {
            streams: Mutex::new(HashMap::new()),
            settings,
            out_chunk_size,
            next_publisher_id: AtomicU64::new(1),
            live_changes: tokio::sync::broadcast::channel(LIVE_CHANGES_CAPACITY).0,
            observer: ObserverSlot::default(),
            totals: Arc::default(),
        })
    }

    /// Installs the one observer of publishes and plays (the server's webhooks). It is
    /// called inline and must not block. Returns false if one was already installed.
    pub fn set_observer(&self, observer: HubObserver) -> bool {
        self.observer.set(observer)
    }

    /// Streams going live or offline from now on.
    pub fn live_changes(&self) -> tokio::sync::broadcast::Receiver<LiveChange> {
        self.live_changes.subscribe()
    }

    pub fn settings(&self) -> &HubSettings {
        &self.settings
    }

    /// Chunk size every RTMP viewer is sent, so shared chunk bytes fit them all.
    pub fn out_chunk_size(&self) -> u32 {
        self.out_chunk_size
    }

    /// Claims `path` for a new publisher. With `publish_takeover` the current
    /// publisher is kicked and its viewers stay on for the new one.
    pub fn publish(self: &Arc<Self>, path: StreamPath) -> Result<Publisher, PublishError> {
        self.publish_as(path, ClientInfo::default())
    }

    /// [`publish`](Hub::publish) on behalf of `client`, whom the observer is told about.
    pub fn publish_as(
        self: &Arc<Self>,
        path: StreamPath,
        client: ClientInfo,
    ) -> Result<Publisher, PublishError> {
        let id = self.next_publisher_id.fetch_add(1, Ordering::Relaxed);
        let mut streams = self.lock();
        let stream = match streams.get(&path) {
            Some(stream) => {
                if !self.settings.publish_takeover {
                    return Err(PublishError::AlreadyPublishing(path));
                }
                stream.take_over(id);
                Arc::clone(stream)
            }
            None => {
                if streams.len() >= self.settings.max_streams {
                    return Err(PublishError::TooManyStreams(self.settings.max_streams));
                }
                let totals = Arc::clone(&self.totals);
                let stream = Arc::new(Stream::new(path.clone(), &self.settings, id, totals));
                streams.insert(path.clone(), Arc::clone(&stream));
                let _ = self.live_changes.send(LiveChange {
                    path: path.clone(),
                    live: true,
                });
                stream
            }
        };
        // Told under the registry lock: no viewer can find the stream, and be reported,
        // before its publish is.
        self.emit(&path, Protocol::Rtmp, &client, HubEventKind::Published);
        Ok(Publisher::new(Arc::clone(self), stream, id, client))
    }

    /// A new viewer of a live stream, or `None` when nobody publishes `path`.
    pub fn subscribe(&self, path: &StreamPath, protocol: Protocol) -> Option<Viewer> {
        self.subscribe_as(path, protocol, ClientInfo::default())
    }

    /// [`subscribe`](Hub::subscribe) on behalf of `client`, whom the observer is told
    /// about now and when the viewer is dropped.
    pub fn subscribe_as(
        &self,
        path: &StreamPath,
        protocol: Protocol,
        client: ClientInfo,
    ) -> Option<Viewer> {
        let stream = self.lock().get(path).cloned()?;
        let mut viewer = stream.subscribe(protocol, &self.settings)?;
        if let Some(observer) = self.observer.get() {
            self.emit(path, protocol, &client, HubEventKind::PlayStarted);
            viewer.watch(Watch {
                observer: Arc::clone(observer),
                client,
            });
        }
        Some(viewer)
    }

    /// A reader of a live stream for the server's own use (the HLS muxer, the
    /// recorder): it gets what a viewer gets but is neither counted nor reported.
    pub fn tap(&self, path: &StreamPath) -> Option<Viewer> {
        let stream = self.lock().get(path).cloned()?;
        stream.subscribe(Protocol::Internal, &self.settings)
    }

    fn emit(&self, path: &StreamPath, protocol: Protocol, client: &ClientInfo, kind: HubEventKind) {
        if let Some(observer) = self.observer.get() {
            observer(&HubEvent {
                path: path.clone(),
                protocol,
                client: client.clone(),
                kind,
            });
        }
    }

    pub fn stream(&self, path: &StreamPath) -> Option<Arc<Stream>> {
        self.lock().get(path).cloned()
    }

    /// Live streams now.
    pub fn stream_count(&self) -> usize {
        self.lock().len()
    }

    /// Media totals since the hub was made, ended streams included.
    pub fn totals(&self) -> TotalsSnapshot {
        self.totals.snapshot()
    }

    /// The live streams, sorted by path.
    pub fn streams(&self) -> Vec<Arc<Stream>> {
        let mut streams: Vec<_> = self.lock().values().cloned().collect();
        streams.sort_by(|a, b| a.path().cmp(b.path()));
        streams
    }

    /// Called by a publisher as it leaves: the stream ends unless someone took it over.
    /// The observer hears of it first, so a viewer's end never precedes it.
    fn unpublish(
        &self,
        stream: &Arc<Stream>,
        publisher_id: u64,
        client: &ClientInfo,
        stats: PublishStats,
    ) {
        // A kick's notification belongs to the trace of the request that kicked.
        let kicked;
        let client = match stream.take_kick_trace(publisher_id) {
            Some(trace) => {
                kicked = client.clone().with_trace(trace);
                &kicked
            }
            None => client,
        };
        self.emit(
            stream.path(),
            Protocol::Rtmp,
            client,
            HubEventKind::Unpublished(stats),
        );
        let mut streams = self.lock();
        if stream.end_if_published_by(publisher_id) {
            if let Some(current) = streams.get(stream.path()) {
                if Arc::ptr_eq(current, stream) {
                    streams.remove(stream.path());
                    let _ = self.live_changes.send(LiveChange {
                        path: stream.path().clone(),
                        live: false,
                    });
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<StreamPath, Arc<Stream>>> {
        // A panic elsewhere while holding the lock leaves the map itself consistent.
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }
}
