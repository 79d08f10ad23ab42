//! HTTP: the request duration histogram (middleware on the router, labelled with the
//! matched route template), the `/metrics` handler and the router of the optional
//! metrics-only listener.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

use crate::http::ApiError;
use crate::Edge;

/// Upper bounds of the duration buckets, in seconds: 0.5 ms to 10 s.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// What the OpenMetrics text encoder writes.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RequestLabels {
    method: &'static str,
    /// The route template (`/api/v1/streams/{app}/{name}`), or `other` when no route matched.
    route: String,
    status: u16,
}

#[cfg(test)]
impl RequestLabels {
    pub(super) fn for_test() -> Self {
        Self {
            method: "GET",
            route: "/healthz".to_owned(),
            status: 200,
        }
    }
}

pub(super) type DurationFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

/// Time from a request's arrival to its response head, by method, route and status.
#[derive(Debug)]
pub(super) struct RequestDurations(DurationFamily);

impl RequestDurations {
    pub(super) fn new() -> Self {
        Self(Family::new_with_constructor(|| Histogram::new(BUCKETS)))
    }

    pub(super) fn family(&self) -> DurationFamily {
        self.0.clone()
    }
}

/// Middleware: times each request up to its response head (a WebSocket upgrade, an SSE
/// or FLV body is timed until it starts, not for its life).
pub(crate) async fn track_requests(
    State(edge): State<Edge>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("other", MatchedPath::as_str)
        .to_owned();
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = RequestLabels {
        method,
        route,
        status: response.status().as_u16(),
    };
    edge.metrics
        .http
        .0
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Methods from a fixed set, so a client inventing methods cannot add series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `GET /metrics`.
pub(crate) async fn serve_metrics(State(edge): State<Edge>) -> Response {
    match super::render(&edge) {
        Ok(body) => {
            let mut response = body.into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            response
        }
        Err(_) => ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "metrics could not be encoded",
        )
        .into_response(),
    }
}

/// The router of the metrics-only listener (`metrics.listen`): `/metrics` and nothing else.
pub(crate) fn router(edge: Edge) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .fallback(|| async { ApiError::not_found("no such route") })
        .with_state(edge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_come_from_a_fixed_set() {
        assert_eq!(method_label(&Method::GET), "GET");
        let invented = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&invented), "other");
    }
}
