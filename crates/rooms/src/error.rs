//! The crate's one error type, and the stable codes clients see in `error` events.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::event::{ErrorEvent, Event, EventKind, Seq};
use crate::{ConnId, Envelope, Millis};

/// The `code` of an `error` event (and of the server's REST errors for the same causes).
/// Stable snake_case strings: clients switch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame is not valid JSON.
    InvalidJson,
    /// Valid JSON, but not an object.
    InvalidMessage,
    /// `type` is not one a client may send.
    UnknownType,
    /// A required field is absent.
    MissingField,
    /// A field has the wrong JSON type.
    InvalidField,
    /// Chat (or system) text is empty after trimming.
    EmptyText,
    /// Text longer than the limit.
    TextTooLong,
    /// Text contains a control character.
    ControlCharacter,
    /// A gift name that does not match `[A-Za-z0-9_-]{1,32}`.
    InvalidGift,
    /// A `count` out of range.
    InvalidCount,
    /// A custom event name that does not match `[A-Za-z0-9_.:-]{1,64}`.
    InvalidName,
    /// Custom `data` larger than the limit.
    DataTooLarge,
    /// Anonymous connections may not send in this room.
    LoginRequired,
    /// The user is muted (room or everywhere).
    Muted,
    /// The user is banned (room or everywhere).
    Banned,
    /// The user sends faster than its per-user limit.
    RateLimited,
    /// Slow mode: the user sent a chat message too recently.
    SlowMode,
    /// The connection is not in the room.
    NotMember,
    /// The room holds as many connections as allowed.
    RoomFull,
    /// As many rooms exist as allowed.
    TooManyRooms,
    /// No such message to delete.
    MessageNotFound,
    /// A mute or ban list is full.
    ListFull,
    /// Something on the server's side.
    Internal,
}

impl ErrorCode {
    /// Every code, in documentation order.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::InvalidJson,
        ErrorCode::InvalidMessage,
        ErrorCode::UnknownType,
        ErrorCode::MissingField,
        ErrorCode::InvalidField,
        ErrorCode::EmptyText,
        ErrorCode::TextTooLong,
        ErrorCode::ControlCharacter,
        ErrorCode::InvalidGift,
        ErrorCode::InvalidCount,
        ErrorCode::InvalidName,
        ErrorCode::DataTooLarge,
        ErrorCode::LoginRequired,
        ErrorCode::Muted,
        ErrorCode::Banned,
        ErrorCode::RateLimited,
        ErrorCode::SlowMode,
        ErrorCode::NotMember,
        ErrorCode::RoomFull,
        ErrorCode::TooManyRooms,
        ErrorCode::MessageNotFound,
        ErrorCode::ListFull,
        ErrorCode::Internal,
    ];

    /// The wire name, e.g. `rate_limited`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::MissingField => "missing_field",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::EmptyText => "empty_text",
            ErrorCode::TextTooLong => "text_too_long",
            ErrorCode::ControlCharacter => "control_character",
            ErrorCode::InvalidGift => "invalid_gift",
            ErrorCode::InvalidCount => "invalid_count",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::DataTooLarge => "data_too_large",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::Muted => "muted",
            ErrorCode::Banned => "banned",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::SlowMode => "slow_mode",
            ErrorCode::NotMember => "not_member",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::TooManyRooms => "too_many_rooms",
            ErrorCode::MessageNotFound => "message_not_found",
            ErrorCode::ListFull => "list_full",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a client sent, for rate-limit errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// A `chat` message.
    Chat,
    /// A `like` message.
    Like,
    /// A `gift` message.
    Gift,
    /// A `custom` message.
    Custom,
}

