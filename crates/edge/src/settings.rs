//! The edge's settings: the listeners (`[rtmp]`, `[http]`, `[tls]`, `[metrics]`), the
//! pages, and the connection and request limits. Each section checks its own values.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use onair_media::SettingsError;
use serde::{Deserialize, Serialize};

fn fail(key: &'static str, reason: &str) -> Result<(), SettingsError> {
    Err(SettingsError {
        key,
        reason: reason.to_owned(),
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RtmpSettings {
    pub listen: SocketAddr,
    /// A connection that has not finished the handshake by then is closed.
    pub handshake_timeout_ms: u64,
    /// A connection (publisher or not yet playing) that sends nothing for this long is closed.
    pub idle_timeout_ms: u64,
    /// Largest Set Chunk Size a peer may ask for.
    pub max_chunk_size: u32,
    /// Largest RTMP message a peer may send (a keyframe of 4K video fits with room to spare).
    pub max_message_size: u32,
    /// Distinct chunk stream ids a peer may use at once.
    pub max_chunk_streams: usize,
    /// Nesting depth allowed in AMF0 commands and metadata.
    pub amf_max_depth: usize,
    /// Chunk size the server sends with.
    pub out_chunk_size: u32,
}

impl Default for RtmpSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 1935)),
            handshake_timeout_ms: 10_000,
            idle_timeout_ms: 30_000,
            max_chunk_size: 1 << 20,
            max_message_size: 8 << 20,
            max_chunk_streams: 64,
            amf_max_depth: 16,
            out_chunk_size: 4096,
        }
    }
}

impl RtmpSettings {
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    pub listen: SocketAddr,
    /// Largest WebSocket message (and frame) a room client may send.
    pub ws_max_message_bytes: usize,
    /// How often the server pings an open WebSocket.
    pub ws_ping_interval_ms: u64,
    /// A WebSocket client that sends nothing (not even a pong) for this long is closed.
    pub ws_idle_timeout_ms: u64,
    /// Events a room's fan-out ring holds; a connection further behind catches up from
    /// history, and skips (with a `gap` event) what history no longer holds.
    pub room_fanout_events: usize,
    /// Events written to one room connection in one batch.
    pub room_batch_events: usize,
    /// Least time between two batches to one room connection: events arriving
    /// meanwhile are written together. A quiet connection's next event leaves at once.
    pub room_flush_interval_ms: u64,
    /// Most batches a second written to one room's members together while the server
    /// is busy (`room_busy_percent`): a room whose members would get more at
    /// `room_flush_interval_ms` waits longer between batches (members / this). With
    /// time to spare, the budget rises, up to eight times this. 0: no bound.
    pub room_writes_per_second: u64,
    /// Share (percent) of its cores' time the server may use before the rooms' write
    /// budget comes back down to `room_writes_per_second`.
    pub room_busy_percent: u8,
    /// How often an idle SSE stream gets a keep-alive comment.
    pub sse_keepalive_ms: u64,
    /// Largest request body the API accepts.
    pub max_body_bytes: usize,
    /// A request head (the first on a connection, or the next one on a kept-alive
    /// connection, idle waits included) must arrive within this, or the connection
    /// is closed.
    pub request_head_timeout_ms: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            ws_max_message_bytes: 16 * 1024,
            ws_ping_interval_ms: 20_000,
            ws_idle_timeout_ms: 60_000,
            room_fanout_events: 1024,
            room_batch_events: 64,
            room_flush_interval_ms: 50,
            room_writes_per_second: 70_000,
            room_busy_percent: 50,
            sse_keepalive_ms: 15_000,
            max_body_bytes: 64 * 1024,
            request_head_timeout_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionLimits {
    /// Open connections across RTMP and HTTP; more are refused at accept.
    pub max_connections: usize,
    /// Open connections from one IP address.
    pub max_connections_per_ip: usize,
    /// HTTP requests one IP address may make per second on average (answered 429
    /// with `Retry-After` beyond it); 0 turns the limit off.
    pub requests_per_second_per_ip: f64,
    /// Requests one IP address may make in a burst.
    pub request_burst_per_ip: u32,
    /// Addresses whose request rate is tracked at once; more share one bucket.
    pub rate_limited_ips_max: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 20_000,
            max_connections_per_ip: 2_000,
            requests_per_second_per_ip: 50.0,
            request_burst_per_ip: 200,
            rate_limited_ips_max: 100_000,
        }
    }
}

/// TLS: on when both certificate paths are set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain, the server's certificate first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_path: Option<PathBuf>,
    /// PEM private key (PKCS#8, RSA or EC) of the first certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_path: Option<PathBuf>,
    /// With certificates set, the HTTP listener speaks only HTTPS/WSS.
    pub http: bool,
    /// With certificates set, an extra listener here speaks RTMPS (RTMP inside TLS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtmps_listen: Option<SocketAddr>,
    /// A TLS handshake not finished by then is dropped.
    pub handshake_timeout_ms: u64,
}

