#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The stream keys API and what the database keeps across a restart: keys, and the
//! mutes, bans and slow modes set through the rooms API.

mod common;

use std::time::Duration;

use common::{start_server, start_server_in, TestServer, ADMIN_TOKEN};
use futures_util::{SinkExt, StreamExt};
use onair_server::config::PublishAuth;
use onair_server::rooms::Role;
use reqwest::{Client, Response};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(10);

async fn post(server: &TestServer, path: &str, body: Value) -> Response {
    Client::new()
        .post(server.http_url(path))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn get(server: &TestServer, path: &str) -> Response {
    Client::new()
        .get(server.http_url(path))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
}

async fn delete(server: &TestServer, path: &str) -> Response {
    Client::new()
        .delete(server.http_url(path))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
}

/// Asserts `response` has `status` and a JSON error with `code`.
async fn assert_error(response: Response, status: u16, code: &str) {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

async fn list_keys(server: &TestServer, query: &str) -> Vec<Value> {
    let response = get(server, &format!("/api/v1/keys{query}")).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["keys"].as_array().unwrap().clone()
}

async fn create_key(server: &TestServer, body: Value) -> Value {
    let response = post(server, "/api/v1/keys", body).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

#[tokio::test]
async fn create_list_revoke() {
    let server = start_server(|_| {}).await;
    let created = create_key(
        &server,
        json!({"stream": "live/demo", "label": "OBS at home"}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let key = created["key"].as_str().unwrap();
    assert!(id.starts_with("k_"), "{created}");
    assert_eq!(created["stream"], "live/demo");
    assert_eq!(created["label"], "OBS at home");
    assert!(created["created_at"].as_u64().unwrap() > 1_600_000_000);
    // Usable after `?key=` and in OBS's stream key field as is.
    assert_eq!(key.len(), 64);
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));

    let other = create_key(&server, json!({"stream": "live/other"})).await;
    assert_eq!(other["label"], Value::Null);
    assert_ne!(other["key"], created["key"]);

    let all = list_keys(&server, "").await;
    assert_eq!(all.len(), 2);
    let demo = list_keys(&server, "?stream=live/demo").await;
    assert_eq!(demo.len(), 1);
    let listed = demo[0].as_object().unwrap();
    let mut fields: Vec<_> = listed.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["created_at", "id", "label", "last_used_at", "stream"]
    );
    assert_eq!(listed["id"], created["id"]);
    assert_eq!(listed["last_used_at"], Value::Null);
    // Neither the key nor anything derived from it is ever listed again.
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains(key));

    let revoked = delete(&server, &format!("/api/v1/keys/{id}")).await;
    assert_eq!(revoked.status(), 204);
    assert_error(
        delete(&server, &format!("/api/v1/keys/{id}")).await,
        404,
        "not_found",
    )
    .await;
    assert!(list_keys(&server, "?stream=live/demo").await.is_empty());
    assert_eq!(list_keys(&server, "").await.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn refusals() {
    let server = start_server(|s| s.store.max_keys_per_stream = 2).await;
    let client = Client::new();
    let url = server.http_url("/api/v1/keys");
    let body = json!({"stream": "live/demo"});

    let anonymous = client.post(&url).json(&body).send().await.unwrap();
    assert_error(anonymous, 401, "unauthorized").await;
    let wrong = client
        .post(&url)
        .bearer_auth("not-the-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_error(wrong, 403, "forbidden").await;
    let list = client.get(&url).send().await.unwrap();
    assert_error(list, 401, "unauthorized").await;
    let revoke = client
        .delete(server.http_url("/api/v1/keys/k_0000000000000000"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_error(revoke, 403, "forbidden").await;

    for stream in ["demo", "live/", "live/a b", "api/demo", "live/demo/extra"] {
        let response = post(&server, "/api/v1/keys", json!({ "stream": stream })).await;
        assert_error(response, 400, "invalid_stream").await;
    }
    let unknown = post(
        &server,
        "/api/v1/keys",
        json!({"stream": "live/demo", "ttl": 5}),
    )
    .await;
    assert_error(unknown, 400, "invalid_body").await;
    let missing = post(&server, "/api/v1/keys", json!({})).await;
    assert_error(missing, 400, "invalid_body").await;
    let malformed = Client::new()
        .post(&url)
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body("{\"stream\":")
        .send()
        .await
        .unwrap();
    assert_error(malformed, 400, "invalid_json").await;
    let long_label = post(
        &server,
        "/api/v1/keys",
        json!({"stream": "live/demo", "label": "x".repeat(200)}),
    )
    .await;
    assert_error(long_label, 400, "invalid_label").await;
    assert_error(
        get(&server, "/api/v1/keys?stream=nope").await,
        400,
        "invalid_stream",
    )
    .await;
    assert_error(
        delete(&server, "/api/v1/keys/k_unknown").await,
        404,
        "not_found",
    )
    .await;

    // Nothing above made a key; the per-stream bound holds.
    assert!(list_keys(&server, "").await.is_empty());
    create_key(&server, body_for("live/demo")).await;
    create_key(&server, body_for("live/demo")).await;
    let third = post(&server, "/api/v1/keys", body_for("live/demo")).await;
    assert_error(third, 409, "too_many_keys").await;
    create_key(&server, body_for("live/other")).await;
    server.stop().await;
}

fn body_for(stream: &str) -> Value {
    json!({ "stream": stream })
}

#[tokio::test]
async fn keys_survive_a_restart_in_a_private_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server_in(dir.path(), |_| {}).await;
    let kept = create_key(&server, json!({"stream": "live/kept", "label": "main"})).await;
    let gone = create_key(&server, json!({"stream": "live/gone"})).await;
    let id = gone["id"].as_str().unwrap();
    assert_eq!(
        delete(&server, &format!("/api/v1/keys/{id}"))
            .await
            .status(),
        204
    );
    server.stop().await;

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for name in ["onair.db", "onair.db-wal", "onair.db-shm"] {
            let path = dir.path().join(name);
            if name == "onair.db" || path.exists() {
                let mode = std::fs::metadata(&path).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{name}");
            }
        }
    }

    let server = start_server_in(dir.path(), |_| {}).await;
    let keys = list_keys(&server, "").await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0]["id"], kept["id"]);
    assert_eq!(keys[0]["stream"], "live/kept");
    assert_eq!(keys[0]["label"], "main");
    assert_eq!(keys[0]["created_at"], kept["created_at"]);
    assert_error(
        delete(&server, &format!("/api/v1/keys/{id}")).await,
        404,
        "not_found",
    )
    .await;
    server.stop().await;
}

async fn connect(server: &TestServer, path_and_query: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(server.ws_url(path_and_query))
        .await
        .unwrap();
    ws
}

/// Events until one of `kind` arrives; returns it.
async fn wait_for(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let message = timeout(WAIT, ws.next())
            .await
            .expect("an event")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = message {
            let event: Value = serde_json::from_str(text.as_str()).unwrap();
            if event["type"] == kind {
                return event;
            }
        }
    }
}

async fn close_code(ws: &mut Ws) -> u16 {
    loop {
        match timeout(WAIT, ws.next()).await.expect("a close") {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn moderation_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server_in(dir.path(), |_| {}).await;
    server.set_title("live/moderated", "Moderated").await;
    server.set_title("live/other", "Other").await;
    let room = "/api/v1/rooms/live/moderated";
    let mute = post(
        &server,
        &format!("{room}/mutes"),
        json!({"user_id": "alice"}),
    )
    .await;
    assert_eq!(mute.status(), 204);
    let ban = post(
        &server,
        &format!("{room}/bans"),
        json!({"user_id": "bob", "seconds": 3600}),
    )
    .await;
    assert_eq!(ban.status(), 200);
    // Muted then unmuted: not kept.
    post(
        &server,
        &format!("{room}/mutes"),
        json!({"user_id": "dave"}),
    )
    .await;
    assert_eq!(
        delete(&server, &format!("{room}/mutes/dave"))
            .await
            .status(),
        204
    );
    let slow = Client::new()
        .put(server.http_url(&format!("{room}/slow-mode")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"seconds": 30}))
        .send()
        .await
        .unwrap();
    assert_eq!(slow.status(), 204);
    // Another room's slow mode set and turned off again: not kept either.
    let other_room = server.http_url("/api/v1/rooms/live/other/slow-mode");
    for seconds in [10, 0] {
        let response = Client::new()
            .put(&other_room)
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "seconds": seconds }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
    }
    server.stop().await;

    let server = start_server_in(dir.path(), |_| {}).await;
    let state: Value = get(&server, room).await.json().await.unwrap();
    assert_eq!(state["slow_mode_seconds"], 30, "{state}");
    assert_eq!(
        state["muted"],
        json!([{"user_id": "alice", "until": null}]),
        "{state}"
    );
    let banned = state["banned"].as_array().unwrap();
    assert_eq!(banned.len(), 1, "{state}");
    assert_eq!(banned[0]["user_id"], "bob");
    assert!(banned[0]["until"].as_u64().is_some(), "{state}");
    let other: Value = get(&server, "/api/v1/rooms/live/other")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(other["slow_mode_seconds"], 0);

    // The restored lists are enforced, not only shown.
    let alice = server.token("alice", Role::Viewer);
    let mut ws = connect(&server, &format!("/ws/live/moderated?token={alice}")).await;
    let welcome = wait_for(&mut ws, "welcome").await;
    assert_eq!(welcome["can_send"], false, "{welcome}");
    assert_eq!(welcome["slow_mode_ms"], 30_000);
    ws.send(Message::Text(
        json!({"type": "chat", "text": "hi"}).to_string().into(),
    ))
    .await
    .unwrap();
    assert_eq!(wait_for(&mut ws, "error").await["code"], "muted");
    let bob = server.token("bob", Role::Viewer);
    let mut ws = connect(&server, &format!("/ws/live/moderated?token={bob}")).await;
    assert_eq!(close_code(&mut ws).await, 4003);

    // Lifting after the restart sticks too.
    assert_eq!(
        delete(&server, &format!("{room}/bans/bob")).await.status(),
        204
    );
    assert_error(
        delete(&server, &format!("{room}/mutes/dave")).await,
        404,
        "not_found",
    )
    .await;
    server.stop().await;
    let server = start_server_in(dir.path(), |_| {}).await;
    let state: Value = get(&server, room).await.json().await.unwrap();
    assert_eq!(state["banned"], json!([]), "{state}");
    assert_eq!(state["muted"].as_array().unwrap().len(), 1, "{state}");
    server.stop().await;
}

#[tokio::test]
async fn moderation_refusals() {
    let server = start_server(|s| s.store.max_moderation_entries = 3).await;
    server.set_title("live/full", "Full").await;
    let room = "/api/v1/rooms/live/full";
    let put_slow_mode = |seconds: u64| {
        Client::new()
            .put(server.http_url(&format!("{room}/slow-mode")))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "seconds": seconds }))
            .send()
    };
    for user in ["a", "b"] {
        let response = post(
            &server,
            &format!("{room}/mutes"),
            json!({ "user_id": user }),
        )
        .await;
        assert_eq!(response.status(), 204);
    }
    // A duration past what any clock reaches is as good as forever, not an error.
    assert_eq!(put_slow_mode(u64::MAX).await.unwrap().status(), 204);
    let far = post(
        &server,
        &format!("{room}/mutes"),
        json!({"user_id": "b", "seconds": u64::MAX}),
    )
    .await;
    assert_eq!(far.status(), 204);
    // Two mutes and a slow mode fill store.max_moderation_entries.
    let fourth = post(&server, &format!("{room}/bans"), json!({"user_id": "c"})).await;
    assert_error(fourth, 409, "list_full").await;
    // Updating what is saved still works.
    let again = post(
        &server,
        &format!("{room}/mutes"),
        json!({"user_id": "a", "seconds": 60}),
    )
    .await;
    assert_eq!(again.status(), 204);
    assert_eq!(put_slow_mode(5).await.unwrap().status(), 204);
    // Slow mode back to the default frees its entry.
    assert_eq!(put_slow_mode(0).await.unwrap().status(), 204);
    let fits = post(&server, &format!("{room}/bans"), json!({"user_id": "c"})).await;
    assert_eq!(fits.status(), 200);

    let empty = post(&server, &format!("{room}/mutes"), json!({"user_id": ""})).await;
    assert_error(empty, 400, "invalid_user_id").await;
    let long = post(
        &server,
        &format!("{room}/bans"),
        json!({"user_id": "u".repeat(300)}),
    )
    .await;
    assert_error(long, 400, "invalid_user_id").await;
    server.stop().await;
}

