//! One RTMP connection: socket bytes into the session, session events into the hub,
//! hub frames out to the socket.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use onair_media::{FrameKind, MediaFrame, StreamPath};
use onair_rtmp::{MediaKind, ServerConfig, ServerEvent, ServerSession};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::names;
use crate::hub::{
    BoxedWriter, ClientInfo, Protocol, Publisher, SeatEnd, SeatEndReason, SeatHandle, Viewer,
    ViewerEnd, WireFormat,
};
use crate::metrics::{self, Proto, PublishRefusal, Tracked};
use crate::publish_auth;
use crate::read::read_some;
use crate::trace_context::TraceContext;
use crate::write::write_queue;
use crate::Edge;
use onair_cluster::Claim;

/// Bytes one read takes to start with; the size doubles while reads fill it (a
/// publisher), up to `read::MAX_READ`.
const READ_START: usize = 2048;

/// Why a connection ended, for the log line that closes it.
#[derive(Debug, thiserror::Error)]
enum End {
    #[error("peer closed the connection")]
    PeerClosed,
    #[error("read failed: {0}")]
    Read(std::io::Error),
    #[error("write failed: {0}")]
    Write(std::io::Error),
    #[error("protocol error: {0}")]
    Protocol(#[from] onair_rtmp::Error),
    #[error("handshake not finished within {0:?}")]
    HandshakeTimeout(Duration),
    #[error("no data for {0:?}")]
    Idle(Duration),
    #[error("viewer socket accepted nothing for {0:?}")]
    WriteTimeout(Duration),
    #[error(
        "player sent more than {} requests without reading the replies",
        crate::hub::MAX_QUEUED_CONTROL
    )]
    RepliesUnread,
    #[error("publish refused: {0}")]
    PublishRefused(String),
    #[error("play refused: {0}")]
    PlayRefused(String),
    #[error("{0}")]
    Viewer(ViewerEnd),
    #[error("publisher kicked or taken over")]
    Kicked,
    #[error("server shutting down")]
    Shutdown,
}

impl End {
    /// Endings that are part of normal operation: a peer leaving (even abruptly),
    /// a stream ending, a kick, a shutdown.
    fn is_ordinary(&self) -> bool {
        use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
        match self {
            End::PeerClosed | End::Viewer(ViewerEnd::StreamEnded) | End::Shutdown | End::Kicked => {
                true
            }
            End::Read(e) | End::Write(e) => {
                matches!(e.kind(), ConnectionReset | BrokenPipe | ConnectionAborted)
            }
            _ => false,
        }
    }
}

enum Role {
    Idle,
    Publishing(Publisher),
    /// The stream's delivery group writes the frames; it holds the socket's write half.
    Playing {
        seat: SeatHandle,
        stream_id: u32,
    },
    /// The seat ended and gave the socket back; the viewer is let go with the role.
    Played {
        viewer: Viewer,
        stream_id: u32,
    },
}

struct Connection {
    edge: Edge,
    session: ServerSession,
    /// `None` while a delivery group holds it (or if it never gave it back).
    writer: Option<BoxedWriter>,
    /// Bytes to write before anything else: what a seat gave back unwritten.
    out: VecDeque<Bytes>,
    app: Option<String>,
    /// The query of connect's `app` or `tcUrl`, where some players put a play signature.
    connect_query: String,
    role: Role,
    span: tracing::Span,
    client: ClientInfo,
    proto: Proto,
    /// Counts this connection as a publisher or viewer while it is one.
    role_gauge: Option<Tracked>,
}

