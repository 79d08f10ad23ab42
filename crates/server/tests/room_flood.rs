#![allow(clippy::unwrap_used, clippy::expect_used)]

//! A room flooded far beyond what its members can be sent, over real WebSocket
//! clients: members that read are never closed; each learns what it skipped (`gap`,
//! `skipped`) and still gets the streamer's message and its own.

mod common;

use std::time::Duration;

use common::{start_server, start_server_in, TestServer};
use futures_util::{SinkExt, StreamExt};
use onair_server::rooms::Role;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(20);
const READERS: usize = 12;
const FLOODERS: usize = 8;
const MESSAGES_EACH: usize = 400;

async fn connect(server: &TestServer, path_and_query: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(server.ws_url(path_and_query))
        .await
        .unwrap();
    ws
}

async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::Text(value.to_string().into()))
        .await
        .unwrap();
}

/// `PUT {room}/aggregated-events` with `events`.
async fn put_aggregated(server: &TestServer, room: &str, events: Value) -> reqwest::Response {
    reqwest::Client::new()
        .put(server.http_url(&format!("{room}/aggregated-events")))
        .bearer_auth(common::ADMIN_TOKEN)
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap()
}

/// `count` viewers signed in as `{prefix}0`, `{prefix}1`, … joined to `path`.
async fn join_signed_in(server: &TestServer, path: &str, prefix: &str, count: usize) -> Vec<Ws> {
    let mut members = Vec::with_capacity(count);
    for i in 0..count {
        let token = server.token(&format!("{prefix}{i}"), Role::Viewer);
        members.push(connect(server, &format!("{path}?token={token}")).await);
    }
    members
}

/// The next `aggregate` event; fails if a tap of an aggregated event arrives as
/// itself (a `custom` event).
async fn next_aggregate(ws: &mut Ws) -> Value {
    loop {
        let message = timeout(WAIT, ws.next())
            .await
            .expect("aggregate events arrive")
            .unwrap()
            .unwrap();
        let Message::Text(text) = message else {
            continue;
        };
        let event: Value = serde_json::from_str(text.as_str()).unwrap();
        assert_ne!(event["type"], "custom", "a tap sent one by one: {event}");
        if event["type"] == "aggregate" {
            return event;
        }
    }
}

/// What one reading member saw until the streamer's closing message.
#[derive(Debug, Default)]
struct Seen {
    lost: u64,
    skipped: u64,
    chats: usize,
    own: bool,
}

