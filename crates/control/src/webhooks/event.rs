//! The notifications and their JSON (docs/webhooks.md shows each one).
//!
//! Every payload has `event`, `id` (one per notification, the same on every retry, for
//! the receiver to drop duplicates), `time` (Unix milliseconds), `stream` (`app/name`),
//! `app`, `name`, and `client` {`conn_id`, `ip`} where a connection is behind it.
//! The query that came with a stream name travels as `params`, without the secret
//! ones (`key`, `sig`, `token`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use onair_media::StreamPath;
use onair_rooms::Envelope;
use serde::ser::{Serialize, SerializeMap, Serializer};

use super::settings::EventName;
use onair_relay::hub::{ClientInfo, HubEvent, HubEventKind, Protocol, PublishStats};

/// Query parameters never passed along in a notification.
const SECRET_PARAMS: [&str; 3] = ["key", "sig", "token"];
/// Query parameters passed along at most; a name's query is bounded anyway, this
/// keeps a payload small.
const MAX_PARAMS: usize = 32;

/// One notification.
#[derive(Debug, Clone)]
pub struct WebhookEvent {
    pub id: String,
    /// Unix milliseconds.
    pub time: u64,
    pub stream: StreamPath,
    pub client: Option<ClientInfo>,
    pub detail: EventDetail,
}

#[derive(Debug, Clone)]
pub enum EventDetail {
    Publish {
        protocol: Protocol,
    },
    Unpublish {
        protocol: Protocol,
        stats: PublishStats,
    },
    Play {
        protocol: Protocol,
    },
    PlayStop {
        protocol: Protocol,
        duration: Duration,
    },
    /// A recording was closed: `id` in the REST API, `path` on disk, `file` relative
    /// to the recordings directory, the media it holds, when it was written.
    RecordDone {
        id: String,
        path: String,
        file: String,
        duration: Duration,
        bytes: u64,
        started: SystemTime,
        ended: SystemTime,
    },
    /// A room event, as its clients received it.
    RoomEvent(Arc<Envelope>),
}

impl WebhookEvent {
    /// A notification about `stream`, with a fresh id and the current time.
    pub fn new(stream: StreamPath, client: Option<ClientInfo>, detail: EventDetail) -> Self {
        Self {
            id: new_id(),
            time: unix_ms(),
            stream,
            client,
            detail,
        }
    }

    pub fn from_hub(event: &HubEvent) -> Self {
        let protocol = event.protocol;
        let detail = match event.kind {
            HubEventKind::Published => EventDetail::Publish { protocol },
            HubEventKind::Unpublished(stats) => EventDetail::Unpublish { protocol, stats },
            HubEventKind::PlayStarted => EventDetail::Play { protocol },
            HubEventKind::PlayStopped { duration } => EventDetail::PlayStop { protocol, duration },
        };
        Self::new(event.path.clone(), Some(event.client.clone()), detail)
    }

    /// An event broadcast in the room `room` (`app/name`); `None` if that is not a
    /// stream path (every room is named after one).
    pub fn room(room: &str, event: Arc<Envelope>) -> Option<Self> {
        let stream = StreamPath::parse(room).ok()?;
        Some(Self::new(stream, None, EventDetail::RoomEvent(event)))
    }

    pub fn name(&self) -> EventName {
        match self.detail {
            EventDetail::Publish { .. } => EventName::OnPublish,
            EventDetail::Unpublish { .. } => EventName::OnUnpublish,
            EventDetail::Play { .. } => EventName::OnPlay,
            EventDetail::PlayStop { .. } => EventName::OnPlayStop,
            EventDetail::RecordDone { .. } => EventName::OnRecordDone,
            EventDetail::RoomEvent(_) => EventName::OnRoomEvent,
        }
    }

