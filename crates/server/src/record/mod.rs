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

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use onair_media::StreamPath;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::hub::Stream;
use crate::Shared;

pub(crate) use listing::{DeleteError, RecordingInfo};
pub(crate) use name::RecordingName;
pub use settings::{RecordFormat, RecordSettings, ALL_APPS};

/// The recordings directory and the files being written in it.
#[derive(Debug)]
pub(crate) struct Recordings {
    dir: PathBuf,
    list_max_entries: usize,
    /// Files open for writing now: one per recorded live stream at most.
    writing: Mutex<HashSet<RecordingName>>,
    /// Streams with a recorder (by address: a stream that restarts is a new one), so a
    /// stream seen twice is recorded once.
    recorded: Mutex<HashSet<usize>>,
}

impl Recordings {
    pub(crate) fn new(settings: &crate::Settings) -> Self {
        Self {
            dir: settings.record.dir(&settings.data_dir),
            list_max_entries: settings.record.list_max_entries,
            writing: Mutex::default(),
            recorded: Mutex::default(),
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Files being written now.
    pub(crate) fn writing_count(&self) -> usize {
        lock(&self.writing).len()
    }

    pub(crate) fn is_writing(&self, name: &RecordingName) -> bool {
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
pub(crate) fn start(shared: &Arc<Shared>, tracker: &TaskTracker, shutdown: &CancellationToken) {
    let settings = &shared.settings.record;
    if settings.apps.is_empty() {
        return;
    }
    tracing::info!(
        apps = ?settings.apps,
        format = settings.format.as_str(),
        dir = %shared.recordings.dir().display(),
        "recording"
    );
    // Subscribed before the task runs: no stream can go live unseen.
    let changes = shared.hub.live_changes();
    tracker.spawn(supervise(
        Arc::clone(shared),
        changes,
        tracker.clone(),
        shutdown.clone(),
    ));
}

async fn supervise(
    shared: Arc<Shared>,
    mut changes: tokio::sync::broadcast::Receiver<crate::hub::LiveChange>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    let start_all = |shared: &Arc<Shared>| {
        for stream in shared.hub.streams() {
            start_recorder(shared, stream.path(), &tracker, &shutdown);
        }
    };
    start_all(&shared);
    loop {
        let change = tokio::select! {
            () = shutdown.cancelled() => return,
            change = changes.recv() => change,
        };
        match change {
            Ok(change) if change.live => {
                start_recorder(&shared, &change.path, &tracker, &shutdown);
            }
            Ok(_) => {}
            // Some changes were missed: whatever is live now is what matters.
            Err(RecvError::Lagged(_)) => start_all(&shared),
            Err(RecvError::Closed) => return,
        }
    }
}

fn start_recorder(
    shared: &Arc<Shared>,
    path: &StreamPath,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) {
    if !shared.settings.record.records(path.app()) {
        return;
    }
    let Some(viewer) = shared.hub.tap(path) else {
        return;
    };
    let Some(claim) = Claim::new(shared, viewer.stream()) else {
        return;
    };
    let shared = Arc::clone(shared);
    let shutdown = shutdown.clone();
    tracker.spawn(async move {
        recorder::record(shared, viewer, shutdown).await;
        drop(claim);
    });
}

/// A stream's place in [`Recordings::recorded`], given up on drop. It holds the stream,
/// so no other stream can take its address while the claim lasts.
struct Claim {
    shared: Arc<Shared>,
    stream: Arc<Stream>,
}

impl Claim {
    fn new(shared: &Arc<Shared>, stream: &Arc<Stream>) -> Option<Self> {
        let key = Arc::as_ptr(stream) as usize;
        lock(&shared.recordings.recorded).insert(key).then(|| Self {
            shared: Arc::clone(shared),
            stream: Arc::clone(stream),
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let key = Arc::as_ptr(&self.stream) as usize;
        lock(&self.shared.recordings.recorded).remove(&key);
    }
}