/// Drives one connection over its two halves: a plain socket's `into_split`, or
/// `tokio::io::split` of a TLS stream. `proto` names it in logs.
pub(super) async fn run<R, W>(
    reader: R,
    writer: W,
    peer: SocketAddr,
    proto: &'static str,
    edge: Edge,
    shutdown: CancellationToken,
) where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let conn_id = onair_relay::next_conn_id();
    // RTMP carries no trace header: each connection starts a trace of its own, which
    // the webhooks it causes (publish decision, notifications) carry on.
    let trace = TraceContext::new_root();
    let span = tracing::info_span!(
        "conn",
        conn_id,
        %peer,
        proto,
        trace_id = %trace.trace_id(),
        app = tracing::field::Empty,
        stream = tracing::field::Empty,
    );
    // The span is entered around input handling and the connection's end, not on every
    // poll: a viewer's task wakes for every video frame and needs no span to write it.
    span.in_scope(|| tracing::debug!("connection opened"));
    {
        let settings = &edge.settings().rtmp;
        let config = ServerConfig {
            limits: onair_rtmp::Limits {
                max_incoming_chunk_size: settings.max_chunk_size,
                max_message_size: settings.max_message_size,
                max_chunk_streams: settings.max_chunk_streams,
                amf_max_depth: settings.amf_max_depth,
            },
            out_chunk_size: settings.out_chunk_size,
            ..ServerConfig::default()
        };
        let mut conn = Connection {
            session: new_session(config),
            edge: edge.clone(),
            writer: Some(Box::new(writer)),
            out: VecDeque::new(),
            app: None,
            connect_query: String::new(),
            role: Role::Idle,
            span: span.clone(),
            client: ClientInfo::new(conn_id, Some(peer), "").with_trace(trace),
            proto: metrics::Proto::rtmp(proto),
            role_gauge: None,
        };
        let end = conn.drive(reader, &shutdown).await;
        // Boxed: it runs once, and would otherwise add its size to every connection's task.
        Box::pin(conn.finish(&end).instrument(span.clone())).await;
        span.in_scope(|| {
            if end.is_ordinary() {
                tracing::info!(reason = %end, "connection closed");
            } else {
                tracing::warn!(reason = %end, "connection closed");
            }
        });
    }
}

impl Connection {
    async fn drive<R: AsyncRead + Unpin>(
        &mut self,
        mut reader: R,
        shutdown: &CancellationToken,
    ) -> End {
        let settings = self.edge.settings().rtmp.clone();
        let mut read_size = READ_START;
        let mut deadline = Instant::now() + settings.handshake_timeout();
        // Registered once: a fresh `cancelled()` per loop would lock the token's waiter
        // list twice per frame for every viewer.
        let shutdown = shutdown.cancelled();
        tokio::pin!(shutdown);
        loop {
            let playing = matches!(self.role, Role::Playing { .. });
            tokio::select! {
                biased;
                _ = &mut shutdown => return End::Shutdown,
                event = role_event(&mut self.role) => match event {
                    RoleEvent::Kicked => return End::Kicked,
                    RoleEvent::SeatEnded(end) => return self.seat_ended(end),
                },
                read = read_some(&mut reader, read_size) => {
                    let input = match read {
                        Ok(input) if input.is_empty() => return End::PeerClosed,
                        Ok(input) => input,
                        Err(error) => return End::Read(error),
                    };
                    let span = self.span.clone();
                    // Boxed: publishing awaits webhooks, and that future would otherwise
                    // make every connection's task, viewers' too, several KiB larger.
                    if let Err(end) = Box::pin(self.handle_input(&input).instrument(span)).await {
                        return end;
                    }
                    if input.len() == read_size {
                        read_size = (read_size * 2).min(crate::read::MAX_READ);
                    }
                    if self.session.is_handshake_done() {
                        deadline = Instant::now() + settings.idle_timeout();
                    }
                }
                _ = sleep_until(deadline), if !playing => {
                    return if self.session.is_handshake_done() {
                        End::Idle(settings.idle_timeout())
                    } else {
                        End::HandshakeTimeout(settings.handshake_timeout())
                    };
                }
            }
        }
    }

    async fn handle_input(&mut self, input: &[u8]) -> Result<(), End> {
        self.session.handle_input(input)?;
        while let Some(event) = self.session.poll_event() {
            self.handle_event(event).await?;
        }
        self.flush().await
    }

