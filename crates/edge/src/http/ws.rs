//! Room over WebSocket: `GET /ws/{app}/{name}[?since=SEQ][&token=T]`. One JSON event per
//! text frame out; client messages as text frames in. Errors about a message come back
//! as `error` events and the connection stays; everything else closes it with a code
//! from docs/rooms.md.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::{FutureExt, SinkExt, StreamExt};
use onair_rooms::{Error as RoomError, ErrorCode};
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use super::room_access::{self, RoomQuery};
use super::ws_read_side::ReadSide;
use super::ws_split::{self, BoxedReader, Halves};
use super::ws_upgrade::{WsIo, WsUpgrade};
use super::ApiError;
use crate::fanout::SeatEndReason;
use crate::metrics::{MemberMetrics, Proto};
use crate::rooms::{Member, MemberEnd, MemberFeed, MemberSeat, MemberSeatEnd, Voice};
use crate::write::write_queue;
use crate::Edge;

/// Close codes (docs/rooms.md).
mod code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const UNSUPPORTED: u16 = 1003;
    pub const POLICY: u16 = 1008;
    pub const BAD_TOKEN: u16 = 4001;
    pub const FORBIDDEN: u16 = 4003;
    pub const NO_ROOM: u16 = 4004;
    pub const TOO_SLOW: u16 = 4008;
    pub const TOO_LARGE: u16 = 4009;
    pub const TOO_MANY: u16 = 4029;
}

/// Longest the socket may take nothing before the client counts as too slow.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Each connection's read buffer, allocated at the upgrade.
const READ_BUFFER: usize = 1024;
/// Most client messages handed to the room together, all already read.
const MAX_BURST: usize = 64;

pub(super) async fn upgrade(
    State(edge): State<Edge>,
    Path((app, name)): Path<(String, String)>,
    Query(query): Query<RoomQuery>,
    headers: HeaderMap,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    upgrade: WsUpgrade,
) -> Response {
    let peer = connect.map(|Extension(ConnectInfo(peer))| peer);
    let span = room_access::connection_span("ws", peer);
    if !room_access::origin_allowed(&edge.live.get().allowed_origins, &headers) {
        return ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this Origin may not open room connections",
        )
        .into_response();
    }
    // Refused before the upgrade, with a JSON body, like the other playback protocols.
    if let Some(path) = room_access::room_path(&app, &name) {
        if let Err(error) = room_access::check_signature(&edge.live, &path, &query) {
            return ApiError::from(error).into_response();
        }
    }
    let settings = &edge.settings().http;
    // A small read buffer keeps an idle member near a few KiB (client messages are
    // small; a larger one grows it as needed). Events are written pre-framed, around
    // tungstenite, which writes only pings, pongs and the close frame.
    let config = WebSocketConfig::default()
        .max_message_size(Some(settings.ws_max_message_bytes))
        .max_frame_size(Some(settings.ws_max_message_bytes))
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0);
    let joining = join(&edge, &app, &name, &query, &headers, &span);
    let tasks = edge.lifecycle.tasks.clone();
    upgrade.on_upgrade(&tasks, move |io| async move {
        match joining {
            Ok(member) => run(io, config, member, edge, span).await,
            Err((code, reason)) => {
                span.in_scope(|| tracing::debug!(code, %reason, "room connection refused"));
                Box::pin(refuse(io, config, code, &reason)).await;
            }
        }
    })
}

fn join(
    edge: &Edge,
    app: &str,
    name: &str,
    query: &RoomQuery,
    headers: &HeaderMap,
    span: &tracing::Span,
) -> Result<Member, (u16, String)> {
    let path = room_access::room_path(app, name)
        .ok_or_else(|| (code::NO_ROOM, "not a valid stream path".to_owned()))?;
    span.record("room", tracing::field::display(&path));
    let identity = room_access::identity(&edge.live, query, headers)
        .map_err(|e| (code::BAD_TOKEN, e.to_string()))?;
    if let Some(user_id) = identity.user_id() {
        span.record("user_id", user_id);
    }
    let since = room_access::resume_from(query, headers);
    let flush = Duration::from_millis(edge.settings().http.room_flush_interval_ms);
    let member = Member::join(&edge.rooms, &path, identity, since)
        .map(|member| {
            member
                .with_flush_interval(flush)
                .with_room_write_budget(std::sync::Arc::clone(&edge.room_writes))
        })
        .map_err(|e| (join_close_code(&e), e.to_string()))?;
    span.record("conn_id", member.conn().0);
    Ok(member)
}

fn join_close_code(error: &RoomError) -> u16 {
    match error.code() {
        ErrorCode::Banned => code::FORBIDDEN,
        ErrorCode::RoomFull | ErrorCode::TooManyRooms => code::TOO_MANY,
        _ => code::POLICY,
    }
}

