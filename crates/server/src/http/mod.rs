//! The HTTP side: one axum router for media over HTTP, the API and health checks,
//! served on a listener that applies the shared connection limits.

mod admin;
mod error;
mod flv;
mod keys_api;
mod listener;
mod room_access;
mod rooms_api;
mod serve;
mod sse;
mod ws;

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde_json::json;

use crate::Shared;

pub(crate) use error::ApiError;
pub(crate) use listener::LimitedListener;
pub(crate) use serve::serve;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/server", get(server_info))
        .route("/api/v1/streams", get(list_streams))
        .route("/api/v1/keys", post(keys_api::create).get(keys_api::list))
        .route("/api/v1/keys/{id}", delete(keys_api::revoke))
        .route("/ws/{app}/{name}", get(ws::upgrade))
        .route("/sse/{app}/{name}", get(sse::subscribe))
        .route("/api/v1/rooms/{app}/{name}", get(rooms_api::show))
        .route(
            "/api/v1/rooms/{app}/{name}/messages",
            post(rooms_api::post_message),
        )
        .route(
            "/api/v1/rooms/{app}/{name}/messages/{id}",
            delete(rooms_api::delete_message),
        )
        .route("/api/v1/rooms/{app}/{name}/mutes", post(rooms_api::mute))
        .route(
            "/api/v1/rooms/{app}/{name}/mutes/{user_id}",
            delete(rooms_api::unmute),
        )
        .route("/api/v1/rooms/{app}/{name}/bans", post(rooms_api::ban))
        .route(
            "/api/v1/rooms/{app}/{name}/bans/{user_id}",
            delete(rooms_api::unban),
        )
        .route(
            "/api/v1/rooms/{app}/{name}/slow-mode",
            put(rooms_api::slow_mode),
        )
        .route("/{app}/{file}", get(flv::play))
        .fallback(not_found)
        .with_state(shared)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn server_info(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": shared.started.elapsed().as_secs(),
        "connections": shared.limiter.open_connections(),
        "streams": shared.hub.streams().len(),
    }))
}

async fn list_streams(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    let streams: Vec<_> = shared.hub.streams().iter().map(|s| s.snapshot()).collect();
    Json(json!({ "streams": streams }))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}
