#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Rooms over real WebSocket and SSE clients: chat round trips, resume, live/offline,
//! viewer counts, floods, and the specific error for each kind of bad input.

mod common;

use std::time::Duration;

use common::{spawn_publisher, start_server, TestServer, ADMIN_TOKEN};
use futures_util::{SinkExt, StreamExt};
use onair_server::rooms::Role;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(10);

async fn connect(server: &TestServer, path_and_query: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(server.ws_url(path_and_query))
        .await
        .unwrap();
    ws
}

/// The next JSON event, skipping pings.
async fn next_event(ws: &mut Ws) -> Value {
    loop {
        let message = timeout(WAIT, ws.next())
            .await
            .expect("an event")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

/// Events until one of `kind` arrives; returns it.
async fn wait_for(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let event = next_event(ws).await;
        if event["type"] == kind {
            return event;
        }
    }
}

/// Waits for the close frame and returns its code.
async fn close_code(ws: &mut Ws) -> u16 {
    loop {
        match timeout(WAIT, ws.next()).await.expect("a close") {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::Text(value.to_string().into()))
        .await
        .unwrap();
}

#[tokio::test]
async fn chat_round_trip_between_two_clients() {
    let server = start_server(|_| {}).await;
    let alice = server.token("alice", Role::Viewer);
    let mut a = connect(&server, &format!("/ws/live/chat?token={alice}")).await;
    let mut b = connect(&server, "/ws/live/chat").await;
    assert_eq!(next_event(&mut a).await["type"], "welcome");
    assert_eq!(next_event(&mut b).await["type"], "welcome");
    send(&mut a, json!({"type": "chat", "text": "  hello room  "})).await;
    for ws in [&mut a, &mut b] {
        let chat = wait_for(ws, "chat").await;
        assert_eq!(chat["text"], "hello room");
        assert_eq!(chat["user"]["id"], "alice");
        assert_eq!(chat["user"]["name"], "alice");
        assert!(chat["seq"].as_u64().unwrap() >= 1);
    }
    // Anonymous clients read but may not send by default.
    send(&mut b, json!({"type": "chat", "text": "hi"})).await;
    let error = wait_for(&mut b, "error").await;
    assert_eq!(error["code"], "login_required");
    server.stop().await;
}

#[tokio::test]
async fn sse_resume_with_last_event_id_yields_exactly_the_missed_events() {
    let server = start_server(|_| {}).await;
    let token = server.token("bob", Role::Viewer);
    let mut ws = connect(&server, &format!("/ws/live/resume?token={token}")).await;
    wait_for(&mut ws, "welcome").await;
    let mut seqs = Vec::new();
    for i in 0..5 {
        send(&mut ws, json!({"type": "chat", "text": format!("m{i}")})).await;
        seqs.push(wait_for(&mut ws, "chat").await["seq"].as_u64().unwrap());
    }
    let client = reqwest::Client::new();
    let response = client
        .get(server.http_url("/sse/live/resume"))
        .header("Last-Event-ID", seqs[1].to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.bytes_stream();
    let mut text = String::new();
    while text.matches("event: chat").count() < 3 {
        let chunk = timeout(WAIT, body.next()).await.unwrap().unwrap().unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let ids: Vec<u64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .map(|id| id.trim().parse().unwrap())
        .collect();
    assert_eq!(ids, seqs[2..].to_vec(), "{text}");
    assert!(text.contains("\"text\":\"m4\""));
    assert!(!text.contains("\"text\":\"m1\""));
    server.stop().await;
}

#[tokio::test]
async fn stream_state_and_viewer_counts_follow_the_media() {
    let server = start_server(|_| {}).await;
    let mut ws = connect(&server, "/ws/live/media").await;
    let welcome = next_event(&mut ws).await;
    assert_eq!(welcome["type"], "welcome");
    let publisher = spawn_publisher(&server, "live/media").await;
    assert_eq!(wait_for(&mut ws, "stream").await["state"], "live");

    // Two HTTP-FLV viewers join: the count (people: the larger of media viewers and
    // audience members) follows.
    let mut flv = Vec::new();
    for _ in 0..2 {
        let response = reqwest::get(server.flv_url("live/media")).await.unwrap();
        flv.push(response.bytes_stream());
    }
    loop {
        if wait_for(&mut ws, "viewers").await["count"] == 2 {
            break;
        }
    }
    drop(flv);
    loop {
        if wait_for(&mut ws, "viewers").await["count"] == 1 {
            break;
        }
    }
    publisher.abort();
    assert_eq!(wait_for(&mut ws, "stream").await["state"], "offline");
    server.stop().await;
}

#[tokio::test]
async fn a_flooding_client_is_limited_and_stays_connected() {
    let server = start_server(|_| {}).await;
    let flooder = server.token("flood", Role::Viewer);
    let quiet = server.token("quiet", Role::Viewer);
    let mut f = connect(&server, &format!("/ws/live/flood?token={flooder}")).await;
    let mut q = connect(&server, &format!("/ws/live/calm?token={quiet}")).await;
    wait_for(&mut f, "welcome").await;
    wait_for(&mut q, "welcome").await;
    for i in 0..60 {
        send(&mut f, json!({"type": "chat", "text": format!("spam {i}")})).await;
    }
    let error = wait_for(&mut f, "error").await;
    assert_eq!(error["code"], "rate_limited");
    // Still open: a like goes through.
    send(&mut f, json!({"type": "like"})).await;
    assert_eq!(wait_for(&mut f, "like").await["total"], 1);
    // The other room is unaffected.
    send(&mut q, json!({"type": "chat", "text": "still here"})).await;
    assert_eq!(wait_for(&mut q, "chat").await["text"], "still here");
    server.stop().await;
}

#[tokio::test]
async fn bad_input_gets_its_specific_error() {
    let server = start_server(|s| s.http.ws_max_message_bytes = 1024).await;

    // A bad token: upgrade, then close 4001.
    let mut ws = connect(&server, "/ws/live/bad?token=not-a-jwt").await;
    assert_eq!(close_code(&mut ws).await, 4001);

    // A foreign Origin: refused before the upgrade.
    let mut request = server.ws_url("/ws/live/bad").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }

    // Invalid JSON: an error event, and the connection stays.
    let token = server.token("carol", Role::Viewer);
    let mut ws = connect(&server, &format!("/ws/live/bad?token={token}")).await;
    wait_for(&mut ws, "welcome").await;
    ws.send(Message::Text("{not json".into())).await.unwrap();
    assert_eq!(wait_for(&mut ws, "error").await["code"], "invalid_json");
    send(&mut ws, json!({"type": "chat", "text": "ok"})).await;
    assert_eq!(wait_for(&mut ws, "chat").await["text"], "ok");

    // An oversized frame: close 4009.
    ws.send(Message::Text("x".repeat(4096).into()))
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await, 4009);

    // A binary frame: close 1003.
    let mut ws = connect(&server, "/ws/live/bad").await;
    wait_for(&mut ws, "welcome").await;
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await, 1003);
    server.stop().await;
}

#[tokio::test]
async fn admin_posts_system_messages_and_moderates() {
    let server = start_server(|_| {}).await;
    let token = server.token("dave", Role::Viewer);
    let mut ws = connect(&server, &format!("/ws/live/admin?token={token}")).await;
    wait_for(&mut ws, "welcome").await;
    let client = reqwest::Client::new();
    let url = server.http_url("/api/v1/rooms/live/admin/messages");

    let response = client
        .post(&url)
        .json(&json!({"text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = client
        .post(&url)
        .bearer_auth("wrong")
        .json(&json!({"text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");

    let response = client
        .post(&url)
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"text": "Welcome, everyone"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        wait_for(&mut ws, "system").await["text"],
        "Welcome, everyone"
    );

    // Mute dave: his chat is refused with `muted`, the connection stays.
    let response = client
        .post(server.http_url("/api/v1/rooms/live/admin/mutes"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"user_id": "dave"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    send(&mut ws, json!({"type": "chat", "text": "can I talk?"})).await;
    assert_eq!(wait_for(&mut ws, "error").await["code"], "muted");

    // Ban dave: his connection is closed with 4003.
    let response = client
        .post(server.http_url("/api/v1/rooms/live/admin/bans"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"user_id": "dave"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(close_code(&mut ws).await, 4003);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_room_clients_with_going_away() {
    let server = start_server(|_| {}).await;
    let mut ws = connect(&server, "/ws/live/bye").await;
    wait_for(&mut ws, "welcome").await;
    let stop = tokio::spawn(server.stop());
    assert_eq!(close_code(&mut ws).await, 1001);
    timeout(WAIT, stop).await.unwrap().unwrap();
}

/// A GET that must answer 200, as JSON.
async fn admin_get(server: &TestServer, path: &str) -> Value {
    let response = reqwest::Client::new()
        .get(server.http_url(path))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_person_watching_and_chatting_is_one_viewer_everywhere() {
    let server = start_server(|_| {}).await;
    let publisher = spawn_publisher(&server, "live/people").await;
    server.wait_live("live/people", WAIT).await;
    // The watch page: one HTTP-FLV playback and one anonymous room connection.
    let flv = reqwest::get(server.flv_url("live/people")).await.unwrap();
    let mut flv = flv.bytes_stream();
    let reader = tokio::spawn(async move { while let Some(Ok(_)) = flv.next().await {} });
    let mut viewer = connect(&server, "/ws/live/people").await;
    wait_for(&mut viewer, "welcome").await;
    // The admin page and the platform connect as moderator and streamer: not viewers.
    let moderator = server.token("admin", Role::Moderator);
    let mut admin = connect(&server, &format!("/ws/live/people?token={moderator}")).await;
    wait_for(&mut admin, "welcome").await;
    let streamer = server.token("host", Role::Streamer);
    let mut host = connect(&server, &format!("/ws/live/people?token={streamer}")).await;
    wait_for(&mut host, "welcome").await;

    // The room learns the media count within a second.
    let deadline = tokio::time::Instant::now() + WAIT;
    let room = loop {
        let room = admin_get(&server, "/api/v1/rooms/live/people").await;
        if room["members"] == 3 && room["viewers"] == 1 {
            break room;
        }
        assert!(
            room["viewers"].as_u64().unwrap() <= 1 && tokio::time::Instant::now() < deadline,
            "one person watching: {room}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(room["stream"], "live");
    let mut late = connect(&server, "/ws/live/people").await;
    let welcome = wait_for(&mut late, "welcome").await;
    assert_eq!(
        welcome["viewers"], 2,
        "a second anonymous reader: {welcome}"
    );
    drop(late);

    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let room = admin_get(&server, "/api/v1/rooms/live/people").await;
        if room["members"] == 3 {
            assert_eq!(room["viewers"], 1, "{room}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{room}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stream = admin_get(&server, "/api/v1/streams/live/people").await;
    assert_eq!(stream["viewers"]["total"], 1, "{stream}");
    assert_eq!(stream["viewers"]["http_flv"], 1, "{stream}");
    assert_eq!(stream["viewers"]["room"], 1, "{stream}");
    let live = admin_get(&server, "/api/v1/live").await;
    assert_eq!(live["streams"][0]["viewers"], 1, "{live}");
    let one = admin_get(&server, "/api/v1/live/live/people").await;
    assert_eq!(one["viewers"], 1, "{one}");
    let metrics = reqwest::get(server.http_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(|line| line == "onair_audience 1"),
        "{metrics}"
    );
    reader.abort();
    publisher.abort();
    server.stop().await;
}

#[tokio::test]
async fn the_api_neither_reads_nor_makes_rooms_nobody_asked_for() {
    let server = start_server(|_| {}).await;
    let client = reqwest::Client::new();
    let post = |path: &str| {
        client
            .post(server.http_url(&format!("/api/v1/rooms/{path}/messages")))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"text": "hello"}))
            .send()
    };
    let get = |path: &str| {
        client
            .get(server.http_url(&format!("/api/v1/rooms/{path}")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
    };
    let rooms_open = || async {
        let metrics = reqwest::get(server.http_url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let line = metrics
            .lines()
            .find(|line| line.starts_with("onair_rooms "))
            .unwrap()
            .to_owned();
        line
    };
    // A typo'd path: nothing live, no room, nothing saved.
    for response in [
        post("live/nope").await.unwrap(),
        get("live/nope").await.unwrap(),
    ] {
        assert_eq!(response.status(), 404);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "room_not_found", "{body}");
    }
    let mute = client
        .post(server.http_url("/api/v1/rooms/live/nope/mutes"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"user_id": "troll"}))
        .send()
        .await
        .unwrap();
    assert_eq!(mute.status(), 404);
    assert_eq!(rooms_open().await, "onair_rooms 0");

    // A stream the platform described: readable without being made, writable.
    server.set_title("live/soon", "Starting soon").await;
    let room: Value = get("live/soon").await.unwrap().json().await.unwrap();
    assert_eq!(room["members"], 0, "{room}");
    assert_eq!(room["stream"], "offline", "{room}");
    assert_eq!(rooms_open().await, "onair_rooms 0", "reading made a room");
    assert_eq!(post("live/soon").await.unwrap().status(), 201);
    assert_eq!(rooms_open().await, "onair_rooms 1");

    // A live stream, and a room someone opened, need nothing saved.
    let publisher = spawn_publisher(&server, "live/on").await;
    server.wait_live("live/on", WAIT).await;
    assert_eq!(post("live/on").await.unwrap().status(), 201);
    let mut ws = connect(&server, "/ws/live/open").await;
    wait_for(&mut ws, "welcome").await;
    assert_eq!(post("live/open").await.unwrap().status(), 201);
    assert_eq!(wait_for(&mut ws, "system").await["text"], "hello");
    publisher.abort();
    server.stop().await;
}

#[tokio::test]
async fn a_quiet_connection_is_closed_one_idle_timeout_after_its_last_frame() {
    let server = start_server(|s| s.http.ws_idle_timeout_ms = 800).await;
    server.set_title("live/quiet", "Quiet").await;
    let mut ws = connect(&server, "/ws/live/quiet").await;
    wait_for(&mut ws, "welcome").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    ws.send(Message::Ping(Default::default())).await.unwrap();
    let last_frame = std::time::Instant::now();
    // Not at 800 ms after connecting: 800 ms after the ping.
    assert_eq!(close_code(&mut ws).await, 1008);
    let quiet_for = last_frame.elapsed();
    assert!(
        quiet_for >= Duration::from_millis(700),
        "closed {quiet_for:?} after its last frame"
    );
    server.stop().await;
}
