//! Recording live streams to disk (docs/recording.md).
//!
//! A supervisor follows the hub's live changes and starts a [`recorder`] task for each
//! stream of a recorded app (`record.apps`); the task reads the stream through a hub
//! tap (not a viewer) and writes files through a [`format::RecordingFormat`] (FLV
//! or fragmented MP4). [`Recordings`] knows which files are
//! being written and reads the directory back for the REST API: files are the only
//! record, so recordings survive restarts without a database.
//!
//! Deliberately absent: reloading (every `[record]` key needs a restart), and any
//! effect on the live stream: a recorder never makes the publisher wait, and a disk
//! that fails only stops the recording.

mod file;
mod flv_file;
mod fmp4_file;
mod format;
mod listing;
mod name;
mod recorder;
mod settings;
mod stats;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use onair_media::StreamPath;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use onair_relay::hub::{Hub, LiveChange, Stream};

pub use listing::{DeleteError, RecordingInfo};
pub use name::RecordingName;
pub use settings::{RecordFormat, RecordSettings, ALL_APPS};
pub use stats::{RecordFailure, RecordStats, RecordingDone, RecordingObserver};

/// The recordings directory, the files being written in it, and what the recorders
/// need: the hub to tap, the settings, counters and whom to tell about finished files.
pub struct Recordings {
    dir: PathBuf,
    settings: RecordSettings,
    hub: Arc<Hub>,
    stats: RecordStats,
    observer: Arc<dyn RecordingObserver>,
    /// Files open for writing now: one per recorded live stream at most.
    writing: Mutex<HashSet<RecordingName>>,
    /// Streams with a recorder (by address: a stream that restarts is a new one), so a
    /// stream seen twice is recorded once.
    recorded: Mutex<HashSet<usize>>,
}

impl std::fmt::Debug for Recordings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recordings")
            .field("dir", &self.dir)
            .field("writing", &self.writing_count())
            .finish_non_exhaustive()
    }
}

impl Recordings {
    /// The recordings of `hub`'s streams under `data_dir`, as `settings` say; every
    /// finished file is reported to `observer`.
    pub fn new(
        settings: RecordSettings,
        data_dir: &Path,
        hub: Arc<Hub>,
        observer: Arc<dyn RecordingObserver>,
    ) -> Arc<Self> {
        Arc::new(Self {
            dir: settings.dir(data_dir),
            settings,
            hub,
            stats: RecordStats::default(),
            observer,
            writing: Mutex::default(),
            recorded: Mutex::default(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Failures, bytes and files so far, for metrics.
    pub fn stats(&self) -> &RecordStats {
        &self.stats
    }

    /// Files being written now.
    pub fn writing_count(&self) -> usize {
        lock(&self.writing).len()
    }

    pub fn is_writing(&self, name: &RecordingName) -> bool {
        lock(&self.writing).contains(name)
    }

    fn started(&self, name: RecordingName) {
        lock(&self.writing).insert(name);
    }

    fn stopped(&self, name: &RecordingName) {
        lock(&self.writing).remove(name);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each holder leaves the set consistent between its statements.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts recording every stream of a recorded app that goes live from now on, until
/// `shutdown`. Does nothing when no app is recorded.
pub fn start(recordings: &Arc<Recordings>, tracker: &TaskTracker, shutdown: &CancellationToken) {
    let settings = &recordings.settings;
    if settings.apps.is_empty() {
        return;
    }
    tracing::info!(
        apps = ?settings.apps,
        format = settings.format.as_str(),
        dir = %recordings.dir().display(),
        "recording"
    );
    // Subscribed before the task runs: no stream can go live unseen.
    let changes = recordings.hub.live_changes();
    tracker.spawn(supervise(
        Arc::clone(recordings),
        changes,
        tracker.clone(),
        shutdown.clone(),
    ));
}

async fn supervise(
    recordings: Arc<Recordings>,
    mut changes: tokio::sync::broadcast::Receiver<LiveChange>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    let start_all = |recordings: &Arc<Recordings>| {
        for stream in recordings.hub.streams() {
            start_recorder(recordings, stream.path(), &tracker, &shutdown);
        }
    };
    start_all(&recordings);
    loop {
        let change = tokio::select! {
            () = shutdown.cancelled() => return,
            change = changes.recv() => change,
        };
        match change {
            Ok(change) if change.live => {
                start_recorder(&recordings, &change.path, &tracker, &shutdown);
            }
            Ok(_) => {}
            // Some changes were missed: whatever is live now is what matters.
            Err(RecvError::Lagged(_)) => start_all(&recordings),
            Err(RecvError::Closed) => return,
        }
    }
}

fn start_recorder(
    recordings: &Arc<Recordings>,
    path: &StreamPath,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) {
    if !recordings.settings.records(path.app()) {
        return;
    }
    let Some(viewer) = recordings.hub.tap(path) else {
        return;
    };
    let Some(claim) = Claim::new(recordings, viewer.stream()) else {
        return;
    };
    let recordings = Arc::clone(recordings);
    let shutdown = shutdown.clone();
    tracker.spawn(async move {
        recorder::record(recordings, viewer, shutdown).await;
        drop(claim);
    });
}

/// A stream's place in [`Recordings::recorded`], given up on drop. It holds the stream,
/// so no other stream can take its address while the claim lasts.
struct Claim {
    recordings: Arc<Recordings>,
    stream: Arc<Stream>,
}

impl Claim {
    fn new(recordings: &Arc<Recordings>, stream: &Arc<Stream>) -> Option<Self> {
        let key = Arc::as_ptr(stream) as usize;
        lock(&recordings.recorded).insert(key).then(|| Self {
            recordings: Arc::clone(recordings),
            stream: Arc::clone(stream),
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let key = Arc::as_ptr(&self.stream) as usize;
        lock(&self.recordings.recorded).remove(&key);
    }
}
