//! The HTTP side: one axum router for media over HTTP, the API and health checks,
//! served on a listener that applies the connection limits.

mod admin;
mod aggregated_events_api;
mod api_doc;
mod cluster_api;
mod error;
mod extract;
mod flv;
mod health;
mod hls;
mod keys_api;
mod listener;
mod live_api;
mod moderation_api;
mod pages;
mod recordings_api;
mod request_context;
mod room_access;
mod rooms_api;
mod serve;
mod server_api;
mod sse;
mod streams_api;
mod text_field;
mod throttle;
mod tokens_api;
mod whole_number;
mod ws;
mod ws_read_side;
mod ws_split;
mod ws_upgrade;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::routing::{delete, get, post, put};
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::Edge;

pub(crate) use error::ApiError;
pub(crate) use listener::LimitedListener;
pub(crate) use request_context::RequestContext;
pub(crate) use serve::serve;
pub use server_api::{ConfigSummary, LimitsSummary, PublishAuthMode};

pub(crate) fn router(edge: Edge) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/api/v1/openapi.json", get(api_doc::openapi_json))
        .route("/api/v1/server", get(server_api::info))
        .route("/api/v1/streams", get(streams_api::list))
        .route("/api/v1/live", get(live_api::list))
        .route("/api/v1/live/{app}/{name}", get(live_api::show))
        .route(
            "/api/v1/streams/{app}/{name}",
            get(streams_api::get)
                .patch(streams_api::update)
                .delete(streams_api::kick),
        )
        .route("/api/v1/cluster", get(cluster_api::show))
        .route("/api/v1/tokens", post(tokens_api::create))
        .route("/api/v1/keys", post(keys_api::create).get(keys_api::list))
        .route("/api/v1/keys/{id}", delete(keys_api::revoke))
        .route("/api/v1/recordings", get(recordings_api::list))
        .route(
            "/api/v1/recordings/{id}",
            get(recordings_api::download).delete(recordings_api::delete),
        )
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
        .route(
            "/api/v1/rooms/{app}/{name}/mutes",
            post(moderation_api::mute),
        )
        .route(
            "/api/v1/rooms/{app}/{name}/mutes/{user_id}",
            delete(moderation_api::unmute),
        )
        .route("/api/v1/rooms/{app}/{name}/bans", post(moderation_api::ban))
        .route(
            "/api/v1/rooms/{app}/{name}/bans/{user_id}",
            delete(moderation_api::unban),
        )
        .route(
            "/api/v1/rooms/{app}/{name}/slow-mode",
            put(moderation_api::slow_mode),
        )
        .route(
            "/api/v1/rooms/{app}/{name}/aggregated-events",
            put(aggregated_events_api::set),
        )
        .route("/{app}/{file}", get(flv::play))
        .route("/{app}/{name}/{file}", get(hls::serve))
        .merge(metrics_route(&edge))
        .merge(pages::routes(&edge))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(edge.settings().http.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            edge.clone(),
            throttle::limit_requests,
        ))
        .layer(cors(edge.clone()))
        .layer(axum::middleware::from_fn_with_state(
            edge.clone(),
            crate::metrics::track_requests,
        ))
        .layer(axum::middleware::from_fn(request_context::log_requests))
        .with_state(edge)
}

/// `/metrics` on this listener, unless it is turned off or has a listener of its own.
fn metrics_route(edge: &Edge) -> Router<Edge> {
    let settings = &edge.settings().metrics;
    if !settings.enabled || settings.listen.is_some() {
        return Router::new();
    }
    Router::new().route("/metrics", get(crate::metrics::serve_metrics))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// The `Access-Control-Allow-Origin` value for a request from `origin`, for responses
/// written without the router's [`CorsLayer`] (the direct HTTP-FLV path).
pub(crate) fn cors_grant<'a>(allowed: &'a [String], origin: Option<&'a str>) -> Option<&'a str> {
    if allowed.iter().any(|a| a == "*") {
        return Some("*");
    }
    let origin = origin?;
    allowed
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
        .then_some(origin)
}

/// CORS for the API, SSE and media over HTTP: grants only the allowed origins
/// (`auth.allowed_origins`, read per request so a reload applies; `*` only when
/// configured); with none configured, no cross-origin grant at all.
fn cors(edge: Edge) -> CorsLayer {
    let origins = AllowOrigin::predicate(move |origin: &HeaderValue, _| {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let live = edge.live.get();
        cors_grant(&live.allowed_origins, Some(origin)).is_some()
    });
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([header::RETRY_AFTER])
        .max_age(Duration::from_secs(600))
}
