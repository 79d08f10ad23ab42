//! One HTTP/1.1 keep-alive connection of a viewer (hyper's client connection), opened
//! again when the server closed it.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Largest response body read (a segment of a few seconds of 720p is far below).
const MAX_BODY: usize = 16 << 20;

pub(super) struct HttpConn {
    addr: SocketAddr,
    sender: Option<SendRequest<Empty<Bytes>>>,
}

pub(super) struct Response {
    pub(super) status: u16,
    pub(super) body: Bytes,
    /// When the whole body had arrived.
    pub(super) done: Instant,
}

impl HttpConn {
    pub(super) fn new(addr: SocketAddr) -> Self {
        Self { addr, sender: None }
    }

    /// `GET path_and_query` (the caller bounds it in time). Errors are short strings
    /// for the report, such as `connect: Connection refused`.
    pub(super) async fn get(&mut self, path_and_query: &str) -> Result<Response, String> {
        let mut sender = match self.sender.take() {
            Some(sender) if !sender.is_closed() => sender,
            _ => self.connect().await?,
        };
        if sender.ready().await.is_err() {
            sender = self.connect().await?;
        }
        let request = hyper::Request::get(path_and_query)
            .header(hyper::header::HOST, self.addr.to_string())
            .header(hyper::header::USER_AGENT, "onair-bench-hls")
            .body(Empty::new())
            .map_err(|e| format!("request: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        let done = Instant::now();
        self.sender = Some(sender);
        Ok(Response { status, body, done })
    }

    async fn connect(&mut self) -> Result<SendRequest<Empty<Bytes>>, String> {
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {}", e.kind()))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        // Ends when the sender is dropped or the server closes the connection.
        tokio::spawn(connection);
        Ok(sender)
    }
}
