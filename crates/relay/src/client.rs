//! An RTMP client over TCP: the sans-IO `ClientSession` with a socket under it.
//! `onair push`, the load benchmark and the tests publish and play with it; edges
//! will pull with it.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use bytes::BytesMut;
use onair_media::FrameKind;
use onair_rtmp::{ClientConfig, ClientEvent, ClientSession, MediaKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, Instant};

/// A tag read from an FLV file, as [`send_paced`] takes them.
pub use onair_flv::Tag;

/// An `rtmp://HOST[:PORT]/APP/NAME[?query]` URL split the way RTMP needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    pub host_port: String,
    pub app: String,
    /// Stream name with its query, as sent in `publish`/`play`.
    pub name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid RTMP URL: {0}")]
    BadUrl(&'static str),
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    #[error("protocol: {0}")]
    Protocol(#[from] onair_rtmp::Error),
    #[error("the server closed the connection")]
    Closed,
    #[error("refused by the server: {code}: {description}")]
    Refused { code: String, description: String },
}

impl RtmpUrl {
    pub fn parse(url: &str) -> Result<Self, ClientError> {
        let rest = url
            .strip_prefix("rtmp://")
            .ok_or(ClientError::BadUrl("must start with rtmp://"))?;
        let (host, path) = rest
            .split_once('/')
            .ok_or(ClientError::BadUrl("no /app/name"))?;
        let (app, name) = path
            .split_once('/')
            .ok_or(ClientError::BadUrl("no stream name"))?;
        if host.is_empty() || app.is_empty() || name.is_empty() {
            return Err(ClientError::BadUrl("expected rtmp://host/app/name"));
        }
        let has_port = host
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
        let host_port = if has_port {
            host.to_owned()
        } else {
            format!("{host}:1935")
        };
        Ok(Self {
            host_port,
            app: app.to_owned(),
            name: name.to_owned(),
        })
    }

    pub fn tc_url(&self) -> String {
        format!("rtmp://{}/{}", self.host_port, self.app)
    }
}

/// The whole URL for logs and errors, with the value of every query parameter that
/// may be a secret (`key`, `sig`, `token`) hidden.
impl std::fmt::Display for RtmpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/", self.tc_url())?;
        let Some((name, query)) = self.name.split_once('?') else {
            return f.write_str(&self.name);
        };
        write!(f, "{name}?")?;
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                f.write_str("&")?;
            }
            match pair.split_once('=') {
                Some((field, _)) if matches!(field, "key" | "sig" | "token") => {
                    write!(f, "{field}=***")?;
                }
                _ => f.write_str(pair)?,
            }
        }
        Ok(())
    }
}

pub struct RtmpClient {
    session: ClientSession,
    socket: TcpStream,
    events: VecDeque<ClientEvent>,
    /// Bytes taken from the session and not yet written; kept here so that a
    /// cancelled [`flush`](Self::flush) loses nothing.
    unsent: VecDeque<bytes::Bytes>,
    /// Reused for every read.
    read_buf: BytesMut,
    /// Bytes read from the socket at a time.
    read_size: usize,
}

/// Bytes read from the socket at a time, unless [`RtmpClient::connect_with`] says.
const READ_BUF: usize = 64 * 1024;

impl RtmpClient {
    /// Connects, handshakes and sends `connect`; returns once the server accepted it.
    pub async fn connect(url: &RtmpUrl) -> Result<Self, ClientError> {
        Self::connect_with(url, READ_BUF).await
    }

    /// [`connect`](Self::connect), reading at most `read_size` bytes at a time (a load
    /// generator with thousands of viewers keeps its buffers small).
    pub async fn connect_with(url: &RtmpUrl, read_size: usize) -> Result<Self, ClientError> {
        let socket = TcpStream::connect(&url.host_port).await?;
        socket.set_nodelay(true)?;
        let config = ClientConfig {
            limits: onair_rtmp::Limits::default(),
            app: url.app.clone(),
            tc_url: url.tc_url(),
            out_chunk_size: onair_rtmp::DEFAULT_OUT_CHUNK_SIZE,
            flash_ver: "FMLE/3.0 (compatible; onair)".to_owned(),
        };
        let mut random = [0u8; onair_rtmp::RANDOM_LEN];
        rand::Rng::fill(&mut rand::thread_rng(), &mut random[..]);
        let mut client = Self {
            session: ClientSession::new(config, &random),
            socket,
            events: VecDeque::new(),
            unsent: VecDeque::new(),
            read_buf: BytesMut::with_capacity(read_size),
            read_size: read_size.max(1),
        };
        client.flush().await?;
        client
            .wait_for(|e| matches!(e, ClientEvent::Connected))
            .await?;
        Ok(client)
    }

