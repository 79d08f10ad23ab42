//! `GET /api/v1/server`: what this server is, how it is set up, and how busy it is.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::admin::Admin;
use super::api_doc::ErrorBody;
use crate::config::PublishAuth;
use crate::{Settings, Shared};

#[derive(Debug, Serialize, ToSchema)]
pub struct ServerInfo {
    #[schema(example = "0.1.0")]
    version: String,
    build: BuildInfo,
    uptime_seconds: u64,
    /// Open connections of every protocol.
    connections: u64,
    /// Live streams.
    streams: u64,
    /// Rooms that exist now.
    rooms: u64,
    config: ConfigSummary,
}

/// How this binary was built.
#[derive(Debug, Serialize, ToSchema)]
pub struct BuildInfo {
    /// The git commit built, or `unknown`.
    #[schema(example = "7f79c74c0a1b2c3d4e5f60718293a4b5c6d7e8f9")]
    commit: String,
    /// The compiler, as `rustc -V` printed it, or `unknown`.
    #[schema(example = "rustc 1.85.0 (4d91de4e4 2025-02-17)")]
    rustc: String,
    /// The cargo profile: `release` or `debug`.
    #[schema(example = "release")]
    profile: String,
}

/// The settings that matter when looking at a server, never a secret: from
/// `Settings::redacted()`, and no URL (a webhook URL may carry a token).
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigSummary {
    #[schema(example = "0.0.0.0:1935")]
    rtmp_listen: String,
    #[schema(example = "0.0.0.0:8080")]
    http_listen: String,
    /// The RTMPS listener, when one is set.
    rtmps_listen: Option<String>,
    /// Whether HTTP is served over TLS.
    http_tls: bool,
    /// How publishing is authorised.
    publish_auth: PublishAuthMode,
    /// Whether playback needs signed URLs by default.
    signed_playback: bool,
    /// Apps whose playback signing differs from the default.
    signed_playback_app_overrides: u64,
    metrics_enabled: bool,
    /// The metrics-only listener, when one is set.
    metrics_listen: Option<String>,
    /// Where rooms keep their events (`memory`).
    #[schema(example = "memory")]
    rooms_backend: String,
    /// Whether webhook notifications are sent.
    webhooks_enabled: bool,
    limits: LimitsSummary,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PublishAuthMode {
    Open,
    Key,
    Webhook,
}

/// The main bounds, as set.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitsSummary {
    max_connections: u64,
    max_connections_per_ip: u64,
    /// 0 when the request rate limit is off.
    requests_per_second_per_ip: f64,
    max_streams: u64,
    max_rooms: u64,
    max_members_per_room: u64,
    max_body_bytes: u64,
}

/// Version, build, uptime, load and a summary of the settings of this server.
#[utoipa::path(get, path = "/api/v1/server", tag = "server",
    operation_id = "server_info",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The server", body = ServerInfo),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
    ))]
pub(super) async fn info(_: Admin, State(shared): State<Arc<Shared>>) -> Json<ServerInfo> {
    Json(ServerInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        build: BuildInfo {
            commit: env!("ONAIR_GIT_COMMIT").to_owned(),
            rustc: env!("ONAIR_RUSTC_VERSION").to_owned(),
            profile: env!("ONAIR_BUILD_PROFILE").to_owned(),
        },
        uptime_seconds: shared.started.elapsed().as_secs(),
        connections: shared.limiter.open_connections() as u64,
        streams: shared.hub.streams().len() as u64,
        rooms: shared.rooms.len() as u64,
        config: ConfigSummary::of(&shared.settings.redacted()),
    })
}

impl ConfigSummary {
    fn of(settings: &Settings) -> Self {
        let text = |addr: SocketAddr| addr.to_string();
        let metrics = &settings.metrics;
        Self {
            rtmp_listen: text(settings.rtmp.listen),
            http_listen: text(settings.http.listen),
            rtmps_listen: settings.tls.rtmps_listen.map(text),
            http_tls: settings.tls.enabled() && settings.tls.http,
            publish_auth: match settings.auth.publish {
                PublishAuth::Open => PublishAuthMode::Open,
                PublishAuth::Key => PublishAuthMode::Key,
                PublishAuth::Webhook => PublishAuthMode::Webhook,
            },
            signed_playback: settings.playback.signed,
            signed_playback_app_overrides: settings.playback.apps.len() as u64,
            metrics_enabled: metrics.enabled,
            metrics_listen: metrics.listen.filter(|_| metrics.enabled).map(text),
            rooms_backend: settings.rooms.backend.clone(),
            webhooks_enabled: settings.webhooks.url.is_some(),
            limits: LimitsSummary {
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
}
