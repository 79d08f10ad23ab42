//! Room endpoints of the REST API (admin token): a view of the room's state, posting
//! system messages and deleting messages. Moderation is in `moderation_api`.

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::Json;
use onair_media::StreamPath;
use onair_rooms::{Error as RoomError, ErrorCode, Millis, Room, RoomSettings, Seq, StreamState};
use serde::{Deserialize, Serialize};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, ToSchema};

use super::admin::Admin;
use super::aggregated_events_api::{aggregated_events_view, AggregatedEventView};
use super::api_doc::{stream_path, ErrorBody, StreamPathParams};
use super::extract::{ApiJson, ApiPath};
use super::ApiError;
use crate::rooms::RoomHub;
use crate::rooms::{now, ModerationError, RoomCell};
use crate::store::Store;
use crate::Edge;

/// `POST /api/v1/rooms/{app}/{name}/messages`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PostMessage {
    /// The message. White space around it is trimmed; what is left must be 1 to
    /// `rooms.system_max_chars` characters without control characters.
    #[schema(example = "The stream starts in 5 minutes")]
    text: String,
}

/// The answer to `POST /api/v1/rooms/{app}/{name}/messages`.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PostedMessage {
    /// The `system` event's `seq`, which also names it for a delete; `null` when the
    /// event is sequenced by the cluster rather than by this node.
    #[schema(example = 42)]
    seq: Option<u64>,
}

/// A room as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RoomView {
    /// The room's key, the stream path `{app}/{name}`.
    #[schema(example = "live/demo")]
    room: String,
    /// Whether the room's stream is being published.
    stream: StreamStateView,
    /// WebSocket and SSE connections in the room, moderators and the platform's own
    /// included.
    members: u64,
    /// People watching, each counted once: the larger of the media viewers and the
    /// room's audience members (docs/rooms.md, "Viewers"); the room's `viewers` event.
    viewers: u64,
    /// Likes since the room was created.
    likes_total: u64,
    /// `seq` of the newest event kept in history (0: none yet).
    last_seq: u64,
    /// One chat message per user per this many seconds; 0 is off.
    slow_mode_seconds: u64,
    /// Mutes in force, by user id.
    muted: Vec<ModerationEntry>,
    /// Bans in force, by user id.
    banned: Vec<ModerationEntry>,
    /// Custom events counted and sent as `aggregate` events rather than one by one.
    aggregated_events: Vec<AggregatedEventView>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum StreamStateView {
    Live,
    Offline,
}

/// One mute or ban.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ModerationEntry {
    #[schema(example = "alice")]
    user_id: String,
    /// When it ends, Unix milliseconds; `null`: until lifted.
    until: Option<u64>,
}

/// `DELETE /api/v1/rooms/{app}/{name}/messages/{id}`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Only described: the handler extracts the path with `ApiPath`.
pub(super) struct MessageIdParam {
    /// The message's `seq`.
    #[param(minimum = 0, maximum = 18_446_744_073_709_551_615_u64, example = 42)]
    id: u64,
}

/// What the room API changes: the rooms, and the store that says which streams the
/// server knows.
pub(super) struct RoomDirectory {
    pub rooms: Arc<RoomHub>,
    store: Store,
}

impl FromRef<Edge> for RoomDirectory {
    fn from_ref(edge: &Edge) -> Self {
        Self {
            rooms: Arc::clone(&edge.rooms),
            store: edge.store.clone(),
        }
    }
}

/// The room of a change made through the API, created if needed, but only for a
/// stream the server knows (see [`known`]): a typo'd path is a 404, not a new room.
pub(super) async fn cell(
    directory: &RoomDirectory,
    app: &str,
    name: &str,
) -> Result<Arc<RoomCell>, ApiError> {
    let path = stream_path(app, name)?;
    if let Some(cell) = directory.rooms.existing(&path) {
        return Ok(cell);
    }
    if !known(directory, &path).await? {
        return Err(no_room(&path));
    }
    directory.rooms.room(&path).map_err(room_error)
}

/// Whether the server knows `path`: its room is open, its stream live, or something
/// is saved for it (moderation, a stream key, a title).
async fn known(directory: &RoomDirectory, path: &StreamPath) -> Result<bool, ApiError> {
    if directory.rooms.knows(path) {
        return Ok(true);
    }
    directory
        .store
        .knows_stream(path)
        .await
        .map_err(|e| ApiError::storage(&e))
}

fn no_room(path: &StreamPath) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "room_not_found",
        format!(
            "no room {path}: the stream is not live, its room is not open, and nothing is \
             saved for it (a stream key, a title or moderation)"
        ),
    )
}

pub(super) fn room_error(error: RoomError) -> ApiError {
    let status = match error.code() {
        ErrorCode::MessageNotFound => StatusCode::NOT_FOUND,
        // Like `too_many_keys`: this list is full until entries are lifted or expire.
        ErrorCode::ListFull => StatusCode::CONFLICT,
        // The server's capacity; idle rooms are dropped, so it passes.
        ErrorCode::TooManyRooms => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, error.code().as_str(), error.to_string())
}

