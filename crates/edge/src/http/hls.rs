//! HLS playback: `GET /{app}/{name}/index.m3u8` (multivariant playlist), the media
//! playlist `stream.m3u8` with LL-HLS blocking reload and delta updates, and the init
//! segments, segments and parts it names, all from memory.
//!
//! Every URI handed out carries the request's playback signature and the player's
//! session id, so signed playback works below the first playlist and HLS viewers are
//! counted per player, not per request.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRef, Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use onair_hls::{blocking_deadline, Directives, Readiness, Resource, Variant};
use onair_media::StreamPath;

use super::request_context::QuietLog;
use super::ApiError;
use crate::hls::Hls;
use crate::hls::{session_in, session_param, Fetch, HlsStream};
use crate::hub::Hub;
use crate::signing::{signature_params, with_params};
use crate::Edge;
use onair_control::live::Live;

const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
/// Playlists change with every part; media under a URI never changes.
const PLAYLIST_CACHE: &str = "no-cache";
const MEDIA_CACHE: &str = "public, max-age=3600, immutable";
/// Advertised when the stream's bitrate is not known yet.
const DEFAULT_BANDWIDTH: u64 = 2_000_000;

/// What serving HLS reads: the playlists and media, the live stream's bitrate and
/// codecs, and the playback signing keys.
pub(super) struct HlsSources {
    hls: Arc<Hls>,
    hub: Arc<Hub>,
    live: Arc<Live>,
}

impl FromRef<Edge> for HlsSources {
    fn from_ref(edge: &Edge) -> Self {
        Self {
            hls: Arc::clone(&edge.hls),
            hub: Arc::clone(&edge.hub),
            live: Arc::clone(&edge.live),
        }
    }
}

