//! Recordings in the REST API (admin token): list the files in the recordings
//! directory, download one (with byte ranges), delete a finished one. A recording is
//! named by an id made of its stream and file name (`live.demo.20261124T031500Z.flv`),
//! parsed by a strict grammar, so no id reaches outside the recordings directory.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Json;
use onair_media::StreamPath;
use serde::Serialize;
use tower::ServiceExt;
use tower_http::services::ServeFile;
use utoipa::{IntoParams, ToSchema};

use super::admin::Admin;
use super::api_doc::{ErrorBody, StreamFilter};
use super::extract::{ApiPath, ApiQuery};
use super::ApiError;
use crate::record::Recordings;
use crate::record::{DeleteError, RecordingInfo};

/// A recording file.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RecordingView {
    /// Names the recording in this API.
    #[schema(example = "live.demo.20261124T031500Z.flv")]
    id: String,
    #[schema(example = "live/demo")]
    stream: String,
    /// Relative to the recordings directory.
    #[schema(example = "live/demo/20261124T031500Z.flv")]
    file: String,
    /// `flv` or `fmp4`.
    #[schema(example = "flv")]
    format: String,
    /// Size on disk now.
    #[schema(example = 1_879_048_192)]
    bytes: u64,
    /// Unix seconds the file was started (UTC, as in its name).
    #[schema(example = 1_795_490_100)]
    started_at: u64,
    /// Unix seconds of its last write; `null` while it is being written.
    #[schema(example = 1_795_493_700)]
    ended_at: Option<u64>,
    /// `ended_at - started_at`; `null` while it is being written.
    #[schema(example = 3_600)]
    duration_seconds: Option<u64>,
    /// Being written now (by this server).
    in_progress: bool,
}

/// `GET /api/v1/recordings`.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RecordingList {
    /// Newest first, at most `record.list_max_entries`.
    recordings: Vec<RecordingView>,
    /// More recordings exist than are listed.
    truncated: bool,
}

/// `/api/v1/recordings/{id}`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Only described: the handlers extract the id with `ApiPath`.
pub(super) struct RecordingIdParam {
    /// The recording's id, as the list gives it: `{app}.{name}.{UTC start}[-{n}].{flv|mp4}`.
    #[param(
        pattern = r"^[A-Za-z0-9_-]{1,64}\.[A-Za-z0-9_-]{1,64}\.[0-9]{8}T[0-9]{6}Z(-[1-9][0-9]{0,2})?\.(flv|mp4)$",
        example = "live.demo.20261124T031500Z.flv"
    )]
    id: String,
}

impl From<RecordingInfo> for RecordingView {
    fn from(info: RecordingInfo) -> Self {
        let started_at = info.name.started_at();
        let ended_at = (!info.in_progress)
            .then_some(info.modified_at)
            .flatten()
            .map(|at| at.max(started_at));
        Self {
            id: info.name.id(),
            stream: info.name.stream().to_string(),
            file: info.name.relative_path().display().to_string(),
            format: info.name.format().as_str().to_owned(),
            bytes: info.bytes,
            started_at,
            ended_at,
            duration_seconds: ended_at.map(|end| end - started_at),
            in_progress: info.in_progress,
        }
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("no recording {id:?}"))
}

fn unreadable(error: &std::io::Error) -> ApiError {
    tracing::error!(%error, "cannot read the recordings directory");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "recordings_unavailable",
        "the server could not read or change its recordings directory",
    )
}

/// The recordings on disk, newest first.
#[utoipa::path(get, path = "/api/v1/recordings", tag = "recordings",
    operation_id = "list_recordings",
    params(StreamFilter),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The recordings", body = RecordingList),
        (status = 400, description = "`invalid_query` or `invalid_stream`", body = ErrorBody),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 500, description = "`recordings_unavailable`: the directory could not be \
            read", body = ErrorBody),
    ))]
pub(super) async fn list(
    _: Admin,
    State(recordings): State<Arc<Recordings>>,
    ApiQuery(filter): ApiQuery<StreamFilter>,
) -> Result<Json<RecordingList>, ApiError> {
    let stream = filter
        .stream
        .as_deref()
        .map(|text| {
            StreamPath::parse(text).map_err(|e| {
                ApiError::bad_request("invalid_stream", format!("stream {text:?}: {e}"))
            })
        })
        .transpose()?;
    let (recordings, truncated) = recordings.list(stream).await.map_err(|e| unreadable(&e))?;
    let recordings = recordings.into_iter().map(RecordingView::from).collect();
    Ok(Json(RecordingList {
        recordings,
        truncated,
    }))
}

/// Downloads a recording, also while it is being written (then it is as long as what
/// has been written so far). Byte ranges are supported.
#[utoipa::path(get, path = "/api/v1/recordings/{id}", tag = "recordings",
    operation_id = "download_recording",
    params(RecordingIdParam),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The file", content(
            ([u8] = "video/x-flv"),
            ([u8] = "video/mp4"),
        )),
        (status = 206, description = "The requested byte range (`Range: bytes=…`)", content(
            ([u8] = "video/x-flv"),
            ([u8] = "video/mp4"),
        )),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 404, description = "No such recording", body = ErrorBody),
        (status = 416, description = "The range lies outside the file"),
    ))]
pub(super) async fn download(
    _: Admin,
    State(recordings): State<Arc<Recordings>>,
    ApiPath(id): ApiPath<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let Some((name, path)) = recordings.find(&id).await else {
        return Err(not_found(&id));
    };
    let served = ServeFile::new(path).oneshot(request).await;
    let mut response = match served {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    };
    if response.status() == StatusCode::NOT_FOUND {
        // Deleted between the look-up and the open.
        return Err(not_found(&id));
    }
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(name.format().content_type()),
    );
    // The file name is [A-Za-z0-9TZ.-] only: nothing to quote or escape.
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"{}\"", name.file_name()))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// Deletes a finished recording.
#[utoipa::path(delete, path = "/api/v1/recordings/{id}", tag = "recordings",
    operation_id = "delete_recording",
    params(RecordingIdParam),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 404, description = "No such recording", body = ErrorBody),
        (status = 409, description = "`recording_in_progress`: it is being written; it can \
            be deleted once its stream ends or the file is cut", body = ErrorBody),
        (status = 500, description = "`recordings_unavailable`: the file could not be \
            deleted", body = ErrorBody),
    ))]
pub(super) async fn delete(
    _: Admin,
    State(recordings): State<Arc<Recordings>>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    match recordings.delete(&id).await {
        Ok(true) => {
            tracing::info!(recording = %id, "recording deleted");
            Ok(StatusCode::NO_CONTENT)
        }
        Ok(false) => Err(not_found(&id)),
        Err(DeleteError::InProgress) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "recording_in_progress",
            format!("recording {id:?} is being written"),
        )),
        Err(DeleteError::Io(error)) => Err(unreadable(&error)),
    }
}
