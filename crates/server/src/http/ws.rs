//! Room over WebSocket: `GET /ws/{app}/{name}[?since=SEQ][&token=T]`. One JSON event per
//! text frame out; client messages as text frames in. Errors about a message come back
//! as `error` events and the connection stays; everything else closes it with a code
//! from docs/rooms.md.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::{SinkExt, StreamExt};
use onair_rooms::{Envelope, Error as RoomError, ErrorCode};
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::room_access::{self, RoomQuery};
use super::ws_frames::write_frames;
use super::ws_upgrade::{WsStream, WsUpgrade};
use super::ApiError;
use crate::metrics::{MemberMetrics, Proto};
use crate::rooms::{Member, MemberEnd};
use crate::Shared;

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

/// Longest a batch write may take before the client counts as too slow.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Each connection's read buffer, allocated at the upgrade.
const READ_BUFFER: usize = 1024;

pub(super) async fn upgrade(
    State(shared): State<Arc<Shared>>,
    Path((app, name)): Path<(String, String)>,
    Query(query): Query<RoomQuery>,
    headers: HeaderMap,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    upgrade: WsUpgrade,
) -> Response {
    let peer = connect.map(|Extension(ConnectInfo(peer))| peer);
    let span = room_access::connection_span("ws", peer);
    if !room_access::origin_allowed(&shared.live.get().allowed_origins, &headers) {
        return ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this Origin may not open room connections",
        )
        .into_response();
    }
    // Refused before the upgrade, with a JSON body, like the other playback protocols.
    if let Some(path) = room_access::room_path(&app, &name) {
        if let Err(error) = room_access::check_signature(&shared, &path, &query) {
            return ApiError::from(error).into_response();
        }
    }
    let settings = &shared.settings.http;
    // A small read buffer keeps an idle member near a few KiB (client messages are
    // small; a larger one grows it as needed). Events are written pre-framed, around
    // tungstenite, which writes only pings, pongs and the close frame.
    let config = WebSocketConfig::default()
        .max_message_size(Some(settings.ws_max_message_bytes))
        .max_frame_size(Some(settings.ws_max_message_bytes))
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0);
    let joining = join(&shared, &app, &name, &query, &headers, &span);
    upgrade.on_upgrade(config, move |socket| async move {
        match joining {
            Ok(member) => run(socket, member, shared, span).await,
            Err((code, reason)) => {
                span.in_scope(|| tracing::debug!(code, %reason, "room connection refused"));
                Box::pin(close(socket, code, &reason)).await;
            }
        }
    })
}

