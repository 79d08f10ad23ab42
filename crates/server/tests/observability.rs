#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Request ids (API and the direct HTTP-FLV path), `traceparent` reaching webhooks,
//! `/readyz` (ready, and not when the database is locked or gone), and
//! `/api/v1/server`'s build and config summary without secrets.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use common::{spawn_publisher, start_server, start_server_in, ADMIN_TOKEN, TOKEN_SECRET};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(20);
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn is_generated_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[tokio::test]
async fn api_requests_echo_the_given_request_id_or_a_generated_one() {
    let server = start_server(|_| {}).await;
    let http = reqwest::Client::new();
    let given = http
        .get(server.http_url("/api/v1/streams"))
        .bearer_auth(ADMIN_TOKEN)
        .header("x-request-id", "req-given-42")
        .send()
        .await
        .unwrap();
    assert_eq!(given.status(), 200);
    assert_eq!(given.headers()["x-request-id"], "req-given-42");

    // Errors and unknown routes get one too.
    let generated = http
        .get(server.http_url("/api/v1/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(generated.status(), 404);
    let id = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(is_generated_id(&id), "{id}");

    // One too long to be sane is replaced.
    let long = "x".repeat(200);
    let replaced = http
        .get(server.http_url("/healthz"))
        .header("x-request-id", &long)
        .send()
        .await
        .unwrap();
    let id = replaced.headers()["x-request-id"].to_str().unwrap();
    assert!(is_generated_id(id), "{id}");
    server.stop().await;
}

/// Sends `request` on a new connection and returns the response head.
async fn raw_head(addr: std::net::SocketAddr, request: &str) -> String {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(WAIT, async {
        while !head.ends_with(b"\r\n\r\n") {
            if socket.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
    })
    .await
    .expect("response head");
    String::from_utf8(head).unwrap()
}

fn header_of(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

#[tokio::test]
async fn the_direct_flv_path_echoes_the_request_id() {
    let server = start_server(|_| {}).await;
    let publisher = spawn_publisher(&server, "live/demo").await;
    server.wait_live("live/demo", WAIT).await;

    let playing = raw_head(
        server.http,
        "GET /live/demo.flv HTTP/1.1\r\nHost: a\r\nX-Request-Id: flv-play-1\r\n\r\n",
    )
    .await;
    assert!(playing.starts_with("HTTP/1.1 200"), "{playing}");
    assert_eq!(
        header_of(&playing, "x-request-id").as_deref(),
        Some("flv-play-1")
    );

    let missing = raw_head(
        server.http,
        "GET /live/absent.flv HTTP/1.1\r\nHost: a\r\nX-Request-Id: flv-missing-2\r\n\r\n",
    )
    .await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    assert_eq!(
        header_of(&missing, "x-request-id").as_deref(),
        Some("flv-missing-2")
    );

    let generated = raw_head(
        server.http,
        "GET /live/demo.flv HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .await;
    let id = header_of(&generated, "x-request-id").unwrap();
    assert!(is_generated_id(&id), "{id}");
    publisher.abort();
    server.stop().await;
}

/// Webhook requests as (event, traceparent).
type Hooks = Arc<Mutex<Vec<(String, String)>>>;

async fn start_receiver() -> (String, Hooks) {
    let hooks: Hooks = Arc::default();
    let recorded = Arc::clone(&hooks);
    let app = Router::new().route(
        "/hooks",
        post(move |headers: HeaderMap| async move {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            recorded
                .lock()
                .unwrap()
                .push((header("onair-event"), header("traceparent")));
            "ok"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hooks"), hooks)
}

async fn wait_for_hook(hooks: &Hooks, event: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let found = hooks
            .lock()
            .unwrap()
            .iter()
            .find(|(name, _)| name == event)
            .map(|(_, trace)| trace.clone());
        if let Some(trace) = found {
            return trace;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {event} webhook; got {:?}",
            hooks.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `00-{trace id}-{parent id}-{flags}`, split.
fn trace_parts(traceparent: &str) -> (String, String) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[0], "00");
    assert_eq!(parts[1].len(), 32);
    assert_eq!(parts[2].len(), 16);
    (parts[1].to_owned(), parts[2].to_owned())
}

#[tokio::test]
async fn a_callers_traceparent_reaches_the_webhook_it_causes() {
    let (url, hooks) = start_receiver().await;
    let server = start_server(|s| {
        s.webhooks.url = Some(url);
        s.webhooks.secret = Some("observability-webhook-secret".into());
    })
    .await;
    let publisher = spawn_publisher(&server, "live/demo").await;
    server.wait_live("live/demo", WAIT).await;
    // RTMP has no headers: the publish starts a trace of its own.
    let (publish_trace, _) = trace_parts(&wait_for_hook(&hooks, "on_publish").await);
    assert_ne!(publish_trace, TRACE_ID);

    // The first request on a connection: the direct HTTP-FLV path.
    let direct = raw_head(
        server.http,
        &format!("GET /live/demo.flv HTTP/1.1\r\nHost: a\r\ntraceparent: {TRACEPARENT}\r\n\r\n"),
    )
    .await;
    assert!(direct.starts_with("HTTP/1.1 200"), "{direct}");
    let (trace, parent) = trace_parts(&wait_for_hook(&hooks, "on_play").await);
    assert_eq!(trace, TRACE_ID);
    assert_ne!(
        parent, "00f067aa0ba902b7",
        "onair sends a parent id of its own"
    );

    // A later request on a kept-alive connection goes through the router.
    hooks.lock().unwrap().clear();
    let other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    let mut socket = TcpStream::connect(server.http).await.unwrap();
    socket
        .write_all(
            format!(
                "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n\
                 GET /live/demo.flv HTTP/1.1\r\nHost: a\r\ntraceparent: {other}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let (trace, _) = trace_parts(&wait_for_hook(&hooks, "on_play").await);
    assert_eq!(trace, "0af7651916cd43dd8448eb211c80319c");
    drop(socket);

    // The REST kick: the publisher's on_unpublish belongs to the kicking request's trace.
    let kick_trace = "00-5cf92f3577b34da6a3ce929d0e0e4799-10f067aa0ba902b7-01";
    let kicked = reqwest::Client::new()
        .delete(server.http_url("/api/v1/streams/live/demo"))
        .bearer_auth(ADMIN_TOKEN)
        .header("traceparent", kick_trace)
        .send()
        .await
        .unwrap();
    assert_eq!(kicked.status(), 204);
    let (trace, _) = trace_parts(&wait_for_hook(&hooks, "on_unpublish").await);
    assert_eq!(trace, "5cf92f3577b34da6a3ce929d0e0e4799");
    publisher.abort();
    server.stop().await;
}

async fn readyz(http: &reqwest::Client, server: &common::TestServer) -> (u16, Value) {
    let response = http
        .get(server.http_url("/readyz"))
        .timeout(WAIT)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn wait_ready(http: &reqwest::Client, server: &common::TestServer) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = readyz(http, server).await;
        if status == 200 {
            assert_eq!(body["status"], "ready");
            assert_eq!(body["checks"]["store"], "ok");
            assert_eq!(body["checks"]["listeners"], "ok");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never ready: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn readyz_fails_while_another_process_holds_the_database() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = start_server_in(data_dir.path(), |_| {}).await;
    let http = reqwest::Client::new();
    wait_ready(&http, &server).await;

    // What a second onair or an sqlite3 shell in a write transaction does.
    let other = rusqlite::Connection::open(data_dir.path().join("onair.db")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE;").unwrap();
    let (status, body) = readyz(&http, &server).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["listeners"], "ok");
    assert!(
        body["checks"]["store"]
            .as_str()
            .unwrap()
            .starts_with("failed"),
        "{body}"
    );
    other.execute_batch("ROLLBACK;").unwrap();
    drop(other);
    wait_ready(&http, &server).await;
    server.stop().await;
}

#[tokio::test]
async fn readyz_fails_when_the_database_file_is_gone() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = start_server_in(data_dir.path(), |_| {}).await;
    let http = reqwest::Client::new();
    wait_ready(&http, &server).await;
    std::fs::remove_file(data_dir.path().join("onair.db")).unwrap();
    let (status, body) = readyz(&http, &server).await;
    assert_eq!(status, 503, "{body}");
    let store = body["checks"]["store"].as_str().unwrap();
    assert!(store.contains("onair.db"), "{body}");
    // Health is about the process, not its dependencies.
    let health = http.get(server.http_url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn server_info_has_build_and_config_but_no_secret() {
    let secrets = [
        "webhook-secret-not-shown",
        "playback-secret-not-shown-0123",
        "webhook-url-token-not-shown",
    ];
    let server = start_server(|s| {
        s.webhooks.url = Some(format!(
            "http://127.0.0.1:9/hooks?token={}",
            "webhook-url-token-not-shown"
        ));
        s.webhooks.secret = Some("webhook-secret-not-shown".into());
        s.playback.signed = true;
        s.playback.secrets = vec!["playback-secret-not-shown-0123".into()];
        s.auth.publish = onair_server::config::PublishAuth::Key;
    })
    .await;
    let response = reqwest::Client::new()
        .get(server.http_url("/api/v1/server"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for secret in secrets.iter().chain(&[ADMIN_TOKEN, TOKEN_SECRET]) {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let info: Value = serde_json::from_str(&text).unwrap();
    let commit = info["build"]["commit"].as_str().unwrap();
    assert!(
        commit == "unknown"
            || (commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
        "{commit}"
    );
    assert!(info["build"]["rustc"]
        .as_str()
        .unwrap()
        .starts_with("rustc"));
    assert!(!info["build"]["profile"].as_str().unwrap().is_empty());
    let config = &info["config"];
    assert_eq!(config["publish_auth"], "key");
    assert_eq!(config["signed_playback"], true);
    assert_eq!(config["webhooks_enabled"], true);
    assert_eq!(config["http_tls"], false);
    assert_eq!(config["rooms_backend"], "memory");
    assert_eq!(config["http_listen"], "127.0.0.1:0");
    assert!(config["limits"]["max_connections"].as_u64().unwrap() > 0);
    server.stop().await;
}
