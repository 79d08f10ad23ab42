//! RTMP over TCP: the accept loop and one [`connection`] task per peer, which drives
//! an `onair_rtmp::ServerSession` and connects it to the hub.

mod connection;
mod names;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::Shared;

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// A process-wide id for log lines, shared by every protocol.
pub(crate) fn next_conn_id() -> u64 {
    NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed)
}

/// Accepts RTMP connections until `shutdown` fires.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (socket, peer) = match accepted {
            Ok(pair) => {
                backoff = Duration::from_millis(5);
                pair
            }
            Err(error) => {
                // Usually EMFILE: wait for connections to close rather than spin.
                tracing::warn!(%error, "rtmp accept failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let permit = match shared.limiter.try_acquire(peer.ip()) {
            Ok(permit) => permit,
            Err(reason) => {
                tracing::warn!(%peer, proto = "rtmp", %reason, "connection refused");
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            connection::run(socket, peer, shared, shutdown).await;
            drop(permit);
        });
    }
}
