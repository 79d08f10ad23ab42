//! The HTTP accept loop. Each connection's first request head is read here: a
//! `GET /{app}/{name}.flv` is served directly on the socket (an endless response needs
//! none of hyper's per-connection buffers, which would triple a viewer's memory);
//! everything else, with the bytes already read put back, goes to hyper and the router.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::serve::Listener;
use axum::Router;
use bytes::{Buf, Bytes, BytesMut};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::listener::LimitedListener;
use super::RequestContext;
use crate::trace_context::TRACEPARENT;
use crate::Edge;

/// Largest first request head read before handing over; hyper's own limit is similar.
const MAX_HEAD: usize = 16 * 1024;

/// What the per-connection code needs of a stream: plain TCP or TLS over it.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// Accepts HTTP connections until `shutdown` fires; with `tls`, each one's TLS
/// handshake runs in its own task first.
pub(crate) async fn serve(
    mut listener: LimitedListener,
    router: Router,
    edge: Edge,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    tls: Option<TlsAcceptor>,
) {
    let graceful = GracefulShutdown::new();
    let handshake_timeout = edge.settings().tls.handshake_timeout();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let connection = HttpConnection {
            router: router.clone(),
            edge: edge.clone(),
            watcher: graceful.watcher(),
            peer,
        };
        // Monomorphised per stream type, so plain connections pay nothing for TLS.
        match &tls {
            None => {
                tracker.spawn(connection.serve(stream));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let shutdown = shutdown.clone();
                tracker.spawn(async move {
                    let stream =
                        crate::tls::accept(&acceptor, stream, handshake_timeout, &shutdown);
                    match stream.await {
                        Ok(stream) => connection.serve(stream).await,
                        Err(error) => {
                            tracing::debug!(%peer, proto = "https", %error, "TLS handshake failed");
                        }
                    }
                });
            }
        }
    }
    let drain = Duration::from_millis(edge.settings().shutdown_drain.as_millis() as u64);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(?drain, "HTTP connections still open after the drain time");
    }
}

/// One accepted HTTP connection, before its first request is read.
struct HttpConnection {
    router: Router,
    edge: Edge,
    watcher: Watcher,
    peer: SocketAddr,
}

impl HttpConnection {
    /// Reads the first request head: an HTTP-FLV play is served directly on the
    /// stream, anything else goes to hyper with the head put back.
    async fn serve<S: Io>(self, stream: S) {
        let Self {
            router,
            edge,
            watcher,
            peer,
        } = self;
        let head_timeout = Duration::from_millis(edge.settings().http.request_head_timeout_ms);
        let (head, stream) = match read_head(stream, head_timeout).await {
            Ok(pair) => pair,
            Err(error) => {
                tracing::debug!(%peer, proto = "http", %error, "no request head");
                return;
            }
        };
        if let Some(request) = flv_target(&head) {
            // The player holds its connection for as long as it watches: keep nothing
            // of the head reading with it.
            drop((head, router, watcher));
            if let Err(wait) = super::throttle::check(&edge.live, &edge.metrics, peer) {
                refuse_too_many(stream, wait, &request.context.id).await;
                return;
            }
            super::flv::serve_direct(stream, &request, peer, edge).await;
            return;
        }
        // Boxed: hyper's connection state is large, and an HTTP-FLV viewer's task
        // (the other branch) should not carry room for it.
        Box::pin(serve_hyper(
            stream,
            head,
            router,
            watcher,
            peer,
            head_timeout,
        ))
        .await;
    }
}

/// Serves the connection with hyper, the head already read put back in front.
async fn serve_hyper<S: Io>(
    stream: S,
    head: Bytes,
    router: Router,
    watcher: Watcher,
    peer: SocketAddr,
    head_timeout: Duration,
) {
    let io = TokioIo::new(Rewind::new(head, stream));
    // The peer address rides along for the request rate limit and the logs.
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(request)
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Without a timer hyper has no head timeout: a kept-alive connection that
    // stalls in (or never starts) its next request head would be held forever.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(head_timeout);
    let connection = builder.serve_connection_with_upgrades(io, service);
    if let Err(error) = watcher.watch(connection.into_owned()).await {
        tracing::debug!(%peer, proto = "http", %error, "connection ended with an error");
    }
}

