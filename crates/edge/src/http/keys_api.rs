//! Stream keys in the REST API (admin token): create one for a stream (the key is in
//! that answer and nowhere else, ever), list them without their keys, revoke one.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use onair_media::StreamPath;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::admin::Admin;
use super::api_doc::{ErrorBody, StreamFilter};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::streams_api::set_stream_info;
use super::text_field::TextField;
use super::ApiError;
use crate::store::Store;
use crate::store::{KeyRecord, StoreError, StreamInfoPatch};
use crate::EdgeConfig;
use onair_control::stream_info::StreamInfos;
use onair_control::PublishAuth;

/// Longest label, in characters.
pub(super) const MAX_LABEL_CHARS: usize = 128;

/// `POST /api/v1/keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateKey {
    /// The stream the key lets publish, `{app}/{name}` (each part 1 to 64 of
    /// `A-Z a-z 0-9 _ -`; not a reserved app such as `api`).
    #[schema(
        pattern = "^(?!(?:api|ws|sse|watch|admin|assets|metrics|healthz|readyz)/)[A-Za-z0-9_-]{1,64}/[A-Za-z0-9_-]{1,64}$",
        example = "live/demo"
    )]
    stream: String,
    /// Free text for people (e.g. who the key is for): at most 128 characters, no
    /// control characters.
    #[serde(default)]
    #[schema(
        max_length = 128,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$",
        example = "OBS at home"
    )]
    label: Option<String>,
    /// Sets the stream's title, as `PATCH /api/v1/streams/{app}/{name}` does.
    #[serde(default)]
    #[schema(
        max_length = 140,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$",
        example = "Friday night speedruns"
    )]
    title: Option<String>,
    /// Sets the stream's description, as `PATCH /api/v1/streams/{app}/{name}` does.
    #[serde(default)]
    #[schema(
        max_length = 2000,
        pattern = r"^[^\x00-\x09\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
    )]
    description: Option<String>,
}

/// The answer to `POST /api/v1/keys`: the only time `key` is shown.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct CreatedKey {
    /// Names the key in the API (list, revoke); not a secret.
    #[schema(example = "k_3f9a1c0e5b7d2468")]
    id: String,
    #[schema(example = "live/demo")]
    stream: String,
    /// The secret the publisher adds to the stream name, `?key=K`: 64 hex characters.
    /// Shown here once; the server keeps only its SHA-256.
    #[schema(
        example = "9b74c9897bac770ffc029102a200c5de0b1c3ef4c3f1a5b2e7d8c6a9f0e1d2c3",
        pattern = "^[0-9a-f]{64}$"
    )]
    key: String,
    label: Option<String>,
    /// Unix seconds.
    #[schema(example = 1_700_000_000)]
    created_at: u64,
    /// Whether publishing checks keys now (`auth.publish = "key"`). While publishing
    /// is open or decided by a webhook, the key is kept but not asked for.
    keys_checked: bool,
    /// Present when keys are not checked: says so and how to change it.
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
}

/// A key as listed: never the key itself.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct KeyView {
    #[schema(example = "k_3f9a1c0e5b7d2468")]
    id: String,
    #[schema(example = "live/demo")]
    stream: String,
    label: Option<String>,
    /// Unix seconds.
    #[schema(example = 1_700_000_000)]
    created_at: u64,
    /// Unix seconds of the last publish it let in.
    last_used_at: Option<u64>,
}

/// `GET /api/v1/keys`.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct KeyList {
    /// Oldest first.
    keys: Vec<KeyView>,
}

/// `DELETE /api/v1/keys/{id}`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Only described: the handler extracts the id with `ApiPath`.
pub(super) struct KeyIdParam {
    /// The key's id, as `POST /api/v1/keys` answered it.
    #[param(example = "k_3f9a1c0e5b7d2468")]
    id: String,
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
    const LABEL: TextField = TextField {
        name: "label",
        code: "invalid_label",
        min_chars: 0,
        max_chars: MAX_LABEL_CHARS,
        line_breaks: false,
    };
    label.map_or(Ok(()), |label| LABEL.check(label))
}

