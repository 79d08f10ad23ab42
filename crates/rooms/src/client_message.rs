//! Messages a client sends over the WebSocket, parsed and validated.
//!
//! ```json
//! {"type":"chat","text":"hello"}
//! {"type":"like"}                       (or "count": N taps, capped to like_max_batch)
//! {"type":"gift","gift":"rose","count":5}
//! {"type":"custom","name":"whiteboard.stroke","data":{"points":[[0,0],[4,2]]}}
//! ```
//!
//! Unknown fields are ignored, so clients can add their own (a nonce, say).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::{Action, Error, RoomSettings};

/// A validated client message.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    /// Chat text: trimmed, non-empty, within the length limit, no control characters.
    Chat { text: String },
    /// `count` taps of the like button, 1..=like_max_batch.
    Like { count: u32 },
    /// `count` gifts of kind `gift`.
    Gift { gift: String, count: u32 },
    /// An application event.
    Custom { name: String, data: Value },
}

/// The fields of a client message as they arrived, each borrowed from the frame's
/// text and looked at only when the message's type uses it: parsing allocates nothing
/// for a like or a gift, and only the text for a chat. Unknown fields are skipped.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(rename = "type", default, borrow, deserialize_with = "raw")]
    kind: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw")]
    text: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw")]
    gift: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw")]
    count: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw")]
    name: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "raw")]
    data: Option<&'a RawValue>,
}

/// A field that is present, `null` included (an `Option` alone would take `null` for
/// absent).
fn raw<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

impl ClientMessage {
    /// Parses one WebSocket text frame. Each failure has its own [`Error`] and code.
    pub fn parse(text: &str, settings: &RoomSettings) -> Result<ClientMessage, Error> {
        let invalid_json = |err: serde_json::Error| Error::InvalidJson {
            line: err.line(),
            column: err.column(),
            reason: err.to_string(),
        };
        // A struct would also take an array, by position: only objects are messages.
        if !text.trim_start().starts_with('{') {
            return match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Ok(_) => Err(Error::NotAnObject),
                Err(err) => Err(invalid_json(err)),
            };
        }
        let fields: Fields<'_> = serde_json::from_str(text).map_err(invalid_json)?;
        let kind = required_str(fields.kind, "type")?;
        match kind.as_ref() {
            "chat" => {
                let text = required_str(fields.text, "text")?;
                let text = validate_text(&text, settings.chat_max_chars)?;
                Ok(ClientMessage::Chat { text })
            }
            "like" => {
                let count = optional_count(fields.count, "count")?.unwrap_or(1);
                if count == 0 {
                    return Err(Error::InvalidCount {
                        field: "count",
                        count,
                        min: 1,
                        max: u64::from(settings.like_max_batch),
                    });
                }
                // Capped, not refused: a client batching taps loses only the excess.
                let count = u32::try_from(count)
                    .unwrap_or(u32::MAX)
                    .min(settings.like_max_batch.max(1));
                Ok(ClientMessage::Like { count })
            }
            "gift" => {
                let gift = required_str(fields.gift, "gift")?;
                if !is_valid_gift_name(&gift) {
                    return Err(Error::InvalidGift);
                }
                let count = optional_count(fields.count, "count")?.unwrap_or(1);
                let max = settings.gift_max_count.max(1);
                let count = match u32::try_from(count) {
                    Ok(c) if (1..=max).contains(&c) => c,
                    _ => {
                        return Err(Error::InvalidCount {
                            field: "count",
                            count,
                            min: 1,
                            max: u64::from(max),
                        })
                    }
                };
                Ok(ClientMessage::Gift {
                    gift: gift.into_owned(),
                    count,
                })
            }
            "custom" => {
                let name = required_str(fields.name, "name")?;
                if !is_valid_custom_name(&name) {
                    return Err(Error::InvalidName);
                }
                let data = match fields.data {
                    Some(raw) => serde_json::from_str(raw.get()).map_err(invalid_json)?,
                    None => Value::Null,
                };
                // The raw JSON is never shorter than the compact form: only a large one
                // is measured.
                if fields
                    .data
                    .is_some_and(|raw| raw.get().len() > settings.custom_max_bytes)
                {
                    check_data_size(&data, settings.custom_max_bytes)?;
                }
                Ok(ClientMessage::Custom {
                    name: name.into_owned(),
                    data,
                })
            }
            other => Err(Error::UnknownType {
                kind: other.chars().take(64).collect(),
            }),
        }
    }

    /// Which per-user rate limit the message counts against.
    pub fn action(&self) -> Action {
        match self {
            ClientMessage::Chat { .. } => Action::Chat,
            ClientMessage::Like { .. } => Action::Like,
            ClientMessage::Gift { .. } => Action::Gift,
            ClientMessage::Custom { .. } => Action::Custom,
        }
    }
}