pub(super) fn moderation_error(error: ModerationError) -> ApiError {
    match error {
        ModerationError::Room(error) => room_error(error),
        ModerationError::Store(error) => ApiError::storage(&error),
    }
}

/// A mute or ban list, sorted by user id.
fn listing<'a>(entries: impl Iterator<Item = (&'a str, Option<Millis>)>) -> Vec<ModerationEntry> {
    let mut list: Vec<_> = entries.collect();
    list.sort_unstable();
    list.into_iter()
        .map(|(user_id, until)| ModerationEntry {
            user_id: user_id.to_owned(),
            until: until.map(Millis::as_u64),
        })
        .collect()
}

/// The room's state, moderation included. A room is made on first use (a WebSocket or
/// SSE connection, or a change through the API) and dropped again when idle; reading
/// one that is not open shows it as it would start, for a stream the server knows.
#[utoipa::path(get, path = "/api/v1/rooms/{app}/{name}", tag = "rooms",
    operation_id = "get_room",
    params(StreamPathParams),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The room", body = RoomView),
        (status = 400, description = "`invalid_stream` or `invalid_path`", body = ErrorBody),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 404, description = "`room_not_found` (the stream is not live, its room is \
            not open and nothing is saved for it), or a reserved app (`api`, `ws`, …)",
            body = ErrorBody),
        (status = 500, description = "`storage_error`: the database failed", body = ErrorBody),
    ))]
pub(super) async fn show(
    _: Admin,
    State(directory): State<RoomDirectory>,
    ApiPath((app, name)): ApiPath<(String, String)>,
) -> Result<Json<RoomView>, ApiError> {
    let path = stream_path(&app, &name)?;
    let rooms = &directory.rooms;
    let view = match rooms.existing(&path) {
        Some(cell) => cell.with_room(|room: &mut Room| room_view(room)),
        // Reading never creates: a room not open yet is shown as it would start.
        None if known(&directory, &path).await? => room_view(&rooms.fresh_room(&path)),
        None => return Err(no_room(&path)),
    };
    Ok(Json(view))
}

fn room_view(room: &Room) -> RoomView {
    let now = now();
    RoomView {
        room: room.key().to_owned(),
        stream: match room.stream_state() {
            StreamState::Live => StreamStateView::Live,
            _ => StreamStateView::Offline,
        },
        members: room.member_count() as u64,
        viewers: room.viewers(),
        likes_total: room.like_total(),
        last_seq: room.last_seq().0,
        slow_mode_seconds: room.slow_mode_ms() / 1000,
        muted: listing(room.moderation().mutes(now)),
        banned: listing(room.moderation().bans(now)),
        aggregated_events: aggregated_events_view(room),
    }
}

/// Posts a `system` event to the room: everyone in it sees it, and it is kept in
/// history like chat.
#[utoipa::path(post, path = "/api/v1/rooms/{app}/{name}/messages", tag = "rooms",
    operation_id = "post_room_message",
    params(StreamPathParams),
    request_body = PostMessage,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "Posted", body = PostedMessage),
        (status = 400, description = "`invalid_json`, `invalid_body`, `invalid_stream`, \
            `invalid_path`, `empty_text`, `text_too_long` or `control_character`",
            body = ErrorBody),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 404, description = "`room_not_found` (the stream is not live, its room is \
            not open and nothing is saved for it), or a reserved app (`api`, `ws`, …)",
            body = ErrorBody),
        (status = 500, description = "`storage_error`: the database failed", body = ErrorBody),
        (status = 503, description = "`too_many_rooms`: rooms.max_rooms exist", body = ErrorBody),
    ))]
pub(super) async fn post_message(
    _: Admin,
    State(directory): State<RoomDirectory>,
    ApiPath((app, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<PostMessage>,
) -> Result<(StatusCode, Json<PostedMessage>), ApiError> {
    let cell = cell(&directory, &app, &name).await?;
    let seq = cell
        .with_room(|room| room.post_system(&body.text, now()))
        .map_err(room_error)?;
    let posted = PostedMessage {
        seq: seq.map(|s| s.0),
    };
    Ok((StatusCode::CREATED, Json(posted)))
}

/// Deletes a chat, custom or system message: a `delete` event tells clients to hide
/// it, and history stops replaying it.
#[utoipa::path(delete, path = "/api/v1/rooms/{app}/{name}/messages/{id}", tag = "rooms",
    operation_id = "delete_room_message",
    params(StreamPathParams, MessageIdParam),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`invalid_stream` or `invalid_path` (`id` is not a \
            whole number)", body = ErrorBody),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 404, description = "`message_not_found` (never sent, not deletable or \
            already deleted), `room_not_found`, or a reserved app", body = ErrorBody),
        (status = 500, description = "`storage_error`: the database failed", body = ErrorBody),
        (status = 503, description = "`too_many_rooms`: rooms.max_rooms exist", body = ErrorBody),
    ))]