#[tokio::test]
async fn a_key_made_while_publishing_is_open_says_it_is_not_checked() {
    let server = start_server(|_| {}).await;
    let created = create_key(&server, json!({"stream": "live/open"})).await;
    assert_eq!(created["keys_checked"], false, "{created}");
    let warning = created["warning"].as_str().unwrap();
    assert!(
        warning.contains("open") && warning.contains("--publish-auth key"),
        "{warning}"
    );
    server.stop().await;

    let server = start_server(|s| s.auth.publish = PublishAuth::Key).await;
    let created = create_key(&server, json!({"stream": "live/open"})).await;
    assert_eq!(created["keys_checked"], true, "{created}");
    assert!(created.get("warning").is_none(), "{created}");
    server.stop().await;
}

#[tokio::test]
async fn a_key_can_carry_the_stream_title() {
    let server = start_server(|_| {}).await;
    let created = create_key(
        &server,
        json!({"stream": "live/show", "label": "studio", "title": "The Show", "description": "Weekly"}),
    )
    .await;
    assert_eq!(created["label"], "studio");
    let state: Value = get(&server, "/api/v1/live/live/show")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(state["title"], "The Show", "{state}");
    assert_eq!(state["description"], "Weekly", "{state}");
    let long = "t".repeat(141);
    assert_error(
        post(
            &server,
            "/api/v1/keys",
            json!({"stream": "live/show", "title": long}),
        )
        .await,
        400,
        "invalid_title",
    )
    .await;
    assert_eq!(
        list_keys(&server, "").await.len(),
        1,
        "a refused key is not made"
    );
    server.stop().await;
}
