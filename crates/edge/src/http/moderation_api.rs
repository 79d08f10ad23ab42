//! Room moderation in the REST API (admin token): mute, ban and slow mode, each saved
//! in the database before it takes effect (see `crate::rooms::moderation`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use onair_rooms::Millis;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::admin::Admin;
use super::api_doc::{ErrorBody, StreamPathParams};
use super::extract::{ApiJson, ApiPath};
use super::rooms_api::{cell, moderation_error, RoomDirectory};
use super::whole_number;
use super::ApiError;
use crate::rooms::now;
use crate::store::ModerationKind;

/// Longest user id a mute or ban may name, in characters (ids are saved in the database).
const MAX_USER_ID_CHARS: usize = 256;

/// `POST /api/v1/rooms/{app}/{name}/mutes` and `…/bans`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UserAction {
    /// The user, as the `sub` of their chat token names them: 1 to 256 characters.
    #[schema(min_length = 1, max_length = 256, example = "alice")]
    user_id: String,
    /// For how many seconds; forever when absent or `null`. A duration past what any
    /// clock reaches is forever too.
    #[serde(default, deserialize_with = "whole_number::option_u64")]
    #[schema(minimum = 0, maximum = 18_446_744_073_709_551_615_u64, example = 600)]
    seconds: Option<u64>,
}

/// `PUT /api/v1/rooms/{app}/{name}/slow-mode`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SlowMode {
    /// One chat message per user per this many seconds (moderators and streamers are
    /// exempt); 0 turns slow mode off.
    #[serde(deserialize_with = "whole_number::u64")]
    #[schema(minimum = 0, maximum = 18_446_744_073_709_551_615_u64, example = 10)]
    seconds: u64,
}

/// The answer to a ban.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Banned {
    /// The user's connections to the room that the ban closed (WebSocket close 4003).
    #[schema(example = 1)]
    connections_closed: u64,
}

/// `DELETE /api/v1/rooms/{app}/{name}/mutes/{user_id}` and `…/bans/{user_id}`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Only described: the handlers extract the path with `ApiPath`.
pub(super) struct UserIdParam {
    /// The muted or banned user.
    #[param(example = "alice")]
    user_id: String,
}

fn check_user_id(user_id: &str) -> Result<(), ApiError> {
    let chars = user_id.chars().count();
    if chars == 0 || chars > MAX_USER_ID_CHARS {
        return Err(ApiError::bad_request(
            "invalid_user_id",
            format!("user_id must be 1 to {MAX_USER_ID_CHARS} characters"),
        ));
    }
    Ok(())
}

fn until(seconds: Option<u64>) -> Option<Millis> {
    seconds.map(|s| now().add_ms(s.saturating_mul(1000)))
}

/// Mutes a user in the room: their chat, likes, gifts and custom events are refused
/// with `muted`; they stay connected and keep reading.
#[utoipa::path(post, path = "/api/v1/rooms/{app}/{name}/mutes", tag = "rooms",
    operation_id = "mute_user",
    params(StreamPathParams),
    request_body = UserAction,
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Muted (a mute already there is replaced)"),
        (status = 400, description = "`invalid_json`, `invalid_body`, `invalid_stream`, \
            `invalid_path` or `invalid_user_id`", body = ErrorBody),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 404, description = "`room_not_found` (the stream is not live, its room is \
            not open and nothing is saved for it), or a reserved app (`api`, `ws`, …)",
            body = ErrorBody),
        (status = 409, description = "`list_full`: the room's mute list \
            (rooms.max_moderation_entries) or the saved entries \
            (store.max_moderation_entries) are full", body = ErrorBody),
        (status = 500, description = "`storage_error`: not saved, nothing changed",
            body = ErrorBody),
        (status = 503, description = "`too_many_rooms`: rooms.max_rooms exist", body = ErrorBody),
    ))]
pub(super) async fn mute(
    _: Admin,
    State(directory): State<RoomDirectory>,
    ApiPath((app, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<UserAction>,
) -> Result<StatusCode, ApiError> {
    check_user_id(&body.user_id)?;
    impose(&directory, (&app, &name), ModerationKind::Mute, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts a mute.
#[utoipa::path(delete, path = "/api/v1/rooms/{app}/{name}/mutes/{user_id}", tag = "rooms",
    operation_id = "unmute_user",
    params(StreamPathParams, UserIdParam),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Unmuted"),
        (status = 400, description = "`invalid_stream` or `invalid_path`", body = ErrorBody),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 404, description = "The user is not muted here, `room_not_found`, or a reserved app",
            body = ErrorBody),
        (status = 500, description = "`storage_error`: not saved", body = ErrorBody),
        (status = 503, description = "`too_many_rooms`: rooms.max_rooms exist", body = ErrorBody),
    ))]
pub(super) async fn unmute(
    _: Admin,
    State(directory): State<RoomDirectory>,
    ApiPath((app, name, user_id)): ApiPath<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    lift(&directory, (&app, &name), ModerationKind::Mute, &user_id).await
}