pub(super) async fn delete_message(
    _: Admin,
    State(directory): State<RoomDirectory>,
    ApiPath((app, name, id)): ApiPath<(String, String, u64)>,
) -> Result<StatusCode, ApiError> {
    let cell = cell(&directory, &app, &name).await?;
    cell.with_room(|room| room.delete_message(Seq(id), now()))
        .map_err(room_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Characters Rust's `str::trim` removes (Unicode White_Space), as a regex class body.
const WHITE_SPACE: &str = r"\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

/// Control characters (Unicode category Cc), as a regex class body.
const CONTROL: &str = r"\x00-\x1F\x7F-\x9F";

/// The `text` that `onair_rooms::validate_text` accepts, as a JSON Schema pattern:
/// white space around a core of 1 to `max_chars` characters that starts and ends with
/// neither white space nor a control character and holds no control character.
pub(super) fn system_text_pattern(max_chars: usize) -> String {
    let space = format!("[{WHITE_SPACE}]*");
    let edge = format!("[^{CONTROL}{WHITE_SPACE}]");
    let inner = format!("[^{CONTROL}]");
    match max_chars.checked_sub(2) {
        Some(between) => format!("^{space}{edge}(?:{inner}{{0,{between}}}{edge})?{space}$"),
        None => format!("^{space}{edge}{space}$"),
    }
}

/// Fills in the limits of the document that are settings.
pub(super) fn apply_settings(openapi: &mut utoipa::openapi::OpenApi, rooms: &RoomSettings) {
    let schemas = openapi
        .components
        .as_mut()
        .map(|components| &mut components.schemas);
    let Some(RefOr::T(Schema::Object(message))) = schemas.and_then(|s| s.get_mut("PostMessage"))
    else {
        return;
    };
    if let Some(RefOr::T(Schema::Object(text))) = message.properties.get_mut("text") {
        text.pattern = Some(system_text_pattern(rooms.system_max_chars));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use onair_rooms::validate_text;

    use super::*;

    /// Strings around every edge of `validate_text`: white space of each kind inside
    /// and around, control characters inside and around, and lengths at the limit.
    fn samples(max: usize) -> Vec<String> {
        let mut samples = vec![
            String::new(),
            " ".into(),
            "\t\n\r\u{0B}\u{0C}".into(),
            "hi".into(),
            " hi ".into(),
            "\thi\n".into(),
            "h i".into(),
            "h\ti".into(),
            "h\u{85}i".into(),
            "\u{85}hi\u{85}".into(),
            "\u{A0}hi\u{3000}".into(),
            "h\u{A0}i".into(),
            "h\u{2028}i".into(),
            "\u{1F}hi".into(),
            "hi\u{7F}".into(),
            "h\u{9F}i".into(),
            "\u{FEFF}hi".into(),
            "\u{200B}".into(),
            "héllo 世界 🎉".into(),
            "\u{0}".into(),
        ];
        for n in [max.saturating_sub(1), max, max + 1] {
            samples.push("é".repeat(n));
            samples.push(format!("  {}\u{3000}", "x".repeat(n)));
            samples.push(format!("a{}b", " ".repeat(n.saturating_sub(2))));
        }
        samples
    }

    #[test]
    fn the_text_pattern_accepts_what_validate_text_accepts() {
        for max in [1, 2, 3, 10, 2000] {
            let pattern = regex::Regex::new(&system_text_pattern(max)).unwrap();
            for text in samples(max) {
                assert_eq!(
                    pattern.is_match(&text),
                    validate_text(&text, max).is_ok(),
                    "max {max}, text {text:?}"
                );
            }
        }
    }

    #[test]
    fn the_served_document_has_the_configured_text_limit() {
        let settings = RoomSettings {
            system_max_chars: 7,
            ..RoomSettings::default()
        };
        let json = serde_json::to_value(super::super::api_doc::document(&settings)).unwrap();
        let text = &json["components"]["schemas"]["PostMessage"]["properties"]["text"];
        assert_eq!(text["pattern"], system_text_pattern(7), "{text}");
    }

    #[test]
    fn full_lists_conflict_and_too_many_rooms_is_unavailable() {
        let full = room_error(RoomError::ListFull {
            list: "mute",
            max: 1,
        });
        assert_eq!(full.status(), StatusCode::CONFLICT);
        let rooms = room_error(RoomError::TooManyRooms { max: 1 });
        assert_eq!(rooms.status(), StatusCode::SERVICE_UNAVAILABLE);
        let gone = room_error(RoomError::MessageNotFound { id: Seq(3) });
        assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    }
}
