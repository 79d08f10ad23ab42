//! A `TcpListener` that enforces the connection limits at accept, and the
//! stream type it yields, which fails writes a peer stops reading.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use std::future::Future;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

use crate::limits::{ConnectionLimiter, ConnectionPermit};
use crate::metrics::{Metrics, Proto, Tracked};
use crate::Edge;

pub struct LimitedListener {
    listener: TcpListener,
    limiter: Arc<ConnectionLimiter>,
    metrics: Arc<Metrics>,
    /// What its connections count as in metrics.
    proto: Proto,
    write_timeout: Duration,
}

impl LimitedListener {
    /// `write_timeout`: how long a write may wait for a peer that reads nothing
    /// before the connection is failed (a stalled HTTP-FLV viewer, say).
    pub fn new(listener: TcpListener, edge: &Edge, proto: Proto, write_timeout: Duration) -> Self {
        Self {
            listener,
            limiter: Arc::clone(&edge.limiter),
            metrics: Arc::clone(&edge.metrics),
            proto,
            write_timeout,
        }
    }
}

impl axum::serve::Listener for LimitedListener {
    type Io = LimitedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let mut backoff = Duration::from_millis(5);
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "http accept failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            match self.limiter.try_acquire(peer.ip()) {
                Ok(permit) => {
                    let _ = stream.set_nodelay(true);
                    return (
                        LimitedStream {
                            stream,
                            _permit: permit,
                            _open: Tracked::connection(&self.metrics, self.proto),
                            write_timeout: self.write_timeout,
                            write_stalled: None,
                        },
                        peer,
                    );
                }
                Err(reason) => {
                    self.metrics.connection_refused(self.proto, reason);
                    tracing::warn!(%peer, proto = self.proto.as_str(), %reason, "connection refused");
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// A TCP stream that holds its connection permit until it is dropped and fails
/// writes that stay blocked longer than its write timeout.
pub struct LimitedStream {
    stream: TcpStream,
    _permit: ConnectionPermit,
    _open: Tracked,
    write_timeout: Duration,
    write_stalled: Option<Pin<Box<Sleep>>>,
}

/// What a plain connection taken apart must keep for as long as it lives: its place
/// under the connection limits and in the open-connection count.
pub struct ConnectionHold {
    _permit: ConnectionPermit,
    _open: Tracked,
}

impl LimitedStream {
    /// The socket's own read and write halves (no lock between them), and the hold.
    /// The write timeout is left behind: whoever writes keeps its own.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf, ConnectionHold) {
        let (read, write) = self.stream.into_split();
        let hold = ConnectionHold {
            _permit: self._permit,
            _open: self._open,
        };
        (read, write, hold)
    }

    fn check_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.write_stalled = None;
            return poll;
        }
        let timeout = self.write_timeout;
        let stalled = self
            .write_stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "peer accepted no data within the write timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = crate::send::poll_send_vectored(&self.stream, cx, &[io::IoSlice::new(buf)]);
        self.check_write(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = crate::send::poll_send_vectored(&self.stream, cx, bufs);
        self.check_write(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
