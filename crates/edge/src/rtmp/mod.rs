//! RTMP over TCP (and RTMPS, over TLS): the accept loop and one [`connection`] task per peer, which drives
//! an `onair_rtmp::ServerSession` and connects it to the hub.

mod connection;
mod names;

use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::{Proto, Tracked};
use crate::Edge;

/// Accepts RTMP connections until `shutdown` fires; with `tls` (RTMPS), each one's TLS
/// handshake runs in its own task first.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    edge: Edge,
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
                tracing::warn!(%error, proto = proto(&tls), "rtmp accept failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let permit = match edge.limiter.try_acquire(peer.ip()) {
            Ok(permit) => permit,
            Err(reason) => {
                edge.metrics
                    .connection_refused(Proto::rtmp(proto(&tls)), reason);
                tracing::warn!(%peer, proto = proto(&tls), %reason, "connection refused");
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let open = Tracked::connection(&edge.metrics, Proto::rtmp(proto(&tls)));
        let edge = edge.clone();
        let shutdown = shutdown.clone();
        match &tls {
            None => {
                tracker.spawn(async move {
                    let (reader, writer) = socket.into_split();
                    let writer = crate::send::SendHalf::new(writer);
                    connection::run(reader, writer, peer, "rtmp", edge, shutdown).await;
                    drop((permit, open));
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tracker.spawn(async move {
                    let timeout = edge.settings().tls.handshake_timeout();
                    match crate::tls::accept(&acceptor, socket, timeout, &shutdown).await {
                        Ok(stream) => {
                            let (reader, writer) = tokio::io::split(stream);
                            connection::run(reader, writer, peer, "rtmps", edge, shutdown).await;
                        }
                        Err(error) => {
                            tracing::debug!(%peer, proto = "rtmps", %error, "TLS handshake failed");
                        }
                    }
                    drop((permit, open));
                });
            }
        }
    }
}

fn proto(tls: &Option<TlsAcceptor>) -> &'static str {
    if tls.is_some() {
        "rtmps"
    } else {
        "rtmp"
    }
}
