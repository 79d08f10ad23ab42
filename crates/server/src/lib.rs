//! The server around the relay: the RTMP and HTTP listeners, rooms, HLS, recording,
//! webhooks, the store and the REST API, assembled from one [`Settings`].
//!
//! Protocol logic lives in the sans-IO crates (`onair-rtmp`, `onair-flv`, `onair-amf0`,
//! `onair-fmp4`, `onair-hls`, `onair-rooms`); moving frames from a publisher to its
//! viewers is `onair-relay`'s. This crate feeds the protocol crates bytes, plugs the
//! relay into its listeners, and enforces the limits and timeouts of [`Settings`]. It is
//! being cut into subsystem crates along these seams (ARCHITECTURE.md).
//!
//! Deliberately absent: configuration loading from files or the environment (the
//! binary's job) and process-level concerns such as signals and log formatting.

pub mod config;
mod http;
mod limits;
pub mod live;
mod metrics;
mod rtmp;
mod tls;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Settings;
use hub::Hub;
use limits::ConnectionLimiter;
pub use onair_control::{auth, secrets, signing, store, webhooks};
use onair_control::{publish_auth, request_limit, stream_info};
pub use onair_outputs::{hls, record};
pub use onair_relay::{client, fanout, hub, trace_context};
use onair_relay::{read, send, write};
pub use onair_rooms_rt as rooms;

/// What every connection task shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub settings: Settings,
    pub hub: Arc<Hub>,
    pub limiter: Arc<ConnectionLimiter>,
    /// Fires when the server begins shutting down; long-lived responses end on it.
    pub shutdown: CancellationToken,
    pub started: std::time::Instant,
    pub rooms: Arc<rooms::RoomHub>,
    /// What a reload may change: secrets, signed playback, CORS, request limits.
    pub live: live::Live,
    /// The settings in force, for the next reload to compare against.
    pub in_force: std::sync::Mutex<Settings>,
    pub webhooks: webhooks::Webhooks,
    pub store: store::Store,
    /// Titles and last-live times of streams.
    pub stream_infos: Arc<stream_info::StreamInfos>,
    /// Server-wide counters and gauges for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// The HLS side of every stream.
    pub hls: Arc<hls::Hls>,
    /// The recordings directory and the files being written.
    pub recordings: Arc<record::Recordings>,
    /// Every task that serves a connection: shutdown waits for them (up to the drain
    /// time). Connections handed over from hyper (WebSocket upgrades) are spawned here.
    pub tasks: TaskTracker,
}

/// A server with its listeners bound, ready to [`run`](Server::run).
pub struct Server {
    shared: Arc<Shared>,
    rtmp_listener: TcpListener,
    http_listener: TcpListener,
    generated_admin_token: Option<String>,
    /// The RTMPS listener, when `tls.rtmps_listen` is set.
    rtmps_listener: Option<TcpListener>,
    tls: tls::Acceptors,
    /// The metrics-only listener, when `metrics.listen` is set.
    metrics_listener: Option<TcpListener>,
}

