//! The HTTP side: one axum router for media over HTTP, the API and health checks,
//! served on a listener that applies the shared connection limits.

mod error;
mod flv;
mod listener;

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::Shared;

pub(crate) use error::ApiError;
pub(crate) use listener::LimitedListener;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/server", get(server_info))
        .route("/api/v1/streams", get(list_streams))
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