    /// The request body.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising strings, numbers and maps into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl Serialize for WebhookEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("event", self.name().as_str())?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("time", &self.time)?;
        write_stream(&mut map, &self.stream)?;
        if let Some(client) = &self.client {
            map.serialize_entry("client", &Client(client))?;
        }
        let params = || Params::public(self.client.as_ref().map_or("", |c| c.query.as_str()));
        match &self.detail {
            EventDetail::Publish { protocol } | EventDetail::Play { protocol } => {
                map.serialize_entry("protocol", protocol.as_str())?;
                map.serialize_entry("params", &params())?;
            }
            EventDetail::Unpublish { protocol, stats } => {
                map.serialize_entry("protocol", protocol.as_str())?;
                map.serialize_entry("duration_ms", &millis(stats.duration))?;
                map.serialize_entry("bytes_in", &stats.bytes_in)?;
                map.serialize_entry("frames_in", &stats.frames_in)?;
            }
            EventDetail::PlayStop { protocol, duration } => {
                map.serialize_entry("protocol", protocol.as_str())?;
                map.serialize_entry("duration_ms", &millis(*duration))?;
            }
            EventDetail::RecordDone {
                id,
                path,
                file,
                duration,
                bytes,
                started,
                ended,
            } => {
                map.serialize_entry("recording", id)?;
                map.serialize_entry("path", path)?;
                map.serialize_entry("file", file)?;
                map.serialize_entry("duration_ms", &millis(*duration))?;
                map.serialize_entry("bytes", bytes)?;
                map.serialize_entry("started_at", &unix_ms_of(*started))?;
                map.serialize_entry("ended_at", &unix_ms_of(*ended))?;
            }
            EventDetail::RoomEvent(envelope) => {
                map.serialize_entry("room", &self.stream.to_string())?;
                // The room's own encoding, always valid JSON.
                let data: serde_json::Value =
                    serde_json::from_slice(envelope.json()).unwrap_or_default();
                map.serialize_entry("data", &data)?;
            }
        }
        map.end()
    }
}

pub(super) fn write_stream<M: SerializeMap>(
    map: &mut M,
    stream: &StreamPath,
) -> Result<(), M::Error> {
    map.serialize_entry("stream", &stream.to_string())?;
    map.serialize_entry("app", stream.app())?;
    map.serialize_entry("name", stream.name())
}

/// `{"conn_id": 7, "ip": "203.0.113.9"}`; `ip` only when known.
pub(super) struct Client<'a>(pub &'a ClientInfo);

impl Serialize for Client<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("conn_id", &self.0.conn_id)?;
        if let Some(peer) = self.0.peer {
            map.serialize_entry("ip", &peer.ip().to_string())?;
        }
        map.end()
    }
}

/// A query string as a JSON object (decoded; a repeated name keeps its last value).
pub(super) struct Params(BTreeMap<String, String>);

impl Params {
    /// Every parameter, secrets included: only for the publish decision.
    pub(super) fn all(query: &str) -> Self {
        Self::parse(query, false)
    }

    /// The parameters a notification may carry.
    pub(super) fn public(query: &str) -> Self {
        Self::parse(query, true)
    }

    fn parse(query: &str, drop_secrets: bool) -> Self {
        let mut params = BTreeMap::new();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let secret = SECRET_PARAMS.iter().any(|s| s.eq_ignore_ascii_case(&name));
            if name.is_empty() || (drop_secrets && secret) {
                continue;
            }
            if params.len() >= MAX_PARAMS && !params.contains_key(name.as_ref()) {
                continue;
            }
            params.insert(name.into_owned(), value.into_owned());
        }
        Self(params)
    }
}

impl Serialize for Params {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// 128 random bits as hex: unique per notification without coordination between nodes.
pub(super) fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

pub(super) fn unix_ms() -> u64 {
    unix_ms_of(SystemTime::now())
}

fn unix_ms_of(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, millis)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn client() -> ClientInfo {
        ClientInfo::new(
            7,
            Some("203.0.113.9:50000".parse().unwrap()),
            "key=K&uid=42&sig=S&Token=T&team=a%20b",
        )
    }

    fn shape(event: &WebhookEvent) -> Value {
        let mut value: Value = serde_json::from_slice(&event.to_json()).unwrap();
        assert_eq!(value["id"].as_str().unwrap().len(), 32);
        assert!(value["time"].as_u64().unwrap() > 1_600_000_000_000);
        let object = value.as_object_mut().unwrap();
        object.remove("id");
        object.remove("time");
        value
    }

    fn stream() -> StreamPath {
        StreamPath::parse("live/demo").unwrap()
    }

