//! Per-IP request rate limiting as middleware: 429 with `Retry-After` when an address
//! has used up its bucket (see [`crate::request_limit`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::metrics::Metrics;
use onair_control::live::Live;

pub(super) async fn limit_requests(
    State(live): State<Arc<Live>>,
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    if let Some(peer) = peer {
        if let Err(wait) = check(&live, &metrics, peer) {
            return too_many_requests(wait);
        }
    }
    next.run(request).await
}

/// Takes one request's token for `peer`, or says how long to wait.
pub(super) fn check(live: &Live, metrics: &Metrics, peer: SocketAddr) -> Result<(), Duration> {
    let live = live.get();
    let Some(limiter) = &live.requests else {
        return Ok(());
    };
    let checked = limiter.check(peer.ip(), Instant::now());
    if checked.is_err() {
        metrics.request_rate_limited();
    }
    checked
}

/// Whole seconds to wait, at least one, as `Retry-After` wants them.
pub(super) fn retry_after_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

pub(super) fn too_many_requests(wait: Duration) -> Response {
    let seconds = retry_after_seconds(wait);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests from this address; retry in {seconds} s"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1500)), 2);
    }
}