pub(super) async fn serve(
    State(sources): State<HlsSources>,
    Path((app, name, file)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    match respond(&sources, &app, &name, &file, &query).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn respond(
    sources: &HlsSources,
    app: &str,
    name: &str,
    file: &str,
    query: &str,
) -> Result<Response, ApiError> {
    // Three segments under a reserved app (`/watch/live/demo` with pages off) are no
    // HLS request at all.
    let path = StreamPath::new(app, name).map_err(|_| ApiError::not_found("no such route"))?;
    sources
        .live
        .get()
        .playback
        .authorize(&path, query, crate::signing::unix_now())?;
    let stream = sources
        .hls
        .stream(&path)
        .ok_or_else(|| ApiError::not_found(format!("stream {path} is not live")))?;
    let now = Instant::now();
    let session = session_in(query);
    if let Some(id) = session {
        stream.touch_session(id, now);
    }
    let start_session = || {
        sources.hls.session_started();
        stream.start_session(now)
    };
    match file {
        "index.m3u8" => {
            let id = session.unwrap_or_else(start_session);
            Ok(multivariant(
                &sources.hub,
                &path,
                &stream,
                &carried(query, id),
            ))
        }
        "stream.m3u8" => match session {
            Some(id) => media_playlist(&stream, query, &carried(query, id)).await,
            // A player that skipped the multivariant playlist gets a session here.
            None => {
                let id = start_session();
                let location = with_params("stream.m3u8", &with_params(query, &session_param(id)));
                Ok(redirect(&location))
            }
        },
        "ts.m3u8" => {
            let id = session.unwrap_or_else(start_session);
            let text = stream.render_ts(&carried(query, id)).ok_or_else(|| {
                ApiError::not_found("the MPEG-TS rendition is off (hls.legacy_ts)")
            })?;
            Ok(playlist_response(text))
        }
        _ if file.ends_with(".ts") => {
            let bytes = onair_hls::parse_ts_segment(file)
                .and_then(|msn| stream.ts_segment(msn))
                .ok_or_else(|| ApiError::not_found("no such segment"))?;
            Ok(media_bytes("video/mp2t", bytes))
        }
        _ => {
            let resource = onair_hls::parse_resource(file)
                .ok_or_else(|| ApiError::not_found("no such HLS resource"))?;
            media(&stream, &resource).await
        }
    }
}

/// What every URI below a playlist carries: the signature and the session.
fn carried(query: &str, id: crate::hls::SessionId) -> String {
    let session = session_param(id);
    match signature_params(query) {
        Some(signature) => format!("{signature}&{session}"),
        None => session,
    }
}

fn multivariant(hub: &Hub, path: &StreamPath, stream: &HlsStream, carried: &str) -> Response {
    let live = hub.stream(path).map(|s| s.snapshot());
    let codecs = live.as_ref().map(|s| &s.codecs);
    let measured = live.as_ref().map_or(0.0, |s| s.rates.bitrate_in_kbps);
    let bandwidth = if measured > 0.0 {
        // BANDWIDTH is a peak: leave headroom over the measured average.
        (measured * 1000.0 * 1.25) as u64
    } else {
        DEFAULT_BANDWIDTH
    };
    let variant = Variant {
        uri: with_params("stream.m3u8", carried),
        bandwidth,
        codecs: stream.codecs(),
        resolution: codecs.and_then(|c| c.width.zip(c.height)),
        frame_rate: codecs.and_then(|c| c.frame_rate),
    };
    playlist_response(onair_hls::multivariant(&[variant]))
}

async fn media_playlist(
    stream: &HlsStream,
    query: &str,
    carried: &str,
) -> Result<Response, ApiError> {
    let directives = Directives::parse(query)
        .map_err(|reason| ApiError::bad_request("invalid_hls_request", reason))?;
    if directives.blocks() {
        wait_until_ready(stream, &directives).await?;
    }
    Ok(playlist_response(stream.render(directives.skip, carried)))
}

/// Holds a blocking playlist reload until the playlist has segment `_HLS_msn` (and
/// part `_HLS_part` of it), for at most three target durations (RFC 8216bis 6.2.5.2).
async fn wait_until_ready(stream: &HlsStream, directives: &Directives) -> Result<(), ApiError> {
    let deadline = blocking_deadline(tokio::time::Instant::now(), stream.target_duration());
    let mut changes = stream.subscribe();
    loop {
        match stream.readiness(directives) {
            Readiness::Ready => return Ok(()),
            Readiness::TooFarAhead => {
                return Err(ApiError::bad_request(
                    "hls_msn_too_far_ahead",
                    "the requested segment is too far beyond the live edge",
                ))
            }
            Readiness::BadRequest(reason) => {
                return Err(ApiError::bad_request("invalid_hls_request", reason))
            }
            Readiness::Wait if !stream.is_live() => return Ok(()),
            Readiness::Wait => {}
        }
        if !matches!(
            tokio::time::timeout_at(deadline, changes.changed()).await,
            Ok(Ok(()))
        ) {
            return Err(unavailable("the requested part did not appear in time"));
        }
    }
}

/// An init segment, segment or part; the next part (a preload hint) is waited for.
async fn media(stream: &HlsStream, resource: &Resource) -> Result<Response, ApiError> {
    let deadline = blocking_deadline(tokio::time::Instant::now(), stream.target_duration());
    let mut changes = stream.subscribe();
    let mut waited = false;
    loop {
        match stream.fetch(resource) {
            Fetch::Ready(bytes) => return Ok(media_response(resource, bytes)),
            // A preload hint that did not come true (the segment ended first): every
            // player meets one per segment, so it is not worth a log line each.
            Fetch::Gone if waited => {
                let mut response =
                    ApiError::not_found("the hinted part was not made").into_response();
                response.extensions_mut().insert(QuietLog);
                return Ok(response);
            }
            Fetch::Gone => return Err(ApiError::not_found("no longer (or not yet) available")),
            Fetch::Soon => waited = true,
        }
        if !matches!(
            tokio::time::timeout_at(deadline, changes.changed()).await,
            Ok(Ok(()))
        ) {
            return Err(unavailable("the requested part did not appear in time"));
        }
    }
}

fn unavailable(message: &str) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "hls_timeout", message)
}

fn playlist_response(text: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, PLAYLIST_TYPE),
            (header::CACHE_CONTROL, PLAYLIST_CACHE),
        ],
        text,
    )
        .into_response()
}

fn media_response(resource: &Resource, bytes: Bytes) -> Response {
    let content_type = match resource {
        Resource::Init(_) => "video/mp4",
        Resource::Segment(_) | Resource::Part(_) => "video/iso.segment",
    };
    media_bytes(content_type, bytes)
}

fn media_bytes(content_type: &'static str, bytes: Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, MEDIA_CACHE),
        ],
        bytes,
    )
        .into_response()
}

fn redirect(location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(PLAYLIST_CACHE),
    );
    response
}