fn required_str<'a>(raw: Option<&'a RawValue>, field: &'static str) -> Result<Cow<'a, str>, Error> {
    let raw = raw.ok_or(Error::MissingField { field })?;
    let invalid = Error::InvalidField {
        field,
        expected: "a string",
    };
    if !raw.get().starts_with('"') {
        return Err(invalid);
    }
    // Borrowed unless the string has escapes.
    match serde_json::from_str::<&str>(raw.get()) {
        Ok(text) => Ok(Cow::Borrowed(text)),
        Err(_) => serde_json::from_str::<String>(raw.get())
            .map(Cow::Owned)
            .map_err(|_| invalid),
    }
}

fn optional_count(raw: Option<&RawValue>, field: &'static str) -> Result<Option<u64>, Error> {
    raw.map(|raw| {
        serde_json::from_str::<u64>(raw.get()).map_err(|_| Error::InvalidField {
            field,
            expected: "a whole number",
        })
    })
    .transpose()
}

/// Trims `text` and checks it: not empty, at most `max_chars` characters, no control
/// characters (Unicode Cc: tabs and newlines inside the text too; chat is one line).
/// Used for chat and for `system` text from the API.
pub fn validate_text(text: &str, max_chars: usize) -> Result<String, Error> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::EmptyText);
    }
    let mut chars = 0usize;
    for (index, c) in text.chars().enumerate() {
        if c.is_control() {
            return Err(Error::ControlCharacter {
                index,
                code: u32::from(c),
            });
        }
        chars = index + 1;
    }
    if chars > max_chars {
        return Err(Error::TextTooLong {
            chars,
            max: max_chars,
        });
    }
    Ok(text.to_owned())
}