impl Action {
    /// `chat`, `like`, `gift` or `custom`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Chat => "chat",
            Action::Like => "like",
            Action::Gift => "gift",
            Action::Custom => "custom",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in the room model. None of these closes a connection:
/// the server turns them into an `error` event ([`Error::to_envelope`]) for the one
/// connection that caused them, or into a REST error with the same [`code`](Error::code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client's frame is not JSON.
    #[error("not valid JSON (line {line}, column {column}): {reason}")]
    InvalidJson {
        line: usize,
        column: usize,
        reason: String,
    },
    /// The client's frame is JSON but not an object.
    #[error("a message must be a JSON object")]
    NotAnObject,
    /// The client sent a `type` it may not send. `kind` is cut to 64 characters.
    #[error("unknown message type {kind:?} (a client sends chat, like, gift or custom)")]
    UnknownType { kind: String },
    /// A required field is absent.
    #[error("field {field:?} is missing")]
    MissingField { field: &'static str },
    /// A field has the wrong JSON type.
    #[error("field {field:?} must be {expected}")]
    InvalidField {
        field: &'static str,
        expected: &'static str,
    },
    /// Chat or system text is empty after trimming.
    #[error("text is empty")]
    EmptyText,
    /// Chat or system text is longer than allowed.
    #[error("text has {chars} characters, more than the limit of {max}")]
    TextTooLong { chars: usize, max: usize },
    /// Text contains a control character (Unicode category Cc) after trimming.
    #[error("text contains control character U+{code:04X} at character {index}")]
    ControlCharacter { index: usize, code: u32 },
    /// A gift name outside `[A-Za-z0-9_-]{1,32}`.
    #[error("gift name must be 1 to 32 characters of A-Z a-z 0-9 _ -")]
    InvalidGift,
    /// A like or gift `count` out of range.
    #[error("{field} {count} is out of range {min}..={max}")]
    InvalidCount {
        field: &'static str,
        count: u64,
        min: u64,
        max: u64,
    },
    /// A custom event name outside `[A-Za-z0-9_.:-]{1,64}`.
    #[error("custom event name must be 1 to 64 characters of A-Z a-z 0-9 _ . : -")]
    InvalidName,
    /// Custom `data` larger than allowed.
    #[error("custom data is {bytes} bytes of JSON, more than the limit of {max}")]
    DataTooLarge { bytes: usize, max: usize },
    /// An anonymous connection tried to send where only signed-in users may.
    #[error("sign in to send messages in this room")]
    LoginRequired,
    /// The sender is muted; `until` is when the mute ends (`None`: until lifted).
    #[error("you are muted")]
    Muted { until: Option<Millis> },
    /// The user is banned; `until` is when the ban ends (`None`: until lifted).
    #[error("you are banned from this room")]
    Banned { until: Option<Millis> },
    /// The sender is over its per-user rate for `action`.
    #[error("too many {action} messages; retry in {retry_after_ms} ms")]
    RateLimited { action: Action, retry_after_ms: u64 },
    /// Slow mode is on and the sender's last chat message was too recent.
    #[error("slow mode is on (one message per {period_ms} ms); retry in {retry_after_ms} ms")]
    SlowMode { period_ms: u64, retry_after_ms: u64 },
    /// A message from a connection that did not join (or was removed).
    #[error("connection {conn} is not in the room")]
    NotMember { conn: ConnId },
    /// The room holds `max` connections already.
    #[error("the room is full ({max} connections)")]
    RoomFull { max: usize },
    /// `max` rooms exist already.
    #[error("too many rooms ({max})")]
    TooManyRooms { max: usize },
    /// Delete of a message that does not exist, is not deletable or is already deleted.
    #[error("no message {id} to delete")]
    MessageNotFound { id: Seq },
    /// A mute or ban list holds `max` entries already.
    #[error("the {list} list is full ({max} entries)")]
    ListFull { list: &'static str, max: usize },
    /// An externally sequenced event whose seq is not after the room's last one.
    #[error("event seq {seq} is not after the room's last seq {last}")]
    OutOfOrder { seq: Seq, last: Seq },
    /// An event of a kind that is never kept in history was given to history.
    #[error("{kind} events are not kept in history")]
    NotInHistory { kind: EventKind },
    /// A room's own aggregated events that cannot be declared.
    #[error("aggregated events: {reason}")]
    InvalidDeclaration { reason: &'static str },
    /// A setting value that would make rooms useless.
    #[error("setting {key}: {reason}")]
    InvalidSetting {
        key: &'static str,
        reason: &'static str,
    },
}

impl Error {
    /// The stable code clients see.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidJson { .. } => ErrorCode::InvalidJson,
            Error::NotAnObject => ErrorCode::InvalidMessage,
            Error::UnknownType { .. } => ErrorCode::UnknownType,
            Error::MissingField { .. } => ErrorCode::MissingField,
            Error::InvalidField { .. } => ErrorCode::InvalidField,
            Error::EmptyText => ErrorCode::EmptyText,
            Error::TextTooLong { .. } => ErrorCode::TextTooLong,
            Error::ControlCharacter { .. } => ErrorCode::ControlCharacter,
            Error::InvalidGift => ErrorCode::InvalidGift,
            Error::InvalidCount { .. } => ErrorCode::InvalidCount,
            Error::InvalidName => ErrorCode::InvalidName,
            Error::DataTooLarge { .. } => ErrorCode::DataTooLarge,
            Error::LoginRequired => ErrorCode::LoginRequired,
            Error::Muted { .. } => ErrorCode::Muted,
            Error::Banned { .. } => ErrorCode::Banned,
            Error::RateLimited { .. } => ErrorCode::RateLimited,
            Error::SlowMode { .. } => ErrorCode::SlowMode,
            Error::NotMember { .. } => ErrorCode::NotMember,
            Error::RoomFull { .. } => ErrorCode::RoomFull,
            Error::TooManyRooms { .. } => ErrorCode::TooManyRooms,
            Error::MessageNotFound { .. } => ErrorCode::MessageNotFound,
            Error::ListFull { .. } => ErrorCode::ListFull,
            Error::InvalidDeclaration { .. } => ErrorCode::InvalidField,
            Error::OutOfOrder { .. }
            | Error::NotInHistory { .. }
            | Error::InvalidSetting { .. } => ErrorCode::Internal,
        }
    }

    /// When trying again can succeed, in how many milliseconds.
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            Error::RateLimited { retry_after_ms, .. } | Error::SlowMode { retry_after_ms, .. } => {
                Some(*retry_after_ms)
            }
            _ => None,
        }
    }

    /// The `error` event for the connection that caused this.
    pub fn to_event(&self, now: Millis) -> Event {
        let message = match self.code() {
            // Internal detail stays in the server's log.
            ErrorCode::Internal => "internal error".to_owned(),
            _ => self.to_string(),
        };
        Event::Error(ErrorEvent {
            ts: now,
            code: self.code(),
            message,
            retry_after_ms: self.retry_after_ms(),
        })
    }

    /// [`to_event`](Error::to_event), encoded once.
    pub fn to_envelope(&self, now: Millis) -> Arc<Envelope> {
        Envelope::shared(self.to_event(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_names() {
        for code in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_string(code).unwrap(),
                format!("\"{}\"", code.as_str())
            );
        }
    }

    /// docs/rooms.md lists every code and every event type; keep it exact.
    #[test]
    fn docs_name_every_code_and_event_type() {
        let docs = include_str!("../../../docs/rooms.md");
        for code in ErrorCode::ALL {
            assert!(
                docs.contains(&format!("| `{}` |", code.as_str())),
                "docs/rooms.md lacks error code {code}"
            );
        }
        for kind in EventKind::ALL {
            assert!(
                docs.contains(&format!("| `{}` |", kind.as_str())),
                "docs/rooms.md lacks event type {kind}"
            );
        }
    }

    #[test]
    fn error_event_json() {
        let err = Error::RateLimited {
            action: Action::Chat,
            retry_after_ms: 1500,
        };
        assert_eq!(
            err.to_envelope(Millis(1_700_000_000_000)).json().as_ref(),
            br#"{"type":"error","ts":1700000000000,"code":"rate_limited","message":"too many chat messages; retry in 1500 ms","retry_after_ms":1500}"#
        );
        let err = Error::EmptyText;
        assert_eq!(
            err.to_envelope(Millis(5)).json().as_ref(),
            br#"{"type":"error","ts":5,"code":"empty_text","message":"text is empty"}"#
        );
    }

    #[test]
    fn internal_errors_do_not_leak_detail() {
        let err = Error::OutOfOrder {
            seq: Seq(3),
            last: Seq(9),
        };
        assert_eq!(err.code(), ErrorCode::Internal);
        let Event::Error(ev) = err.to_event(Millis(1)) else {
            panic!("not an error event")
        };
        assert_eq!(ev.message, "internal error");
    }
}
