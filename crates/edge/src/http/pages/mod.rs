//! The web pages the server serves itself: the live stream list at `/`, the watch
//! page at `/watch/{app}/{name}` and the admin dashboard at `/admin`, with their
//! scripts, styles and vendored player libraries embedded (docs/pages.md).
//!
//! The pages are static HTML; everything live comes from the same public endpoints
//! any platform would use (`/api/v1/live`, the room WebSocket, HTTP-FLV, HLS, and the
//! admin API with the token the operator types in). Nothing about a user or a stream
//! is rendered on the server, so nothing here can inject markup.

mod assets;
mod headers;

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use onair_media::StreamPath;

use crate::{Edge, EdgeConfig};

/// The page routes, or none when `pages.enabled` is off.
pub(super) fn routes(edge: &Edge) -> Router<Edge> {
    if !edge.settings().pages.enabled {
        return Router::new();
    }
    Router::new()
        .route("/", get(index))
        .route("/watch/{app}/{name}", get(watch))
        // Every other shape under /watch gets the HTML 404 too.
        .route("/watch", get(not_found))
        .route("/watch/", get(not_found))
        .route("/watch/{app}", get(not_found))
        .route("/watch/{app}/{name}/{*rest}", get(not_found))
        .route("/admin", get(admin))
        .route("/assets/{*path}", get(asset))
        .layer(axum::middleware::from_fn_with_state(
            edge.clone(),
            headers::add,
        ))
}

async fn index(State(config): State<Arc<EdgeConfig>>) -> Response {
    if !config.settings.pages.public_stream_list {
        return not_found_page();
    }
    page("index.html", StatusCode::OK)
}

async fn watch(path: Result<Path<(String, String)>, PathRejection>) -> Response {
    // Any valid path gets the page, live or not: it waits for the stream.
    match path.map(|Path((app, name))| StreamPath::new(&app, &name)) {
        Ok(Ok(_)) => page("watch.html", StatusCode::OK),
        _ => not_found_page(),
    }
}

async fn admin() -> Response {
    page("admin.html", StatusCode::OK)
}

async fn asset(path: Result<Path<String>, PathRejection>, headers: HeaderMap) -> Response {
    match path {
        Ok(Path(path)) => assets::serve(&path, &headers),
        Err(_) => not_found_page(),
    }
}

async fn not_found() -> Response {
    not_found_page()
}

/// The HTML 404 page.
pub(super) fn not_found_page() -> Response {
    page("404.html", StatusCode::NOT_FOUND)
}

fn page(name: &str, status: StatusCode) -> Response {
    let Some(html) = assets::template(name) else {
        // Only a broken build lacks a template.
        tracing::error!(page = name, "page template missing from the build");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        html,
    )
        .into_response()
}
