//! What WebSocket and SSE room connections share before they start: which room, who
//! is asking (token from `?token=` or `Authorization: Bearer`), where to resume from,
//! whether the Origin may connect, and the playback signature when the app needs one.

use std::net::SocketAddr;

use axum::http::{header, HeaderMap};
use onair_media::StreamPath;
use onair_rooms::{Identity, Seq};
use serde::Deserialize;

use crate::auth::TokenError;
use crate::signing::SignError;
use onair_control::live::Live;

#[derive(Debug, Default, Deserialize)]
pub struct RoomQuery {
    pub token: Option<String>,
    pub since: Option<String>,
    /// Signed playback (`?expires=…&sig=…`), required when the app's playback is signed.
    pub expires: Option<String>,
    pub sig: Option<String>,
}

/// Refuses a room of an app with signed playback unless the query carries a valid
/// signature for the room's stream.
pub fn check_signature(live: &Live, path: &StreamPath, query: &RoomQuery) -> Result<(), SignError> {
    live.get().playback.authorize_values(
        path,
        query.expires.as_deref(),
        query.sig.as_deref(),
        crate::signing::unix_now(),
    )
}

/// The identity a request carries: anonymous without a token, an error for a bad one.
pub fn identity(
    live: &Live,
    query: &RoomQuery,
    headers: &HeaderMap,
) -> Result<Identity, TokenError> {
    let token = query
        .token
        .as_deref()
        .or_else(|| crate::auth::bearer(headers));
    match token {
        None | Some("") => Ok(Identity::Anonymous),
        Some(token) => live.get().tokens.verify(token).map(Identity::User),
    }
}

/// `?since=SEQ`, else `Last-Event-ID` (SSE reconnects send it by themselves).
pub fn resume_from(query: &RoomQuery, headers: &HeaderMap) -> Option<Seq> {
    let text = query
        .since
        .as_deref()
        .or_else(|| headers.get("last-event-id").and_then(|v| v.to_str().ok()))?;
    Seq::parse(text)
}

pub fn room_path(app: &str, name: &str) -> Option<StreamPath> {
    StreamPath::new(app, name).ok()
}

/// Whether a browser page from the request's Origin may connect. Non-browser clients
/// send no Origin and are allowed; the Origin is checked against the allowlist, or
/// with an empty list against the Host header (same origin).
pub fn origin_allowed(allowed: &[String], headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    if !allowed.is_empty() {
        return false;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// The span a room connection's log lines go into; `room`, `user_id` and `conn_id`
/// are recorded as they become known. A child of the request's span (request id, trace).
pub fn connection_span(proto: &'static str, peer: Option<SocketAddr>) -> tracing::Span {
    tracing::info_span!(
        "conn",
        conn_id = tracing::field::Empty,
        peer = peer.map(tracing::field::display),
        proto,
        room = tracing::field::Empty,
        user_id = tracing::field::Empty,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(origin) = origin {
            map.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        map
    }

    #[test]
    fn origin_rules() {
        let none: Vec<String> = vec![];
        assert!(origin_allowed(&none, &headers(None, "a:8080")));
        assert!(origin_allowed(
            &none,
            &headers(Some("http://a:8080"), "a:8080")
        ));
        assert!(!origin_allowed(
            &none,
            &headers(Some("http://evil"), "a:8080")
        ));
        let list = vec!["https://app.example".to_owned()];
        assert!(origin_allowed(
            &list,
            &headers(Some("https://app.example"), "a")
        ));
        assert!(!origin_allowed(&list, &headers(Some("http://a"), "a")));
        assert!(origin_allowed(
            &["*".to_owned()],
            &headers(Some("http://x"), "a")
        ));
    }
}
