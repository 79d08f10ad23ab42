//! `GET /api/v1/live`: the public, read-only list of live streams behind the page at
//! `/`. No token; only what a viewer may see anyway (path, codecs, picture size,
//! viewers, uptime): no addresses, byte counts, keys or encoder details. Streams of
//! apps that need signed playback are left out. `pages.public_stream_list = false`
//! turns it off (404).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::api_doc::ErrorBody;
use super::ApiError;
use crate::hub::StreamSnapshot;
use crate::Shared;

/// A live stream as anyone may see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicStream {
    /// The stream path, `{app}/{name}`.
    #[schema(example = "live/demo")]
    stream: String,
    app: String,
    name: String,
    video: Option<PublicVideo>,
    audio: Option<PublicAudio>,
    /// Media viewers of every protocol.
    viewers: u64,
    uptime_seconds: u64,
    /// When the stream went live, Unix seconds.
    started_at: u64,
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

impl From<StreamSnapshot> for PublicStream {
    fn from(s: StreamSnapshot) -> Self {
        let (app, name) = s.path.split_once('/').unwrap_or((&s.path, ""));
        let (app, name) = (app.to_owned(), name.to_owned());
        let codecs = s.codecs;
        Self {
            video: codecs.video_codec.map(|codec| PublicVideo {
                codec,
                width: codecs.width,
                height: codecs.height,
                fps: (s.rates.video_fps * 10.0).round() / 10.0,
            }),
            audio: codecs.audio_codec.map(|codec| PublicAudio { codec }),
            viewers: s.viewers,
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
    State(shared): State<Arc<Shared>>,
) -> Result<Json<PublicStreamList>, ApiError> {
    if !shared.settings.pages.public_stream_list {
        return Err(ApiError::not_found("the public stream list is turned off"));
    }
    let playback = &shared.live.get().playback;
    let streams = shared
        .hub
        .streams()
        .iter()
        .filter(|s| !playback.required_for(s.path().app()))
        .map(|s| PublicStream::from(s.snapshot()))
        .collect();
    Ok(Json(PublicStreamList { streams }))
}