    async fn handle_event(&mut self, event: ServerEvent) -> Result<(), End> {
        match event {
            ServerEvent::Connect { app, tc_url, .. } => {
                self.connect_query = names::connect_query(&app, tc_url.as_deref()).to_owned();
                let app = names::normalize_app(&app).to_owned();
                self.span.record("app", app.as_str());
                self.app = Some(app);
                self.session.accept_connect();
            }
            ServerEvent::Publish {
                stream_id, name, ..
            } => self.start_publish(stream_id, &name).await?,
            ServerEvent::Play { stream_id, name } => self.start_play(stream_id, &name)?,
            ServerEvent::Media {
                kind,
                timestamp,
                payload,
                ..
            } => self.handle_media(kind, timestamp, payload),
            ServerEvent::Unpublish { .. } | ServerEvent::StopPlay { .. } => {
                self.leave_role(false).await
            }
            _ => {}
        }
        Ok(())
    }

    async fn start_publish(&mut self, stream_id: u32, name: &str) -> Result<(), End> {
        const BAD_NAME: &str = "NetStream.Publish.BadName";
        let path = match self.resolve(name) {
            Ok(path) => path,
            Err(reason) => {
                self.edge.metrics.publish_refused(PublishRefusal::BadName);
                return Err(self.refuse_publish(stream_id, BAD_NAME, reason));
            }
        };
        let client = self.client_for(name);
        let deciders = (
            &self.edge.settings().auth,
            &self.edge.store,
            &self.edge.webhooks,
        );
        if let Err(refusal) = publish_auth::authorize(deciders, &path, &client).await {
            let code = "NetStream.Publish.Unauthorized";
            self.edge
                .metrics
                .publish_refused(PublishRefusal::Unauthorized);
            return Err(self.refuse_publish(stream_id, code, refusal.to_string()));
        }
        let mut claimed = false;
        if let Some(cluster) = &self.edge.cluster {
            match cluster.claim_stream(&path.to_string()).await {
                Ok(Claim::OwnedBy(node)) => {
                    let error = crate::hub::PublishError::AlreadyPublishing(path.clone());
                    self.edge.metrics.publish_refused((&error).into());
                    let reason = format!("{error} (on node {node})");
                    return Err(self.refuse_publish(stream_id, BAD_NAME, reason));
                }
                Ok(claim) => claimed = claim == Claim::Taken,
                Err(error) => tracing::warn!(
                    stream_path = %path,
                    %error,
                    "stream directory unreachable: publishing on this node alone"
                ),
            }
        }
        let path_text = path.to_string();
        match self.edge.hub.publish_as(path, client) {
            Ok(publisher) => {
                self.session.accept_publish(stream_id);
                tracing::info!(stream_path = %publisher.stream().path(), "publish started");
                self.role = Role::Publishing(publisher);
                self.role_gauge = Some(Tracked::publisher(&self.edge.metrics, self.proto));
                Ok(())
            }
            Err(error) => {
                if let (true, Some(cluster)) = (claimed, &self.edge.cluster) {
                    cluster.release_stream(&path_text).await;
                }
                self.edge.metrics.publish_refused((&error).into());
                Err(self.refuse_publish(stream_id, BAD_NAME, error.to_string()))
            }
        }
    }

    fn refuse_publish(&mut self, stream_id: u32, code: &str, reason: String) -> End {
        self.session.reject_publish(stream_id, code, &reason);
        End::PublishRefused(reason)
    }

    fn start_play(&mut self, stream_id: u32, name: &str) -> Result<(), End> {
        const NOT_FOUND: &str = "NetStream.Play.StreamNotFound";
        let subscribed = self
            .resolve(name)
            .map_err(|reason| (NOT_FOUND, reason))
            .and_then(|path| {
                self.check_signature(&path, name)
                    .map_err(|e| ("NetStream.Play.Failed", format!("{}: {e}", e.code())))?;
                self.edge
                    .hub
                    .subscribe_as(&path, Protocol::Rtmp, self.client_for(name))
                    .ok_or_else(|| (NOT_FOUND, format!("stream {path} is not live")))
            });
        match subscribed {
            Ok(viewer) => {
                self.session.accept_play(stream_id);
                tracing::info!(stream_path = %viewer.stream().path(), "play started");
                let Some(writer) = self.writer.take() else {
                    return Err(End::Write(std::io::ErrorKind::NotConnected.into()));
                };
                let mut initial = std::mem::take(&mut self.out);
                initial.extend(self.session.poll_transmit());
                let format = WireFormat::Rtmp {
                    stream_id,
                    chunk_size: self.edge.hub.out_chunk_size(),
                };
                let timeout =
                    Duration::from_millis(self.edge.hub.settings().viewer_write_timeout_ms);
                let seat = viewer.seat(writer, initial, format, timeout);
                self.role = Role::Playing { seat, stream_id };
                self.role_gauge = Some(Tracked::viewer(&self.edge.metrics, self.proto));
                Ok(())
            }
            Err((code, reason)) => {
                self.session.reject_play(stream_id, code, &reason);
                Err(End::PlayRefused(reason))
            }
        }
    }

