//! The composition root: builds every subsystem from one [`Settings`], wires their
//! handles together, binds the listeners and runs the lifecycle (start, reload, drain).
//!
//! The subsystems are crates of their own: the relay (`onair-relay`), the rooms runtime
//! (`onair-rooms-rt`), the control plane (`onair-control`), the outputs
//! (`onair-outputs`: HLS and recording) and the network edge (`onair-edge`: listeners,
//! HTTP, REST). Each owns its settings section and its `validate`; [`config`] only
//! assembles them. Protocol logic lives in the sans-IO crates.
//!
//! Deliberately absent: configuration loading from files or the environment (the
//! binary's job) and process-level concerns such as signals and log formatting.

pub mod config;
pub mod reload;

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Settings;
use hub::Hub;
use onair_control::live::{Live, LiveState};
use onair_control::request_limit::RequestLimiter;
use onair_control::stream_info;
pub use onair_control::{auth, secrets, signing, store, webhooks};
use onair_edge::{Acceptors, ConfigSummary, Edge, EdgeSettings, Lifecycle, Listeners, Subsystems};
pub use onair_outputs::{hls, record};
pub use onair_relay::{client, fanout, hub, trace_context};
pub use onair_rooms_rt as rooms;

/// A server with its listeners bound, ready to [`run`](Server::run).
pub struct Server {
    edge: Edge,
    subsystems: Subsystems,
    lifecycle: Lifecycle,
    listeners: Listeners,
    tls: Acceptors,
    settings: Settings,
    generated_admin_token: Option<String>,
}

impl Server {
    /// Binds the RTMP and HTTP listeners (and the RTMPS one when configured). Fails if
    /// the settings are invalid, a TLS certificate or key cannot be read, or a port is taken.
    pub async fn bind(settings: Settings) -> io::Result<Self> {
        settings
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let edge_settings = edge_settings(&settings);
        let tls = Acceptors::load(&settings.tls)?;
        let listeners = Listeners::bind(&edge_settings, &tls).await?;
        let (live_state, secrets) = live_state(&settings)?;
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
        let secret = webhooks::Webhooks::load_secret(
            &settings.data_dir,
            settings.webhooks.secret.as_deref(),
        )?;
        let webhooks = webhooks::Webhooks::new(settings.webhooks.clone(), secret)?;
        hub.set_observer(webhooks.hub_observer());
        rooms.set_event_tap(rooms::RoomCounters::tap(
            Arc::clone(rooms.counters()),
            webhooks.room_tap(),
        ));
        let hls = hls::Hls::new(settings.hls.clone(), Arc::clone(&hub));
        let recordings = record::Recordings::new(
            settings.record.clone(),
            &settings.data_dir,
            Arc::clone(&hub),
            webhooks.recording_observer(),
        );
        let stream_infos = stream_info::StreamInfos::new(store.clone(), Arc::clone(&hub));
        let cluster = cluster(&settings.cluster, listeners.http.local_addr()?)?;
        let subsystems = Subsystems {
            hub,
            rooms,
            live: Arc::new(Live::new(live_state)),
            store,
            stream_infos,
            webhooks,
            hls,
            recordings,
            cluster,
        };
        let lifecycle = Lifecycle {
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            started: Instant::now(),
        };
        let edge = Edge::new(
            subsystems.clone(),
            edge_settings,
            config_summary(&settings),
            lifecycle.clone(),
        );
        if let Some(cluster) = &subsystems.cluster {
            let (limiter, hub, rooms) = (
                Arc::clone(edge.limiter()),
                Arc::clone(&subsystems.hub),
                Arc::clone(&subsystems.rooms),
            );
            cluster.set_local_source(Box::new(move || {
                let streams: Vec<String> =
                    hub.streams().iter().map(|s| s.path().to_string()).collect();
                onair_cluster::LocalState {
                    load: onair_cluster::NodeLoad {
                        connections: limiter.open_connections() as u64,
                        streams: streams.len() as u64,
                        rooms: rooms.len() as u64,
                    },
                    streams,
                }
            }));
        }
        Ok(Self {
            edge,
            subsystems,
            lifecycle,
            listeners,
            tls,
            settings,
            generated_admin_token,
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
            edge: self.edge.clone(),
            live: Arc::clone(&self.subsystems.live),
            in_force: Arc::new(Mutex::new(self.settings.clone())),
        }
    }

    pub fn rtmp_addr(&self) -> io::Result<SocketAddr> {
        self.listeners.rtmp.local_addr()
    }

    pub fn http_addr(&self) -> io::Result<SocketAddr> {
        self.listeners.http.local_addr()
    }

    /// The metrics-only listener's address, when `metrics.listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.listeners.metrics_addr()
    }

