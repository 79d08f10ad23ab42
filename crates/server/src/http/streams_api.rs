//! Stream endpoints of the REST API (admin token): the live streams with their codecs
//! and live figures, one stream, and disconnecting a publisher.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;

use super::admin::Admin;
use super::api_doc::{stream_path, ErrorBody, StreamPathParams};
use super::extract::ApiPath;
use super::{ApiError, RequestContext};
use crate::hub::{Stream, StreamSnapshot};
use crate::Shared;

/// A live stream as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamView {
    /// The stream path, `{app}/{name}`.
    #[schema(example = "live/demo")]
    stream: String,
    app: String,
    name: String,
    video: Option<VideoView>,
    audio: Option<AudioView>,
    /// The encoder as its metadata names it.
    encoder: Option<String>,
    /// Incoming media bitrate over the last seconds.
    bitrate_in_kbps: f64,
    /// Bitrate written to all viewers together over the last seconds.
    bitrate_out_kbps: f64,
    bytes_in: u64,
    bytes_out: u64,
    frames_in: u64,
    viewers: ViewersView,
    uptime_seconds: u64,
    /// When the stream went live, Unix seconds.
    started_at: u64,
    /// Frames viewers skipped because they fell behind, over all viewers.
    frames_dropped: u64,
    /// Times a viewer fell behind and skipped to a keyframe.
    viewer_skips: u64,
    /// Viewers disconnected for staying too slow.
    viewers_dropped_slow: u64,
    /// Timestamp jumps the server smoothed over.
    timestamp_discontinuities: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VideoView {
    #[schema(example = "h264")]
    codec: String,
    width: Option<u32>,
    height: Option<u32>,
    /// Frames per second as the encoder declares them.
    declared_fps: Option<f64>,
    /// Frames per second measured over the last seconds.
    fps: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AudioView {
    #[schema(example = "aac")]
    codec: String,
    sample_rate: Option<u32>,
    channels: Option<u8>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ViewersView {
    total: u64,
    rtmp: u64,
    http_flv: u64,
    /// HLS sessions: players that fetched a playlist within `hls.session_timeout_ms`.
    hls: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StreamList {
    streams: Vec<StreamView>,
}

impl From<StreamSnapshot> for StreamView {
    fn from(s: StreamSnapshot) -> Self {
        let (app, name) = s.path.split_once('/').unwrap_or((&s.path, ""));
        let (app, name) = (app.to_owned(), name.to_owned());
        let codecs = s.codecs;
        Self {
            video: codecs.video_codec.map(|codec| VideoView {
                codec,
                width: codecs.width,
                height: codecs.height,
                declared_fps: codecs.frame_rate,
                fps: round2(s.rates.video_fps),
            }),
            audio: codecs.audio_codec.map(|codec| AudioView {
                codec,
                sample_rate: codecs.sample_rate,
                channels: codecs.channels,
            }),
            encoder: codecs.encoder,
            bitrate_in_kbps: round2(s.rates.bitrate_in_kbps),
            bitrate_out_kbps: round2(s.rates.bitrate_out_kbps),
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            frames_in: s.frames_in,
            viewers: ViewersView {
                total: s.viewers,
                rtmp: s.viewers_rtmp,
                http_flv: s.viewers_flv,
                hls: s.viewers_hls,
            },
            uptime_seconds: s.uptime_seconds,
            started_at: s.started_at_unix,
            frames_dropped: s.frames_dropped,
            viewer_skips: s.viewer_skips,
            viewers_dropped_slow: s.viewers_dropped_slow,
            timestamp_discontinuities: s.timestamp_discontinuities,
            stream: s.path,
            app,
            name,
        }
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn live_stream(shared: &Shared, app: &str, name: &str) -> Result<Arc<Stream>, ApiError> {
    let path = stream_path(app, name)?;
    shared
        .hub
        .stream(&path)
        .ok_or_else(|| ApiError::not_found(format!("stream {path} is not live")))
}

/// The live streams, sorted by path.
#[utoipa::path(get, path = "/api/v1/streams", tag = "streams",
    operation_id = "list_streams",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Live streams", body = StreamList),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
    ))]
pub(super) async fn list(_: Admin, State(shared): State<Arc<Shared>>) -> Json<StreamList> {
    let streams = shared
        .hub
        .streams()
        .iter()
        .map(|s| StreamView::from(s.snapshot()))
        .collect();
    Json(StreamList { streams })
}

/// One live stream.
#[utoipa::path(get, path = "/api/v1/streams/{app}/{name}", tag = "streams",
    operation_id = "get_stream",
    params(StreamPathParams),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The stream", body = StreamView),
        (status = 400, description = "Not a valid stream path", body = ErrorBody),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 404, description = "Not live", body = ErrorBody),
    ))]
pub(super) async fn get(
    _: Admin,
    State(shared): State<Arc<Shared>>,
    ApiPath((app, name)): ApiPath<(String, String)>,
) -> Result<Json<StreamView>, ApiError> {
    let stream = live_stream(&shared, &app, &name)?;
    Ok(Json(stream.snapshot().into()))
}

/// Disconnects the stream's publisher; its viewers see the stream end.
#[utoipa::path(delete, path = "/api/v1/streams/{app}/{name}", tag = "streams",
    operation_id = "kick_publisher",
    params(StreamPathParams),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Publisher disconnected"),
        (status = 400, description = "Not a valid stream path", body = ErrorBody),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 404, description = "Not live", body = ErrorBody),
    ))]
pub(super) async fn kick(
    _: Admin,
    State(shared): State<Arc<Shared>>,
    context: Option<Extension<RequestContext>>,
    ApiPath((app, name)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let stream = live_stream(&shared, &app, &name)?;
    stream.kick_publisher(context.map(|Extension(c)| c.trace));
    tracing::info!(stream_path = %stream.path(), "publisher kicked through the API");
    Ok(StatusCode::NO_CONTENT)
}
