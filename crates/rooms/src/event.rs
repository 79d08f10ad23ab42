//! Events a room sends to its clients, and their JSON shape (docs/rooms.md is the
//! reference; the tests at the bottom pin every shape to a literal string).
//!
//! Every event has `type` and `ts` (Unix milliseconds). Events kept in history also have
//! `seq`, strictly increasing per room. Kept in history: `chat`, `gift`, `stream`,
//! `system`, `custom`, `delete`. Never kept (no `seq`): `like` (aggregated; its `total`
//! is always current, so a missed one loses nothing), `viewers` (latest wins), and the
//! per-connection `welcome`, `error`, `gap`, `reset` and `skipped`.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ErrorCode, Millis, User};

/// Position of an event in its room's history: strictly increasing, starting at 1.
/// `Seq(0)` means "before the first event".
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl Seq {
    /// Before the first event.
    pub const ZERO: Seq = Seq(0);

    /// The raw number.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The seq after this one.
    #[must_use]
    pub const fn next(self) -> Seq {
        Seq(self.0.saturating_add(1))
    }

    /// Reads a seq as clients send it (`?since=42`, `Last-Event-ID: 42`): decimal digits,
    /// surrounding whitespace ignored.
    pub fn parse(text: &str) -> Option<Seq> {
        let text = text.trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok().map(Seq)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Whether the room's stream is being published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamState {
    /// A publisher is sending.
    Live,
    /// Nobody is publishing.
    #[default]
    Offline,
}

/// The `type` of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    Chat,
    Like,
    Gift,
    Viewers,
    Stream,
    System,
    Custom,
    Delete,
    Error,
    Welcome,
    Gap,
    Reset,
    Skipped,
    Aggregate,
    Gifts,
}

impl EventKind {
    /// Every kind.
    pub const ALL: &'static [EventKind] = &[
        EventKind::Chat,
        EventKind::Like,
        EventKind::Gift,
        EventKind::Viewers,
        EventKind::Stream,
        EventKind::System,
        EventKind::Custom,
        EventKind::Delete,
        EventKind::Error,
        EventKind::Welcome,
        EventKind::Gap,
        EventKind::Reset,
        EventKind::Skipped,
        EventKind::Aggregate,
        EventKind::Gifts,
    ];

    /// The `type` string (also the SSE `event:` name).
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Chat => "chat",
            EventKind::Like => "like",
            EventKind::Gift => "gift",
            EventKind::Viewers => "viewers",
            EventKind::Stream => "stream",
            EventKind::System => "system",
            EventKind::Custom => "custom",
            EventKind::Delete => "delete",
            EventKind::Error => "error",
            EventKind::Welcome => "welcome",
            EventKind::Gap => "gap",
            EventKind::Reset => "reset",
            EventKind::Skipped => "skipped",
            EventKind::Aggregate => "aggregate",
            EventKind::Gifts => "gifts",
        }
    }

    /// Kept in history, with a `seq`.
    pub const fn is_history(self) -> bool {
        matches!(
            self,
            EventKind::Chat
                | EventKind::Gift
                | EventKind::Stream
                | EventKind::System
                | EventKind::Custom
                | EventKind::Delete
        )
    }

    /// Sent to one connection only (never broadcast).
    pub const fn is_per_connection(self) -> bool {
        matches!(
            self,
            EventKind::Error
                | EventKind::Welcome
                | EventKind::Gap
                | EventKind::Reset
                | EventKind::Skipped
        )
    }

    /// May be dropped first when a connection's send queue is full: a later event of the
    /// same kind supersedes it (`like`, `viewers`) or it is advisory (`skipped`).
    pub const fn is_droppable(self) -> bool {
        matches!(
            self,
            EventKind::Like | EventKind::Viewers | EventKind::Skipped | EventKind::Aggregate
        )
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `chat`: a message from a user. `id` is the message's id for `delete` (equal to its seq).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatEvent {
    pub seq: Seq,
    pub ts: Millis,
    pub id: Seq,
    pub user: User,
    pub text: String,
}

/// `like`: taps since the previous `like` event (`count`) and the room's total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LikeEvent {
    pub ts: Millis,
    pub count: u64,
    pub total: u64,
}