impl Server {
    /// Binds the RTMP and HTTP listeners (and the RTMPS one when configured). Fails if
    /// the settings are invalid, a TLS certificate or key cannot be read, or a port is taken.
    pub async fn bind(settings: Settings) -> io::Result<Self> {
        settings
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let tls = tls::Acceptors::load(&settings.tls)?;
        let rtmp_listener = TcpListener::bind(settings.rtmp.listen).await?;
        let http_listener = TcpListener::bind(settings.http.listen).await?;
        let rtmps_listener = match (settings.tls.rtmps_listen, &tls.rtmps) {
            (Some(addr), Some(_)) => Some(TcpListener::bind(addr).await?),
            _ => None,
        };
        let metrics_listener = match settings.metrics.listen {
            Some(addr) if settings.metrics.enabled => Some(TcpListener::bind(addr).await?),
            _ => None,
        };
        let (live_state, secrets) = live::LiveState::load(&settings)?;
        if secrets.admin_token_created {
            tracing::warn!(
                path = %settings.data_dir.join("admin-token").display(),
                "generated an admin token (kept in this file; not logged)"
            );
        }
        let generated_admin_token = secrets
            .admin_token_created
            .then(|| secrets.admin_token.clone());
        if settings.auth.publish == config::PublishAuth::Open
            && !settings.rtmp.listen.ip().is_loopback()
        {
            tracing::warn!(
                rtmp = %settings.rtmp.listen,
                "PUBLISHING IS OPEN: anyone who can reach the RTMP port may publish any stream. \
                 Use --publish-auth key or --publish-auth webhook in production"
            );
        }
        if settings.playback.signed || !settings.playback.apps.is_empty() {
            tracing::info!(
                signed = settings.playback.signed,
                app_overrides = settings.playback.apps.len(),
                secrets = settings.playback.secrets.len().max(1),
                "signed playback URLs"
            );
        }
        let store = store::Store::open(&settings.data_dir, settings.store.clone())
            .await
            .map_err(|e| {
                let path = settings.data_dir.join(store::DB_FILE);
                io::Error::other(format!("opening {}: {e}", path.display()))
            })?;
        let saved = store
            .load_moderation(rooms::now().as_u64())
            .await
            .map_err(|e| io::Error::other(format!("loading saved moderation: {e}")))?;
        if saved.left_out > 0 {
            tracing::warn!(
                left_out = saved.left_out,
                max = settings.store.max_moderation_entries,
                "more saved moderation than store.max_moderation_entries; the oldest is not applied"
            );
        }
        let hub = Hub::new(settings.hub.clone(), settings.rtmp.out_chunk_size);
        let backend =
            rooms::backend_from_settings(&settings.rooms, settings.http.room_fanout_events)
                .map_err(io::Error::other)?;
        let rooms = rooms::RoomHub::new(
            settings.rooms.clone(),
            backend,
            Arc::clone(&hub) as Arc<dyn rooms::StreamLiveness>,
            Arc::new(store.clone()),
            saved,
            settings.store.max_moderation_entries,
        );
        let limiter = ConnectionLimiter::new(settings.limits.clone());
        let secret = webhooks::Webhooks::load_secret(
            &settings.data_dir,
            settings.webhooks.secret.as_deref(),
        )?;
        let webhooks = webhooks::Webhooks::new(settings.webhooks.clone(), secret)?;
        hub.set_observer(webhooks.hub_observer());
        let metrics = Arc::new(metrics::Metrics::new());
        let hls = hls::Hls::new(settings.hls.clone(), Arc::clone(&hub));
        rooms.set_event_tap(metrics::RoomCounters::tap(
            Arc::clone(rooms.counters()),
            webhooks.room_tap(),
        ));
        let recordings = record::Recordings::new(
            settings.record.clone(),
            &settings.data_dir,
            Arc::clone(&hub),
            webhooks.recording_observer(),
        );
        let stream_infos = stream_info::StreamInfos::new(store.clone(), Arc::clone(&hub));
        Ok(Self {
            shared: Arc::new(Shared {
                in_force: std::sync::Mutex::new(settings.clone()),
                settings,
                hub,
                limiter,
                shutdown: CancellationToken::new(),
                started: std::time::Instant::now(),
                rooms,
                live: live::Live::new(live_state),
                webhooks,
                store,
                stream_infos,
                metrics,
                hls,
                recordings,
                tasks: TaskTracker::new(),
            }),
            rtmp_listener,
            http_listener,
            generated_admin_token,
            rtmps_listener,
            tls,
            metrics_listener,
        })
    }

    /// The admin token, once, when this start generated it, so the caller can show
    /// it to the operator (it is never logged).
    pub fn take_generated_admin_token(&mut self) -> Option<String> {
        self.generated_admin_token.take()
    }

    /// A handle that applies new settings to the running server (SIGHUP).
    pub fn reloader(&self) -> Reloader {
        Reloader {
            shared: Arc::clone(&self.shared),
        }
    }

    pub fn rtmp_addr(&self) -> io::Result<SocketAddr> {
        self.rtmp_listener.local_addr()
    }

    pub fn http_addr(&self) -> io::Result<SocketAddr> {
        self.http_listener.local_addr()
    }

