//! An RTMP connection for the publisher and the RTMP viewers.

use std::collections::VecDeque;

use onair_rtmp::{ClientConfig, ClientEvent, ClientSession, MediaKind};
use onair_server::client::{ClientError, RtmpUrl};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// An RTMP connection driven the lean way a load tool needs (rather than
/// `onair_server::client::RtmpClient`): one reused read buffer per connection instead of
/// a fresh 64 KiB one per read, and a read that stays cancel-safe because it never
/// writes, for the publisher's pacing `select!`. Whatever the session queues (C2,
/// `connect`, acknowledgements) is written after every read.
pub(in crate::bench) struct RtmpConn {
    session: ClientSession,
    socket: TcpStream,
    buf: Vec<u8>,
    pub(in crate::bench) events: VecDeque<ClientEvent>,
    /// When the data of the last read reached the socket, once stamping is on.
    pub(in crate::bench) arrived: Option<tokio::time::Instant>,
}

impl RtmpConn {
    /// Connects, handshakes and sends `connect`; returns once the server accepted it.
    pub(in crate::bench) async fn connect(
        url: &RtmpUrl,
        read_buf: usize,
    ) -> Result<Self, ClientError> {
        let socket = TcpStream::connect(&url.host_port).await?;
        socket.set_nodelay(true)?;
        let config = ClientConfig {
            app: url.app.clone(),
            tc_url: url.tc_url(),
            ..ClientConfig::default()
        };
        let mut conn = Self {
            session: ClientSession::new(config, &handshake_random()),
            socket,
            buf: vec![0; read_buf],
            events: VecDeque::new(),
            arrived: None,
        };
        conn.flush().await?;
        conn.wait_for(|e| matches!(e, ClientEvent::Connected))
            .await?;
        Ok(conn)
    }

    pub(in crate::bench) async fn publish(&mut self, name: &str) -> Result<(), ClientError> {
        self.session.publish(name);
        self.flush().await?;
        self.wait_for(|e| matches!(e, ClientEvent::PublishStarted { .. }))
            .await
    }

    /// Has the kernel stamp the data this connection receives (see `rx_time`).
    pub(in crate::bench) fn stamp_arrivals(&self) -> std::io::Result<()> {
        crate::bench::rx_time::enable(&self.socket)
    }

    pub(in crate::bench) async fn play(&mut self, name: &str) -> Result<(), ClientError> {
        self.session.play(name);
        self.flush().await?;
        self.wait_for(|e| matches!(e, ClientEvent::PlayStarted { .. }))
            .await
    }

    pub(in crate::bench) fn send_media(&mut self, kind: MediaKind, timestamp: u32, payload: &[u8]) {
        self.session.send_media(kind, timestamp, payload);
    }

    pub(in crate::bench) fn send_metadata(&mut self, payload: &[u8]) {
        self.session.send_metadata(payload);
    }

    /// Writes everything the session has queued.
    pub(in crate::bench) async fn flush(&mut self) -> Result<(), ClientError> {
        while let Some(bytes) = self.session.poll_transmit() {
            self.socket.write_all(&bytes).await?;
        }
        Ok(())
    }

    /// One read, fed to the session; events go to `self.events`. Cancel-safe; the
    /// caller flushes afterwards.
    pub(in crate::bench) async fn read_events(&mut self) -> Result<(), ClientError> {
        let (n, arrived) = crate::bench::rx_time::read(&self.socket, &mut self.buf).await?;
        if n == 0 {
            return Err(ClientError::Closed);
        }
        self.arrived = arrived;
        self.session
            .handle_input(self.buf.get(..n).unwrap_or_default())?;
        while let Some(event) = self.session.poll_event() {
            self.events.push_back(event);
        }
        Ok(())
    }

    /// The next event; replies the session queued are written first.
    pub(in crate::bench) async fn next_event(&mut self) -> Result<ClientEvent, ClientError> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(event);
            }
            self.read_events().await?;
            self.flush().await?;
        }
    }

    async fn wait_for(&mut self, done: impl Fn(&ClientEvent) -> bool) -> Result<(), ClientError> {
        loop {
            let event = self.next_event().await?;
            if done(&event) {
                return Ok(());
            }
            if let ClientEvent::Status {
                level,
                code,
                description,
            } = event
            {
                if level == "error" {
                    return Err(ClientError::Refused { code, description });
                }
            }
        }
    }

    /// Drops the connection with a TCP reset (SO_LINGER 0) instead of a clean close.
    pub(in crate::bench) fn reset(self) {
        let _ = self.socket.set_zero_linger();
    }

    /// Unpublishes or stops playing, then closes the socket.
    pub(in crate::bench) async fn close(mut self) -> Result<(), ClientError> {
        self.session.close();
        self.flush().await?;
        self.socket.shutdown().await?;
        Ok(())
    }
}

/// C1's random bytes, from the standard library's randomly seeded hasher (they need
/// not be strong, only differ between connections).
pub(in crate::bench) fn handshake_random() -> [u8; onair_rtmp::RANDOM_LEN] {
    use std::hash::{BuildHasher, Hasher};
    let state = std::collections::hash_map::RandomState::new();
    let mut random = [0u8; onair_rtmp::RANDOM_LEN];
    for (i, chunk) in random.chunks_mut(8).enumerate() {
        let mut hasher = state.build_hasher();
        hasher.write_usize(i);
        let bytes = hasher.finish().to_le_bytes();
        chunk.copy_from_slice(bytes.get(..chunk.len()).unwrap_or_default());
    }
    random
}
