//! The two room protocols the bench speaks over WebSocket text frames, as pure
//! functions: onair's (docs/rooms.md) and socket.io v4 over engine.io v4 with the
//! websocket transport only (`0{...}` open, `40` connect, `42[event, data]` events,
//! `2`/`3` ping and pong).
//!
//! Every chat the bench sends carries its send time as `t:<unix micros>` in the text,
//! and both servers echo the text, so the receiver finds it in the frame without
//! parsing JSON.

/// The marker that starts the send timestamp inside a received frame.
const STAMP: &str = "\"t:";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Protocol {
    /// onair's room protocol: `welcome` first, JSON events, `{"type":"chat","text":…}` to send.
    Onair,
    /// socket.io v4 over engine.io v4, websocket transport: the server must emit every
    /// `chat` event with a `text` field to the room.
    Socketio,
}

/// What a received frame means to the bench.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Incoming<'a> {
    /// A chat message; the send time when it carries one.
    Chat(Option<u64>),
    /// onair: this many chat messages were sampled away for this connection.
    Skipped(u64),
    /// onair: a message was refused, with this code.
    Error(&'a str),
    /// The connection is in the room (onair `welcome`, socket.io namespace connect).
    Joined,
    /// engine.io open packet: reply with [`Protocol::connect_frame`].
    Open,
    /// engine.io ping: reply with [`Protocol::pong_frame`].
    Ping,
    /// socket.io: the server refused or ended the namespace connection.
    Refused,
    Other,
}

impl Protocol {
    /// The URL a client opens, with a chat token for onair senders.
    pub(super) fn url(self, base: &str, token: Option<&str>) -> String {
        match token {
            Some(token) if self == Self::Onair => {
                let sep = if base.contains('?') { '&' } else { '?' };
                format!("{base}{sep}token={token}")
            }
            _ => base.to_owned(),
        }
    }

    pub(super) fn classify(self, frame: &str) -> Incoming<'_> {
        match self {
            Self::Onair => classify_onair(frame),
            Self::Socketio => classify_socketio(frame),
        }
    }

    /// A chat message whose text is `t:<sent_us>`.
    pub(super) fn chat_frame(self, sent_us: u64) -> String {
        match self {
            Self::Onair => format!(r#"{{"type":"chat","text":"t:{sent_us}"}}"#),
            Self::Socketio => format!(r#"42["chat",{{"text":"t:{sent_us}"}}]"#),
        }
    }

    /// socket.io: joins the default namespace after the engine.io open packet.
    pub(super) fn connect_frame(self) -> Option<&'static str> {
        (self == Self::Socketio).then_some("40")
    }

    pub(super) fn pong_frame(self) -> Option<&'static str> {
        (self == Self::Socketio).then_some("3")
    }
}

fn classify_onair(frame: &str) -> Incoming<'_> {
    // Events start with their type (docs/rooms.md: fields appear in the order shown).
    let Some(rest) = frame.strip_prefix(r#"{"type":""#) else {
        return Incoming::Other;
    };
    if rest.starts_with("chat\"") {
        Incoming::Chat(stamp(frame))
    } else if rest.starts_with("skipped\"") {
        Incoming::Skipped(number_after(frame, "\"count\":").unwrap_or(0))
    } else if rest.starts_with("welcome\"") {
        Incoming::Joined
    } else if rest.starts_with("error\"") {
        Incoming::Error(string_after(frame, "\"code\":\"").unwrap_or("?"))
    } else {
        Incoming::Other
    }
}

fn classify_socketio(frame: &str) -> Incoming<'_> {
    if frame.starts_with(r#"42["chat""#) {
        Incoming::Chat(stamp(frame))
    } else if frame == "2" {
        Incoming::Ping
    } else if frame.starts_with("40") {
        Incoming::Joined
    } else if frame.starts_with("44") || frame == "41" || frame == "1" {
        Incoming::Refused
    } else if frame.starts_with("0{") {
        Incoming::Open
    } else {
        Incoming::Other
    }
}

