//! An RTMP connection for the publisher and the RTMP viewers: the relay's
//! [`RtmpClient`], read here rather than by the client so that every read can carry
//! the kernel's receive stamp (`rx_time`).

use onair_relay::client::{ClientError, RtmpClient, RtmpUrl};
use onair_rtmp::{ClientEvent, MediaKind};

/// [`RtmpClient`] with one reused read buffer of the caller's size and the time the
/// data of the last read reached the socket, once stamping is on.
pub(crate) struct RtmpConn {
    client: RtmpClient,
    buf: Vec<u8>,
    /// When the data of the last read reached the socket, once stamping is on.
    pub(crate) arrived: Option<tokio::time::Instant>,
}

impl RtmpConn {
    /// Connects, handshakes and sends `connect`; returns once the server accepted it.
    pub(crate) async fn connect(url: &RtmpUrl, read_buf: usize) -> Result<Self, ClientError> {
        let client = RtmpClient::connect_with(url, read_buf).await?;
        Ok(Self {
            client,
            buf: vec![0; read_buf],
            arrived: None,
        })
    }

    pub(crate) async fn publish(&mut self, name: &str) -> Result<(), ClientError> {
        self.client.publish(name).await
    }

    /// Has the kernel stamp the data this connection receives (see `rx_time`).
    pub(crate) fn stamp_arrivals(&self) -> std::io::Result<()> {
        crate::rx_time::enable(self.client.socket())
    }

    pub(crate) async fn play(&mut self, name: &str) -> Result<(), ClientError> {
        self.client.play(name).await
    }

    pub(crate) fn send_media(&mut self, kind: MediaKind, timestamp: u32, payload: &[u8]) {
        self.client.send_media(kind, timestamp, payload);
    }

    pub(crate) fn send_metadata(&mut self, payload: &[u8]) {
        self.client.send_metadata(payload);
    }

    /// Writes everything the session has queued. Cancel-safe.
    pub(crate) async fn flush(&mut self) -> Result<(), ClientError> {
        self.client.flush().await
    }

    /// One read, stamped, fed to the session. Cancel-safe; the caller flushes
    /// afterwards.
    pub(crate) async fn read_events(&mut self) -> Result<(), ClientError> {
        let (n, arrived) = crate::rx_time::read(self.client.socket(), &mut self.buf).await?;
        if n == 0 {
            return Err(ClientError::Closed);
        }
        self.arrived = arrived;
        self.client
            .handle_input(self.buf.get(..n).unwrap_or_default())
    }

    /// An event already received.
    pub(crate) fn poll_event(&mut self) -> Option<ClientEvent> {
        self.client.poll_event()
    }

    /// The next event; replies the session queued are written first.
    pub(crate) async fn next_event(&mut self) -> Result<ClientEvent, ClientError> {
        loop {
            if let Some(event) = self.client.poll_event() {
                return Ok(event);
            }
            self.read_events().await?;
            self.flush().await?;
        }
    }

    /// Drops the connection with a TCP reset (SO_LINGER 0) instead of a clean close.
    pub(crate) fn reset(self) {
        self.client.reset();
    }

    /// Unpublishes or stops playing, then closes the socket.
    pub(crate) async fn close(self) -> Result<(), ClientError> {
        self.client.close().await
    }
}