    /// Publishes `name`; returns once the server said NetStream.Publish.Start.
    pub async fn publish(&mut self, name: &str) -> Result<(), ClientError> {
        self.session.publish(name);
        self.flush().await?;
        self.wait_for(|e| matches!(e, ClientEvent::PublishStarted { .. }))
            .await
    }

    /// Plays `name`; returns once the server said NetStream.Play.Start.
    pub async fn play(&mut self, name: &str) -> Result<(), ClientError> {
        self.session.play(name);
        self.flush().await?;
        self.wait_for(|e| matches!(e, ClientEvent::PlayStarted { .. }))
            .await
    }

    pub fn send_media(&mut self, kind: MediaKind, timestamp: u32, payload: &[u8]) {
        self.session.send_media(kind, timestamp, payload);
    }

    pub fn send_metadata(&mut self, payload: &[u8]) {
        self.session.send_metadata(payload);
    }

    /// Writes everything the session has queued. Cancel-safe: what was not written
    /// yet is written by the next call.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        while let Some(bytes) = self.session.poll_transmit() {
            self.unsent.push_back(bytes);
        }
        while let Some(front) = self.unsent.front_mut() {
            let written = self.socket.write(front).await?;
            if written == 0 {
                return Err(ClientError::Io(io::ErrorKind::WriteZero.into()));
            }
            bytes::Buf::advance(front, written);
            if front.is_empty() {
                self.unsent.pop_front();
            }
        }
        Ok(())
    }

    /// The next event from the server, writing what the session queued (replies,
    /// acknowledgements) before each read. Cancel-safe.
    pub async fn next_event(&mut self) -> Result<ClientEvent, ClientError> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(event);
            }
            self.flush().await?;
            self.read_events().await?;
        }
    }

    /// An event already received, without reading the socket.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// The socket, for a caller that reads it itself (with kernel receive stamps, say)
    /// and hands what it read to [`handle_input`](Self::handle_input).
    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }

    /// Feeds bytes read from the socket to the session; the events they complete come
    /// out of [`poll_event`](Self::poll_event) and [`next_event`](Self::next_event), and
    /// the replies they call for go out with the next [`flush`](Self::flush).
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.session.handle_input(bytes)?;
        while let Some(event) = self.session.poll_event() {
            self.events.push_back(event);
        }
        Ok(())
    }

    /// Reads the socket once and feeds what came to the session. Cancel-safe: it only
    /// reads; the caller flushes.
    pub async fn read_events(&mut self) -> Result<(), ClientError> {
        self.read_buf.clear();
        self.read_buf.reserve(self.read_size);
        if self.socket.read_buf(&mut self.read_buf).await? == 0 {
            return Err(ClientError::Closed);
        }
        let input = std::mem::take(&mut self.read_buf);
        let fed = self.handle_input(&input);
        self.read_buf = input;
        fed
    }

    /// Unpublishes or stops playing, then closes the socket.
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.session.close();
        self.flush().await?;
        self.socket.shutdown().await?;
        Ok(())
    }

    /// Drops the connection with a TCP reset (SO_LINGER 0) instead of a clean close.
    pub fn reset(self) {
        let _ = self.socket.set_zero_linger();
    }

    async fn wait_for(&mut self, done: impl Fn(&ClientEvent) -> bool) -> Result<(), ClientError> {
        loop {
            let event = self.next_event().await?;
            if done(&event) {
                return Ok(());
            }
            if let Some(refused) = refusal(event) {
                return Err(refused);
            }
        }
    }
}

