//! Publish authorization end to end: `open`, `key` (keys from the API, surviving a
//! restart) and `webhook` (a real HTTP receiver that allows, refuses, stalls or is
//! down), with the in-repo RTMP client and with the real ffmpeg.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use common::{
    fixture_path, run_tool, start_server, start_server_in, tool, TestServer, ADMIN_TOKEN,
};
use onair_server::client::{ClientError, RtmpClient, RtmpUrl};
use onair_server::config::PublishAuth;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

/// Publishes to `path_and_query` and says what the server answered.
async fn try_publish(
    server: &TestServer,
    name_with_query: &str,
) -> Result<RtmpClient, ClientError> {
    let url = RtmpUrl::parse(&server.rtmp_url(name_with_query)).unwrap();
    let mut client = RtmpClient::connect(&url).await?;
    tokio::time::timeout(WAIT, client.publish(&url.name))
        .await
        .expect("publish answered")?;
    Ok(client)
}

fn refused_with(result: Result<RtmpClient, ClientError>) -> (String, String) {
    match result {
        Err(ClientError::Refused { code, description }) => (code, description),
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, but the publish was accepted"),
    }
}

async fn create_key(server: &TestServer, stream: &str) -> (String, String) {
    let response = reqwest::Client::new()
        .post(server.http_url("/api/v1/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "stream": stream }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    (
        body["id"].as_str().unwrap().to_owned(),
        body["key"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn key_mode_needs_a_valid_unrevoked_key_for_that_stream() {
    let server = start_server(|s| s.auth.publish = PublishAuth::Key).await;
    let (code, description) = refused_with(try_publish(&server, "live/alice").await);
    assert_eq!(code, "NetStream.Publish.Unauthorized");
    assert!(description.contains("key is required"), "{description}");

    let (id, key) = create_key(&server, "live/alice").await;
    let (code, description) = refused_with(try_publish(&server, "live/alice?key=wrong").await);
    assert_eq!(code, "NetStream.Publish.Unauthorized");
    assert!(description.contains("not valid"), "{description}");
    // A key is for its own stream only.
    let (code, _) = refused_with(try_publish(&server, &format!("live/bob?key={key}")).await);
    assert_eq!(code, "NetStream.Publish.Unauthorized");

    let publisher = try_publish(&server, &format!("live/alice?key={key}"))
        .await
        .expect("the right key publishes");
    drop(publisher);

    let revoked = reqwest::Client::new()
        .delete(server.http_url(&format!("/api/v1/keys/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    let (code, _) = refused_with(try_publish(&server, &format!("live/alice?key={key}")).await);
    assert_eq!(code, "NetStream.Publish.Unauthorized");
    server.stop().await;
}

#[tokio::test]
async fn keys_still_publish_after_a_restart() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = start_server_in(data_dir.path(), |s| s.auth.publish = PublishAuth::Key).await;
    let (_, key) = create_key(&server, "live/kept").await;
    server.stop().await;
    let server = start_server_in(data_dir.path(), |s| s.auth.publish = PublishAuth::Key).await;
    try_publish(&server, &format!("live/kept?key={key}"))
        .await
        .expect("a key created before the restart publishes");
    server.stop().await;
}

#[tokio::test]
async fn ffmpeg_publishes_with_a_key_and_is_refused_without() {
    if !tool("ffmpeg") {
        return;
    }
    let server = start_server(|s| s.auth.publish = PublishAuth::Key).await;
    let (_, key) = create_key(&server, "live/ff").await;
    let fixture = fixture_path().to_str().unwrap().to_owned();
    let push = move |url: String| {
        let fixture = fixture.clone();
        async move {
            let args = [
                "-v", "error", "-re", "-t", "2", "-i", &fixture, "-c", "copy", "-f", "flv", &url,
            ];
            run_tool("ffmpeg", &args, Duration::from_secs(60)).await
        }
    };
    let (ok, _, stderr) = push(server.rtmp_url("live/ff")).await;
    assert!(!ok, "ffmpeg published without a key");
    assert!(!stderr.is_empty());
    let with_key = tokio::spawn(push(server.rtmp_url(&format!("live/ff?key={key}"))));
    server.wait_live("live/ff", WAIT).await;
    let (ok, _, stderr) = with_key.await.unwrap();
    assert!(ok, "ffmpeg with the key failed: {stderr}");
    server.stop().await;
}

/// A publish webhook receiver that answers with `status` after `delay`, and keeps the
/// decision bodies it was sent.
struct Decider {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

async fn decider(status: StatusCode, reply: &'static str, delay: Duration) -> Decider {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&bodies);
    let app = Router::new().route(
        "/decide",
        post(move |body: String| {
            let kept = Arc::clone(&kept);
            async move {
                kept.lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap());
                tokio::time::sleep(delay).await;
                (status, reply)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/decide", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Decider { url, bodies }
}

async fn webhook_server(url: &str, fail_open: bool) -> TestServer {
    let url = url.to_owned();
    start_server(move |s| {
        s.auth.publish = PublishAuth::Webhook;
        s.auth.publish_webhook = Some(url);
        s.webhooks.publish_timeout_ms = 500;
        s.webhooks.publish_fail_open = fail_open;
    })
    .await
}

#[tokio::test]
async fn webhook_mode_allows_on_2xx_and_passes_the_query() {
    let receiver = decider(StatusCode::NO_CONTENT, "", Duration::ZERO).await;
    let server = webhook_server(&receiver.url, false).await;
    try_publish(&server, "live/hooked?key=platform-secret&token=t1")
        .await
        .expect("a 2xx allows");
    let bodies = receiver.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["stream"], "live/hooked");
    // The platform checks its own credentials: they reach it, in the decision only.
    assert!(
        bodies[0].to_string().contains("platform-secret"),
        "{}",
        bodies[0]
    );
    server.stop().await;
}

#[tokio::test]
async fn webhook_mode_refuses_on_a_refusal_a_timeout_and_a_dead_receiver() {
    let refusing = decider(StatusCode::FORBIDDEN, "banned streamer", Duration::ZERO).await;
    let server = webhook_server(&refusing.url, false).await;
    let (code, description) = refused_with(try_publish(&server, "live/no").await);
    assert_eq!(code, "NetStream.Publish.Unauthorized");
    assert!(
        description.contains("403") && description.contains("banned streamer"),
        "{description}"
    );
    server.stop().await;

    let slow = decider(StatusCode::OK, "", Duration::from_secs(5)).await;
    let server = webhook_server(&slow.url, false).await;
    let (code, description) = refused_with(try_publish(&server, "live/slow").await);
    assert_eq!(code, "NetStream.Publish.Unauthorized");
    assert!(description.contains("did not answer"), "{description}");
    server.stop().await;

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/decide", closed.local_addr().unwrap());
    drop(closed);
    let server = webhook_server(&dead, false).await;
    let (code, description) = refused_with(try_publish(&server, "live/dead").await);
    assert_eq!(code, "NetStream.Publish.Unauthorized");
    assert!(description.contains("unreachable"), "{description}");
    server.stop().await;

    // Configured to fail open, the same dead receiver lets the publish through.
    let server = webhook_server(&dead, true).await;
    try_publish(&server, "live/open")
        .await
        .expect("fail-open allows when the webhook is down");
    server.stop().await;
}