/// The digits after the last `"t:` in the frame: the text, the chat event's last field.
/// Searched backwards byte by byte: a substring search from the start (`str::find`)
/// was a fifth of the bench's CPU at a million messages a second.
fn stamp(frame: &str) -> Option<u64> {
    let bytes = frame.as_bytes();
    let mut end = bytes.len();
    // Each `:` from the end, until one follows `"t`.
    while let Some(colon) = bytes.get(..end)?.iter().rposition(|&b| b == b':') {
        if colon >= 2 && bytes.get(colon - 2..=colon) == Some(STAMP.as_bytes()) {
            return digits(frame.get(colon + 1..)?);
        }
        end = colon;
    }
    None
}

fn number_after(frame: &str, key: &str) -> Option<u64> {
    let start = frame.find(key)? + key.len();
    digits(frame.get(start..)?)
}

/// The number `rest` starts with.
fn digits(rest: &str) -> Option<u64> {
    let end = rest
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    rest.get(..end)?.parse().ok()
}

fn string_after<'a>(frame: &'a str, key: &str) -> Option<&'a str> {
    let start = frame.find(key)? + key.len();
    let rest = frame.get(start..)?;
    rest.get(..rest.find('"')?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_onair_events() {
        let p = Protocol::Onair;
        let chat = r#"{"type":"chat","seq":42,"ts":1700000000000,"id":42,"user":{"id":"u1","name":"Alice","role":"viewer"},"text":"t:1700000000123456"}"#;
        assert_eq!(
            p.classify(chat),
            Incoming::Chat(Some(1_700_000_000_123_456))
        );
        let plain = r#"{"type":"chat","seq":1,"ts":1,"id":1,"user":{"id":"u","name":"u","role":"viewer"},"text":"hello"}"#;
        assert_eq!(p.classify(plain), Incoming::Chat(None));
        assert_eq!(
            p.classify(r#"{"type":"skipped","ts":1700000000000,"count":17}"#),
            Incoming::Skipped(17)
        );
        assert_eq!(
            p.classify(r#"{"type":"welcome","ts":1,"room":"live/demo","last_seq":0}"#),
            Incoming::Joined
        );
        assert_eq!(
            p.classify(r#"{"type":"error","ts":1,"code":"rate_limited","message":"x","retry_after_ms":800}"#),
            Incoming::Error("rate_limited")
        );
        assert_eq!(
            p.classify(r#"{"type":"viewers","ts":1,"count":3}"#),
            Incoming::Other
        );
        assert_eq!(p.chat_frame(5), r#"{"type":"chat","text":"t:5"}"#);
        assert_eq!(
            p.url("ws://h/ws/live/x", Some("T")),
            "ws://h/ws/live/x?token=T"
        );
        assert_eq!(
            p.url("ws://h/ws/live/x?since=0", Some("T")),
            "ws://h/ws/live/x?since=0&token=T"
        );
        assert_eq!((p.connect_frame(), p.pong_frame()), (None, None));
    }

    #[test]
    fn reads_socketio_packets() {
        let p = Protocol::Socketio;
        let open = r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        assert_eq!(p.classify(open), Incoming::Open);
        assert_eq!(p.classify(r#"40{"sid":"xyz"}"#), Incoming::Joined);
        assert_eq!(p.classify("2"), Incoming::Ping);
        assert_eq!(
            p.classify(r#"42["chat",{"seq":3,"user":{"id":"a"},"text":"t:99"}]"#),
            Incoming::Chat(Some(99))
        );
        assert_eq!(p.classify(r#"44{"message":"nope"}"#), Incoming::Refused);
        assert_eq!(p.classify(r#"42["other",1]"#), Incoming::Other);
        assert_eq!(p.chat_frame(7), r#"42["chat",{"text":"t:7"}]"#);
        assert_eq!(
            p.url("ws://h/socket.io/?EIO=4", Some("T")),
            "ws://h/socket.io/?EIO=4"
        );
        assert_eq!((p.connect_frame(), p.pong_frame()), (Some("40"), Some("3")));
    }
}
