//! `PUT /api/v1/rooms/{app}/{name}/aggregated-events` (admin token): the custom events
//! one room counts instead of sending one by one, on top of what its app declares in
//! `[[rooms.aggregated_events]]`. Saved like moderation, so it outlives restarts.

use axum::extract::State;
use axum::http::StatusCode;
use onair_rooms::{
    check_declaration, AggregatedEvent, Error as RoomError, Room, MAX_AGGREGATED_EVENTS,
    MAX_VALUE_CHARS,
};
use serde::{Deserialize, Serialize};
use utoipa::openapi::{ObjectBuilder, RefOr, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use super::admin::Admin;
use super::api_doc::{ErrorBody, StreamPathParams};
use super::extract::{ApiJson, ApiPath};
use super::rooms_api::{cell, moderation_error, RoomDirectory};
use super::ApiError;
use crate::rooms::ModerationError;

/// The body of `PUT …/aggregated-events`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AggregatedEvents {
    /// Replaces what the room declared before; `[]` leaves only its app's. At most 32
    /// names with the app's; a name given twice counts as its last.
    #[schema(max_items = 32)]
    events: Vec<AggregatedEventBody>,
}

/// One custom event counted rather than sent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AggregatedEventBody {
    /// The custom event's `name`.
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,64}$", example = "gesture.wave")]
    name: String,
    /// Values of the event's `data.value` counted one by one; others count only in the
    /// total.
    #[serde(default)]
    #[schema(max_items = 16, example = json!(["left", "right"]))]
    values: Vec<CountedValue>,
}

/// One value counted one by one: 1 to 64 characters.
#[derive(Debug, Deserialize)]
pub(super) struct CountedValue(String);

impl PartialSchema for CountedValue {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_VALUE_CHARS))
            .examples(["left"])
            .into()
    }
}

impl ToSchema for CountedValue {}

/// A custom event a room aggregates, as the room view shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AggregatedEventView {
    #[schema(example = "gesture.wave")]
    name: String,
    #[schema(example = json!(["left", "right"]))]
    values: Vec<String>,
    /// `config` (the app's, `[[rooms.aggregated_events]]`) or `room` (this endpoint).
    #[schema(example = "room")]
    declared_by: &'static str,
}

/// Every custom event `room` aggregates, the room's own declarations marked.
pub(super) fn aggregated_events_view(room: &Room) -> Vec<AggregatedEventView> {
    let own = room.own_aggregated_events();
    room.aggregated_events()
        .map(|(name, values)| AggregatedEventView {
            name: name.to_owned(),
            values: values.to_vec(),
            declared_by: match own.iter().any(|o| o.name == name) {
                true => "room",
                false => "config",
            },
        })
        .collect()
}

/// Declares the custom events this room aggregates on top of its app's. A name both
/// declare follows this list; totals of names that stay are kept.
#[utoipa::path(put, path = "/api/v1/rooms/{app}/{name}/aggregated-events", tag = "rooms",
    operation_id = "set_aggregated_events",
    params(StreamPathParams),
    request_body = AggregatedEvents,
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Set"),
        (status = 400, description = "`invalid_json`, `invalid_body` (also a name that is \
            not a custom event name, one declared twice, too many names or values), \
            `invalid_stream` or `invalid_path`", body = ErrorBody),
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
pub(super) async fn set(
    _: Admin,
    State(directory): State<RoomDirectory>,
    ApiPath((app, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<AggregatedEvents>,
) -> Result<StatusCode, ApiError> {
    let cell = cell(&directory, &app, &name).await?;
    if body.events.len() > MAX_AGGREGATED_EVENTS {
        let message = format!("at most {MAX_AGGREGATED_EVENTS} events");
        return Err(ApiError::bad_request("invalid_body", message));
    }
    // Every entry is checked, a name given twice too, before the last of it wins.
    let mut given = Vec::with_capacity(body.events.len());
    for e in body.events {
        let event = AggregatedEvent {
            name: e.name,
            values: e.values.into_iter().map(|v| v.0).collect(),
            apps: Vec::new(),
        };
        check_declaration(&event).map_err(|reason| {
            let message = format!("aggregated events: {reason}");
            ApiError::bad_request("invalid_body", message)
        })?;
        given.push(event);
    }
    let mut events: Vec<AggregatedEvent> = Vec::with_capacity(given.len());
    for event in given.into_iter().rev() {
        if events.iter().all(|kept| kept.name != event.name) {
            events.push(event);
        }
    }
    events.reverse();
    match directory.rooms.set_aggregated_events(&cell, events).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(ModerationError::Room(error @ RoomError::InvalidDeclaration { .. })) => {
            Err(ApiError::bad_request("invalid_body", error.to_string()))
        }
        Err(error) => Err(moderation_error(error)),
    }
}