    /// The RTMPS listener's address, when one is configured.
    pub fn rtmps_addr(&self) -> Option<SocketAddr> {
        self.listeners.rtmps_addr()
    }

    pub fn hub(&self) -> Arc<Hub> {
        Arc::clone(&self.subsystems.hub)
    }

    /// The webhooks: their counters, and the publish decision call.
    pub fn webhooks(&self) -> webhooks::Webhooks {
        self.subsystems.webhooks.clone()
    }

    /// Runs until `shutdown` fires, then stops accepting, ends every connection and
    /// returns once they are gone or the drain time has passed.
    pub async fn run(self, shutdown: CancellationToken) -> io::Result<()> {
        let rtmp_addr = self.rtmp_addr()?;
        let http_addr = self.http_addr()?;
        let rtmps_addr = self.rtmps_addr();
        let metrics_addr = self.metrics_addr();
        let https = self.tls.http.is_some();
        let Self {
            edge,
            subsystems,
            lifecycle,
            listeners,
            tls,
            settings,
            ..
        } = self;
        let tracker = lifecycle.tasks.clone();
        let inner_shutdown = lifecycle.shutdown.clone();
        tracker.spawn(Arc::clone(&subsystems.rooms).run(inner_shutdown.clone()));
        tracker.spawn(Arc::clone(&subsystems.hls).run(inner_shutdown.clone()));
        tracker.spawn(Arc::clone(&subsystems.stream_infos).run(inner_shutdown.clone()));
        record::start(&subsystems.recordings, &tracker, &inner_shutdown);
        if let Some(cluster) = &subsystems.cluster {
            tracker.spawn(Arc::clone(cluster).run(inner_shutdown.clone()));
        }
        let drain = Duration::from_millis(settings.shutdown_drain_ms);
        tracker.spawn(
            subsystems
                .webhooks
                .clone()
                .run(inner_shutdown.clone(), drain),
        );
        edge.start(listeners, tls);
        tracing::info!(
            rtmp = %rtmp_addr,
            http = %http_addr,
            http_tls = https,
            rtmps = rtmps_addr.map(tracing::field::display),
            metrics = metrics_addr.map(tracing::field::display),
            "onair listening"
        );
        if settings.tls.enabled() && !https && rtmps_addr.is_none() {
            tracing::warn!("tls certificates are set but no listener uses them (tls.http = false, no tls.rtmps_listen)");
        }

        shutdown.cancelled().await;
        tracing::info!("shutting down");
        inner_shutdown.cancel();
        tracker.close();
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

/// This node's link to the cluster, when `cluster.redis_url` is set; `http` is the
/// bound HTTP address, the default for what other nodes are told to reach.
fn cluster(
    settings: &config::ClusterSettings,
    http: SocketAddr,
) -> io::Result<Option<Arc<onair_cluster::Cluster>>> {
    let Some(url) = &settings.redis_url else {
        return Ok(None);
    };
    let node_id = match settings.node_id.as_str() {
        "" => default_node_id(http.port()),
        id => id.to_owned(),
    };
    let url_of_node = match settings.advertise_url.as_str() {
        "" => {
            if http.ip().is_unspecified() {
                tracing::warn!(
                    %http,
                    "cluster.advertise_url is not set and http.listen is a wildcard address: \
                     other nodes will not know how to reach this one"
                );
            }
            format!("http://{http}")
        }
        given => given.to_owned(),
    };
    let entry = onair_cluster::NodeEntry {
        id: node_id,
        url: url_of_node,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at: rooms::now().as_u64(),
        load: onair_cluster::NodeLoad::default(),
        streams: Vec::new(),
    };
    tracing::info!(node = %entry.id, url = %entry.url, "cluster mode: sharing state through redis");
    let cluster = onair_cluster::Cluster::new(settings.clone(), url, entry)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    Ok(Some(cluster))
}

/// The host name and the HTTP port, as a node id (`[A-Za-z0-9_.-]`).
fn default_node_id(port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(56)
        .collect();
    match host.as_str() {
        "" => format!("onair-{port}"),
        host => format!("{host}-{port}"),
    }
}

/// Applies new settings to a running server: what can change live changes, the rest is
/// reported as needing a restart.
#[derive(Clone)]
pub struct Reloader {
    edge: Edge,
    live: Arc<Live>,
    /// The settings in force, for the next reload to compare against.
    in_force: Arc<Mutex<Settings>>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reloader { .. }")
    }
}

impl Reloader {
    /// Validates `new`, applies its reloadable keys, and says which changed keys were
    /// applied and which wait for a restart. Invalid settings change nothing.
    pub fn reload(&self, new: &Settings) -> io::Result<reload::ReloadReport> {
        new.validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut in_force = self.in_force.lock().unwrap_or_else(|e| e.into_inner());
        let report = reload::classify_changes(&in_force, new);
        let next = reload::with_reloadable(&in_force, new);
        let (state, _) = live_state(&next)?;
        self.edge.limiter().set_limits(next.limits.clone());
        self.live.set(state);
        self.edge.config().set_summary(config_summary(&next));
        *in_force = next;
        Ok(report)
    }
}

/// The control plane's reloadable state for `settings`: secrets from the data dir, and
/// the request limiter `limits` ask for.
fn live_state(settings: &Settings) -> io::Result<(LiveState, secrets::Secrets)> {
    let limits = &settings.limits;
    let requests = (limits.requests_per_second_per_ip > 0.0).then(|| {
        RequestLimiter::new(
            limits.requests_per_second_per_ip,
            limits.request_burst_per_ip,
            limits.rate_limited_ips_max,
            Instant::now(),
        )
    });
    LiveState::load(
        &settings.data_dir,
        &settings.auth,
        &settings.playback,
        requests,
    )
}

fn edge_settings(settings: &Settings) -> EdgeSettings {
    EdgeSettings {
        rtmp: settings.rtmp.clone(),
        http: settings.http.clone(),
        tls: settings.tls.clone(),
        metrics: settings.metrics.clone(),
        pages: settings.pages.clone(),
        limits: settings.limits.clone(),
        auth: settings.auth.clone(),
        shutdown_drain: Duration::from_millis(settings.shutdown_drain_ms),
    }
}

/// What `GET /api/v1/server` shows of `settings`: never a secret, and no URL (a
/// webhook URL may carry a token).
fn config_summary(settings: &Settings) -> ConfigSummary {
    let text = |addr: SocketAddr| addr.to_string();
    let metrics = &settings.metrics;
    ConfigSummary {
        rtmp_listen: text(settings.rtmp.listen),
        http_listen: text(settings.http.listen),
        rtmps_listen: settings.tls.rtmps_listen.map(text),
        http_tls: settings.tls.enabled() && settings.tls.http,
        publish_auth: match settings.auth.publish {
            config::PublishAuth::Open => onair_edge::PublishAuthMode::Open,
            config::PublishAuth::Key => onair_edge::PublishAuthMode::Key,
            config::PublishAuth::Webhook => onair_edge::PublishAuthMode::Webhook,
        },
        signed_playback: settings.playback.signed,
        signed_playback_app_overrides: settings.playback.apps.len() as u64,
        metrics_enabled: metrics.enabled,
        metrics_listen: metrics.listen.filter(|_| metrics.enabled).map(text),
        rooms_backend: settings.rooms.backend.clone(),
        webhooks_enabled: settings.webhooks.url.is_some(),
        limits: onair_edge::LimitsSummary {
            max_connections: settings.limits.max_connections as u64,
            max_connections_per_ip: settings.limits.max_connections_per_ip as u64,
            requests_per_second_per_ip: settings.limits.requests_per_second_per_ip,
            max_streams: settings.hub.max_streams as u64,
            max_rooms: settings.rooms.max_rooms as u64,
            max_members_per_room: settings.rooms.max_members_per_room as u64,
            max_body_bytes: settings.http.max_body_bytes as u64,
        },
    }
}
