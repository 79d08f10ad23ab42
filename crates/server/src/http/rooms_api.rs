//! Room endpoints of the REST API (admin token): post system messages, delete
//! messages, mute, ban, slow mode, and a view of the room's state.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use onair_rooms::{Error as RoomError, ErrorCode, Millis, Seq, StreamState};
use serde::Deserialize;
use serde_json::json;

use super::admin::Admin;
use super::api_doc::stream_path;
use super::extract::{ApiJson, ApiPath};
use super::ApiError;
use crate::rooms::{now, ModerationError, RoomCell};
use crate::Shared;

/// Longest user id a mute or ban may name (ids are saved in the database).
const MAX_USER_ID_BYTES: usize = 256;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PostMessage {
    text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UserAction {
    user_id: String,
    /// For how long; forever when absent.
    seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SlowMode {
    seconds: u64,
}

fn cell(shared: &Shared, app: &str, name: &str) -> Result<Arc<RoomCell>, ApiError> {
    let path = stream_path(app, name)?;
    shared.rooms.room(&path).map_err(room_error)
}

fn room_error(error: RoomError) -> ApiError {
    let status = match error.code() {
        ErrorCode::MessageNotFound => StatusCode::NOT_FOUND,
        ErrorCode::TooManyRooms | ErrorCode::ListFull => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, error.code().as_str(), error.to_string())
}

fn moderation_error(error: ModerationError) -> ApiError {
    match error {
        ModerationError::Room(error) => room_error(error),
        ModerationError::Store(error) => ApiError::storage(&error),
    }
}

fn check_user_id(user_id: &str) -> Result<(), ApiError> {
    if user_id.is_empty() || user_id.len() > MAX_USER_ID_BYTES {
        return Err(ApiError::bad_request(
            "invalid_user_id",
            format!("user_id must be 1 to {MAX_USER_ID_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// A mute or ban list as `[{"user_id", "until"}]` (`until`: Unix ms, null for ever).
fn listing<'a>(entries: impl Iterator<Item = (&'a str, Option<Millis>)>) -> Vec<serde_json::Value> {
    let mut list: Vec<_> = entries.collect();
    list.sort_unstable();
    list.into_iter()
        .map(|(user_id, until)| json!({ "user_id": user_id, "until": until.map(Millis::as_u64) }))
        .collect()
}

fn until(seconds: Option<u64>) -> Option<Millis> {
    seconds.map(|s| now().add_ms(s.saturating_mul(1000)))
}

pub(super) async fn show(
    _: Admin,
    State(shared): State<Arc<Shared>>,
    ApiPath((app, name)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let cell = cell(&shared, &app, &name)?;
    let now = now();
    let body = cell.with_room(|room| {
        json!({
            "room": room.key(),
            "stream": match room.stream_state() { StreamState::Live => "live", _ => "offline" },
            "members": room.member_count(),
            "viewers": room.viewers(),
            "likes_total": room.like_total(),
            "last_seq": room.last_seq().0,
            "slow_mode_seconds": room.slow_mode_ms() / 1000,
            "muted": listing(room.moderation().mutes(now)),
            "banned": listing(room.moderation().bans(now)),
        })
    });
    Ok(Json(body).into_response())
}

pub(super) async fn post_message(
    _: Admin,
    State(shared): State<Arc<Shared>>,
    ApiPath((app, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<PostMessage>,
) -> Result<Response, ApiError> {
    let cell = cell(&shared, &app, &name)?;
    let seq = cell
        .with_room(|room| room.post_system(&body.text, now()))
        .map_err(room_error)?;
    let seq = seq.map(|s| s.0);
    Ok((StatusCode::CREATED, Json(json!({ "seq": seq }))).into_response())
}

pub(super) async fn delete_message(
    _: Admin,
    State(shared): State<Arc<Shared>>,
    ApiPath((app, name, id)): ApiPath<(String, String, u64)>,
) -> Result<StatusCode, ApiError> {
    let cell = cell(&shared, &app, &name)?;
    cell.with_room(|room| room.delete_message(Seq(id), now()))
        .map_err(room_error)?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn mute(
    _: Admin,
    State(shared): State<Arc<Shared>>,
    ApiPath((app, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<UserAction>,
) -> Result<StatusCode, ApiError> {
    check_user_id(&body.user_id)?;
    let cell = cell(&shared, &app, &name)?;
    shared
        .rooms
        .mute(&cell, &body.user_id, until(body.seconds))
        .await
        .map_err(moderation_error)?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn unmute(
    _: Admin,
    State(shared): State<Arc<Shared>>,
    ApiPath((app, name, user_id)): ApiPath<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let cell = cell(&shared, &app, &name)?;
    let unmuted = shared.rooms.unmute(&cell, &user_id).await;
    match unmuted.map_err(moderation_error)? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found(format!("{user_id} is not muted"))),
    }
}

pub(super) async fn ban(
    _: Admin,
    State(shared): State<Arc<Shared>>,
    ApiPath((app, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<UserAction>,
) -> Result<Response, ApiError> {
    check_user_id(&body.user_id)?;
    let cell = cell(&shared, &app, &name)?;
    let closed = shared
        .rooms
        .ban(&cell, &body.user_id, until(body.seconds))
        .await
        .map_err(moderation_error)?;
    Ok(Json(json!({ "connections_closed": closed })).into_response())
}

pub(super) async fn unban(
    _: Admin,
    State(shared): State<Arc<Shared>>,
    ApiPath((app, name, user_id)): ApiPath<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let cell = cell(&shared, &app, &name)?;
    let unbanned = shared.rooms.unban(&cell, &user_id).await;
    match unbanned.map_err(moderation_error)? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found(format!("{user_id} is not banned"))),
    }
}

pub(super) async fn slow_mode(
    _: Admin,
    State(shared): State<Arc<Shared>>,
    ApiPath((app, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<SlowMode>,
) -> Result<StatusCode, ApiError> {
    let cell = cell(&shared, &app, &name)?;
    shared
        .rooms
        .set_slow_mode(&cell, body.seconds.saturating_mul(1000))
        .await
        .map_err(moderation_error)?;
    Ok(StatusCode::NO_CONTENT)
}
