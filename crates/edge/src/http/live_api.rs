//! `GET /api/v1/live`: the public, read-only list of live streams behind the page at
//! `/`, and `GET /api/v1/live/{app}/{name}`, one stream live or not, behind the watch
//! page's title and offline card. No token; only what a viewer may see anyway (path,
//! title, codecs, picture size, viewers, uptime, when it was last live): no addresses,
//! byte counts, keys or encoder details. Streams of apps that need signed playback are
//! left out. `pages.public_stream_list = false` turns both off (404).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::api_doc::{stream_path, ErrorBody, StreamPathParams};
use super::extract::ApiPath;
use super::ApiError;
use crate::hub::Hub;
use crate::hub::{Stream, StreamSnapshot};
use crate::rooms::RoomHub;
use crate::store::StreamInfo;
use crate::EdgeConfig;
use onair_control::live::Live;
use onair_control::stream_info::StreamInfos;

/// A live stream as anyone may see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicStream {
    /// The stream path, `{app}/{name}`.
    #[schema(example = "live/demo")]
    stream: String,
    app: String,
    name: String,
    /// Set by the platform (`PATCH /api/v1/streams/{app}/{name}`).
    #[schema(example = "Friday night speedruns")]
    title: Option<String>,
    description: Option<String>,
    video: Option<PublicVideo>,
    audio: Option<PublicAudio>,
    /// People watching, each counted once (docs/rooms.md, "Viewers").
    viewers: u64,
    uptime_seconds: u64,
    /// When the stream went live, Unix seconds.
    started_at: u64,
}

/// One stream, live or not.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicStreamState {
    #[schema(example = "live/demo")]
    stream: String,
    app: String,
    name: String,
    live: bool,
    title: Option<String>,
    description: Option<String>,
    /// When the stream was last seen live, Unix seconds (now, while it is live);
    /// `null` if never.
    last_live_at: Option<u64>,
    /// When the stream went live, Unix seconds; `null` while offline.
    started_at: Option<u64>,
    /// People watching, each counted once (0 while offline).
    viewers: u64,
    uptime_seconds: u64,
    video: Option<PublicVideo>,
    audio: Option<PublicAudio>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicVideo {
    #[schema(example = "h264")]
    codec: String,
    width: Option<u32>,
    height: Option<u32>,
    /// Frames per second measured over the last seconds.
    fps: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicAudio {
    #[schema(example = "aac")]
    codec: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicStreamList {
    streams: Vec<PublicStream>,
}

impl PublicStream {
    fn new(s: StreamSnapshot, info: &StreamInfo, viewers: u64) -> Self {
        let (app, name) = s.path.split_once('/').unwrap_or((&s.path, ""));
        let (app, name) = (app.to_owned(), name.to_owned());
        let codecs = s.codecs;
        Self {
            title: info.title.clone(),
            description: info.description.clone(),
            video: codecs.video_codec.map(|codec| PublicVideo {
                codec,
                width: codecs.width,
                height: codecs.height,
                fps: (s.rates.video_fps * 10.0).round() / 10.0,
            }),
            audio: codecs.audio_codec.map(|codec| PublicAudio { codec }),
            viewers,
            uptime_seconds: s.uptime_seconds,
            started_at: s.started_at_unix,
            stream: s.path,
            app,
            name,
        }
    }
}

/// The live streams anyone may watch, sorted by path. Public: no token.
#[utoipa::path(get, path = "/api/v1/live", tag = "streams",
    operation_id = "list_live_streams_public",
    responses(
        (status = 200, description = "Live streams, public fields only", body = PublicStreamList),
        (status = 404, description = "The public stream list is turned off", body = ErrorBody),
    ))]
pub(super) async fn list(
    State(hub): State<Arc<Hub>>,
    State(live): State<Arc<Live>>,
    State(stream_infos): State<Arc<StreamInfos>>,
    State(rooms): State<Arc<RoomHub>>,
    State(config): State<Arc<EdgeConfig>>,
) -> Result<Json<PublicStreamList>, ApiError> {
    if !config.settings.pages.public_stream_list {
        return Err(ApiError::not_found("the public stream list is turned off"));
    }
    let public: Vec<_> = {
        let playback = &live.get().playback;
        hub.streams()
            .into_iter()
            .filter(|s| !playback.required_for(s.path().app()))
            .collect()
    };
    let mut streams = Vec::with_capacity(public.len());
    for stream in public {
        streams.push(public_stream(&stream_infos, &rooms, &stream).await);
    }
    Ok(Json(PublicStreamList { streams }))
}

/// One stream, live or offline, with its title and when it was last live. Public: no
/// token. Every valid path answers, whether or not it was ever live.
#[utoipa::path(get, path = "/api/v1/live/{app}/{name}", tag = "streams",
    operation_id = "get_live_stream_public",
    params(StreamPathParams),
    responses(
        (status = 200, description = "The stream, public fields only", body = PublicStreamState),
        (status = 400, description = "`invalid_stream` or `invalid_path`", body = ErrorBody),
        (status = 404, description = "The public stream list is turned off, or the app \
            needs signed playback", body = ErrorBody),
        (status = 500, description = "`storage_error`: the database failed", body = ErrorBody),
    ))]
pub(super) async fn show(
    State(hub): State<Arc<Hub>>,
    State(live): State<Arc<Live>>,
    State(stream_infos): State<Arc<StreamInfos>>,
    State(rooms): State<Arc<RoomHub>>,
    State(config): State<Arc<EdgeConfig>>,
    ApiPath((app, name)): ApiPath<(String, String)>,
) -> Result<Json<PublicStreamState>, ApiError> {
    if !config.settings.pages.public_stream_list {
        return Err(ApiError::not_found("the public stream list is turned off"));
    }
    let path = stream_path(&app, &name)?;
    if live.get().playback.required_for(path.app()) {
        return Err(ApiError::not_found(format!(
            "stream {path} is not in the public list (its app needs signed playback)"
        )));
    }
    if let Some(stream) = hub.stream(&path) {
        let live = public_stream(&stream_infos, &rooms, &stream).await;
        return Ok(Json(PublicStreamState {
            stream: live.stream,
            app: live.app,
            name: live.name,
            live: true,
            title: live.title,
            description: live.description,
            last_live_at: Some(crate::signing::unix_now()),
            started_at: Some(live.started_at),
            viewers: live.viewers,
            uptime_seconds: live.uptime_seconds,
            video: live.video,
            audio: live.audio,
        }));
    }
    let info = stream_infos
        .get(&path)
        .await
        .map_err(|e| ApiError::storage(&e))?;
    Ok(Json(PublicStreamState {
        stream: path.to_string(),
        app: path.app().to_owned(),
        name: path.name().to_owned(),
        live: false,
        title: info.title.clone(),
        description: info.description.clone(),
        last_live_at: info.last_live_at,
        started_at: None,
        viewers: 0,
        uptime_seconds: 0,
        video: None,
        audio: None,
    }))
}

async fn public_stream(infos: &StreamInfos, rooms: &RoomHub, stream: &Stream) -> PublicStream {
    let info = infos.for_view(stream.path()).await;
    let snapshot = stream.snapshot();
    let viewers = snapshot.viewers.max(rooms.audience_members(stream.path()));
    PublicStream::new(snapshot, &info, viewers)
}