/// Reads every event until the streamer's `end` message; panics on a close.
async fn read_until_end(mut ws: Ws, own_text: Option<String>) -> Seen {
    let mut seen = Seen::default();
    loop {
        let message = timeout(WAIT, ws.next())
            .await
            .expect("events keep coming")
            .expect("the connection stays open")
            .expect("no error");
        let text = match message {
            Message::Text(text) => text,
            Message::Close(frame) => panic!("a reading member was closed: {frame:?}"),
            _ => continue,
        };
        let event: Value = serde_json::from_str(text.as_str()).unwrap();
        match event["type"].as_str().unwrap() {
            "gap" => {
                let (from, to) = (
                    event["from_seq"].as_u64().unwrap(),
                    event["to_seq"].as_u64().unwrap(),
                );
                // What is lost of the gap; its priority events and own messages follow.
                assert!(event["lost"].as_u64().unwrap() <= to - from + 1, "{event}");
                seen.lost += event["lost"].as_u64().unwrap();
            }
            "skipped" => seen.skipped += event["count"].as_u64().unwrap(),
            "error" => panic!("refused: {event}"),
            "chat" => {
                seen.chats += 1;
                if own_text.as_deref() == event["text"].as_str() {
                    seen.own = true;
                }
                if event["user"]["id"] == "host" && event["text"] == "end" {
                    return seen;
                }
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_flood_never_closes_members_that_read() {
    // A small ring and history and a slow flush make every member fall behind the
    // room many times over; per-user chat limits are raised so every message is taken,
    // and the room offers every member all of it (no broadcast budget).
    let server = start_server(|s| {
        s.rooms.broadcast_chat_rate_window_ms = 0;
        s.http.room_fanout_events = 16;
        s.http.room_flush_interval_ms = 200;
        s.rooms.history_max_events = 64;
        s.rooms.chat_rate_count = 1_000_000;
        s.rooms.chat_rate_window_ms = 1_000;
    })
    .await;
    let path = "/ws/live/flood";
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let mut ws = connect(&server, path).await;
        assert_eq!(
            serde_json::from_str::<Value>(ws.next().await.unwrap().unwrap().to_text().unwrap())
                .unwrap()["type"],
            "welcome"
        );
        readers.push(tokio::spawn(read_until_end(ws, None)));
    }
    let me_token = server.token("me", Role::Viewer);
    let mut me = connect(&server, &format!("{path}?token={me_token}")).await;
    let host_token = server.token("host", Role::Streamer);
    let mut host = connect(&server, &format!("{path}?token={host_token}")).await;

    let mut flooders = Vec::new();
    for f in 0..FLOODERS {
        let token = server.token(&format!("fan{f}"), Role::Viewer);
        let mut ws = connect(&server, &format!("{path}?token={token}")).await;
        flooders.push(tokio::spawn(async move {
            for i in 0..MESSAGES_EACH {
                send(
                    &mut ws,
                    json!({"type": "chat", "text": format!("fan{f} {i}")}),
                )
                .await;
            }
            // Read nothing more; keep the connection until the end.
            ws
        }));
    }
    let mut flooders_done = Vec::new();
    for flooder in flooders {
        flooders_done.push(flooder.await.unwrap());
    }
    // Own and streamer's messages after the flood, while members still work through it.
    send(&mut me, json!({"type": "chat", "text": "mine"})).await;
    let me_reader = tokio::spawn(read_until_end(me, Some("mine".to_owned())));
    tokio::time::sleep(Duration::from_millis(50)).await;
    send(&mut host, json!({"type": "chat", "text": "end"})).await;

    let mut lost_somewhere = false;
    for reader in readers {
        let seen = reader.await.unwrap();
        assert!(seen.chats > 0);
        lost_somewhere |= seen.lost > 0;
    }
    let mine = me_reader.await.unwrap();
    assert!(mine.own, "the member's own message arrives: {mine:?}");
    assert!(
        lost_somewhere || mine.lost > 0,
        "with a 16-event ring and a 200 ms flush, members skip ahead and are told"
    );
    let disconnected = r#"onair_room_members_disconnected_total{reason="write_timeout"}"#;
    assert_eq!(
        server.metric(disconnected).await,
        0.0,
        "no member disconnected"
    );
    let lost = server.metric("onair_room_events_lost_total").await;
    // Every member (readers, flooders, me, host) can lose at most every kept event.
    let sent = (FLOODERS * MESSAGES_EACH) as f64;
    let members = (READERS + FLOODERS + 2) as f64;
    assert!(lost > 0.0 && lost <= (sent + 2.0) * members, "{lost}");
    drop(flooders_done);
    drop(host);
    server.stop().await;
}

/// Events until `done` says so; checks that seqs only rise.
async fn read_until(ws: &mut Ws, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let (mut events, mut last_seq) = (Vec::new(), 0);
    while !done(&events) {
        let message = timeout(WAIT, ws.next())
            .await
            .expect("events keep coming")
            .expect("the connection stays open")
            .expect("no error");
        let Message::Text(text) = message else {
            continue;
        };
        let event: Value = serde_json::from_str(text.as_str()).unwrap();
        assert_ne!(event["type"], "error", "refused: {event}");
        if let Some(seq) = event["seq"].as_u64() {
            assert!(seq > last_seq, "seq {seq} after {last_seq}");
            last_seq = seq;
        }
        events.push(event);
    }
    events
}

/// The events of `kind` from the user `fan`.
fn from_fan<'a>(events: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> {
    events
        .iter()
        .filter(move |e| e["type"] == kind && e["user"]["id"] == "fan")
}

/// Gift messages counted in `gifts` events.
fn summed_gift_messages(events: &[Value]) -> u64 {
    events
        .iter()
        .filter(|e| e["type"] == "gifts")
        .map(|e| e["messages"].as_u64().unwrap())
        .sum()
}

fn host_ended(events: &[Value]) -> bool {
    events
        .iter()
        .any(|e| e["type"] == "chat" && e["user"]["id"] == "host")
}

#[tokio::test]
async fn past_the_rooms_budget_a_sender_still_gets_its_own_messages_and_gifts_are_summed() {
    const CHATS: usize = 60;
    const GIFTS: usize = 30;
    let server = start_server(|s| {
        s.rooms.broadcast_chat_rate_count = 5;
        s.rooms.broadcast_gift_rate_count = 4;
        s.rooms.chat_rate_count = 1_000;
        s.rooms.gift_rate_count = 1_000;
    })
    .await;
    let path = "/ws/live/budget";
    let mut reader = connect(&server, path).await;
    let token = server.token("fan", Role::Viewer);
    let mut fan = connect(&server, &format!("{path}?token={token}")).await;
    let token = server.token("host", Role::Streamer);
    let mut host = connect(&server, &format!("{path}?token={token}")).await;
    for i in 0..CHATS {
        send(
            &mut fan,
            json!({"type": "chat", "text": format!("fan {i}")}),
        )
        .await;
    }
    for _ in 0..GIFTS {
        send(
            &mut fan,
            json!({"type": "gift", "gift": "rose", "count": 2}),
        )
        .await;
    }
    // The sender gets every one of its messages, in order with the room's events.
    let fan_saw = read_until(&mut fan, |events| from_fan(events, "gift").count() == GIFTS).await;
    let texts: Vec<&str> = from_fan(&fan_saw, "chat")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..CHATS).map(|i| format!("fan {i}")).collect();
    assert_eq!(texts, expected);
    send(&mut host, json!({"type": "chat", "text": "end"})).await;

    // Everyone else gets the budget's worth one by one, and the other gifts summed.
    let reader_saw = read_until(&mut reader, |events| {
        let one_by_one = from_fan(events, "gift").count() as u64;
        host_ended(events) && one_by_one + summed_gift_messages(events) == GIFTS as u64
    })
    .await;
    let chats = from_fan(&reader_saw, "chat").count();
    assert!((5..CHATS).contains(&chats), "{chats} chat messages offered");
    let shed = r#"onair_room_messages_shed_total{type="chat"}"#;
    assert_eq!(server.metric(shed).await, (CHATS - chats) as f64);
    let one_by_one = from_fan(&reader_saw, "gift").count();
    assert!(
        (4..GIFTS).contains(&one_by_one),
        "{one_by_one} gifts offered"
    );
    let roses: u64 = reader_saw
        .iter()
        .filter(|e| e["type"] == "gifts")
        .map(|e| e["gifts"]["rose"].as_u64().unwrap())
        .sum();
    assert_eq!(
        roses,
        2 * (GIFTS - one_by_one) as u64,
        "every shed rose is counted"
    );
    let summed = r#"onair_room_messages_aggregated_total{type="gift"}"#;
    assert_eq!(server.metric(summed).await, (GIFTS - one_by_one) as f64);
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_and_counted() {
    let server = start_server(|s| {
        s.rooms.custom_rate_count = 1_000_000;
        s.rooms.custom_rate_window_ms = 1_000;
    })
    .await;
    let path = "/ws/live/stall";
    // A client with a small receive buffer that reads nothing after the handshake.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.http.into()).unwrap();
    socket.set_nonblocking(true).unwrap();
    let stream = TcpStream::from_std(socket.into()).unwrap();
    let (stalled, _) = tokio_tungstenite::client_async(server.ws_url(path), stream)
        .await
        .unwrap();
    // A reader beside it keeps up.
    let mut reader = connect(&server, path).await;
    let token = server.token("app", Role::Viewer);
    let mut sender = connect(&server, &format!("{path}?token={token}")).await;
    let data = "x".repeat(3_000);
    let started = std::time::Instant::now();
    let stalled_series = r#"onair_room_members_disconnected_total{reason="write_timeout"}"#;
    while server.metric(stalled_series).await == 0.0 {
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "the stalled client is closed"
        );
        for _ in 0..200 {
            send(
                &mut sender,
                json!({"type": "custom", "name": "fill", "data": {"d": data}}),
            )
            .await;
        }
        // The reader reads everything there is.
        while let Ok(Some(message)) = timeout(Duration::from_millis(50), reader.next()).await {
            assert!(
                !matches!(message, Ok(Message::Close(_))),
                "the reading client stays open"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        server.metric(stalled_series).await,
        1.0,
        "only the stalled client"
    );
    drop(stalled);
    server.stop().await;
}

#[tokio::test]
async fn waves_from_many_members_arrive_as_a_few_aggregate_events_with_the_exact_total() {
    const WAVERS: usize = 200;
    let server = start_server(|s| {
        s.rooms.aggregated_events = vec![onair_server::rooms::AggregatedEvent {
            name: "gesture.wave".into(),
            values: vec!["hi".into(), "bye".into()],
            apps: vec!["live".into()],
        }];
    })
    .await;
    let path = "/ws/live/stadium";
    let mut watcher = connect(&server, path).await;
    let mut wavers = join_signed_in(&server, path, "w", WAVERS).await;
    for (i, ws) in wavers.iter_mut().enumerate() {
        let value = if i % 4 == 0 { "bye" } else { "hi" };
        send(
            ws,
            json!({"type": "custom", "name": "gesture.wave", "data": {"value": value}}),
        )
        .await;
    }
    let (mut count, mut events, mut bye, mut hi) = (0, 0, 0, 0);
    while count < WAVERS as u64 {
        let event = next_aggregate(&mut watcher).await;
        assert_eq!(event["name"], "gesture.wave");
        events += 1;
        count += event["count"].as_u64().unwrap();
        bye += event["values"]["bye"].as_u64().unwrap();
        hi += event["values"]["hi"].as_u64().unwrap();
        assert_eq!(event["total"].as_u64().unwrap(), count, "{event}");
    }
    assert_eq!((count, bye, hi), (WAVERS as u64, 50, 150));
    assert!(events < 20, "{events} aggregate events for {WAVERS} waves");
    server.stop().await;
}

#[tokio::test]
async fn a_room_declares_its_own_aggregated_events_through_the_api_and_keeps_them() {
    const VOTERS: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let configure = |s: &mut onair_server::Settings| {
        s.rooms.aggregated_events = vec![onair_server::rooms::AggregatedEvent {
            name: "gesture.wave".into(),
            values: vec![],
            apps: vec![],
        }];
    };
    let server = start_server_in(dir.path(), configure).await;
    server.set_title("live/poll", "Poll").await;
    let room = "/api/v1/rooms/live/poll";
    let too_many: Vec<Value> = (0..33)
        .map(|i| json!({ "name": format!("e{i}") }))
        .collect();
    for refused in [
        json!(too_many),
        json!([{"name": "not a name"}]),
        json!([{"name": "poll.vote", "values": [""]}]),
        // A name given twice is checked both times, though only the last counts.
        json!([{"name": "poll.vote", "values": [""]}, {"name": "poll.vote"}]),
        json!([{"name": "poll.vote", "apps": ["live"]}]),
    ] {
        let response = put_aggregated(&server, room, refused.clone()).await;
        assert_eq!(response.status(), 400, "{refused}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_body", "{refused}: {body}");
    }
    // A name given twice counts as its last.
    let vote = json!([{"name": "poll.vote"}, {"name": "poll.vote", "values": ["a", "b"]}]);
    assert_eq!(put_aggregated(&server, room, vote).await.status(), 204);
    let declared = |server: &TestServer| {
        let url = server.http_url(room);
        async move {
            let view: Value = reqwest::Client::new()
                .get(url)
                .bearer_auth(common::ADMIN_TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            view["aggregated_events"].clone()
        }
    };
    assert_eq!(
        declared(&server).await,
        json!([
            {"name": "gesture.wave", "values": [], "declared_by": "config"},
            {"name": "poll.vote", "values": ["a", "b"], "declared_by": "room"},
        ])
    );

    let path = "/ws/live/poll";
    let mut watcher = connect(&server, path).await;
    let mut voters = join_signed_in(&server, path, "v", VOTERS).await;
    for (i, ws) in voters.iter_mut().enumerate() {
        let value = if i % 4 == 0 { "a" } else { "b" };
        let vote = json!({"type": "custom", "name": "poll.vote", "data": {"value": value}});
        send(ws, vote).await;
    }
    let (mut count, mut a, mut b) = (0, 0, 0);
    while count < VOTERS as u64 {
        let event = next_aggregate(&mut watcher).await;
        assert_eq!(event["name"], "poll.vote");
        count += event["count"].as_u64().unwrap();
        a += event["values"]["a"].as_u64().unwrap();
        b += event["values"]["b"].as_u64().unwrap();
    }
    assert_eq!((count, a, b), (VOTERS as u64, 10, 30));
    drop((watcher, voters));
    server.stop().await;

    // Saved: the room aggregates the votes after a restart too, until `[]` removes them.
    let server = start_server_in(dir.path(), configure).await;
    assert_eq!(declared(&server).await[1]["name"], "poll.vote");
    assert_eq!(put_aggregated(&server, room, json!([])).await.status(), 204);
    assert_eq!(declared(&server).await.as_array().unwrap().len(), 1);
    server.stop().await;
    let server = start_server_in(dir.path(), configure).await;
    assert_eq!(declared(&server).await.as_array().unwrap().len(), 1);
    server.stop().await;
}