/// Answers a first request over the rate limit with 429 and closes.
async fn refuse_too_many<S: Io>(mut stream: S, wait: Duration, request_id: &str) {
    let body =
        r#"{"error":{"code":"rate_limited","message":"too many requests from this address"}}"#;
    let head = format!(
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n\
         X-Request-Id: {request_id}\r\n\
         Retry-After: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        super::throttle::retry_after_seconds(wait),
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(head.as_bytes())).await;
    let _ = stream.shutdown().await;
}

/// Reads until the end of the first request head (or what is there when it is not
/// HTTP/1: hyper then reports the error in its own way).
async fn read_head<S: Io>(mut stream: S, within: Duration) -> io::Result<(Bytes, S)> {
    let mut head = BytesMut::with_capacity(1024);
    let read = async {
        loop {
            if head.windows(4).any(|w| w == b"\r\n\r\n") || head.len() >= MAX_HEAD {
                return Ok(());
            }
            if stream.read_buf(&mut head).await? == 0 {
                return Ok(());
            }
        }
    };
    match tokio::time::timeout(within, read).await {
        Ok(result) => result.map(|()| (head.freeze(), stream)),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "request head timed out",
        )),
    }
}

/// The request target (query included) of a first request that is
/// `GET /{app}/{name}.flv[?query]`, if it is one (and carries no body).
fn flv_target(head: &[u8]) -> Option<FlvRequest> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    if !request.parse(head).ok()?.is_complete() || request.method? != "GET" {
        return None;
    }
    let target = request.path?;
    let path = target.split('?').next()?;
    let has_body = request.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("content-length")
            || h.name.eq_ignore_ascii_case("transfer-encoding")
    });
    let flv = path.ends_with(".flv") && path.matches('/').count() == 2 && !has_body;
    if !flv {
        return None;
    }
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    };
    Some(FlvRequest {
        target: target.to_owned(),
        origin: header("origin").map(str::to_owned),
        context: RequestContext::from_values(header("x-request-id"), header(TRACEPARENT)),
    })
}

/// What the direct HTTP-FLV path needs from the request head.
#[derive(Debug)]
pub(super) struct FlvRequest {
    /// Path and query.
    pub target: String,
    /// The `Origin` header, for CORS.
    pub origin: Option<String>,
    /// The request id and trace, as the router's requests have them.
    pub context: RequestContext,
}

/// A stream that first yields bytes already read from it.
pub(super) struct Rewind<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Rewind<S> {
    /// `inner`, with `prefix` read first.
    pub(super) fn new(prefix: Bytes, inner: S) -> Self {
        Self { prefix, inner }
    }

    /// What was not read back yet, and the stream.
    pub(super) fn into_parts(self) -> (Bytes, S) {
        (self.prefix, self.inner)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            if self.prefix.is_empty() {
                // Let go of the buffer the prefix was cut from.
                self.prefix = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: Io> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_flv_requests_only() {
        let get = b"GET /live/demo.flv?x=1 HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(
            flv_target(get).map(|r| r.target).as_deref(),
            Some("/live/demo.flv?x=1")
        );
        assert!(flv_target(b"GET /live/demo.flv HTTP/1.1\r\nHost: a\r\n").is_none());
        assert!(flv_target(b"POST /live/demo.flv HTTP/1.1\r\n\r\n").is_none());
        assert!(flv_target(b"GET /api/v1/streams HTTP/1.1\r\n\r\n").is_none());
        assert!(flv_target(b"GET /a/b/c.flv HTTP/1.1\r\n\r\n").is_none());
        assert!(flv_target(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").is_none());
    }
}
