//! Stream endpoints of the REST API (admin token): the live streams with their codecs
//! and live figures, one stream, its title and description, and disconnecting a
//! publisher.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use onair_media::StreamPath;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::admin::Admin;
use super::api_doc::{stream_path, ErrorBody, StreamPathParams};
use super::extract::{ApiJson, ApiPath};
use super::text_field::TextField;
use super::{ApiError, RequestContext};
use crate::hub::{Hub, Stream, StreamSnapshot};
use crate::rooms::RoomHub;
use crate::store::{StoreError, StreamInfo, StreamInfoPatch};
use onair_control::stream_info::StreamInfos;

/// A live stream as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamView {
    /// The stream path, `{app}/{name}`.
    #[schema(example = "live/demo")]
    stream: String,
    app: String,
    name: String,
    /// Set with `PATCH /api/v1/streams/{app}/{name}`.
    title: Option<String>,
    description: Option<String>,
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

/// Who watches. `total` counts people, each once; the rest count playbacks and room
/// connections, so `total` is not their sum (docs/rooms.md, "Viewers").
#[derive(Debug, Serialize, ToSchema)]
pub struct ViewersView {
    /// People watching: the larger of the playbacks and the room's audience.
    total: u64,
    rtmp: u64,
    http_flv: u64,
    /// HLS sessions: players that fetched a playlist within `hls.session_timeout_ms`.
    hls: u64,
    /// Anonymous and viewer-role connections in the stream's room (not moderators,
    /// streamers or the platform's own).
    room: u64,
}

/// `PATCH /api/v1/streams/{app}/{name}`: a field left out stays as it is, `null`
/// clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PatchStream {
    /// At most 140 characters, no control characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 140,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$", example = "Friday night speedruns")]
    title: Option<Option<String>>,
    /// At most 2000 characters; line breaks allowed, no other control characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 2000,
        pattern = r"^[^\x00-\x09\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    description: Option<Option<String>>,
}

/// A stream's title and description as saved, live or not.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct StreamInfoView {
    #[schema(example = "live/demo")]
    stream: String,
    title: Option<String>,
    description: Option<String>,
    /// When the stream was last seen live, Unix seconds; `null` if never.
    last_live_at: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StreamList {
    streams: Vec<StreamView>,
}

impl StreamView {
    fn new(s: StreamSnapshot, info: &StreamInfo, audience: Audience) -> Self {
        let (app, name) = s.path.split_once('/').unwrap_or((&s.path, ""));
        let (app, name) = (app.to_owned(), name.to_owned());
        let codecs = s.codecs;
        Self {
            title: info.title.clone(),
            description: info.description.clone(),
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
                total: audience.total,
                rtmp: s.viewers_rtmp,
                http_flv: s.viewers_flv,
                hls: s.viewers_hls,
                room: audience.room,
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

/// The people count of a stream and the room part of it.
struct Audience {
    total: u64,
    room: u64,
}

async fn view(infos: &StreamInfos, rooms: &RoomHub, stream: &Stream) -> StreamView {
    let info = infos.for_view(stream.path()).await;
    let snapshot = stream.snapshot();
    let room = rooms.audience_members(stream.path());
    let audience = Audience {
        total: snapshot.viewers.max(room),
        room,
    };
    StreamView::new(snapshot, &info, audience)
}

fn live_stream(hub: &Hub, app: &str, name: &str) -> Result<Arc<Stream>, ApiError> {
    let path = stream_path(app, name)?;
    hub.stream(&path)
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
pub(super) async fn list(
    _: Admin,
    State(hub): State<Arc<Hub>>,
    State(infos): State<Arc<StreamInfos>>,
    State(rooms): State<Arc<RoomHub>>,
) -> Json<StreamList> {
    let mut streams = Vec::new();
    for stream in hub.streams() {
        streams.push(view(&infos, &rooms, &stream).await);
    }
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
    State(hub): State<Arc<Hub>>,
    State(infos): State<Arc<StreamInfos>>,
    State(rooms): State<Arc<RoomHub>>,
    ApiPath((app, name)): ApiPath<(String, String)>,
) -> Result<Json<StreamView>, ApiError> {
    let stream = live_stream(&hub, &app, &name)?;
    Ok(Json(view(&infos, &rooms, &stream).await))
}

/// Sets the stream's title or description, shown on the pages and in the public
/// stream list. The stream need not be live: they are kept for its next publish and
/// its offline card.
#[utoipa::path(patch, path = "/api/v1/streams/{app}/{name}", tag = "streams",
    operation_id = "update_stream",
    params(StreamPathParams),
    request_body = PatchStream,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The title and description now", body = StreamInfoView),
        (status = 400, description = "`invalid_json`, `invalid_body`, `invalid_stream`, \
            `invalid_path`, `invalid_title` or `invalid_description`", body = ErrorBody),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 404, description = "A reserved app (`api`, `ws`, …)", body = ErrorBody),
        (status = 409, description = "`too_many_streams`: store.max_stream_infos streams \
            have a title", body = ErrorBody),
        (status = 500, description = "`storage_error`: the database failed", body = ErrorBody),
    ))]
pub(super) async fn update(
    _: Admin,
    State(infos): State<Arc<StreamInfos>>,
    ApiPath((app, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<PatchStream>,
) -> Result<Json<StreamInfoView>, ApiError> {
    let path = stream_path(&app, &name)?;
    let patch = StreamInfoPatch {
        title: body.title,
        description: body.description,
    };
    let info = set_stream_info(&infos, &path, patch).await?;
    Ok(Json(StreamInfoView {
        stream: path.to_string(),
        title: info.title.clone(),
        description: info.description.clone(),
        last_live_at: info.last_live_at,
    }))
}

/// Checks and saves a title/description change (also made with a new key).
pub(super) async fn set_stream_info(
    infos: &StreamInfos,
    path: &StreamPath,
    patch: StreamInfoPatch,
) -> Result<Arc<StreamInfo>, ApiError> {
    check_stream_info(&patch)?;
    let info = infos
        .update(path, patch)
        .await
        .map_err(|error| match error {
            StoreError::TooManyStreams { .. } => {
                ApiError::new(StatusCode::CONFLICT, "too_many_streams", error.to_string())
            }
            error => ApiError::storage(&error),
        })?;
    tracing::info!(stream = %path, title = ?info.title, "stream info updated");
    Ok(info)
}

/// Refuses a title or description that is too long or holds control characters.
fn check_stream_info(patch: &StreamInfoPatch) -> Result<(), ApiError> {
    const TITLE: TextField = TextField {
        name: "title",
        code: "invalid_title",
        min_chars: 0,
        max_chars: 140,
        line_breaks: false,
    };
    const DESCRIPTION: TextField = TextField {
        name: "description",
        code: "invalid_description",
        min_chars: 0,
        max_chars: 2000,
        line_breaks: true,
    };
    if let Some(Some(title)) = &patch.title {
        TITLE.check(title)?;
    }
    if let Some(Some(description)) = &patch.description {
        DESCRIPTION.check(description)?;
    }
    Ok(())
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D>(deserializer: D) -> Result<Option<Option<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<String>::deserialize(deserializer).map(Some)
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
    State(hub): State<Arc<Hub>>,
    context: Option<Extension<RequestContext>>,
    ApiPath((app, name)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let stream = live_stream(&hub, &app, &name)?;
    stream.kick_publisher(context.map(|Extension(c)| c.trace));
    tracing::info!(stream_path = %stream.path(), "publisher kicked through the API");
    Ok(StatusCode::NO_CONTENT)
}
