//! Stream keys in the REST API (admin token): create one for a stream (the key is in
//! that answer and nowhere else, ever), list them without their keys, revoke one.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use onair_media::StreamPath;
use serde::{Deserialize, Serialize};

use super::admin::Admin;
use super::ApiError;
use crate::store::{KeyRecord, StoreError};
use crate::Shared;

/// Longest label, in characters.
const MAX_LABEL_CHARS: usize = 128;

/// `POST /api/v1/keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateKey {
    /// `app/name`.
    stream: String,
    /// Free text for people (e.g. who the key is for).
    #[serde(default)]
    label: Option<String>,
}

/// The answer to `POST /api/v1/keys`: the only time `key` is shown.
#[derive(Debug, Serialize)]
pub(super) struct CreatedKey {
    id: String,
    stream: String,
    key: String,
    label: Option<String>,
    /// Unix seconds.
    created_at: u64,
}

/// A key as listed: never the key itself.
#[derive(Debug, Serialize)]
pub(super) struct KeyView {
    id: String,
    stream: String,
    label: Option<String>,
    /// Unix seconds.
    created_at: u64,
    /// Unix seconds of the last publish it let in.
    last_used_at: Option<u64>,
}

/// `GET /api/v1/keys`.
#[derive(Debug, Serialize)]
pub(super) struct KeyList {
    keys: Vec<KeyView>,
}

/// `GET /api/v1/keys?stream=app/name`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyFilter {
    stream: Option<String>,
}

impl From<KeyRecord> for KeyView {
    fn from(record: KeyRecord) -> Self {
        Self {
            id: record.id,
            stream: record.stream.to_string(),
            label: record.label,
            created_at: record.created_at,
            last_used_at: record.last_used_at,
        }
    }
}

fn stream_path(text: &str) -> Result<StreamPath, ApiError> {
    StreamPath::parse(text)
        .map_err(|e| ApiError::bad_request("invalid_stream", format!("stream {text:?}: {e}")))
}

fn check_label(label: Option<&str>) -> Result<(), ApiError> {
    let Some(label) = label else {
        return Ok(());
    };
    if label.chars().count() > MAX_LABEL_CHARS || label.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_label",
            format!(
                "label must be at most {MAX_LABEL_CHARS} characters, without control characters"
            ),
        ));
    }
    Ok(())
}

fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::TooManyKeys { .. } => {
            ApiError::new(StatusCode::CONFLICT, "too_many_keys", error.to_string())
        }
        error => ApiError::storage(&error),
    }
}

pub(super) async fn create(
    _: Admin,
    State(shared): State<Arc<Shared>>,
    body: Result<Json<CreateKey>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let Json(body) = body.map_err(|e| ApiError::new(e.status(), "invalid_body", e.body_text()))?;
    let stream = stream_path(&body.stream)?;
    check_label(body.label.as_deref())?;
    let (record, key) = shared
        .store
        .create_key(&stream, body.label)
        .await
        .map_err(store_error)?;
    tracing::info!(key_id = %record.id, stream = %record.stream, "stream key created");
    let created = CreatedKey {
        id: record.id,
        stream: record.stream.to_string(),
        key,
        label: record.label,
        created_at: record.created_at,
    };
    Ok((StatusCode::CREATED, Json(created)))
}

pub(super) async fn list(
    _: Admin,
    State(shared): State<Arc<Shared>>,
    filter: Result<Query<KeyFilter>, QueryRejection>,
) -> Result<Json<KeyList>, ApiError> {
    let Query(filter) =
        filter.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let stream = filter.stream.as_deref().map(stream_path).transpose()?;
    let records = shared
        .store
        .list_keys(stream.as_ref())
        .await
        .map_err(store_error)?;
    let keys = records.into_iter().map(KeyView::from).collect();
    Ok(Json(KeyList { keys }))
}

pub(super) async fn revoke(
    _: Admin,
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if shared.store.revoke_key(&id).await.map_err(store_error)? {
        tracing::info!(key_id = %id, "stream key revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no stream key {id:?}")))
    }
}