impl TlsSettings {
    /// Whether certificates are configured.
    pub fn enabled(&self) -> bool {
        self.cert_path.is_some() && self.key_path.is_some()
    }

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        let fail = |key, reason: &str| {
            Err(SettingsError {
                key,
                reason: reason.to_owned(),
            })
        };
        if self.cert_path.is_some() != self.key_path.is_some() {
            return fail(
                "tls.cert_path",
                "set both tls.cert_path and tls.key_path, or neither",
            );
        }
        if self.rtmps_listen.is_some() && !self.enabled() {
            return fail("tls.rtmps_listen", "needs tls.cert_path and tls.key_path");
        }
        if self.handshake_timeout_ms == 0 {
            return fail("tls.handshake_timeout_ms", "must be at least 1");
        }
        Ok(())
    }
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            cert_path: None,
            key_path: None,
            http: true,
            rtmps_listen: None,
            handshake_timeout_ms: 10_000,
        }
    }
}

/// Where `/metrics` is served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Serve `/metrics` at all.
    pub enabled: bool,
    /// A listener of its own for `/metrics` (plain HTTP); when set, the main HTTP
    /// listener does not serve it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: None,
        }
    }
}

/// The pages the server serves itself (docs/pages.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PagesSettings {
    /// Serve `/`, `/watch/{app}/{name}`, `/admin` and `/assets/...` at all.
    pub enabled: bool,
    /// Serve the public stream list: the page at `/` and `GET /api/v1/live`.
    pub public_stream_list: bool,
    /// Who may embed the pages in a frame: the CSP `frame-ancestors` sources,
    /// e.g. `["'self'", "https://platform.example"]`.
    pub frame_ancestors: Vec<String>,
}

impl Default for PagesSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            public_stream_list: true,
            frame_ancestors: vec!["'self'".to_owned()],
        }
    }
}

impl PagesSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        // Each source goes into a header as is: nothing that could end the directive.
        let bad = |source: &String| {
            source.is_empty()
                || source
                    .chars()
                    .any(|c| c == ';' || c == ',' || c.is_whitespace() || c.is_control())
        };
        if self.frame_ancestors.iter().any(bad) {
            return Err(SettingsError {
                key: "pages.frame_ancestors",
                reason: "each source must be non-empty, without spaces, `;` or `,`".to_owned(),
            });
        }
        Ok(())
    }
}

impl RtmpSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        if !(128..=0x7fff_ffff).contains(&self.out_chunk_size) {
            return fail("rtmp.out_chunk_size", "must be between 128 and 2147483647");
        }
        if self.max_chunk_size < 128 || self.max_chunk_size > 0x7fff_ffff {
            return fail("rtmp.max_chunk_size", "must be between 128 and 2147483647");
        }
        if self.max_message_size < 1024 || self.max_message_size > 0x00ff_ffff {
            return fail("rtmp.max_message_size", "must be between 1024 and 16777215");
        }
        if self.max_chunk_streams < 4 {
            return fail("rtmp.max_chunk_streams", "must be at least 4");
        }
        if self.amf_max_depth == 0 {
            return fail("rtmp.amf_max_depth", "must be at least 1");
        }
        Ok(())
    }
}

impl ConnectionLimits {
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.max_connections == 0 || self.max_connections_per_ip == 0 {
            return fail("limits", "connection limits must be at least 1");
        }
        let rate = self.requests_per_second_per_ip;
        if !rate.is_finite() || rate < 0.0 {
            return fail(
                "limits.requests_per_second_per_ip",
                "must be a number of at least 0",
            );
        }
        if self.rate_limited_ips_max == 0 {
            return fail("limits.rate_limited_ips_max", "must be at least 1");
        }
        Ok(())
    }
}

impl HttpSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.max_body_bytes < 1024 {
            return fail("http.max_body_bytes", "must be at least 1024");
        }
        if self.room_fanout_events < 16 || self.room_batch_events == 0 {
            return fail(
                "http.room_fanout_events",
                "must be at least 16 (and batches at least 1)",
            );
        }
        if self.ws_ping_interval_ms == 0 || self.sse_keepalive_ms == 0 {
            return fail(
                "http.ws_ping_interval_ms",
                "ping and keep-alive intervals must be at least 1 ms",
            );
        }
        if self.ws_max_message_bytes < 256 {
            return fail("http.ws_max_message_bytes", "must be at least 256");
        }
        if !(1..=100).contains(&self.room_busy_percent) {
            return fail("http.room_busy_percent", "must be 1 to 100");
        }
        Ok(())
    }
}

impl MetricsSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.listen.is_some() && !self.enabled {
            return fail("metrics.listen", "is set but metrics.enabled is false");
        }
        Ok(())
    }
}
