//! `GET /api/v1/server`: what this server is, how it is set up, and how busy it is.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::admin::Admin;
use super::api_doc::ErrorBody;
use crate::hub::Hub;
use crate::rooms::RoomHub;
use crate::{ConnectionLimiter, EdgeConfig, Lifecycle};

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
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConfigSummary {
    #[schema(example = "0.0.0.0:1935")]
    pub rtmp_listen: String,
    #[schema(example = "0.0.0.0:8080")]
    pub http_listen: String,
    /// The RTMPS listener, when one is set.
    pub rtmps_listen: Option<String>,
    /// Whether HTTP is served over TLS.
    pub http_tls: bool,
    /// How publishing is authorised.
    pub publish_auth: PublishAuthMode,
    /// Whether playback needs signed URLs by default.
    pub signed_playback: bool,
    /// Apps whose playback signing differs from the default.
    pub signed_playback_app_overrides: u64,
    pub metrics_enabled: bool,
    /// The metrics-only listener, when one is set.
    pub metrics_listen: Option<String>,
    /// Where rooms keep their events (`memory`).
    #[schema(example = "memory")]
    pub rooms_backend: String,
    /// Whether webhook notifications are sent.
    pub webhooks_enabled: bool,
    pub limits: LimitsSummary,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PublishAuthMode {
    Open,
    Key,
    Webhook,
}

/// The main bounds, as set.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LimitsSummary {
    pub max_connections: u64,
    pub max_connections_per_ip: u64,
    /// 0 when the request rate limit is off.
    pub requests_per_second_per_ip: f64,
    pub max_streams: u64,
    pub max_rooms: u64,
    pub max_members_per_room: u64,
    pub max_body_bytes: u64,
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
pub(super) async fn info(
    _: Admin,
    State(lifecycle): State<Lifecycle>,
    State(limiter): State<Arc<ConnectionLimiter>>,
    State(hub): State<Arc<Hub>>,
    State(rooms): State<Arc<RoomHub>>,
    State(config): State<Arc<EdgeConfig>>,
) -> Json<ServerInfo> {
    Json(ServerInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        build: BuildInfo {
            commit: env!("ONAIR_GIT_COMMIT").to_owned(),
            rustc: env!("ONAIR_RUSTC_VERSION").to_owned(),
            profile: env!("ONAIR_BUILD_PROFILE").to_owned(),
        },
        uptime_seconds: lifecycle.started.elapsed().as_secs(),
        connections: limiter.open_connections() as u64,
        streams: hub.streams().len() as u64,
        rooms: rooms.len() as u64,
        config: config.summary(),
    })
}
