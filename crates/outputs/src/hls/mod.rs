//! HLS and Low-Latency HLS: every live stream is cut into CMAF parts and segments in
//! memory (`onair_fmp4`) and described by a playlist (`onair_hls`); the HTTP side
//! (`http::hls`) serves them, holding blocking playlist reloads and preload-hint part
//! requests until what they ask for exists.
//!
//! A stream's HLS state outlives its publisher for `hls.linger_ms`: a publisher that
//! comes back continues the same playlist after an `EXT-X-DISCONTINUITY`, and players
//! keep going instead of meeting a 404.

mod muxer;
mod sessions;
mod settings;
mod store;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use onair_media::StreamPath;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use onair_relay::hub::Hub;

pub use sessions::{session_in, session_param, SessionId};
pub use settings::HlsSettings;
pub use store::{Fetch, HlsStream};

/// How often idle sessions and lingering playlists are swept.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The HLS side of every stream.
#[derive(Debug)]
pub struct Hls {
    entries: Mutex<HashMap<StreamPath, Entry>>,
    settings: HlsSettings,
    hub: Arc<Hub>,
    /// Sessions started, ever.
    plays: AtomicU64,
    /// Sessions open at the last sweep, over every stream.
    sessions: AtomicU64,
}

#[derive(Debug)]
struct Entry {
    stream: Arc<HlsStream>,
    /// The muxer of the latest publish; the next one waits for it to finish.
    muxer: Option<JoinHandle<()>>,
}

impl Hls {
    pub fn new(settings: HlsSettings, hub: Arc<Hub>) -> Arc<Self> {
        Arc::new(Self {
            entries: Mutex::new(HashMap::new()),
            settings,
            hub,
            plays: AtomicU64::new(0),
            sessions: AtomicU64::new(0),
        })
    }

    pub fn settings(&self) -> &HlsSettings {
        &self.settings
    }

    /// A player started a session (it fetched the multivariant playlist).
    pub fn session_started(&self) {
        self.plays.fetch_add(1, Ordering::Relaxed);
    }

    /// Sessions started so far (`onair_plays_total{proto="hls"}`).
    pub fn plays(&self) -> u64 {
        self.plays.load(Ordering::Relaxed)
    }

    /// Sessions open over every stream, as of the last sweep (HLS viewers are swept,
    /// not held like connections).
    pub fn sessions(&self) -> u64 {
        self.sessions.load(Ordering::Relaxed)
    }

    /// The HLS state of `path`: live, or lingering after its publisher left.
    pub fn stream(&self, path: &StreamPath) -> Option<Arc<HlsStream>> {
        self.lock().get(path).map(|entry| Arc::clone(&entry.stream))
    }

    /// Playlists held now, live or lingering.
    pub fn playlist_count(&self) -> usize {
        self.lock().len()
    }

    /// Media bytes held over every playlist.
    pub fn bytes(&self) -> usize {
        self.lock().values().map(|entry| entry.stream.bytes()).sum()
    }

    /// Follows streams going live until `shutdown`, and sweeps idle sessions and
    /// playlists whose publisher left too long ago.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        if !self.settings.enabled {
            return;
        }
        let mut live_changes = self.hub.live_changes();
        for stream in self.hub.streams() {
            self.start(stream.path(), &shutdown);
        }
        let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            tokio::select! {
                change = live_changes.recv() => match change {
                    Ok(change) if change.live => self.start(&change.path, &shutdown),
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => {
                        for stream in self.hub.streams() {
                            if !self.stream(stream.path()).is_some_and(|s| s.is_live()) {
                                self.start(stream.path(), &shutdown);
                            }
                        }
                    }
                    Err(RecvError::Closed) => break,
                },
                _ = sweep.tick() => self.sweep(Instant::now()),
                () = shutdown.cancelled() => break,
            }
        }
    }

    /// Starts muxing a publish of `path`, after the previous publish's muxer is done.
    fn start(&self, path: &StreamPath, shutdown: &CancellationToken) {
        let Some(tap) = self.hub.tap(path) else {
            return;
        };
        let mut entries = self.lock();
        let (stream, previous, first) = match entries.get_mut(path) {
            Some(entry) => (Arc::clone(&entry.stream), entry.muxer.take(), false),
            None => (Arc::new(HlsStream::new(&self.settings)), None, true),
        };
        let task = {
            let stream = Arc::clone(&stream);
            let settings = self.settings.clone();
            let shutdown = shutdown.clone();
            let span = tracing::info_span!("hls", stream = %path);
            tokio::spawn(tracing::Instrument::instrument(
                async move {
                    if let Some(previous) = previous {
                        let _ = previous.await;
                    }
                    stream.publisher_started(first);
                    muxer::run(tap, stream, settings, shutdown).await;
                },
                span,
            ))
        };
        entries.insert(
            path.clone(),
            Entry {
                stream,
                muxer: Some(task),
            },
        );
    }

    /// Lingering playlists are bounded: past `hls.max_lingering` of them, those whose
    /// publisher left first go.
    fn trim_lingering(&self, entries: &mut HashMap<StreamPath, Entry>) {
        let mut lingering: Vec<(Instant, StreamPath)> = entries
            .iter()
            .filter_map(|(path, entry)| Some((entry.stream.idle_since()?, path.clone())))
            .collect();
        let excess = lingering.len().saturating_sub(self.settings.max_lingering);
        if excess == 0 {
            return;
        }
        lingering.sort_unstable();
        for (_, path) in lingering.drain(..excess) {
            entries.remove(&path);
        }
    }

    fn sweep(&self, now: Instant) {
        let timeout = Duration::from_millis(self.settings.session_timeout_ms);
        let linger = Duration::from_millis(self.settings.linger_ms);
        let mut entries = self.lock();
        let mut total = 0;
        entries.retain(|path, entry| {
            // A finished task's handle keeps its memory: let it go.
            if entry.muxer.as_ref().is_some_and(JoinHandle::is_finished) {
                entry.muxer = None;
            }
            let viewers = entry.stream.expire_sessions(now, timeout);
            total += viewers as u64;
            if let Some(live) = self.hub.stream(path) {
                live.set_hls_viewers(viewers as u64);
            }
            entry
                .stream
                .idle_since()
                .is_none_or(|left| now.saturating_duration_since(left) < linger)
        });
        self.trim_lingering(&mut entries);
        self.sessions.store(total, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<StreamPath, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
