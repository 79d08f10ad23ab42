//! Security headers on every page and asset: a Content-Security-Policy that allows
//! only this origin's files (no inline script or style anywhere in the pages), blob:
//! media and workers for the MSE players, the room WebSocket of this host, and the
//! configured `frame-ancestors`; plus nosniff and no referrer (page URLs may carry a
//! chat token or a playback signature).

use std::sync::Arc;

use crate::EdgeConfig;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

pub(super) async fn add(
    State(config): State<Arc<EdgeConfig>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request_host(request.headers(), request.uri());
    let mut response = next.run(request).await;
    let csp = policy(host.as_deref(), &config.settings.pages.frame_ancestors);
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// The Content-Security-Policy for a page served to `host` (`None`: no WebSocket
/// source beyond `'self'`).
pub(super) fn policy(host: Option<&str>, frame_ancestors: &[String]) -> String {
    let sockets = host
        .map(|h| format!(" ws://{h} wss://{h}"))
        .unwrap_or_default();
    let ancestors = if frame_ancestors.is_empty() {
        "'none'".to_owned()
    } else {
        frame_ancestors.join(" ")
    };
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
         media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'{sockets}; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}"
    )
}

/// The request's host (`name[:port]`), when it is one that can go into a header as is.
fn request_host(headers: &HeaderMap, uri: &axum::http::Uri) -> Option<String> {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))?;
    let plain = !host.is_empty()
        && host.len() <= 255
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    plain.then(|| host.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_host_header_stays_out_of_the_policy() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("a; script-src *"));
        assert_eq!(request_host(&headers, &"/".parse().unwrap()), None);
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        let host = request_host(&headers, &"/".parse().unwrap());
        assert_eq!(host.as_deref(), Some("127.0.0.1:8080"));
        let csp = policy(host.as_deref(), &["'self'".into()]);
        assert!(csp.contains("connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080;"));
        assert!(csp.ends_with("frame-ancestors 'self'"));
        assert!(!csp.contains("unsafe"));
    }
}