    #[test]
    fn publish_carries_params_without_secrets() {
        let event = WebhookEvent::new(
            stream(),
            Some(client()),
            EventDetail::Publish {
                protocol: Protocol::Rtmp,
            },
        );
        assert_eq!(event.name(), EventName::OnPublish);
        assert_eq!(
            shape(&event),
            json!({
                "event": "on_publish", "stream": "live/demo", "app": "live", "name": "demo",
                "client": {"conn_id": 7, "ip": "203.0.113.9"},
                "protocol": "rtmp", "params": {"uid": "42", "team": "a b"},
            })
        );
        let text = String::from_utf8(event.to_json()).unwrap();
        assert!(
            text.starts_with(r#"{"event":"on_publish","id":""#),
            "{text}"
        );
        assert!(!text.contains("\"K\"") && !text.contains("\"S\"") && !text.contains("\"T\""));
    }

    #[test]
    fn unpublish_play_and_play_stop() {
        let stats = PublishStats {
            duration: Duration::from_millis(61_500),
            bytes_in: 1_000_000,
            frames_in: 1_800,
        };
        let unpublish = WebhookEvent::new(
            stream(),
            Some(client()),
            EventDetail::Unpublish {
                protocol: Protocol::Rtmp,
                stats,
            },
        );
        assert_eq!(
            shape(&unpublish),
            json!({
                "event": "on_unpublish", "stream": "live/demo", "app": "live", "name": "demo",
                "client": {"conn_id": 7, "ip": "203.0.113.9"},
                "protocol": "rtmp", "duration_ms": 61_500, "bytes_in": 1_000_000, "frames_in": 1_800,
            })
        );
        let play = WebhookEvent::new(
            stream(),
            Some(ClientInfo::new(9, None, "")),
            EventDetail::Play {
                protocol: Protocol::HttpFlv,
            },
        );
        assert_eq!(
            shape(&play),
            json!({
                "event": "on_play", "stream": "live/demo", "app": "live", "name": "demo",
                "client": {"conn_id": 9}, "protocol": "http-flv", "params": {},
            })
        );
        let stop = WebhookEvent::new(
            stream(),
            Some(ClientInfo::new(9, None, "")),
            EventDetail::PlayStop {
                protocol: Protocol::HttpFlv,
                duration: Duration::from_secs(3),
            },
        );
        assert_eq!(
            shape(&stop),
            json!({
                "event": "on_play_stop", "stream": "live/demo", "app": "live", "name": "demo",
                "client": {"conn_id": 9}, "protocol": "http-flv", "duration_ms": 3_000,
            })
        );
    }

    #[test]
    fn record_done() {
        let event = WebhookEvent::new(
            stream(),
            None,
            EventDetail::RecordDone {
                id: "live.demo.20231114T221320Z.flv".into(),
                path: "/data/recordings/live/demo/20231114T221320Z.flv".into(),
                file: "live/demo/20231114T221320Z.flv".into(),
                duration: Duration::from_secs(3_600),
                bytes: 123_456_789,
                started: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
                ended: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_003_600_500),
            },
        );
        assert_eq!(event.name(), EventName::OnRecordDone);
        assert_eq!(
            shape(&event),
            json!({
                "event": "on_record_done", "stream": "live/demo", "app": "live", "name": "demo",
                "recording": "live.demo.20231114T221320Z.flv",
                "path": "/data/recordings/live/demo/20231114T221320Z.flv",
                "file": "live/demo/20231114T221320Z.flv", "duration_ms": 3_600_000, "bytes": 123_456_789,
                "started_at": 1_700_000_000_000_u64, "ended_at": 1_700_003_600_500_u64,
            })
        );
    }

    fn system(text: &str) -> Arc<Envelope> {
        Envelope::shared(onair_rooms::Event::System(onair_rooms::SystemEvent {
            seq: onair_rooms::Seq(3),
            ts: onair_rooms::Millis(1_700_000_000_000),
            text: text.to_owned(),
        }))
    }

    #[test]
    fn room_event_embeds_the_json_clients_got() {
        let envelope = system("hello");
        let sent: Value = serde_json::from_slice(envelope.json()).unwrap();
        assert_eq!(sent["text"], "hello");
        let event = WebhookEvent::room("live/demo", envelope).unwrap();
        assert_eq!(event.name(), EventName::OnRoomEvent);
        assert_eq!(
            shape(&event),
            json!({
                "event": "on_room_event", "stream": "live/demo", "app": "live", "name": "demo",
                "room": "live/demo", "data": sent,
            })
        );
        assert!(WebhookEvent::room("not a path", system("x")).is_none());
    }

    #[test]
    fn params_are_bounded_and_secrets_kept_only_for_decisions() {
        let query: String = (0..100).map(|i| format!("p{i}=v&")).collect();
        assert_eq!(Params::public(&query).0.len(), MAX_PARAMS);
        let all = Params::all("key=K&uid=1&key=K2&=x");
        assert_eq!(all.0.get("key").map(String::as_str), Some("K2"));
        assert_eq!(all.0.len(), 2);
        assert!(Params::public("KEY=a&Sig=b").0.is_empty());
    }
}