    /// The play signature, from the play name's query (`demo?expires=…&sig=…`, what
    /// ffmpeg sends) or else from connect's `app`/`tcUrl`.
    fn check_signature(
        &self,
        path: &StreamPath,
        name: &str,
    ) -> Result<(), crate::signing::SignError> {
        let name_query = name.split_once('?').map_or("", |(_, query)| query);
        let query = if crate::signing::has_signature(name_query) {
            name_query
        } else {
            &self.connect_query
        };
        self.edge
            .live
            .get()
            .playback
            .authorize(path, query, crate::signing::unix_now())
    }

    /// The stream a publish/play name refers to, if this connection may take one on.
    fn resolve(&self, name: &str) -> Result<StreamPath, String> {
        if !matches!(self.role, Role::Idle) {
            return Err("connection is already publishing or playing".to_owned());
        }
        let app = self.app.as_deref().unwrap_or_default();
        let (path, _query) =
            names::stream_path(app, name).map_err(|e| format!("invalid stream name: {e}"))?;
        self.span.record("stream", path.name());
        Ok(path)
    }

    /// This connection as the hub's observer sees it, with the query that came with `name`.
    fn client_for(&self, name: &str) -> ClientInfo {
        let query = name.split_once('?').map_or("", |(_, query)| query);
        ClientInfo {
            query: query.to_owned(),
            ..self.client.clone()
        }
    }

    fn handle_media(&mut self, kind: MediaKind, timestamp: u32, payload: Bytes) {
        let Role::Publishing(publisher) = &self.role else {
            return;
        };
        if payload.is_empty() {
            return;
        }
        let frame = match kind {
            MediaKind::Data => match onair_flv::strip_set_data_frame(&payload) {
                Ok(body) if is_metadata(&body) => Ok(MediaFrame {
                    kind: FrameKind::Script,
                    timestamp: 0,
                    keyframe: false,
                    sequence_header: false,
                    payload: body,
                }),
                // Other data messages (cue points, captions) are not relayed yet.
                Ok(_) => return,
                Err(error) => Err(error),
            },
            MediaKind::Audio => onair_flv::classify(FrameKind::Audio, timestamp, payload),
            MediaKind::Video => onair_flv::classify(FrameKind::Video, timestamp, payload),
        };
        match frame {
            Ok(frame) => publisher.push(frame),
            Err(error) => tracing::debug!(%error, "dropping a frame that does not parse"),
        }
    }

    /// The socket is back from a seat that ended by itself: why the connection ends.
    fn seat_ended(&mut self, end: Option<Box<SeatEnd>>) -> End {
        let Role::Playing { stream_id, .. } = self.role else {
            return End::Shutdown;
        };
        let Some(end) = end.map(|end| *end) else {
            self.role = Role::Idle;
            return End::Write(std::io::Error::other("delivery group stopped"));
        };
        self.writer = Some(end.writer);
        self.out = end.unwritten;
        self.role = Role::Played {
            viewer: end.feed.viewer,
            stream_id,
        };
        match end.reason {
            SeatEndReason::Feed(end) => End::Viewer(end),
            SeatEndReason::Write(error) => End::Write(error),
            SeatEndReason::WriteTimeout(timeout) => End::WriteTimeout(timeout),
            SeatEndReason::Stopped => End::Shutdown,
        }
    }