/// `aggregate`: taps of an aggregated custom event `name` since the previous
/// `aggregate` event of that name (`count`), the room's total, and the count of each
/// declared value of the taps' `data.value` (docs/rooms.md "Aggregated custom events").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregateEvent {
    pub ts: Millis,
    pub name: String,
    pub count: u64,
    pub total: u64,
    pub values: std::collections::BTreeMap<String, u64>,
}

/// `gifts`: gift messages over the room's broadcast budget since the previous `gifts`
/// event, summed (docs/rooms.md "The room's broadcast budget"): `messages` of them,
/// carrying `count` gifts, and the count of each kind (at most
/// [`MAX_SUMMED_GIFT_KINDS`](crate::gifts::MAX_SUMMED_GIFT_KINDS) kinds; later kinds count
/// only in `count`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiftsEvent {
    pub ts: Millis,
    pub messages: u64,
    pub count: u64,
    pub gifts: std::collections::BTreeMap<String, u64>,
}

/// `gift`: one gift message, with its place in a combo: `combo` is how many gift messages
/// of this kind from this user arrived in a row (each within the combo window of the
/// previous), `combo_total` the gifts they carried together (sum of `count`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GiftEvent {
    pub seq: Seq,
    pub ts: Millis,
    pub user: User,
    pub gift: String,
    pub count: u32,
    pub combo: u32,
    pub combo_total: u64,
}

/// `viewers`: room members plus media viewers of every protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewersEvent {
    pub ts: Millis,
    pub count: u64,
}

/// `stream`: the publisher started (`live`) or stopped (`offline`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamEvent {
    pub seq: Seq,
    pub ts: Millis,
    pub state: StreamState,
}

/// `system`: a notice from the platform (REST API) or the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemEvent {
    pub seq: Seq,
    pub ts: Millis,
    pub text: String,
}

/// `custom`: an application event (whiteboard stroke, poll, offer). `user` is absent when
/// the platform sent it through the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomEvent {
    pub seq: Seq,
    pub ts: Millis,
    pub name: String,
    pub data: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
}

/// `delete`: the message with this `id` (a chat, custom or system event's seq) was removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteEvent {
    pub seq: Seq,
    pub ts: Millis,
    pub id: Seq,
}

/// `error`: something this connection sent was refused. The connection stays open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEvent {
    pub ts: Millis,
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// `welcome`: the first event on every connection, a snapshot of the room.
/// `last_seq` is the seq of the newest event in history at join (0: none yet);
/// `user` is `null` for anonymous connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WelcomeEvent {
    pub ts: Millis,
    pub room: String,
    pub last_seq: Seq,
    pub viewers: u64,
    pub likes: u64,
    pub stream: StreamState,
    pub slow_mode_ms: u64,
    pub user: Option<User>,
    pub can_send: bool,
}

/// `gap`: on resume, events `from_seq..=to_seq` are no longer in history; `lost` of them
/// (the count of seq numbers in that range) will never arrive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GapEvent {
    pub ts: Millis,
    pub from_seq: Seq,
    pub to_seq: Seq,
    pub lost: u64,
}

/// `reset`: on resume, the seq asked for is ahead of the room (the room was recreated);
/// the client's seq means nothing here. Everything still in history follows, and
/// `last_seq` is the room's newest seq.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetEvent {
    pub ts: Millis,
    pub last_seq: Seq,
}

/// `skipped`: chat messages this connection did not receive because they came faster
/// than its delivery rate, since the previous `skipped` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedEvent {
    pub ts: Millis,
    pub count: u64,
}

/// One server-to-client event. Serialized with `type` first, then the variant's fields
/// in declaration order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    Chat(ChatEvent),
    Like(LikeEvent),
    Gift(GiftEvent),
    Viewers(ViewersEvent),
    Stream(StreamEvent),
    System(SystemEvent),
    Custom(CustomEvent),
    Delete(DeleteEvent),
    Error(ErrorEvent),
    Welcome(WelcomeEvent),
    Gap(GapEvent),
    Reset(ResetEvent),
    Skipped(SkippedEvent),
    Aggregate(AggregateEvent),
    Gifts(GiftsEvent),
}