/// Bans a user from the room: their connections there are closed (WebSocket close
/// 4003) and they cannot join again until the ban ends.
#[utoipa::path(post, path = "/api/v1/rooms/{app}/{name}/bans", tag = "rooms",
    operation_id = "ban_user",
    params(StreamPathParams),
    request_body = UserAction,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Banned (a ban already there is replaced)", body = Banned),
        (status = 400, description = "`invalid_json`, `invalid_body`, `invalid_stream`, \
            `invalid_path` or `invalid_user_id`", body = ErrorBody),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 404, description = "`room_not_found` (the stream is not live, its room is \
            not open and nothing is saved for it), or a reserved app (`api`, `ws`, …)",
            body = ErrorBody),
        (status = 409, description = "`list_full`: the room's ban list \
            (rooms.max_moderation_entries) or the saved entries \
            (store.max_moderation_entries) are full", body = ErrorBody),
        (status = 500, description = "`storage_error`: not saved, nothing changed",
            body = ErrorBody),
        (status = 503, description = "`too_many_rooms`: rooms.max_rooms exist", body = ErrorBody),
    ))]
pub(super) async fn ban(
    _: Admin,
    State(directory): State<RoomDirectory>,
    ApiPath((app, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<UserAction>,
) -> Result<Json<Banned>, ApiError> {
    let closed = impose(&directory, (&app, &name), ModerationKind::Ban, &body).await?;
    Ok(Json(Banned {
        connections_closed: closed as u64,
    }))
}

/// Lifts a ban.
#[utoipa::path(delete, path = "/api/v1/rooms/{app}/{name}/bans/{user_id}", tag = "rooms",
    operation_id = "unban_user",
    params(StreamPathParams, UserIdParam),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Unbanned"),
        (status = 400, description = "`invalid_stream` or `invalid_path`", body = ErrorBody),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 404, description = "The user is not banned here, `room_not_found`, or a reserved app",
            body = ErrorBody),
        (status = 500, description = "`storage_error`: not saved", body = ErrorBody),
        (status = 503, description = "`too_many_rooms`: rooms.max_rooms exist", body = ErrorBody),
    ))]
pub(super) async fn unban(
    _: Admin,
    State(directory): State<RoomDirectory>,
    ApiPath((app, name, user_id)): ApiPath<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    lift(&directory, (&app, &name), ModerationKind::Ban, &user_id).await
}

/// Mutes or bans (`kind`) the user `body` names; returns the connections a ban closed.
async fn impose(
    directory: &RoomDirectory,
    (app, name): (&str, &str),
    kind: ModerationKind,
    body: &UserAction,
) -> Result<usize, ApiError> {
    check_user_id(&body.user_id)?;
    let cell = cell(directory, app, name).await?;
    directory
        .rooms
        .impose(&cell, kind, &body.user_id, until(body.seconds))
        .await
        .map_err(moderation_error)
}

/// Lifts a mute or ban (`kind`): `204`, or `404` when there was none.
async fn lift(
    directory: &RoomDirectory,
    (app, name): (&str, &str),
    kind: ModerationKind,
    user_id: &str,
) -> Result<StatusCode, ApiError> {
    let cell = cell(directory, app, name).await?;
    let lifted = directory.rooms.lift(&cell, kind, user_id).await;
    match lifted.map_err(moderation_error)? {
        true => Ok(StatusCode::NO_CONTENT),
        false => {
            let state = match kind {
                ModerationKind::Mute => "muted",
                ModerationKind::Ban => "banned",
            };
            Err(ApiError::not_found(format!("{user_id} is not {state}")))
        }
    }
}

/// Sets the room's slow mode. A value equal to rooms.slow_mode_ms (the default) is not
/// saved, so the room follows the default if it changes later.
#[utoipa::path(put, path = "/api/v1/rooms/{app}/{name}/slow-mode", tag = "rooms",
    operation_id = "set_slow_mode",
    params(StreamPathParams),
    request_body = SlowMode,
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Set"),
        (status = 400, description = "`invalid_json`, `invalid_body`, `invalid_stream` or \
            `invalid_path`", body = ErrorBody),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 404, description = "`room_not_found` (the stream is not live, its room is \
            not open and nothing is saved for it), or a reserved app (`api`, `ws`, …)",
            body = ErrorBody),
        (status = 409, description = "`list_full`: the saved entries \
            (store.max_moderation_entries) are full", body = ErrorBody),
        (status = 500, description = "`storage_error`: not saved, nothing changed",
            body = ErrorBody),
        (status = 503, description = "`too_many_rooms`: rooms.max_rooms exist", body = ErrorBody),
    ))]
pub(super) async fn slow_mode(
    _: Admin,
    State(directory): State<RoomDirectory>,
    ApiPath((app, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<SlowMode>,
) -> Result<StatusCode, ApiError> {
    let cell = cell(&directory, &app, &name).await?;
    directory
        .rooms
        .set_slow_mode(&cell, body.seconds.saturating_mul(1000))
        .await
        .map_err(moderation_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_counted_in_characters_as_the_schema_counts_them() {
        assert!(check_user_id("").is_err());
        assert!(check_user_id("a").is_ok());
        assert!(check_user_id(&"é".repeat(MAX_USER_ID_CHARS)).is_ok());
        assert!(check_user_id(&"a".repeat(MAX_USER_ID_CHARS + 1)).is_err());
    }
}
