//! HTTP-FLV playback: `GET /{app}/{name}.flv` answers with an endless chunked FLV
//! body (file header, metadata, codec headers, cached GOP, then live tags) until the
//! publisher leaves or the server shuts down.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream;
use onair_media::StreamPath;
use tokio_util::sync::CancellationToken;

use super::ApiError;
use crate::hub::{HubFrame, Protocol, Viewer, ViewerEnd};
use crate::Shared;

pub(super) async fn play(
    State(shared): State<Arc<Shared>>,
    Path((app, file)): Path<(String, String)>,
) -> Response {
    let mut response = match start(&shared, &app, &file) {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    // Errors carry the header too, so a browser player on another origin can read them.
    if let Ok(origin) = HeaderValue::from_str(&shared.settings.http.media_allow_origin) {
        response
            .headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    response
}

fn start(shared: &Arc<Shared>, app: &str, file: &str) -> Result<Response, ApiError> {
    let Some(name) = file.strip_suffix(".flv") else {
        return Err(ApiError::not_found("no such route"));
    };
    let path = StreamPath::new(app, name)
        .map_err(|error| ApiError::bad_request("invalid_stream", error.to_string()))?;
    let viewer = shared
        .hub
        .subscribe(&path, Protocol::HttpFlv)
        .ok_or_else(|| ApiError::not_found(format!("stream {path} is not live")))?;
    let conn_id = crate::rtmp::next_conn_id();
    tracing::info!(conn_id, proto = "http-flv", stream_path = %path, "play started");

    let codecs = viewer.stream().snapshot().codecs;
    let (has_video, has_audio) = (codecs.video_codec.is_some(), codecs.audio_codec.is_some());
    let header = onair_flv::file_header(has_audio || !has_video, has_video || !has_audio);
    let body = frames(viewer, shared.shutdown.clone(), header, conn_id);

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
    if let Ok(origin) = HeaderValue::from_str(&shared.settings.http.media_allow_origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    Ok(response)
}

/// Frames handed to the body per wake-up; hyper writes what is ready together.
const MAX_BATCH: usize = 128;

struct Playback {
    viewer: Viewer,
    batch: Vec<Arc<HubFrame>>,
    ready: std::collections::VecDeque<Bytes>,
    shutdown: CancellationToken,
    header: Option<Bytes>,
    conn_id: u64,
    finished: bool,
}

/// The body: the FLV header, then one FLV tag per frame, ending when the stream does.
fn frames(
    viewer: Viewer,
    shutdown: CancellationToken,
    header: Bytes,
    conn_id: u64,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let state = Playback {
        viewer,
        batch: Vec::new(),
        ready: std::collections::VecDeque::new(),
        shutdown,
        header: Some(header),
        conn_id,
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
                let Playback { batch, ready, .. } = &mut state;
                ready.extend(batch.drain(..).map(|frame| frame.flv_tag()));
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
    let path = state.viewer.stream().path();
    match end {
        Some(ViewerEnd::StreamEnded) => {
            tracing::info!(conn_id = state.conn_id, proto = "http-flv", stream_path = %path, reason = "publisher stopped", "play ended")
        }
        Some(end) => {
            tracing::warn!(conn_id = state.conn_id, proto = "http-flv", stream_path = %path, reason = %end, "viewer disconnected")
        }
        None => {
            tracing::info!(conn_id = state.conn_id, proto = "http-flv", stream_path = %path, reason = "server shutting down", "play ended")
        }
    }
}