/// `[A-Za-z0-9_-]{1,32}`.
pub fn is_valid_gift_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `[A-Za-z0-9_.:-]{1,64}`.
pub fn is_valid_custom_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// Checks that `data` is at most `max` bytes as compact JSON.
pub fn check_data_size(data: &Value, max: usize) -> Result<(), Error> {
    let bytes = serde_json::to_vec(data).map_or(usize::MAX, |v| v.len());
    if bytes > max {
        return Err(Error::DataTooLarge { bytes, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use serde_json::json;

    fn parse(text: &str) -> Result<ClientMessage, Error> {
        ClientMessage::parse(text, &RoomSettings::default())
    }

    fn code(text: &str) -> ErrorCode {
        parse(text).unwrap_err().code()
    }

    #[test]
    fn the_four_messages_of_the_contract() {
        assert_eq!(
            parse(r#"{"type":"chat","text":"  hello  "}"#).unwrap(),
            ClientMessage::Chat {
                text: "hello".into()
            }
        );
        assert_eq!(
            parse(r#"{"type":"like"}"#).unwrap(),
            ClientMessage::Like { count: 1 }
        );
        assert_eq!(
            parse(r#"{"type":"like","count":7}"#).unwrap(),
            ClientMessage::Like { count: 7 }
        );
        assert_eq!(
            parse(r#"{"type":"gift","gift":"rose","count":5}"#).unwrap(),
            ClientMessage::Gift {
                gift: "rose".into(),
                count: 5
            }
        );
        assert_eq!(
            parse(r#"{"type":"gift","gift":"rose"}"#).unwrap(),
            ClientMessage::Gift {
                gift: "rose".into(),
                count: 1
            }
        );
        assert_eq!(
            parse(r#"{"type":"custom","name":"poll.vote","data":{"choice":2},"nonce":"x"}"#)
                .unwrap(),
            ClientMessage::Custom {
                name: "poll.vote".into(),
                data: json!({"choice": 2})
            }
        );
        assert_eq!(
            parse(r#"{"type":"custom","name":"ping"}"#).unwrap(),
            ClientMessage::Custom {
                name: "ping".into(),
                data: Value::Null
            }
        );
    }

    #[test]
    fn unicode_chat_counts_characters_not_bytes() {
        let settings = RoomSettings {
            chat_max_chars: 3,
            ..RoomSettings::default()
        };
        let ok = ClientMessage::parse(r#"{"type":"chat","text":"弹幕!"}"#, &settings);
        assert_eq!(
            ok.unwrap(),
            ClientMessage::Chat {
                text: "弹幕!".into()
            }
        );
        let err = ClientMessage::parse(r#"{"type":"chat","text":"弹幕弹幕"}"#, &settings);
        assert_eq!(err, Err(Error::TextTooLong { chars: 4, max: 3 }));
    }

    #[test]
    fn escapes_are_decoded_and_a_field_given_twice_is_refused() {
        assert_eq!(
            parse(r#"{"type":"chat","text":"caf\u00e9 \"ok\""}"#).unwrap(),
            ClientMessage::Chat {
                text: "café \"ok\"".into()
            }
        );
        assert_eq!(
            code(r#"{"type":"chat","text":"a","text":"b"}"#),
            ErrorCode::InvalidJson
        );
        assert_eq!(
            code(r#"{"type":"chat","text":null}"#),
            ErrorCode::InvalidField
        );
        assert!(parse(r#"  {"type":"like"} "#).is_ok());
    }

    #[test]
    fn likes_are_capped_not_refused() {
        assert_eq!(
            parse(r#"{"type":"like","count":100000000000}"#).unwrap(),
            ClientMessage::Like { count: 50 }
        );
    }

    #[test]
    fn every_error_has_its_code() {
        assert_eq!(code("not json"), ErrorCode::InvalidJson);
        assert_eq!(code(r#"{"type":"chat""#), ErrorCode::InvalidJson);
        assert_eq!(code(""), ErrorCode::InvalidJson);
        assert_eq!(code("[1,2]"), ErrorCode::InvalidMessage);
        assert_eq!(code(r#""chat""#), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"text":"hi"}"#), ErrorCode::MissingField);
        assert_eq!(code(r#"{"type":7}"#), ErrorCode::InvalidField);
        assert_eq!(code(r#"{"type":"viewers"}"#), ErrorCode::UnknownType);
        assert_eq!(
            code(r#"{"type":"Chat","text":"x"}"#),
            ErrorCode::UnknownType
        );
        assert_eq!(code(r#"{"type":"chat"}"#), ErrorCode::MissingField);
        assert_eq!(code(r#"{"type":"chat","text":5}"#), ErrorCode::InvalidField);
        assert_eq!(
            code(r#"{"type":"chat","text":"   "}"#),
            ErrorCode::EmptyText
        );
        assert_eq!(code(r#"{"type":"chat","text":""}"#), ErrorCode::EmptyText);
        let long = format!(r#"{{"type":"chat","text":"{}"}}"#, "a".repeat(501));
        assert_eq!(code(&long), ErrorCode::TextTooLong);
        let exact = format!(r#"{{"type":"chat","text":"{}"}}"#, "a".repeat(500));
        assert!(parse(&exact).is_ok());
        assert_eq!(
            parse(r#"{"type":"chat","text":"a\nb"}"#),
            Err(Error::ControlCharacter { index: 1, code: 10 })
        );
        assert_eq!(
            code(r#"{"type":"chat","text":"a\u0000b"}"#),
            ErrorCode::ControlCharacter
        );
        assert_eq!(
            code(r#"{"type":"chat","text":"a\u007fb"}"#),
            ErrorCode::ControlCharacter
        );
        assert_eq!(
            code(r#"{"type":"like","count":0}"#),
            ErrorCode::InvalidCount
        );
        assert_eq!(
            code(r#"{"type":"like","count":-1}"#),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(r#"{"type":"like","count":1.5}"#),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(r#"{"type":"like","count":"3"}"#),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(r#"{"type":"gift","count":1}"#),
            ErrorCode::MissingField
        );
        assert_eq!(code(r#"{"type":"gift","gift":""}"#), ErrorCode::InvalidGift);
        assert_eq!(
            code(r#"{"type":"gift","gift":"ro se"}"#),
            ErrorCode::InvalidGift
        );
        let long_gift = format!(r#"{{"type":"gift","gift":"{}"}}"#, "g".repeat(33));
        assert_eq!(code(&long_gift), ErrorCode::InvalidGift);
        assert_eq!(
            code(r#"{"type":"gift","gift":"rose","count":0}"#),
            ErrorCode::InvalidCount
        );
        assert_eq!(
            parse(r#"{"type":"gift","gift":"rose","count":1001}"#),
            Err(Error::InvalidCount {
                field: "count",
                count: 1001,
                min: 1,
                max: 1000
            })
        );
        assert_eq!(
            code(r#"{"type":"custom","data":{}}"#),
            ErrorCode::MissingField
        );
        assert_eq!(
            code(r#"{"type":"custom","name":"a b"}"#),
            ErrorCode::InvalidName
        );
        assert_eq!(
            code(r#"{"type":"custom","name":""}"#),
            ErrorCode::InvalidName
        );
        let big = format!(
            r#"{{"type":"custom","name":"x","data":"{}"}}"#,
            "d".repeat(4095)
        );
        assert_eq!(
            parse(&big),
            Err(Error::DataTooLarge {
                bytes: 4097,
                max: 4096
            })
        );
        let fits = format!(
            r#"{{"type":"custom","name":"x","data":"{}"}}"#,
            "d".repeat(4094)
        );
        assert!(parse(&fits).is_ok());
    }

    #[test]
    fn unknown_type_is_cut_short_in_the_error() {
        let text = format!(r#"{{"type":"{}"}}"#, "x".repeat(10_000));
        let Err(Error::UnknownType { kind }) = parse(&text) else {
            panic!("expected unknown type")
        };
        assert_eq!(kind.len(), 64);
    }

    #[test]
    fn deep_nesting_is_invalid_json_not_a_crash() {
        let deep = format!(
            r#"{{"type":"custom","name":"x","data":{}{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert_eq!(code(&deep), ErrorCode::InvalidJson);
    }

    #[test]
    fn name_patterns() {
        assert!(is_valid_gift_name("super_rocket-2"));
        assert!(!is_valid_gift_name("rocket.2"));
        assert!(is_valid_custom_name("app:whiteboard.stroke-v2"));
        assert!(!is_valid_custom_name("emoji🙂"));
        assert!(!is_valid_custom_name(&"n".repeat(65)));
    }
}