/// Why a new key would not be asked for, in the publish mode `mode`.
fn unchecked_warning(mode: PublishAuth) -> Option<String> {
    match mode {
        PublishAuth::Key => None,
        PublishAuth::Open => Some(
            "publishing is open (auth.publish = \"open\"): anyone may publish and this key \
             is not checked; start the server with --publish-auth key to require keys"
                .to_owned(),
        ),
        PublishAuth::Webhook => Some(
            "publishing is decided by the publish webhook (auth.publish = \"webhook\"): this \
             key is passed on with the stream name but not checked by onair"
                .to_owned(),
        ),
    }
}

fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::TooManyKeys { .. } => {
            ApiError::new(StatusCode::CONFLICT, "too_many_keys", error.to_string())
        }
        error => ApiError::storage(&error),
    }
}

/// Creates a stream key. The answer is the only place the key ever appears.
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys",
    operation_id = "create_key",
    request_body = CreateKey,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "The new key, shown this once", body = CreatedKey),
        (status = 400, description = "`invalid_json`, `invalid_body` (a missing, unknown or \
            mistyped field), `invalid_stream` (bad or reserved path), `invalid_label`, \
            `invalid_title` or `invalid_description`",
            body = ErrorBody),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 409, description = "`too_many_keys`: store.max_keys_per_stream or \
            store.max_keys reached; `too_many_streams`: store.max_stream_infos streams have a \
            title", body = ErrorBody),
        (status = 500, description = "`storage_error`: the database failed", body = ErrorBody),
    ))]
pub(super) async fn create(
    _: Admin,
    State(store): State<Store>,
    State(infos): State<Arc<StreamInfos>>,
    State(config): State<Arc<EdgeConfig>>,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let stream = stream_path(&body.stream)?;
    check_label(body.label.as_deref())?;
    let describes = StreamInfoPatch {
        title: body.title.map(Some),
        description: body.description.map(Some),
    };
    // Saved before the key: a key made and then refused would be lost to its
    // creator, while a title saved for a refused key is only early.
    if !describes.is_empty() {
        set_stream_info(&infos, &stream, describes).await?;
    }
    let (record, key) = store
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
        keys_checked: config.settings.auth.publish == PublishAuth::Key,
        warning: unchecked_warning(config.settings.auth.publish),
    };
    Ok((StatusCode::CREATED, Json(created)))
}

/// The stream keys, without the keys themselves.
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys",
    operation_id = "list_keys",
    params(StreamFilter),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The keys", body = KeyList),
        (status = 400, description = "`invalid_query` or `invalid_stream`", body = ErrorBody),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 500, description = "`storage_error`: the database failed", body = ErrorBody),
    ))]
pub(super) async fn list(
    _: Admin,
    State(store): State<Store>,
    ApiQuery(filter): ApiQuery<StreamFilter>,
) -> Result<Json<KeyList>, ApiError> {
    let stream = filter.stream.as_deref().map(stream_path).transpose()?;
    let records = store
        .list_keys(stream.as_ref())
        .await
        .map_err(store_error)?;
    let keys = records.into_iter().map(KeyView::from).collect();
    Ok(Json(KeyList { keys }))
}

/// Revokes a stream key: it lets nobody publish any more (a publisher already live
/// stays live).
#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys",
    operation_id = "revoke_key",
    params(KeyIdParam),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
        (status = 500, description = "`storage_error`: the database failed", body = ErrorBody),
    ))]
pub(super) async fn revoke(
    _: Admin,
    State(store): State<Store>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    if store.revoke_key(&id).await.map_err(store_error)? {
        tracing::info!(key_id = %id, "stream key revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no stream key {id:?}")))
    }
}