impl Event {
    /// The event's `type`.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Chat(_) => EventKind::Chat,
            Event::Like(_) => EventKind::Like,
            Event::Gift(_) => EventKind::Gift,
            Event::Viewers(_) => EventKind::Viewers,
            Event::Stream(_) => EventKind::Stream,
            Event::System(_) => EventKind::System,
            Event::Custom(_) => EventKind::Custom,
            Event::Delete(_) => EventKind::Delete,
            Event::Error(_) => EventKind::Error,
            Event::Welcome(_) => EventKind::Welcome,
            Event::Gap(_) => EventKind::Gap,
            Event::Reset(_) => EventKind::Reset,
            Event::Skipped(_) => EventKind::Skipped,
            Event::Aggregate(_) => EventKind::Aggregate,
            Event::Gifts(_) => EventKind::Gifts,
        }
    }

    /// The event's `seq`, for events kept in history.
    pub fn seq(&self) -> Option<Seq> {
        match self {
            Event::Chat(e) => Some(e.seq),
            Event::Gift(e) => Some(e.seq),
            Event::Stream(e) => Some(e.seq),
            Event::System(e) => Some(e.seq),
            Event::Custom(e) => Some(e.seq),
            Event::Delete(e) => Some(e.seq),
            Event::Like(_)
            | Event::Viewers(_)
            | Event::Error(_)
            | Event::Welcome(_)
            | Event::Gap(_)
            | Event::Reset(_)
            | Event::Skipped(_)
            | Event::Aggregate(_)
            | Event::Gifts(_) => None,
        }
    }

    /// The event's `ts`.
    pub fn ts(&self) -> Millis {
        match self {
            Event::Chat(e) => e.ts,
            Event::Like(e) => e.ts,
            Event::Gift(e) => e.ts,
            Event::Viewers(e) => e.ts,
            Event::Stream(e) => e.ts,
            Event::System(e) => e.ts,
            Event::Custom(e) => e.ts,
            Event::Delete(e) => e.ts,
            Event::Error(e) => e.ts,
            Event::Welcome(e) => e.ts,
            Event::Gap(e) => e.ts,
            Event::Reset(e) => e.ts,
            Event::Skipped(e) => e.ts,
            Event::Aggregate(e) => e.ts,
            Event::Gifts(e) => e.ts,
        }
    }

    /// Kept in history (has a `seq`).
    pub fn is_history(&self) -> bool {
        self.kind().is_history()
    }

    /// The user who sent it: chat, gift, and custom events sent by a client.
    pub fn sender(&self) -> Option<&User> {
        match self {
            Event::Chat(e) => Some(&e.user),
            Event::Gift(e) => Some(&e.user),
            Event::Custom(e) => e.user.as_ref(),
            _ => None,
        }
    }

    /// Sets `seq` (and a chat's `id`). Does nothing to events not kept in history.
    pub fn set_seq(&mut self, seq: Seq) {
        match self {
            Event::Chat(e) => {
                e.seq = seq;
                e.id = seq;
            }
            Event::Gift(e) => e.seq = seq,
            Event::Stream(e) => e.seq = seq,
            Event::System(e) => e.seq = seq,
            Event::Custom(e) => e.seq = seq,
            Event::Delete(e) => e.seq = seq,
            Event::Like(_)
            | Event::Viewers(_)
            | Event::Error(_)
            | Event::Welcome(_)
            | Event::Gap(_)
            | Event::Reset(_)
            | Event::Skipped(_)
            | Event::Aggregate(_)
            | Event::Gifts(_) => {}
        }
    }

    /// Appends the event as compact JSON to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let start = out.len();
        if let Err(err) = serde_json::to_writer(&mut *out, self) {
            // Unreachable with these types (no maps with non-string keys, no floats
            // that are not finite), but never panic over it.
            tracing::error!(kind = %self.kind(), error = %err, "room event could not be encoded");
            out.truncate(start);
            out.extend_from_slice(
                br#"{"type":"error","ts":0,"code":"internal","message":"internal error"}"#,
            );
        }
    }
}

/// An event of a kind kept in history whose `seq` is not assigned yet. The room hands
/// drafts to whatever sequences them: its own [`History`](crate::History) or, with
/// [`Sequencing::External`](crate::Sequencing), a shared log (Redis) that assigns the seq
/// and gives the event back to every node.
///
/// Serialized like the event, with `"seq": 0` (and a chat's `"id": 0`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Draft(Event);

impl Draft {
    /// A draft of `event`, or `None` when the kind is not kept in history.
    pub fn new(mut event: Event) -> Option<Draft> {
        if !event.is_history() {
            return None;
        }
        event.set_seq(Seq::ZERO);
        Some(Draft(event))
    }

    /// The event, with seq 0.
    pub fn event(&self) -> &Event {
        &self.0
    }

