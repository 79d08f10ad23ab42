//! HTTP-FLV playback: `GET /{app}/{name}.flv` answers with an endless chunked FLV
//! body (file header, metadata, codec headers, cached GOP, then live tags) until the
//! publisher leaves or the server shuts down.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use futures_util::stream;
use onair_media::StreamPath;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::serve::{FlvRequest, Io};
use super::{ApiError, RequestContext};
use crate::hub::{
    http_chunk, ClientInfo, HubFrame, Protocol, SeatEnd, SeatEndReason, Viewer, ViewerEnd,
    WireFormat,
};
use crate::metrics::{Proto, Tracked};
use crate::trace_context::TraceContext;
use crate::write::write_queue;
use crate::Edge;

pub(super) async fn play(
    State(edge): State<Edge>,
    Path((app, file)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    context: Option<Extension<RequestContext>>,
) -> Response {
    let query = query.unwrap_or_default();
    let peer = connect.map(|Extension(ConnectInfo(peer))| peer);
    let trace = context.map_or_else(TraceContext::new_root, |Extension(c)| c.trace);
    let conn_id = onair_relay::next_conn_id();
    // A child of the request's span, which has the request id and trace id.
    let span = tracing::info_span!(
        "conn",
        conn_id,
        peer = peer.map(tracing::field::display),
        proto = "http-flv",
        app = tracing::field::Empty,
        stream = tracing::field::Empty,
    );
    let client = ClientInfo::new(conn_id, peer, query).with_trace(trace);
    match start(&edge, &app, &file, client, span) {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// A new HTTP-FLV viewer of `{app}/{file}` with the FLV file header to send first;
/// `client.query` is the request's, checked for a signature when the app needs one.
/// The stream is recorded on `span`, which the viewer's log lines are in.
fn subscribe(
    edge: &Edge,
    app: &str,
    file: &str,
    client: ClientInfo,
    span: &tracing::Span,
) -> Result<(Viewer, Bytes), ApiError> {
    let Some(name) = file.strip_suffix(".flv") else {
        return Err(ApiError::not_found("no such route"));
    };
    let path = StreamPath::new(app, name)
        .map_err(|error| ApiError::bad_request("invalid_stream", error.to_string()))?;
    span.record("app", path.app());
    span.record("stream", path.name());
    edge.live
        .get()
        .playback
        .authorize(&path, &client.query, crate::signing::unix_now())?;
    let viewer = edge
        .hub
        .subscribe_as(&path, Protocol::HttpFlv, client)
        .ok_or_else(|| ApiError::not_found(format!("stream {path} is not live")))?;
    span.in_scope(|| tracing::info!("play started"));
    let codecs = viewer.stream().snapshot().codecs;
    let (has_video, has_audio) = (codecs.video_codec.is_some(), codecs.audio_codec.is_some());
    let header = onair_flv::file_header(has_audio || !has_video, has_video || !has_audio);
    Ok((viewer, header))
}

/// Serves a connection whose first request is `GET {target}` (`/{app}/{name}.flv[?query]`)
/// directly on the socket: response head, then one chunk per FLV tag, each chunk
/// encoded once per frame for every viewer. The connection closes when the stream does.
pub(super) async fn serve_direct<S: Io>(
    mut socket: S,
    request: &FlvRequest,
    peer: SocketAddr,
    edge: Edge,
) {
    // Errors carry the grant too, so a browser player on another origin can read them.
    let live = edge.live.get();
    let cors = match super::cors_grant(&live.allowed_origins, request.origin.as_deref()) {
        Some(origin) => format!("Access-Control-Allow-Origin: {origin}\r\nVary: Origin\r\n"),
        None => String::new(),
    };
    let request_id = &request.context.id;
    let target = request.target.as_str();
    let (target, query) = target.split_once('?').unwrap_or((target, ""));
    let mut parts = target.trim_start_matches('/').splitn(2, '/');
    let (app, file) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let conn_id = onair_relay::next_conn_id();
    let trace = request.context.trace;
    let span = tracing::info_span!(
        "conn",
        conn_id,
        %peer,
        proto = "http-flv",
        request_id = %request_id,
        trace_id = %trace.trace_id(),
        app = tracing::field::Empty,
        stream = tracing::field::Empty,
    );
    let client = ClientInfo::new(conn_id, Some(peer), query).with_trace(trace);
    let (viewer, header) = match subscribe(&edge, app, file, client, &span) {
        Ok(subscribed) => subscribed,
        Err(error) => {
            let body = error.body().to_string();
            let status = error.status();
            span.in_scope(|| tracing::debug!(status = status.as_u16(), "play refused"));
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 X-Request-Id: {request_id}\r\n{cors}Connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tokio::time::timeout(Duration::from_secs(5), socket.write_all(head.as_bytes()))
                .await;
            let _ = socket.shutdown().await;
            return;
        }
    };
    let _viewing = Tracked::viewer(&edge.metrics, Proto::HttpFlv);
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nCache-Control: no-cache, no-store\r\n\
         X-Accel-Buffering: no\r\nX-Request-Id: {request_id}\r\n{cors}\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let initial = VecDeque::from([Bytes::from(head), http_chunk(&header)]);
    let timeout = Duration::from_millis(edge.hub.settings().viewer_write_timeout_ms);
    // The stream's delivery group writes the response from here on; the socket comes
    // back when the play ends, for the last chunk.
    let mut seat = viewer.seat(Box::new(socket), initial, WireFormat::HttpFlv, timeout);
    let shutdown = edge.lifecycle.shutdown.cancelled();
    let ended = tokio::select! {
        _ = shutdown => seat.stop_and_wait().await,
        ended = seat.ended() => ended,
    };
    let Some(SeatEnd {
        feed,
        mut writer,
        unwritten: mut out,
        reason,
    }) = ended.map(|end| *end)
    else {
        return;
    };
    match &reason {
        SeatEndReason::Write(error) => {
            if error.kind() == std::io::ErrorKind::TimedOut {
                edge.metrics.viewer_write_timeout();
            }
            span.in_scope(|| tracing::info!(reason = %error, "viewer left"));
        }
        SeatEndReason::WriteTimeout(_) => {
            edge.metrics.viewer_write_timeout();
            span.in_scope(|| tracing::info!(%reason, "viewer left"));
        }
        SeatEndReason::Feed(ViewerEnd::StreamEnded) | SeatEndReason::Stopped => {
            span.in_scope(|| tracing::info!("play ended"));
            out.push_back(Bytes::from_static(b"0\r\n\r\n"));
            let _ =
                tokio::time::timeout(Duration::from_secs(1), write_queue(&mut writer, &mut out))
                    .await;
        }
        SeatEndReason::Feed(end) => {
            span.in_scope(|| tracing::warn!(reason = %end, "viewer disconnected"));
        }
    }
    drop(feed);
    let _ = tokio::time::timeout(Duration::from_secs(1), writer.shutdown()).await;
}

fn start(
    edge: &Edge,
    app: &str,
    file: &str,
    client: ClientInfo,
    span: tracing::Span,
) -> Result<Response, ApiError> {
    let (viewer, header) = subscribe(edge, app, file, client, &span)?;
    let viewing = Tracked::viewer(&edge.metrics, Proto::HttpFlv);
    let body = frames(
        viewer,
        viewing,
        edge.lifecycle.shutdown.clone(),
        header,
        span,
    );

    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("video/x-flv"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    // A proxy that buffers responses (nginx by default) would hold the live stream back.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// Frames handed to the body per wake-up; hyper writes what is ready together.
const MAX_BATCH: usize = 128;

struct Playback {
    viewer: Viewer,
    _viewing: Tracked,
    batch: Vec<Arc<HubFrame>>,
    ready: std::collections::VecDeque<Bytes>,
    shutdown: CancellationToken,
    header: Option<Bytes>,
    span: tracing::Span,
    finished: bool,
}

/// The body: the FLV header, then one FLV tag per frame, ending when the stream does.
fn frames(
    viewer: Viewer,
    viewing: Tracked,
    shutdown: CancellationToken,
    header: Bytes,
    span: tracing::Span,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let state = Playback {
        viewer,
        _viewing: viewing,
        batch: Vec::new(),
        ready: std::collections::VecDeque::new(),
        shutdown,
        header: Some(header),
        span,
        finished: false,
    };
    stream::unfold(state, |mut state| async move {
        if state.finished {
            return None;
        }
        if let Some(header) = state.header.take() {
            return Some((Ok(header), state));
        }
        if let Some(tag) = state.ready.pop_front() {
            return Some((Ok(tag), state));
        }
        let next = tokio::select! {
            _ = state.shutdown.cancelled() => Err(None),
            next = state.viewer.next_batch(&mut state.batch, MAX_BATCH) => next.map_err(Some),
        };
        match next {
            Ok(()) => {
                let Playback {
                    batch,
                    ready,
                    viewer,
                    ..
                } = &mut state;
                ready.extend(batch.drain(..).map(|frame| frame.flv_tag()));
                viewer
                    .stream()
                    .add_bytes_out(ready.iter().map(Bytes::len).sum());
                let tag = state.ready.pop_front()?;
                Some((Ok(tag), state))
            }
            Err(end) => {
                log_end(&state, end.as_ref());
                state.finished = true;
                match end {
                    // Cut the connection so the player sees it was not a clean end.
                    Some(end @ ViewerEnd::TooSlow { .. }) => {
                        Some((Err(std::io::Error::other(end.to_string())), state))
                    }
                    _ => None,
                }
            }
        }
    })
}

fn log_end(state: &Playback, end: Option<&ViewerEnd>) {
    let _entered = state.span.enter();
    match end {
        Some(ViewerEnd::StreamEnded) => {
            tracing::info!(reason = "publisher stopped", "play ended")
        }
        Some(end) => {
            tracing::warn!(reason = %end, "viewer disconnected")
        }
        None => {
            tracing::info!(reason = "server shutting down", "play ended")
        }
    }
}
