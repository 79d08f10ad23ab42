//! `GET /api/v1/server`: what this server is and how busy it is.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::admin::Admin;
use super::api_doc::ErrorBody;
use crate::Shared;

#[derive(Debug, Serialize, ToSchema)]
pub struct ServerInfo {
    #[schema(example = "0.1.0")]
    version: String,
    uptime_seconds: u64,
    /// Open connections of every protocol.
    connections: u64,
    /// Live streams.
    streams: u64,
    /// Rooms that exist now.
    rooms: u64,
}

/// Version, uptime and load of this server.
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
        uptime_seconds: shared.started.elapsed().as_secs(),
        connections: shared.limiter.open_connections() as u64,
        streams: shared.hub.streams().len() as u64,
        rooms: shared.rooms.len() as u64,
    })
}
