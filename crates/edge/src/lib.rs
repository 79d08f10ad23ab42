//! The network edge of onair: the RTMP/RTMPS listeners and the HTTP listener (HTTP-FLV,
//! HLS serving, room WebSocket and SSE transports, the REST API, the pages, `/metrics`).
//!
//! The edge owns its settings ([`EdgeSettings`]: listeners, TLS, pages, connection and
//! request limits), the connection limiter and the connection-level metrics. It owns no
//! state of its own beyond that: every request is served from the handles of the
//! subsystems the composition root built and handed over in [`Subsystems`]: the relay
//! (`onair_relay::hub::Hub`), the rooms (`onair_rooms_rt::RoomHub`), the control plane
//! (store, secrets, webhooks) and the outputs (HLS, recordings). Each HTTP handler
//! extracts only the handles it uses (`State<Arc<Hub>>`, `State<Store>`, …).
//!
//! Deliberately absent: building the subsystems, their background tasks and reloading
//! settings (the composition root, `onair-server`); protocol logic (the sans-IO crates);
//! moving frames (`onair-relay`).

mod http;
mod limits;
mod metrics;
mod room_load;
mod rtmp;
pub mod settings;
#[cfg(test)]
mod testing;
mod tls;

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::FromRef;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use onair_control::live::Live;
use onair_control::stream_info::StreamInfos;
use onair_control::{auth, signing, store, webhooks};
use onair_control::{publish_auth, AuthSettings};
use onair_outputs::{hls, record};
use onair_relay::{fanout, hub, read, send, trace_context, write};
use onair_rooms_rt as rooms;

pub use http::{ConfigSummary, LimitsSummary, PublishAuthMode};
pub use limits::ConnectionLimiter;
pub use settings::{
    ConnectionLimits, HttpSettings, MetricsSettings, PagesSettings, RtmpSettings, TlsSettings,
};
pub use tls::Acceptors;

/// What the edge serves from: the handles of the other subsystems.
#[derive(Clone)]
pub struct Subsystems {
    pub hub: Arc<hub::Hub>,
    pub rooms: Arc<rooms::RoomHub>,
    /// What a reload may change: secrets, signed playback, CORS, request limits.
    pub live: Arc<Live>,
    pub store: store::Store,
    /// Titles and last-live times of streams.
    pub stream_infos: Arc<StreamInfos>,
    pub webhooks: webhooks::Webhooks,
    pub hls: Arc<hls::Hls>,
    pub recordings: Arc<record::Recordings>,
    /// The link to the other nodes, when `cluster.redis_url` is set.
    pub cluster: Option<Arc<onair_cluster::Cluster>>,
}

/// The edge's settings: its own sections, and the one section of the control plane
/// it applies at the door (how publishing is authorised).
#[derive(Debug, Clone)]
pub struct EdgeSettings {
    pub rtmp: RtmpSettings,
    pub http: HttpSettings,
    pub tls: TlsSettings,
    pub metrics: MetricsSettings,
    pub pages: PagesSettings,
    pub limits: ConnectionLimits,
    pub auth: AuthSettings,
    /// Longest a graceful shutdown waits for connections to finish.
    pub shutdown_drain: Duration,
}

/// The edge's own configuration at run time: its settings, and the summary of every
/// setting that `GET /api/v1/server` shows (the composition root refreshes it on reload).
#[derive(Debug)]
pub struct EdgeConfig {
    pub settings: EdgeSettings,
    summary: RwLock<ConfigSummary>,
}

impl EdgeConfig {
    pub fn set_summary(&self, summary: ConfigSummary) {
        *self.summary.write().unwrap_or_else(|e| e.into_inner()) = summary;
    }

    fn summary(&self) -> ConfigSummary {
        self.summary
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// When the server started and when it stops, and the tasks it waits for.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    /// Fires when the server begins shutting down; long-lived responses end on it.
    pub shutdown: CancellationToken,
    /// Every task that serves a connection: shutdown waits for them (up to the drain
    /// time). Connections handed over from hyper (WebSocket upgrades) are spawned here.
    pub tasks: TaskTracker,
    pub started: Instant,
}

/// The edge: the router's state, one handle per subsystem. Handlers extract the
/// handles they need one by one (`axum::extract::FromRef`). One pointer to clone: every
/// connection task keeps one.
#[derive(Clone)]
pub struct Edge(Arc<Handles>);

/// The handles behind an [`Edge`], and a `FromRef` for each: what a handler may extract
/// from the router's state, each handle on its own.
macro_rules! handles {
    ($($field:ident: $handle:ty),* $(,)?) => {
        /// The handles behind an [`Edge`].
        pub struct Handles {
            $($field: $handle,)*
        }

        $(impl FromRef<Edge> for $handle {
            fn from_ref(edge: &Edge) -> Self {
                edge.$field.clone()
            }
        })*
    };
}

handles! {
    hub: Arc<hub::Hub>,
    rooms: Arc<rooms::RoomHub>,
    live: Arc<Live>,
    store: store::Store,
    stream_infos: Arc<StreamInfos>,
    webhooks: webhooks::Webhooks,
    hls: Arc<hls::Hls>,
    recordings: Arc<record::Recordings>,
    cluster: Option<Arc<onair_cluster::Cluster>>,
    config: Arc<EdgeConfig>,
    limiter: Arc<ConnectionLimiter>,
    metrics: Arc<metrics::Metrics>,
    room_writes: Arc<rooms::WriteBudget>,
    lifecycle: Lifecycle,
}

impl std::ops::Deref for Edge {
    type Target = Handles;

