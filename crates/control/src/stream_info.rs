//! Titles, descriptions and last-live times of streams, as the pages and the API show
//! them. The store keeps them ([`crate::store::StreamInfo`]); this keeps a copy for each
//! live stream in memory, so the public stream list, polled by every open `/` page,
//! never waits on the database. It follows the hub: a stream going live has its info
//! loaded and its live time recorded; going offline, its live time is recorded again
//! (the "last live" of its offline card) and the copy dropped.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use onair_media::StreamPath;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::store::{Store, StoreError, StreamInfo, StreamInfoPatch};
use onair_relay::hub::{Hub, LiveChange};

#[derive(Debug)]
pub struct StreamInfos {
    store: Store,
    hub: Arc<Hub>,
    /// The info of streams live now. At most one entry per live stream: bounded by
    /// `hub.max_streams`.
    live: Mutex<HashMap<StreamPath, Arc<StreamInfo>>>,
}

impl StreamInfos {
    pub fn new(store: Store, hub: Arc<Hub>) -> Arc<Self> {
        Arc::new(Self {
            store,
            hub,
            live: Mutex::default(),
        })
    }

    /// The info of a live stream, from memory; `None` until it is loaded.
    pub fn live(&self, path: &StreamPath) -> Option<Arc<StreamInfo>> {
        self.lock().get(path).cloned()
    }

    /// The info of any stream: from memory while it is live, else from the store
    /// (also in the moment after a stream goes live, before its copy is loaded).
    pub async fn get(&self, path: &StreamPath) -> Result<Arc<StreamInfo>, StoreError> {
        match self.live(path) {
            Some(info) => Ok(info),
            None => Ok(Arc::new(self.store.stream_info(path).await?)),
        }
    }

    /// The info of a live stream for a view of it: [`get`](Self::get), with a store
    /// failure logged and shown as no info rather than failing the whole view.
    pub async fn for_view(&self, path: &StreamPath) -> Arc<StreamInfo> {
        self.get(path).await.unwrap_or_else(|error| {
            tracing::warn!(stream = %path, %error, "stream title not loaded");
            Arc::default()
        })
    }

    /// Changes the title or description of `path`, live or not.
    pub async fn update(
        &self,
        path: &StreamPath,
        patch: StreamInfoPatch,
    ) -> Result<Arc<StreamInfo>, StoreError> {
        let info = Arc::new(self.store.update_stream_info(path, patch).await?);
        if self.hub.stream(path).is_some() {
            self.lock().insert(path.clone(), Arc::clone(&info));
        }
        Ok(info)
    }

    /// Follows the hub's live changes until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut changes = self.hub.live_changes();
        self.catch_up().await;
        loop {
            let change = tokio::select! {
                () = shutdown.cancelled() => return,
                change = changes.recv() => change,
            };
            match change {
                Ok(change) => self.apply(change).await,
                Err(RecvError::Lagged(_)) => self.catch_up().await,
                Err(RecvError::Closed) => return,
            }
        }
    }

    async fn apply(&self, change: LiveChange) {
        if let Err(error) = self.store.mark_live(&change.path).await {
            tracing::warn!(stream = %change.path, %error, "last-live time not saved");
        }
        if !change.live {
            self.lock().remove(&change.path);
            return;
        }
        let info = match self.store.stream_info(&change.path).await {
            Ok(info) => info,
            Err(error) => {
                tracing::warn!(stream = %change.path, %error, "stream title not loaded");
                StreamInfo::default()
            }
        };
        // Only while still live; and an update made meanwhile is newer than this load.
        if self.hub.stream(&change.path).is_some() {
            self.lock()
                .entry(change.path)
                .or_insert_with(|| Arc::new(info));
        }
    }

    /// After missed changes: what is live now is what matters.
    async fn catch_up(&self) {
        let live: HashSet<StreamPath> = self
            .hub
            .streams()
            .iter()
            .map(|s| s.path().clone())
            .collect();
        self.lock().retain(|path, _| live.contains(path));
        for path in live {
            if self.live(&path).is_none() {
                self.apply(LiveChange { path, live: true }).await;
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<StreamPath, Arc<StreamInfo>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}