/// Log lines go into `span`, entered for them only.
///
/// The member is seated in its room's delivery group, which writes its events to the
/// socket's write half; this task reads the socket, answers through the seat (pongs,
/// error replies, pings), and wakes only for what the client sends, a ping due, or the
/// end. Every `await` on the way out is boxed: this future lives as long as the
/// connection, and an idle connection should not carry the space of its ending.
async fn run(io: WsIo, config: WebSocketConfig, member: Member, edge: Edge, span: tracing::Span) {
    let settings = &edge.settings().http;
    let Halves { read, write, hold } = ws_split::split(io);
    let mut socket =
        WebSocketStream::from_raw_socket(ReadSide::new(read), Role::Server, Some(config)).await;
    let voice = member.voice();
    let metrics = MemberMetrics::new(&edge.metrics, Proto::Ws);
    let mut seat = member.seat(
        write,
        WRITE_TIMEOUT,
        settings.room_batch_events,
        Box::new(metrics),
    );
    let idle_timeout = Duration::from_millis(settings.ws_idle_timeout_ms);
    let mut ping = tokio::time::interval(Duration::from_millis(settings.ws_ping_interval_ms));
    ping.tick().await;
    let shutdown = edge.lifecycle.shutdown.cancelled();
    tokio::pin!(shutdown);
    // The idle timer is re-armed only when it fires early, not on every read: a busy
    // sender would otherwise move it in the timer wheel many times a second.
    let mut last_read = Instant::now();
    let idle = sleep_until(last_read + idle_timeout);
    tokio::pin!(idle);
    span.in_scope(|| tracing::debug!("room connection open"));
    let mut ended = None;
    let (code, reason) = loop {
        tokio::select! {
            _ = &mut shutdown => break (code::GOING_AWAY, "server shutting down".to_owned()),
            end = seat.ended() => {
                let Some(end) = end else { return };
                let close = seat_close(&end.reason);
                ended = Some(end);
                break close;
            }
            incoming = socket.next() => {
                last_read = Instant::now();
                let (texts, incoming) = read_burst(&mut socket, incoming);
                if !texts.is_empty() && !span.in_scope(|| speak(&voice, &seat, &texts)) {
                    break (code::TOO_SLOW, "replies not read".to_owned());
                }
                let Some(incoming) = incoming else { continue };
                match incoming {
                    None | Some(Ok(Message::Close(_))) => break (code::NORMAL, "closed by client".to_owned()),
                    Some(Ok(Message::Binary(_))) => break (code::UNSUPPORTED, "binary frames are not accepted".to_owned()),
                    Some(Ok(Message::Ping(_))) => {
                        // The pong tungstenite queued goes out through the seat.
                        if Box::pin(socket.flush()).await.is_err() || !forward(&mut socket, &seat) {
                            break (code::TOO_SLOW, "pongs not read".to_owned());
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => break read_error_close(&error),
                }
            }
            _ = &mut idle => {
                let deadline = last_read + idle_timeout;
                if deadline <= Instant::now() {
                    break (code::POLICY, "idle timeout".to_owned());
                }
                idle.as_mut().reset(deadline);
            }
            _ = ping.tick() => {
                let sent = Box::pin(socket.send(Message::Ping(Default::default()))).await;
                if sent.is_err() || !forward(&mut socket, &seat) {
                    break (code::TOO_SLOW, "pings not read".to_owned());
                }
            }
        }
    };
    span.in_scope(|| tracing::debug!(code, %reason, "room connection closed"));
    Box::pin(finish(socket, seat, ended, code, reason)).await;
    drop(hold);
}

type Incoming = Option<Result<Message, tokio_tungstenite::tungstenite::Error>>;

/// `first` and the text messages already read after it, up to [`MAX_BURST`], without
/// waiting for more; and what ended the burst, if it was not a text message.
fn read_burst(
    socket: &mut WebSocketStream<ReadSide<BoxedReader>>,
    first: Incoming,
) -> (Vec<Utf8Bytes>, Option<Incoming>) {
    let mut texts = Vec::new();
    let mut next = first;
    loop {
        match next {
            Some(Ok(Message::Text(text))) => texts.push(text),
            other => return (texts, Some(other)),
        }
        if texts.len() == MAX_BURST {
            return (texts, None);
        }
        // Polled once: what the socket has already delivered, never a wait. (The
        // loop's next poll registers the task's own waker again.)
        match socket.next().now_or_never() {
            Some(item) => next = item,
            None => return (texts, None),
        }
    }
}

/// Hands a burst of the client's messages to the room (one take of its lock), sends
/// back the errors, and wakes the seat when the room shed some of them: they go back
/// to this client alone. False when the client does not read its replies.
fn speak(voice: &Voice, seat: &MemberSeat, texts: &[Utf8Bytes]) -> bool {
    let spoken = voice.handle_texts(texts);
    for error in spoken.errors {
        let reply = error.to_envelope(crate::rooms::now());
        if !seat.send(reply.ws_frame().clone()) {
            return false;
        }
    }
    if spoken.shed {
        seat.wake();
    }
    true
}

/// Takes the member and the write half back from the seat, leaves the room, and
/// writes what the seat left unwritten, then the close frame.
async fn finish(
    mut socket: WebSocketStream<ReadSide<BoxedReader>>,
    seat: MemberSeat,
    ended: Option<Box<MemberSeatEnd>>,
    code: u16,
    reason: String,
) {
    let ended = match ended {
        Some(end) => Some(end),
        None => seat.stop_and_wait().await,
    };
    let Some(end) = ended else { return };
    let MemberSeatEnd {
        feed,
        mut writer,
        mut unwritten,
        reason: end_reason,
    } = *end;
    let MemberFeed {
        member, mut stats, ..
    } = feed;
    match &end_reason {
        SeatEndReason::Feed(end) => stats.ended(&member, end),
        SeatEndReason::Write(_) | SeatEndReason::WriteTimeout(_) => stats.stalled(&member),
        SeatEndReason::Stopped => stats.count_skipped(&member),
    }
    drop(member);
    if matches!(end_reason, SeatEndReason::Write(_)) {
        return;
    }
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: Utf8Bytes::from(reason.chars().take(120).collect::<String>()),
    };
    // Written into the read side (tungstenite may have a close reply queued already).
    let _ = socket.send(Message::Close(Some(frame))).await;
    unwritten.extend(socket.get_mut().take_written());
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        write_queue(&mut writer, &mut unwritten),
    )
    .await;
}