fn join(
    shared: &Arc<Shared>,
    app: &str,
    name: &str,
    query: &RoomQuery,
    headers: &HeaderMap,
    span: &tracing::Span,
) -> Result<Member, (u16, String)> {
    let path = room_access::room_path(app, name)
        .ok_or_else(|| (code::NO_ROOM, "not a valid stream path".to_owned()))?;
    span.record("room", tracing::field::display(&path));
    let identity = room_access::identity(shared, query, headers)
        .map_err(|e| (code::BAD_TOKEN, e.to_string()))?;
    if let Some(user_id) = identity.user_id() {
        span.record("user_id", user_id);
    }
    let since = room_access::resume_from(query, headers);
    let flush = Duration::from_millis(shared.settings.http.room_flush_interval_ms);
    let member = Member::join(&shared.rooms, &path, identity, since)
        .map(|member| member.with_flush_interval(flush))
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

/// Log lines go into `span`, entered for them only: the loop wakes for every event.
///
/// Every write is boxed: this future lives as long as the connection, and an idle
/// connection should not carry the space of a write in progress (it is most of an idle
/// member's memory; the allocation is small next to the system call it comes with).
async fn run(mut socket: WsStream, mut member: Member, shared: Arc<Shared>, span: tracing::Span) {
    let settings = &shared.settings.http;
    let idle_timeout = Duration::from_millis(settings.ws_idle_timeout_ms);
    let mut ping = tokio::time::interval(Duration::from_millis(settings.ws_ping_interval_ms));
    ping.tick().await;
    // Registered once, not per wake-up: a fresh `cancelled()` and `sleep_until()` in
    // every loop would add and remove a waiter and a timer for each batch delivered.
    let shutdown = shared.shutdown.cancelled();
    tokio::pin!(shutdown);
    let idle = sleep_until(Instant::now() + idle_timeout);
    tokio::pin!(idle);
    // Grows to the batches this connection gets; an idle one keeps no room for 64.
    let mut batch: Vec<Arc<Envelope>> = Vec::new();
    let mut metrics = MemberMetrics::new(&shared.metrics, Proto::Ws);
    // Whether tungstenite may hold a frame not yet written (a pong to a ping it read).
    let mut unflushed = false;
    span.in_scope(|| tracing::debug!("room connection open"));
    let (code, reason) = loop {
        // In this order, not at random: a batch wake-up (most of them) then polls no other
        // branch. Reads are not starved: after a write, `next_batch` waits for the flush
        // interval, or (interval 0) returns pending once the ring is drained.
        tokio::select! {
            biased;
            _ = &mut shutdown => break (code::GOING_AWAY, "server shutting down".to_owned()),
            next = member.next_batch(&mut batch, settings.room_batch_events) => {
                if let Err(end) = next {
                    metrics.ended(&member, &end);
                    break member_close(&end);
                }
                metrics.delivered(batch.len(), &member);
                let frames: Vec<&[u8]> = batch.iter().map(|e| e.ws_frame().as_ref()).collect();
                let sent = Box::pin(send(&mut socket, &frames, std::mem::take(&mut unflushed))).await;
                drop(frames);
                batch.clear();
                if sent.is_err() {
                    break (code::TOO_SLOW, "client does not read fast enough".to_owned());
                }
            }
            incoming = socket.next() => {
                unflushed = true;
                idle.as_mut().reset(Instant::now() + idle_timeout);
                match incoming {
                    None | Some(Ok(Message::Close(_))) => break (code::NORMAL, "closed by client".to_owned()),
                    Some(Ok(Message::Text(text))) => {
                        if let Err(error) = span.in_scope(|| member.handle_text(text.as_str())) {
                            let reply = error.to_envelope(crate::rooms::now());
                            let frame = [reply.ws_frame().as_ref()];
                            if Box::pin(send(&mut socket, &frame, std::mem::take(&mut unflushed))).await.is_err() {
                                break (code::TOO_SLOW, "reply not written".to_owned());
                            }
                        }
                    }
                    Some(Ok(Message::Binary(_))) => break (code::UNSUPPORTED, "binary frames are not accepted".to_owned()),
                    Some(Ok(_)) => {} // ping/pong: answered by the library
                    Some(Err(error)) => break read_error_close(&error),
                }
            }
            _ = &mut idle => break (code::POLICY, "idle timeout".to_owned()),
            _ = ping.tick() => {
                // Sent (and flushed, a pending pong first) through tungstenite.
                unflushed = false;
                if Box::pin(send_control(&mut socket, Message::Ping(Default::default()))).await.is_err() {
                    break (code::TOO_SLOW, "ping not written".to_owned());
                }
            }
        }
    };
    span.in_scope(|| tracing::debug!(code, %reason, "room connection closed"));
    drop(member);
    Box::pin(close(socket, code, &reason)).await;
}

/// Writes `frames` (whole frames, each a [`Envelope::ws_frame`]) straight to the socket
/// and flushes, within the write timeout. With `unflushed` (the socket was read since
/// tungstenite last wrote), whatever tungstenite holds (a pong) goes first, so frames
/// never interleave.
async fn send(socket: &mut WsStream, frames: &[&[u8]], unflushed: bool) -> Result<(), ()> {
    let write = async {
        if unflushed {
            socket.flush().await.map_err(std::io::Error::other)?;
        }
        write_frames(socket.get_mut(), frames).await
    };
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Sends a control frame through tungstenite, within the write timeout.
async fn send_control(socket: &mut WsStream, message: Message) -> Result<(), ()> {
    match tokio::time::timeout(WRITE_TIMEOUT, socket.send(message)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

fn read_error_close(error: &tokio_tungstenite::tungstenite::Error) -> (u16, String) {
    let text = error.to_string();
    if text.contains("Space limit exceeded")
        || text.contains("too long")
        || text.contains("too big")
    {
        (
            code::TOO_LARGE,
            "message larger than the maximum".to_owned(),
        )
    } else {
        (code::POLICY, format!("read failed: {text}"))
    }
}

fn member_close(end: &MemberEnd) -> (u16, String) {
    let code = match end {
        MemberEnd::Closed(_) => code::FORBIDDEN,
        MemberEnd::TooSlow => code::TOO_SLOW,
        MemberEnd::RoomGone => code::GOING_AWAY,
    };
    (code, end.to_string())
}

async fn close(mut socket: WsStream, code: u16, reason: &str) {
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