    fn deref(&self) -> &Handles {
        &self.0
    }
}

/// The edge's listeners, bound.
#[derive(Debug)]
pub struct Listeners {
    pub rtmp: TcpListener,
    pub http: TcpListener,
    /// The RTMPS listener, when `tls.rtmps_listen` is set.
    pub rtmps: Option<TcpListener>,
    /// The metrics-only listener, when `metrics.listen` is set.
    pub metrics: Option<TcpListener>,
}

impl Listeners {
    /// Binds every listener `settings` ask for; RTMPS only with its certificate loaded.
    pub async fn bind(settings: &EdgeSettings, tls: &Acceptors) -> io::Result<Self> {
        let rtmp = TcpListener::bind(settings.rtmp.listen).await?;
        let http = TcpListener::bind(settings.http.listen).await?;
        let rtmps = match (settings.tls.rtmps_listen, &tls.rtmps) {
            (Some(addr), Some(_)) => Some(TcpListener::bind(addr).await?),
            _ => None,
        };
        let metrics = match settings.metrics.listen {
            Some(addr) if settings.metrics.enabled => Some(TcpListener::bind(addr).await?),
            _ => None,
        };
        Ok(Self {
            rtmp,
            http,
            rtmps,
            metrics,
        })
    }

    /// The RTMPS listener's address, when one is bound.
    pub fn rtmps_addr(&self) -> Option<SocketAddr> {
        self.rtmps.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The metrics-only listener's address, when one is bound.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }
}

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Edge { .. }")
    }
}

impl Edge {
    pub fn new(
        subsystems: Subsystems,
        settings: EdgeSettings,
        summary: ConfigSummary,
        lifecycle: Lifecycle,
    ) -> Self {
        let Subsystems {
            hub,
            rooms,
            live,
            store,
            stream_infos,
            webhooks,
            hls,
            recordings,
            cluster,
        } = subsystems;
        let limiter = ConnectionLimiter::new(settings.limits.clone());
        let metrics = Arc::new(metrics::Metrics::new());
        let room_writes = Arc::new(rooms::WriteBudget::new(
            settings.http.room_writes_per_second,
            settings.http.room_busy_percent,
        ));
        Self(Arc::new(Handles {
            hub,
            rooms,
            live,
            store,
            stream_infos,
            webhooks,
            hls,
            recordings,
            cluster,
            config: Arc::new(EdgeConfig {
                settings,
                summary: RwLock::new(summary),
            }),
            limiter,
            metrics,
            room_writes,
            lifecycle,
        }))
    }

    /// The connection limiter: a reload sets new limits on it.
    pub fn limiter(&self) -> &Arc<ConnectionLimiter> {
        &self.limiter
    }

    pub fn config(&self) -> &Arc<EdgeConfig> {
        &self.config
    }

    fn settings(&self) -> &EdgeSettings {
        &self.config.settings
    }

    /// Serves every listener until the lifecycle's shutdown fires; the tasks go to its
    /// tracker.
    pub fn start(self, listeners: Listeners, tls: Acceptors) {
        let tracker = self.lifecycle.tasks.clone();
        let shutdown = self.lifecycle.shutdown.clone();
        tracker.spawn(room_load::follow_cpu_load(
            Arc::clone(&self.room_writes),
            shutdown.clone(),
        ));
        tracker.spawn(rtmp::accept_loop(
            listeners.rtmp,
            None,
            self.clone(),
            tracker.clone(),
            shutdown.clone(),
        ));
        if let (Some(listener), Some(acceptor)) = (listeners.rtmps, tls.rtmps) {
            tracker.spawn(rtmp::accept_loop(
                listener,
                Some(acceptor),
                self.clone(),
                tracker.clone(),
                shutdown.clone(),
            ));
        }
        let write_timeout = Duration::from_millis(self.hub.settings().viewer_write_timeout_ms);
        if let Some(listener) = listeners.metrics {
            let listener =
                http::LimitedListener::new(listener, &self, metrics::Proto::Http, write_timeout);
            let app = metrics::metrics_router(self.clone());
            let shutdown = shutdown.clone();
            tracker.spawn(async move {
                let serving = axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown.cancelled_owned())
                    .await;
                if let Err(error) = serving {
                    tracing::warn!(%error, "metrics listener failed");
                }
            });
        }
        let proto = if tls.http.is_some() {
            metrics::Proto::Https
        } else {
            metrics::Proto::Http
        };
        let listener = http::LimitedListener::new(listeners.http, &self, proto, write_timeout);
        let app = http::router(self.clone());
        tracker.spawn(http::serve(
            listener,
            app,
            self,
            tracker.clone(),
            shutdown,
            tls.http,
        ));
    }
}