    /// Writes what the session queued: through the seat while playing, else directly
    /// after what a seat left unwritten.
    async fn flush(&mut self) -> Result<(), End> {
        let output = self.session.poll_transmit();
        if let Role::Playing { seat, .. } = &self.role {
            let sent = output.is_none_or(|bytes| seat.send(bytes));
            return if sent {
                Ok(())
            } else {
                Err(End::RepliesUnread)
            };
        }
        self.out.extend(output);
        if self.out.is_empty() {
            return Ok(());
        }
        let Some(writer) = self.writer.as_mut() else {
            self.out.clear();
            return Ok(());
        };
        let timeout = Duration::from_millis(self.edge.hub.settings().viewer_write_timeout_ms);
        match tokio::time::timeout(timeout, write_queue(writer, &mut self.out)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(End::Write(error)),
            Err(_) => Err(End::WriteTimeout(timeout)),
        }
    }

    /// Stops publishing or playing, with a log line; `notify_player` tells a player
    /// its stream ended.
    async fn leave_role(&mut self, notify_player: bool) {
        self.role_gauge = None;
        if let Role::Playing { .. } = self.role {
            let Role::Playing { seat, stream_id } = std::mem::replace(&mut self.role, Role::Idle)
            else {
                return;
            };
            if let Some(end) = seat.stop_and_wait().await.map(|end| *end) {
                self.writer = Some(end.writer);
                self.out = end.unwritten;
                self.role = Role::Played {
                    viewer: end.feed.viewer,
                    stream_id,
                };
            }
        }
        match std::mem::replace(&mut self.role, Role::Idle) {
            Role::Played { stream_id, viewer } => {
                tracing::info!(skipped_frames = viewer.skipped_frames(), "play ended");
                drop(viewer);
                if notify_player {
                    self.session.end_play(stream_id);
                }
            }
            Role::Publishing(publisher) => {
                let stats = publisher.stream().snapshot();
                tracing::info!(
                    bytes_in = stats.bytes_in,
                    frames_in = stats.frames_in,
                    duration_seconds = stats.uptime_seconds,
                    "publish ended"
                );
            }
            Role::Playing { .. } | Role::Idle => {}
        }
    }

    /// Tells the peer why it is being let go, as far as a bounded write allows.
    async fn finish(&mut self, end: &End) {
        let playing = matches!(self.role, Role::Playing { .. } | Role::Played { .. });
        if matches!(end, End::WriteTimeout(_)) && playing {
            self.edge.metrics.viewer_write_timeout();
        }
        self.leave_role(matches!(end, End::Viewer(_) | End::Shutdown))
            .await;
        let writable = !matches!(end, End::Write(_) | End::WriteTimeout(_));
        if writable {
            let _ = tokio::time::timeout(Duration::from_secs(1), self.flush()).await;
        }
        if let Some(writer) = self.writer.as_mut() {
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                tokio::io::AsyncWriteExt::shutdown(writer),
            )
            .await;
        }
    }
}

/// A session with fresh randomness for its handshake; the random bytes (1.5 KiB) live
/// only in this call, not in the connection task's state.
fn new_session(config: ServerConfig) -> ServerSession {
    let mut random = [0u8; onair_rtmp::RANDOM_LEN];
    rand::Rng::fill(&mut rand::thread_rng(), &mut random[..]);
    ServerSession::new(config, &random)
}

enum RoleEvent {
    /// The seat ended by itself and handed the socket back (or not).
    SeatEnded(Option<Box<SeatEnd>>),
    Kicked,
}

/// What the connection's role is waiting for: its seat's end, or a kick.
async fn role_event(role: &mut Role) -> RoleEvent {
    match role {
        Role::Playing { seat, .. } => RoleEvent::SeatEnded(seat.ended().await),
        Role::Publishing(publisher) => {
            publisher.cancelled().await;
            RoleEvent::Kicked
        }
        Role::Played { .. } | Role::Idle => std::future::pending().await,
    }
}

fn is_metadata(body: &[u8]) -> bool {
    matches!(
        onair_amf0::Decoder::new(body).decode(),
        Ok(onair_amf0::Value::String(name)) if name == "onMetaData"
    )
}
