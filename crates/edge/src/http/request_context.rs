//! Who a request is, for the logs: its request id (the client's `X-Request-Id` when
//! sane, else a new one, echoed in the response) and its trace (`traceparent` when
//! valid, else a new one). A middleware wraps each request in an `http_request` span
//! and logs one line when the response head is ready.
//!
//! Deliberately absent: the query's secret values. A request line shows the path and
//! a query whose `key`, `sig`, `token`, … values are replaced.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::trace_context::{TraceContext, TRACEPARENT};

pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest `X-Request-Id` taken from a client; a longer one is replaced.
const MAX_REQUEST_ID: usize = 128;
/// Characters of a (redacted) query shown in a log line at most.
const MAX_LOGGED_QUERY: usize = 256;
/// Query parameter names whose values are never logged: any name containing one of these.
const SECRET_PARAM_PARTS: [&str; 6] = ["key", "sig", "token", "secret", "password", "auth"];

/// One request's id and trace; handlers find it in the request's extensions.
#[derive(Debug, Clone)]
pub(crate) struct RequestContext {
    pub id: String,
    pub trace: TraceContext,
}

impl RequestContext {
    /// From the request's headers (`X-Request-Id`, `traceparent`), or fresh.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        Self::from_values(
            headers.get(REQUEST_ID).and_then(|v| v.to_str().ok()),
            headers.get(TRACEPARENT).and_then(|v| v.to_str().ok()),
        )
    }

    pub(crate) fn from_values(request_id: Option<&str>, traceparent: Option<&str>) -> Self {
        Self {
            id: request_id
                .filter(|id| is_sane_request_id(id))
                .map_or_else(new_request_id, str::to_owned),
            trace: traceparent
                .and_then(TraceContext::parse)
                .unwrap_or_else(TraceContext::new_root),
        }
    }
}

/// 1 to 128 visible ASCII characters: safe to log and to echo in a header.
fn is_sane_request_id(id: &str) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

fn new_request_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `query` with the values of secret-looking parameters replaced by `<redacted>`,
/// cut to a loggable length.
pub(crate) fn redact_query(query: &str) -> String {
    let mut shown = String::with_capacity(query.len().min(MAX_LOGGED_QUERY));
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            shown.push('&');
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded: String = form_urlencoded::parse(name.as_bytes())
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
        shown.push_str(name);
        if pair.contains('=') {
            shown.push('=');
            if SECRET_PARAM_PARTS.iter().any(|part| decoded.contains(part)) {
                shown.push_str("<redacted>");
            } else {
                shown.push_str(value);
            }
        }
        if shown.len() > MAX_LOGGED_QUERY {
            break;
        }
    }
    if shown.len() > MAX_LOGGED_QUERY {
        let mut end = MAX_LOGGED_QUERY;
        while !shown.is_char_boundary(end) {
            end -= 1;
        }
        shown.truncate(end);
        shown.push('…');
    }
    shown
}

/// Middleware: gives the request its context and span, logs it once its response head
/// is ready (a WebSocket, SSE or FLV body goes on after that, in spans of its own),
/// and echoes the request id.
/// Put on a response whose error status is routine (a preload hint that did not come
/// true): it is logged at debug like a success, not at info like other errors.
#[derive(Debug, Clone, Copy)]
pub(super) struct QuietLog;

pub(super) async fn log_requests(mut request: Request, next: Next) -> Response {
    let context = RequestContext::from_headers(request.headers());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let span = tracing::info_span!(
        "http_request",
        request_id = %context.id,
        trace_id = %context.trace.trace_id(),
        method = %request.method(),
        route = route.as_deref().unwrap_or("other"),
        path = %request.uri().path(),
        query = request.uri().query().map(redact_query),
        peer = peer.map(tracing::field::display),
        status = tracing::field::Empty,
        duration_ms = tracing::field::Empty,
    );
    let id = HeaderValue::from_str(&context.id).ok();
    request.extensions_mut().insert(context);
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.record("status", status);
    span.record("duration_ms", duration_ms);
    let quiet = response.extensions().get::<QuietLog>().is_some();
    span.in_scope(|| {
        if status >= 400 && !quiet {
            tracing::info!(status, duration_ms, "request finished");
        } else {
            tracing::debug!(status, duration_ms, "request finished");
        }
    });
    if let Some(id) = id {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_a_sane_request_id_and_replaces_others() {
        let given = RequestContext::from_values(Some("abc-123_X.y"), None);
        assert_eq!(given.id, "abc-123_X.y");
        for bad in ["", "has space", "tab\there", &"x".repeat(129), "é"] {
            let replaced = RequestContext::from_values(Some(bad), None);
            assert_eq!(replaced.id.len(), 32, "{bad:?}");
            assert_ne!(replaced.id, bad);
        }
        let a = RequestContext::from_values(None, None);
        let b = RequestContext::from_values(None, None);
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn keeps_a_valid_traceparent_only() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let kept = RequestContext::from_values(None, Some(header));
        assert_eq!(kept.trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let fresh = RequestContext::from_values(None, Some("00-nonsense"));
        assert_ne!(fresh.trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn redacts_secret_values_only() {
        assert_eq!(
            redact_query("key=K1&uid=7&sig=S&expires=9&token=T&Access_Token=A&flag"),
            "key=<redacted>&uid=7&sig=<redacted>&expires=9&token=<redacted>&Access_Token=<redacted>&flag"
        );
        assert_eq!(redact_query("%6Bey=K1"), "%6Bey=<redacted>");
        let long = redact_query(&format!("a={}", "b".repeat(1000)));
        assert!(long.chars().count() <= MAX_LOGGED_QUERY + 1);
    }
}