    /// The event with its seq assigned.
    pub fn into_event(mut self, seq: Seq) -> Event {
        self.0.set_seq(seq);
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Role;
    use serde_json::json;

    const TS: Millis = Millis(1_700_000_000_000);

    fn alice() -> User {
        User::new("u1", "Alice", Role::Viewer)
    }

    fn json_of(event: &Event) -> String {
        let mut json = Vec::new();
        event.write_json(&mut json);
        String::from_utf8(json).unwrap()
    }

    /// Every shape as a literal string, and back: what docs/rooms.md shows.
    #[test]
    fn json_shapes() {
        let cases: Vec<(Event, &str)> = vec![
            (
                Event::Chat(ChatEvent {
                    seq: Seq(42),
                    ts: TS,
                    id: Seq(42),
                    user: alice(),
                    text: "hello".into(),
                }),
                r#"{"type":"chat","seq":42,"ts":1700000000000,"id":42,"user":{"id":"u1","name":"Alice","role":"viewer"},"text":"hello"}"#,
            ),
            (
                Event::Like(LikeEvent {
                    ts: TS,
                    count: 12,
                    total: 3456,
                }),
                r#"{"type":"like","ts":1700000000000,"count":12,"total":3456}"#,
            ),
            (
                Event::Gift(GiftEvent {
                    seq: Seq(43),
                    ts: TS,
                    user: alice(),
                    gift: "rose".into(),
                    count: 5,
                    combo: 3,
                    combo_total: 15,
                }),
                r#"{"type":"gift","seq":43,"ts":1700000000000,"user":{"id":"u1","name":"Alice","role":"viewer"},"gift":"rose","count":5,"combo":3,"combo_total":15}"#,
            ),
            (
                Event::Viewers(ViewersEvent {
                    ts: TS,
                    count: 1234,
                }),
                r#"{"type":"viewers","ts":1700000000000,"count":1234}"#,
            ),
            (
                Event::Stream(StreamEvent {
                    seq: Seq(44),
                    ts: TS,
                    state: StreamState::Live,
                }),
                r#"{"type":"stream","seq":44,"ts":1700000000000,"state":"live"}"#,
            ),
            (
                Event::Stream(StreamEvent {
                    seq: Seq(45),
                    ts: TS,
                    state: StreamState::Offline,
                }),
                r#"{"type":"stream","seq":45,"ts":1700000000000,"state":"offline"}"#,
            ),
            (
                Event::System(SystemEvent {
                    seq: Seq(46),
                    ts: TS,
                    text: "Welcome!".into(),
                }),
                r#"{"type":"system","seq":46,"ts":1700000000000,"text":"Welcome!"}"#,
            ),
            (
                Event::Custom(CustomEvent {
                    seq: Seq(47),
                    ts: TS,
                    name: "whiteboard.stroke".into(),
                    data: json!({"points": [[0, 0], [10, 5]], "color": "#f00"}),
                    user: Some(alice()),
                }),
                r##"{"type":"custom","seq":47,"ts":1700000000000,"name":"whiteboard.stroke","data":{"color":"#f00","points":[[0,0],[10,5]]},"user":{"id":"u1","name":"Alice","role":"viewer"}}"##,
            ),
            (
                Event::Custom(CustomEvent {
                    seq: Seq(48),
                    ts: TS,
                    name: "poll.open".into(),
                    data: json!({"question": "Next song?"}),
                    user: None,
                }),
                r#"{"type":"custom","seq":48,"ts":1700000000000,"name":"poll.open","data":{"question":"Next song?"}}"#,
            ),
            (
                Event::Delete(DeleteEvent {
                    seq: Seq(49),
                    ts: TS,
                    id: Seq(42),
                }),
                r#"{"type":"delete","seq":49,"ts":1700000000000,"id":42}"#,
            ),
            (
                Event::Error(ErrorEvent {
                    ts: TS,
                    code: ErrorCode::SlowMode,
                    message: "slow".into(),
                    retry_after_ms: Some(800),
                }),
                r#"{"type":"error","ts":1700000000000,"code":"slow_mode","message":"slow","retry_after_ms":800}"#,
            ),
            (
                Event::Welcome(WelcomeEvent {
                    ts: TS,
                    room: "live/demo".into(),
                    last_seq: Seq(49),
                    viewers: 1234,
                    likes: 3456,
                    stream: StreamState::Live,
                    slow_mode_ms: 0,
                    user: None,
                    can_send: false,
                }),
                r#"{"type":"welcome","ts":1700000000000,"room":"live/demo","last_seq":49,"viewers":1234,"likes":3456,"stream":"live","slow_mode_ms":0,"user":null,"can_send":false}"#,
            ),
            (
                Event::Gap(GapEvent {
                    ts: TS,
                    from_seq: Seq(11),
                    to_seq: Seq(40),
                    lost: 30,
                }),
                r#"{"type":"gap","ts":1700000000000,"from_seq":11,"to_seq":40,"lost":30}"#,
            ),
            (
                Event::Reset(ResetEvent {
                    ts: TS,
                    last_seq: Seq(7),
                }),
                r#"{"type":"reset","ts":1700000000000,"last_seq":7}"#,
            ),
            (
                Event::Skipped(SkippedEvent { ts: TS, count: 17 }),
                r#"{"type":"skipped","ts":1700000000000,"count":17}"#,
            ),
            (
                Event::Aggregate(AggregateEvent {
                    ts: TS,
                    name: "gesture.wave".into(),
                    count: 830,
                    total: 10412,
                    values: [("clap", 120), ("heart", 600), ("wave", 110)]
                        .map(|(k, v)| (k.to_owned(), v))
                        .into(),
                }),
                r#"{"type":"aggregate","ts":1700000000000,"name":"gesture.wave","count":830,"total":10412,"values":{"clap":120,"heart":600,"wave":110}}"#,
            ),
            (
                Event::Gifts(GiftsEvent {
                    ts: TS,
                    messages: 412,
                    count: 530,
                    gifts: [("rocket", 2), ("rose", 528)]
                        .map(|(k, v)| (k.to_owned(), v))
                        .into(),
                }),
                r#"{"type":"gifts","ts":1700000000000,"messages":412,"count":530,"gifts":{"rocket":2,"rose":528}}"#,
            ),
        ];
        let mut kinds_seen = Vec::new();
        for (event, expected) in cases {
            assert_eq!(json_of(&event), expected, "{:?}", event.kind());
            let back: Event = serde_json::from_str(expected).unwrap();
            assert_eq!(back, event);
            // `type` is the kind's name; `seq` is present exactly for history kinds.
            let value: Value = serde_json::from_str(expected).unwrap();
            assert_eq!(value["type"], event.kind().as_str());
            assert_eq!(value.get("seq").is_some(), event.kind().is_history());
            assert_eq!(event.seq().is_some(), event.kind().is_history());
            kinds_seen.push(event.kind());
        }
        for kind in EventKind::ALL {
            assert!(kinds_seen.contains(kind), "no shape test for {kind}");
        }
    }

    #[test]
    fn seq_parses_like_clients_send_it() {
        assert_eq!(Seq::parse("42"), Some(Seq(42)));
        assert_eq!(Seq::parse(" 0 "), Some(Seq(0)));
        assert_eq!(Seq::parse(""), None);
        assert_eq!(Seq::parse("-1"), None);
        assert_eq!(Seq::parse("+1"), None);
        assert_eq!(Seq::parse("1e3"), None);
        assert_eq!(Seq::parse("99999999999999999999999"), None);
    }

    #[test]
    fn drafts_only_for_history_kinds_and_take_their_seq() {
        assert!(Draft::new(Event::Like(LikeEvent {
            ts: TS,
            count: 1,
            total: 1
        }))
        .is_none());
        let draft = Draft::new(Event::Chat(ChatEvent {
            seq: Seq(9),
            ts: TS,
            id: Seq(9),
            user: alice(),
            text: "x".into(),
        }))
        .unwrap();
        assert_eq!(draft.event().seq(), Some(Seq::ZERO));
        let Event::Chat(chat) = draft.into_event(Seq(5)) else {
            panic!("not chat")
        };
        assert_eq!((chat.seq, chat.id), (Seq(5), Seq(5)));
    }

    #[test]
    fn sender_is_the_user_of_user_content() {
        let chat = Event::Chat(ChatEvent {
            seq: Seq(1),
            ts: TS,
            id: Seq(1),
            user: alice(),
            text: "x".into(),
        });
        assert_eq!(chat.sender().map(|u| &*u.id), Some("u1"));
        let system = Event::System(SystemEvent {
            seq: Seq(2),
            ts: TS,
            text: "x".into(),
        });
        assert!(system.sender().is_none());
    }
}