/// Hands what tungstenite wrote (a pong, a ping) to the seat. False when the seat
/// refuses it: the client is not reading.
fn forward(socket: &mut WebSocketStream<ReadSide<BoxedReader>>, seat: &MemberSeat) -> bool {
    socket
        .get_mut()
        .take_written()
        .is_none_or(|bytes| seat.send(bytes))
}

fn seat_close(reason: &SeatEndReason<MemberEnd>) -> (u16, String) {
    match reason {
        SeatEndReason::Feed(end) => member_close(end),
        SeatEndReason::Stopped => (code::GOING_AWAY, "stopped".to_owned()),
        SeatEndReason::Write(_) | SeatEndReason::WriteTimeout(_) => (
            code::TOO_SLOW,
            "client does not read fast enough".to_owned(),
        ),
    }
}

/// The close for a read that failed, chosen by the error's kind: a message or frame
/// over the size limits is `4009`, anything else a policy violation.
fn read_error_close(error: &tokio_tungstenite::tungstenite::Error) -> (u16, String) {
    use tokio_tungstenite::tungstenite::error::{Error, ProtocolError};
    match error {
        Error::Capacity(_) | Error::Protocol(ProtocolError::ControlFrameTooBig) => (
            code::TOO_LARGE,
            "message larger than the maximum".to_owned(),
        ),
        error => (code::POLICY, format!("read failed: {error}")),
    }
}

fn member_close(end: &MemberEnd) -> (u16, String) {
    let code = match end {
        MemberEnd::Closed(_) => code::FORBIDDEN,
        MemberEnd::RoomGone => code::GOING_AWAY,
    };
    (code, end.to_string())
}

/// Refuses a connection that could not join: a close frame, then the end.
async fn refuse(io: WsIo, config: WebSocketConfig, code: u16, reason: &str) {
    let mut socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: Utf8Bytes::from(reason.chars().take(120).collect::<String>()),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        socket.send(Message::Close(Some(frame))),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use tokio_tungstenite::tungstenite::error::{CapacityError, Error, ProtocolError};

    use super::*;

    #[test]
    fn read_errors_close_by_their_kind() {
        let too_long = Error::Capacity(CapacityError::MessageTooLong {
            size: 70_000,
            max_size: 65_536,
        });
        assert_eq!(read_error_close(&too_long).0, code::TOO_LARGE);
        let control = Error::Protocol(ProtocolError::ControlFrameTooBig);
        assert_eq!(read_error_close(&control).0, code::TOO_LARGE);
        let masked = Error::Protocol(ProtocolError::UnmaskedFrameFromClient);
        assert_eq!(read_error_close(&masked).0, code::POLICY);
    }
}
