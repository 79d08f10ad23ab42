//! The link to Redis: one multiplexed RESP3 connection (`redis`'s `ConnectionManager`,
//! which reconnects by itself and, on RESP3, resubscribes what was subscribed), made in
//! the background so a node starts and serves while Redis is away, and this node's
//! entry renewed every heartbeat, which doubles as the health check `/readyz` reports.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, ProtocolVersion};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::directory::{self, Claim};
use crate::keys::{node_key, NODES_KEY};
use crate::{ClusterSettings, NodeEntry, NodeLoad};

/// What this node carries now, read at every renewal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalState {
    pub load: NodeLoad,
    /// The paths (`app/name`) published on this node, sorted.
    pub streams: Vec<String>,
}

/// Reads [`LocalState`] (set by the server once it is built).
pub type LocalSource = Box<dyn Fn() -> LocalState + Send + Sync>;

/// Why the cluster link could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cluster.redis_url: {0}")]
    Url(#[from] redis::RedisError),
}

/// A node whose entry has not expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliveNode {
    pub entry: NodeEntry,
    /// When its entry expires unless renewed, Unix ms.
    pub expires_at: u64,
}

/// Whether Redis answered this node's latest heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisHealth {
    /// Not connected yet since the node started.
    Connecting,
    /// The latest heartbeat was answered, in this time.
    Up { round_trip: Duration },
    /// The latest attempt failed.
    Down { error: String },
}

/// This node in the cluster: its link to Redis and its entry among the nodes.
pub struct Cluster {
    settings: ClusterSettings,
    entry: NodeEntry,
    local: OnceLock<LocalSource>,
    /// The paths whose lease this node renewed last time: one gone since is released.
    held: Mutex<Vec<String>>,
    /// Paths another node held when this one renewed (after a Redis outage).
    conflicts: AtomicU64,
    key: String,
    client: redis::Client,
    /// Set once the first connection is made; it reconnects by itself from then on.
    conn: OnceLock<ConnectionManager>,
    health: Mutex<RedisHealth>,
    round_trips: AtomicU64,
    failures: AtomicU64,
}

