//! The WebSocket opening handshake for room connections (RFC 6455 4.2), done here rather
//! than by axum's `WebSocketUpgrade` because a room connection needs the socket itself:
//! its room's delivery group writes each event's pre-framed bytes
//! ([`Envelope::ws_frame`](onair_rooms::Envelope::ws_frame)) straight to the write half,
//! which axum's wrapper does not allow. The checks and the `101` answer are axum's; a
//! refused upgrade gets the usual JSON error.

use std::future::Future;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use axum::response::Response;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_util::task::TaskTracker;

use super::ApiError;

/// The upgraded HTTP/1.1 connection a WebSocket runs on.
pub(super) type WsIo = TokioIo<Upgraded>;

/// A valid HTTP/1.1 WebSocket upgrade request, not yet answered.
pub(super) struct WsUpgrade {
    accept: HeaderValue,
    on_upgrade: OnUpgrade,
}

impl<S: Send + Sync> FromRequestParts<S> for WsUpgrade {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        // HTTP/2 WebSockets (extended CONNECT) are not enabled on the listener.
        if parts.version > Version::HTTP_11 || parts.method != Method::GET {
            return Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "a WebSocket upgrade is an HTTP/1.1 GET",
            ));
        }
        if !header_contains(&parts.headers, header::CONNECTION, "upgrade") {
            return Err(bad_upgrade(
                "the Connection header does not include upgrade",
            ));
        }
        if !header_eq(&parts.headers, header::UPGRADE, "websocket") {
            return Err(bad_upgrade("the Upgrade header is not websocket"));
        }
        let key = parts
            .headers
            .get(header::SEC_WEBSOCKET_KEY)
            .ok_or_else(|| bad_upgrade("the Sec-WebSocket-Key header is missing"))?;
        if !header_eq(&parts.headers, header::SEC_WEBSOCKET_VERSION, "13") {
            return Err(bad_upgrade("the Sec-WebSocket-Version header is not 13"));
        }
        let accept = HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
            .map_err(|_| bad_upgrade("the Sec-WebSocket-Key header is not valid"))?;
        let on_upgrade = parts.extensions.remove::<OnUpgrade>().ok_or_else(|| {
            ApiError::new(
                StatusCode::UPGRADE_REQUIRED,
                "not_upgradable",
                "this connection cannot be upgraded",
            )
        })?;
        Ok(Self { accept, on_upgrade })
    }
}

impl WsUpgrade {
    /// Answers `101 Switching Protocols` and, once the connection is handed over, runs
    /// `callback` on it in a task of its own, tracked by `tasks` so that shutdown waits
    /// for it (hyper's connection, which shutdown also waits for, ends at the upgrade).
    pub(super) fn on_upgrade<F, Fut>(self, tasks: &TaskTracker, callback: F) -> Response
    where
        F: FnOnce(WsIo) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        tasks.spawn(async move {
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            callback(TokioIo::new(upgraded)).await;
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, self.accept);
        response
    }
}

fn bad_upgrade(message: &str) -> ApiError {
    ApiError::bad_request("bad_websocket_upgrade", message)
}

fn header_eq(headers: &HeaderMap, key: HeaderName, value: &str) -> bool {
    headers
        .get(&key)
        .is_some_and(|h| h.as_bytes().eq_ignore_ascii_case(value.as_bytes()))
}

fn header_contains(headers: &HeaderMap, key: HeaderName, value: &str) -> bool {
    headers
        .get(&key)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.to_ascii_lowercase().contains(value))
}
