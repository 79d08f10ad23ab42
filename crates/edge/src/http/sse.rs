//! Room over Server-Sent Events, read-only: `GET /sse/{app}/{name}[?token=T]`. Each
//! event carries `id:` (its seq, when kept in history), `event:` (its type) and `data:`
//! (the same JSON as the WebSocket). A reconnecting EventSource sends `Last-Event-ID`
//! and gets what it missed.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use futures_util::stream;
use onair_rooms::ErrorCode;

use super::room_access::{self, RoomQuery};
use super::ApiError;
use crate::metrics::{MemberMetrics, Proto};
use crate::rooms::{Member, MemberStats};
use crate::Edge;

const KEEPALIVE: Bytes = Bytes::from_static(b": keep-alive\n\n");

pub(super) async fn subscribe(
    State(edge): State<Edge>,
    Path((app, name)): Path<(String, String)>,
    Query(query): Query<RoomQuery>,
    headers: HeaderMap,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Response {
    let peer = connect.map(|Extension(ConnectInfo(peer))| peer);
    let span = room_access::connection_span("sse", peer);
    match start(&edge, &app, &name, &query, &headers, span) {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn start(
    edge: &Edge,
    app: &str,
    name: &str,
    query: &RoomQuery,
    headers: &HeaderMap,
    span: tracing::Span,
) -> Result<Response, ApiError> {
    let path = room_access::room_path(app, name)
        .ok_or_else(|| ApiError::not_found("not a valid stream path"))?;
    span.record("room", tracing::field::display(&path));
    room_access::check_signature(&edge.live, &path, query)?;
    let identity = room_access::identity(&edge.live, query, headers)
        .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "bad_token", e.to_string()))?;
    if let Some(user_id) = identity.user_id() {
        span.record("user_id", user_id);
    }
    let since = room_access::resume_from(query, headers);
    let member = Member::join(&edge.rooms, &path, identity, since).map_err(|e| {
        let status = match e.code() {
            ErrorCode::Banned => StatusCode::FORBIDDEN,
            ErrorCode::RoomFull | ErrorCode::TooManyRooms => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.code().as_str(), e.to_string())
    })?;
    let flush = Duration::from_millis(edge.settings().http.room_flush_interval_ms);
    let member = member
        .with_flush_interval(flush)
        .with_room_write_budget(std::sync::Arc::clone(&edge.room_writes));
    span.record("conn_id", member.conn().0);
    span.in_scope(|| tracing::debug!("room connection open"));
    let mut response = Body::from_stream(events(member, edge.clone(), span)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

struct Feed {
    shutdown: std::pin::Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
    member: Member,
    metrics: MemberMetrics,
    edge: Edge,
    keepalive: tokio::time::Interval,
    /// Entered for log lines only.
    span: tracing::Span,
    done: bool,
}

fn events(
    member: Member,
    edge: Edge,
    span: tracing::Span,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let period = Duration::from_millis(edge.settings().http.sse_keepalive_ms);
    let mut keepalive = tokio::time::interval(period);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let feed = Feed {
        // Registered once for the stream's life, not once per batch.
        shutdown: Box::pin(edge.lifecycle.shutdown.clone().cancelled_owned()),
        metrics: MemberMetrics::new(&edge.metrics, Proto::Sse),
        member,
        edge,
        keepalive,
        span,
        done: false,
    };
    stream::unfold(feed, |mut feed| async move {
        if feed.done {
            return None;
        }
        let max = feed.edge.settings().http.room_batch_events;
        let mut batch = Vec::new();
        tokio::select! {
            _ = &mut feed.shutdown => return None,
            _ = feed.keepalive.tick() => return Some((Ok(KEEPALIVE), feed)),
            next = feed.member.next_batch(&mut batch, max) => {
                if let Err(end) = next {
                    feed.metrics.ended(&feed.member, &end);
                    feed.span.in_scope(|| tracing::debug!(reason = %end, "room stream ended"));
                    feed.done = true;
                    let comment = format!(": closed: {end}\n\n");
                    return Some((Ok(Bytes::from(comment)), feed));
                }
            }
        }
        feed.keepalive.reset();
        feed.metrics.delivered(batch.len(), &feed.member);
        let mut body = Vec::with_capacity(batch.iter().map(|e| e.sse().len()).sum());
        for event in &batch {
            body.extend_from_slice(event.sse());
        }
        Some((Ok(Bytes::from(body)), feed))
    })
}