impl Cluster {
    /// The link for `entry`'s node to the Redis at `settings.redis_url` (checked by
    /// [`ClusterSettings::validate`]); nothing connects before [`run`](Cluster::run).
    pub fn new(
        settings: ClusterSettings,
        redis_url: &str,
        entry: NodeEntry,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let info = redis_url.into_connection_info()?;
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(resp3))?;
        Ok(Arc::new(Cluster {
            local: OnceLock::new(),
            held: Mutex::new(Vec::new()),
            conflicts: AtomicU64::new(0),
            key: node_key(&entry.id),
            entry,
            settings,
            client,
            conn: OnceLock::new(),
            health: Mutex::new(RedisHealth::Connecting),
            round_trips: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }))
    }

    /// This node's entry, as of its start (the load is counted at each renewal).
    pub fn entry(&self) -> &NodeEntry {
        &self.entry
    }

    /// Where each renewal reads this node's load and streams; without one it reports
    /// no load and holds no paths.
    pub fn set_local_source(&self, source: LocalSource) {
        let _ = self.local.set(source);
    }

    /// Renewals that found a path of this node held by another (two publishers of one
    /// path, after Redis lost the directory), since start.
    pub fn stream_conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }

    /// Claims `path` for a publisher about to start here. `Err` when Redis is not
    /// answering: the caller then publishes on this node alone (and logs it).
    pub async fn claim_stream(&self, path: &str) -> Result<Claim, String> {
        if let RedisHealth::Down { error } = self.health() {
            return Err(error);
        }
        let (node, lease) = (&self.entry.id, self.settings.stream_lease_ms);
        self.request(|mut conn| async move { directory::claim(&mut conn, path, node, lease).await })
            .await
    }

    /// Gives `path` up if this node holds it (a claim whose publisher never started).
    pub async fn release_stream(&self, path: &str) {
        let node = &self.entry.id;
        let _ = self
            .request(|mut conn| async move { directory::release(&mut conn, path, node).await })
            .await;
    }

    /// One request on the shared connection, given `cluster.redis_timeout_ms`.
    async fn request<T, F, Fut>(&self, request: F) -> Result<T, String>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let Some(conn) = self.conn.get() else {
            return Err("not connected to redis".to_owned());
        };
        match tokio::time::timeout(self.redis_timeout(), request(conn.clone())).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(self.no_answer()),
        }
    }

    fn no_answer(&self) -> String {
        format!("no answer within {} ms", self.settings.redis_timeout_ms)
    }

    /// Whether Redis answered the latest heartbeat.
    pub fn health(&self) -> RedisHealth {
        lock(&self.health).clone()
    }

    /// Round trips to Redis that were answered, since start.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Connection attempts and round trips that failed or timed out, since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Connects (retrying every heartbeat while Redis is away), then renews this
    /// node's entry every heartbeat until `stop`; then removes the entry, so the
    /// others see the node leave at once rather than when its entry expires.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let Some(mut conn) = self.connect(&stop).await else {
            return;
        };
        let mut tick = tokio::time::interval(self.heartbeat());
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => self.renew(&mut conn).await,
            }
        }
        self.leave(&mut conn).await;
    }

    /// The nodes alive now, by id: the index's members whose entry has not expired,
    /// with their entries. One round trip for the index, one for the entries.
    pub async fn nodes(&self) -> Result<Vec<AliveNode>, String> {
        self.request(|mut conn| async move {
            let index: Vec<(String, u64)> = redis::cmd("ZRANGE")
                .arg(NODES_KEY)
                .arg(unix_ms())
                .arg("+inf")
                .arg("BYSCORE")
                .arg("WITHSCORES")
                .query_async(&mut conn)
                .await?;
            if index.is_empty() {
                return Ok(Vec::new());
            }
            let keys: Vec<String> = index.iter().map(|(id, _)| node_key(id)).collect();
            let entries: Vec<Option<String>> =
                redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?;
            let mut nodes: Vec<AliveNode> = index
                .into_iter()
                .zip(entries)
                .filter_map(|((_, expires_at), json)| {
                    let entry = serde_json::from_str(&json?).ok()?;
                    Some(AliveNode { entry, expires_at })
                })
                .collect();
            nodes.sort_by(|a, b| a.entry.id.cmp(&b.entry.id));
            Ok(nodes)
        })
        .await
    }

    async fn connect(&self, stop: &CancellationToken) -> Option<ConnectionManager> {
        let timeout = Some(self.redis_timeout());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout)
            .set_max_delay(self.heartbeat());
        loop {
            let attempt = ConnectionManager::new_with_config(self.client.clone(), config.clone());
            tokio::select! {
                _ = stop.cancelled() => return None,
                connected = attempt => match connected {
                    Ok(conn) => {
                        tracing::info!(node = %self.entry.id, "connected to redis");
                        let _ = self.conn.set(conn.clone());
                        return Some(conn);
                    }
                    Err(error) => self.failed(format!("connecting: {error}")),
                },
            }
            tokio::select! {
                _ = stop.cancelled() => return None,
                _ = tokio::time::sleep(self.heartbeat()) => {}
            }
        }
    }

    /// Writes this node's entry with its TTL, indexes it by expiry, drops the index's
    /// expired members, gives up the paths whose stream ended and renews the leases of
    /// the live ones: one pipelined round trip.
    async fn renew(&self, conn: &mut ConnectionManager) {
        let now = unix_ms();
        let ttl = self.settings.node_ttl_ms;
        let local = self.local.get().map(|read| read()).unwrap_or_default();
        let entry = NodeEntry {
            load: local.load,
            streams: local.streams.clone(),
            ..self.entry.clone()
        };
        // Plain strings and numbers: it cannot fail to encode.
        let entry = serde_json::to_string(&entry).unwrap_or_default();
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(&self.key)
            .arg(entry)
            .arg("PX")
            .arg(ttl)
            .ignore()
            .cmd("ZADD")
            .arg(NODES_KEY)
            .arg(now.saturating_add(ttl))
            .arg(&self.entry.id)
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(NODES_KEY)
            .arg("-inf")
            .arg(format!("({now}"))
            .ignore();
        let gone: Vec<String> = {
            let held = lock(&self.held);
            // The local streams come sorted (the hub lists them by path).
            held.iter()
                .filter(|p| local.streams.binary_search(p).is_err())
                .cloned()
                .collect()
        };
        for path in &gone {
            directory::release_into(&mut pipe, path, &self.entry.id);
        }
        let lease = self.settings.stream_lease_ms;
        directory::renew_into(&mut pipe, &local.streams, &self.entry.id, lease);
        let started = Instant::now();
        let answered = tokio::time::timeout(
            self.redis_timeout(),
            pipe.query_async::<Vec<redis::Value>>(conn),
        );
        match answered.await {
            Ok(Ok(answers)) => {
                self.succeeded(started.elapsed());
                self.note_renewals(&local.streams, &answers);
                *lock(&self.held) = local.streams;
            }
            Ok(Err(error)) => self.failed(error.to_string()),
            Err(_) => self.failed(self.no_answer()),
        }
    }

    async fn leave(&self, conn: &mut ConnectionManager) {
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(&self.key).ignore();
        pipe.cmd("ZREM").arg(NODES_KEY).arg(&self.entry.id).ignore();
        let left = tokio::time::timeout(self.redis_timeout(), pipe.query_async::<()>(conn));
        match left.await {
            Ok(Ok(())) => tracing::info!(node = %self.entry.id, "left the cluster"),
            _ => tracing::warn!(
                node = %self.entry.id,
                "could not remove this node's entry; it expires by itself"
            ),
        }
    }

    /// Counts and logs the paths another node held when this one renewed them.
    fn note_renewals(&self, paths: &[String], answers: &[redis::Value]) {
        let renewals = &answers[answers.len().saturating_sub(paths.len())..];
        for (path, answer) in paths.iter().zip(renewals) {
            if let Ok(owner) = redis::from_redis_value_ref::<String>(answer) {
                self.conflicts.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    node = %self.entry.id,
                    stream_path = %path,
                    owner,
                    "another node holds a path published here"
                );
            }
        }
    }

    fn succeeded(&self, round_trip: Duration) {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let mut health = lock(&self.health);
        if !matches!(*health, RedisHealth::Up { .. }) {
            tracing::info!(node = %self.entry.id, ?round_trip, "redis answers");
        }
        *health = RedisHealth::Up { round_trip };
    }

    fn failed(&self, error: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut health = lock(&self.health);
        if !matches!(*health, RedisHealth::Down { .. }) {
            tracing::warn!(node = %self.entry.id, %error, "redis unreachable");
        }
        *health = RedisHealth::Down { error };
    }

    fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.settings.heartbeat_interval_ms)
    }

    fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.settings.redis_timeout_ms)
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.entry.id)
            .field("health", &self.health())
            .finish_non_exhaustive()
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