/// When each tag of an FLV file is due, in milliseconds from the start, at real-time
/// pace: once, or with `repeat` over and over, each pass a file's length plus one frame
/// after the last, so timestamps keep rising.
pub fn paced(
    tags: &[onair_flv::Tag],
    repeat: bool,
) -> impl Iterator<Item = (&onair_flv::Tag, u64)> {
    let first_ts = tags.first().map_or(0, |t| t.timestamp);
    // The largest, not the last: files often end with a video tag older than the audio
    // before it.
    let last_ts = tags.iter().map(|t| t.timestamp).max().unwrap_or(0);
    let pass_length = u64::from(last_ts.saturating_sub(first_ts)) + 40;
    let passes = if repeat { u64::MAX } else { 1 };
    (0..passes).flat_map(move |pass| {
        tags.iter().map(move |tag| {
            let offset = u64::from(tag.timestamp.saturating_sub(first_ts));
            (tag, offset + pass.saturating_mul(pass_length))
        })
    })
}

/// The refusal an `onStatus` event carries, if it is an error.
pub fn refusal(event: ClientEvent) -> Option<ClientError> {
    match event {
        ClientEvent::Status {
            level,
            code,
            description,
        } if level == "error" => Some(ClientError::Refused { code, description }),
        _ => None,
    }
}

/// Publishes `tags` (from an FLV file) at real-time pace, answering the server
/// meanwhile; with `repeat`, starts over at the end forever with rising timestamps.
pub async fn send_paced(
    client: &mut RtmpClient,
    tags: &[onair_flv::Tag],
    repeat: bool,
) -> Result<(), ClientError> {
    let start = Instant::now();
    for (tag, offset) in paced(tags, repeat) {
        let due = start + Duration::from_millis(offset);
        while Instant::now() < due {
            tokio::select! {
                _ = sleep_until(due) => {}
                event = client.next_event() => {
                    if let Some(refused) = refusal(event?) {
                        return Err(refused);
                    }
                }
            }
            client.flush().await?;
        }
        let timestamp = (offset & 0xffff_ffff) as u32;
        match tag.kind {
            FrameKind::Script => client.send_metadata(&tag.payload),
            FrameKind::Audio => client.send_media(MediaKind::Audio, timestamp, &tag.payload),
            FrameKind::Video => client.send_media(MediaKind::Video, timestamp, &tag.payload),
        }
        client.flush().await?;
    }
    Ok(())
}

/// Every tag of an FLV file held in memory.
pub fn read_flv_tags(
    data: &[u8],
    max_tag_size: usize,
) -> Result<Vec<onair_flv::Tag>, onair_flv::Error> {
    let mut reader = onair_flv::FlvReader::new(max_tag_size);
    reader.push(data);
    let mut tags = Vec::new();
    while let Some(tag) = reader.next_tag()? {
        tags.push(tag);
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rtmp_urls() {
        let url = RtmpUrl::parse("rtmp://localhost/live/demo?key=abc").unwrap();
        assert_eq!(
            url,
            RtmpUrl {
                host_port: "localhost:1935".into(),
                app: "live".into(),
                name: "demo?key=abc".into()
            }
        );
        assert_eq!(url.tc_url(), "rtmp://localhost:1935/live");
        let url = RtmpUrl::parse("rtmp://127.0.0.1:1936/app/x").unwrap();
        assert_eq!(url.host_port, "127.0.0.1:1936");
        assert!(RtmpUrl::parse("http://x/a/b").is_err());
        assert!(RtmpUrl::parse("rtmp://x/a").is_err());
    }

    #[test]
    fn shows_the_whole_url_with_secrets_hidden() {
        let url = RtmpUrl::parse("rtmp://host/live/demo?key=abc&x=1&sig=s").unwrap();
        assert_eq!(
            url.to_string(),
            "rtmp://host:1935/live/demo?key=***&x=1&sig=***"
        );
        let url = RtmpUrl::parse("rtmp://host:1936/live/demo").unwrap();
        assert_eq!(url.to_string(), "rtmp://host:1936/live/demo");
    }
}
