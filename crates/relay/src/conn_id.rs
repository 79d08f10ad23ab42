//! One id space for every connection of the process, whatever its protocol (RTMP,
//! HTTP-FLV, WebSocket, SSE), so a `conn_id` in the logs names one connection.

use std::sync::atomic::{AtomicU64, Ordering};

static NEXT: AtomicU64 = AtomicU64::new(1);

/// A new connection id, never handed out before in this process.
pub fn next_conn_id() -> u64 {
    NEXT.fetch_add(1, Ordering::Relaxed)
}