    /// The metrics-only listener's address, when `metrics.listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// The RTMPS listener's address, when one is configured.
    pub fn rtmps_addr(&self) -> Option<SocketAddr> {
        self.rtmps_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    pub fn hub(&self) -> Arc<Hub> {
        Arc::clone(&self.shared.hub)
    }

    /// The webhooks: their counters, and the publish decision call.
    pub fn webhooks(&self) -> webhooks::Webhooks {
        self.shared.webhooks.clone()
    }

    /// Runs until `shutdown` fires, then stops accepting, ends every connection and
    /// returns once they are gone or the drain time has passed.
    pub async fn run(self, shutdown: CancellationToken) -> io::Result<()> {
        let rtmp_addr = self.rtmp_addr()?;
        let http_addr = self.http_addr()?;
        let rtmps_addr = self.rtmps_addr();
        let metrics_addr = self.metrics_addr();
        let shared = self.shared;
        let tracker = shared.tasks.clone();
        let inner_shutdown = shared.shutdown.clone();
        tracker.spawn(rtmp::accept_loop(
            self.rtmp_listener,
            None,
            Arc::clone(&shared),
            tracker.clone(),
            inner_shutdown.clone(),
        ));
        if let (Some(listener), Some(acceptor)) = (self.rtmps_listener, self.tls.rtmps) {
            tracker.spawn(rtmp::accept_loop(
                listener,
                Some(acceptor),
                Arc::clone(&shared),
                tracker.clone(),
                inner_shutdown.clone(),
            ));
        }
        tracker.spawn(Arc::clone(&shared.rooms).run(inner_shutdown.clone()));
        tracker.spawn(Arc::clone(&shared.hls).run(inner_shutdown.clone()));
        tracker.spawn(Arc::clone(&shared.stream_infos).run(inner_shutdown.clone()));
        record::start(&shared.recordings, &tracker, &inner_shutdown);
        let drain = Duration::from_millis(shared.settings.shutdown_drain_ms);
        tracker.spawn(shared.webhooks.clone().run(inner_shutdown.clone(), drain));
        let write_timeout = Duration::from_millis(shared.settings.hub.viewer_write_timeout_ms);
        if let Some(listener) = self.metrics_listener {
            let listener = http::LimitedListener::new(
                listener,
                Arc::clone(&shared),
                metrics::Proto::Http,
                write_timeout,
            );
            let app = metrics::metrics_router(Arc::clone(&shared));
            let shutdown = inner_shutdown.clone();
            tracker.spawn(async move {
                let serving = axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown.cancelled_owned())
                    .await;
                if let Err(error) = serving {
                    tracing::warn!(%error, "metrics listener failed");
                }
            });
        }
        let https = self.tls.http.is_some();
        let proto = if https {
            metrics::Proto::Https
        } else {
            metrics::Proto::Http
        };
        let listener = http::LimitedListener::new(
            self.http_listener,
            Arc::clone(&shared),
            proto,
            write_timeout,
        );
        let app = http::router(Arc::clone(&shared));
        tracker.spawn(http::serve(
            listener,
            app,
            Arc::clone(&shared),
            tracker.clone(),
            inner_shutdown.clone(),
            self.tls.http,
        ));
        tracing::info!(
            rtmp = %rtmp_addr,
            http = %http_addr,
            http_tls = https,
            rtmps = rtmps_addr.map(tracing::field::display),
            metrics = metrics_addr.map(tracing::field::display),
            "onair listening"
        );
        if shared.settings.tls.enabled() && !https && rtmps_addr.is_none() {
            tracing::warn!("tls certificates are set but no listener uses them (tls.http = false, no tls.rtmps_listen)");
        }

        shutdown.cancelled().await;
        tracing::info!("shutting down");
        inner_shutdown.cancel();
        tracker.close();
        let drain = Duration::from_millis(shared.settings.shutdown_drain_ms);
        let drained = tokio::time::timeout(drain, tracker.wait()).await;
        if drained.is_err() {
            tracing::warn!(
                ?drain,
                "connections still open after the drain time; exiting anyway"
            );
        }
        Ok(())
    }
}

/// Applies new settings to a running server: what can change live changes, the rest is
/// reported as needing a restart.
#[derive(Clone)]
pub struct Reloader {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reloader { .. }")
    }
}

impl Reloader {
    /// Validates `new`, applies its reloadable keys, and says which changed keys were
    /// applied and which wait for a restart. Invalid settings change nothing.
    pub fn reload(&self, new: &Settings) -> io::Result<live::ReloadReport> {
        new.validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut in_force = self
            .shared
            .in_force
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let report = live::classify_changes(&in_force, new);
        let next = live::with_reloadable(&in_force, new);
        let (state, _) = live::LiveState::load(&next)?;
        self.shared.limiter.set_limits(next.limits.clone());
        self.shared.live.set(state);
        *in_force = next;
        Ok(report)
    }
}
