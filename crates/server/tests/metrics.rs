#![allow(clippy::unwrap_used, clippy::expect_used)]

//! `GET /metrics` against real traffic: a publisher, RTMP and HTTP-FLV viewers, a room
//! member who chats, refused and rate-limited requests, connections over the per-IP
//! limit. The figures move, gauges come back down, and nothing in the body names a
//! stream, a user, an address or a key.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{spawn_publisher, start_server, ADMIN_TOKEN, TOKEN_SECRET};
use futures_util::{SinkExt, StreamExt};
use onair_server::client::{RtmpClient, RtmpUrl};
use onair_server::rooms::{Role, User};
use onair_server::{Server, Settings};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(15);
const STREAM: &str = "live/secretstream9";
const USER: &str = "metrics-user-7";

/// A server whose `/metrics` has a listener of its own, so scraping is never rate
/// limited along with the traffic under test.
struct MetricsServer {
    rtmp: SocketAddr,
    http: SocketAddr,
    metrics: SocketAddr,
    shutdown: CancellationToken,
    handle: JoinHandle<std::io::Result<()>>,
    _data_dir: tempfile::TempDir,
}

async fn start_with_metrics_listener(tweak: impl FnOnce(&mut Settings)) -> MetricsServer {
    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.rtmp.listen = "127.0.0.1:0".parse().unwrap();
    settings.http.listen = "127.0.0.1:0".parse().unwrap();
    settings.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
    settings.shutdown_drain_ms = 2_000;
    settings.data_dir = data_dir.path().to_owned();
    settings.auth.token_secret = Some(TOKEN_SECRET.to_owned());
    settings.auth.admin_token = Some(ADMIN_TOKEN.to_owned());
    tweak(&mut settings);
    let server = Server::bind(settings).await.unwrap();
    let shutdown = CancellationToken::new();
    let (rtmp, http) = (server.rtmp_addr().unwrap(), server.http_addr().unwrap());
    let metrics = server.metrics_addr().expect("a metrics listener");
    let handle = tokio::spawn(server.run(shutdown.clone()));
    MetricsServer {
        rtmp,
        http,
        metrics,
        shutdown,
        handle,
        _data_dir: data_dir,
    }
}

impl MetricsServer {
    fn http_url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.handle.await.unwrap().unwrap();
    }
}

/// One scrape body, read by exact series (`name{labels}` as the server writes them).
struct Scrape(String);

impl Scrape {
    fn value(&self, series: &str) -> f64 {
        self.0
            .lines()
            .find_map(|line| {
                let value = line.strip_prefix(series)?.strip_prefix(' ')?;
                value.parse().ok()
            })
            .unwrap_or_else(|| panic!("no series {series} in\n{}", self.0))
    }
}

async fn scrape(addr: SocketAddr) -> Scrape {
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    Scrape(response.text().await.unwrap())
}

/// Scrapes until `done` holds, or panics with the last body.
async fn scrape_until(addr: SocketAddr, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let body = scrape(addr).await;
        if done(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never saw {what} in\n{}",
            body.0
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publishes the fixture to `STREAM` at real-time pace until aborted.
async fn publish(rtmp: SocketAddr) -> JoinHandle<()> {
    let url = RtmpUrl::parse(&format!("rtmp://{rtmp}/{STREAM}")).unwrap();
    let mut client = RtmpClient::connect(&url).await.unwrap();
    client.publish(&url.name).await.unwrap();
    let data = std::fs::read(common::fixture_path()).unwrap();
    let tags = onair_server::client::read_flv_tags(&data, 16 << 20).unwrap();
    tokio::spawn(async move {
        let _ = onair_server::client::send_paced(&mut client, &tags, true).await;
    })
}

/// An RTMP player that reads until aborted; returns once it has received something.
async fn rtmp_viewer(rtmp: SocketAddr) -> JoinHandle<()> {
    let url = RtmpUrl::parse(&format!("rtmp://{rtmp}/{STREAM}")).unwrap();
    let mut client = timeout(WAIT, RtmpClient::connect(&url))
        .await
        .unwrap()
        .unwrap();
    timeout(WAIT, client.play(&url.name))
        .await
        .unwrap()
        .unwrap();
    let (started, got_media) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut started = Some(started);
        while let Ok(event) = client.next_event().await {
            if matches!(event, onair_rtmp::ClientEvent::Media { .. }) {
                if let Some(started) = started.take() {
                    let _ = started.send(());
                }
            }
        }
    });
    timeout(WAIT, got_media).await.unwrap().unwrap();
    task
}

/// An HTTP-FLV player that reads until aborted; returns once it has received something.
async fn flv_viewer(http: SocketAddr) -> JoinHandle<()> {
    let response = reqwest::get(format!("http://{http}/{STREAM}.flv"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    timeout(WAIT, body.next()).await.unwrap().unwrap().unwrap();
    tokio::spawn(async move { while let Some(Ok(_)) = body.next().await {} })
}

fn chat_token(user: &str) -> String {
    let keys = onair_server::auth::TokenKeys::new(TOKEN_SECRET.as_bytes());
    keys.mint(&User::new(user, user, Role::Viewer), 3600)
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn wait_for_event(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let message = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
        if let Message::Text(text) = message {
            let event: Value = serde_json::from_str(text.as_str()).unwrap();
            if event["type"] == kind {
                return event;
            }
        }
    }
}

#[tokio::test]
async fn scrape_follows_media_rooms_and_requests_and_names_nobody() {
    let server = start_with_metrics_listener(|settings| {
        // A burst that covers the test's own requests, then nothing refills in time.
        settings.limits.requests_per_second_per_ip = 0.01;
        settings.limits.request_burst_per_ip = 20;
    })
    .await;
    let http = reqwest::Client::new();

    // Only the metrics listener serves /metrics when it has one.
    let main = http.get(server.http_url("/metrics")).send().await.unwrap();
    assert_eq!(main.status(), 404);

    let publisher = publish(server.rtmp).await;
    let rtmp = rtmp_viewer(server.rtmp).await;
    let flv = flv_viewer(server.http).await;

    let token = chat_token(USER);
    let url = format!("ws://{}/ws/{STREAM}?token={token}", server.http);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    wait_for_event(&mut ws, "welcome").await;
    let chat = json!({"type": "chat", "text": "hello metrics"}).to_string();
    ws.send(Message::Text(chat.into())).await.unwrap();
    wait_for_event(&mut ws, "chat").await;

    let created: Value = http
        .post(server.http_url("/api/v1/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "stream": STREAM }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let unauthorized = http
        .get(server.http_url("/api/v1/streams"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    let mut limited = false;
    for _ in 0..50 {
        let response = http.get(server.http_url("/healthz")).send().await.unwrap();
        if response.status() == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "the request rate limit never answered 429");

    let body = scrape_until(server.metrics, "the room member", |s| {
        s.value(r#"onair_room_members{protocol="ws"}"#) == 1.0
    })
    .await;
    assert_eq!(body.value(r#"onair_publishers{protocol="rtmp"}"#), 1.0);
    assert_eq!(body.value(r#"onair_viewers{protocol="rtmp"}"#), 1.0);
    assert_eq!(body.value(r#"onair_viewers{protocol="http-flv"}"#), 1.0);
    assert_eq!(body.value("onair_streams"), 1.0);
    assert!(body.value("onair_media_received_bytes_total") > 0.0);
    assert!(body.value("onair_media_received_frames_total") > 0.0);
    assert!(body.value("onair_media_sent_bytes_total") > 0.0);
    assert!(body.value("onair_rooms") >= 1.0);
    assert!(body.value(r#"onair_room_messages_accepted_total{type="chat"}"#) >= 1.0);
    assert!(body.value(r#"onair_room_events_broadcast_total{type="chat"}"#) >= 1.0);
    assert!(body.value(r#"onair_room_events_delivered_total{protocol="ws"}"#) >= 2.0);
    assert!(body.value(r#"onair_connections_accepted_total{protocol="rtmp"}"#) >= 2.0);
    assert!(body.value(r#"onair_connections_open{protocol="rtmp"}"#) >= 2.0);
    assert!(body.value(r#"onair_connections_open{protocol="http"}"#) >= 2.0);
    assert!(body.value(r#"onair_http_requests_refused_total{reason="rate_limited"}"#) >= 1.0);
    let duration = |method: &str, route: &str, status: u16| {
        body.value(&format!(
            r#"onair_http_request_duration_seconds_count{{method="{method}",route="{route}",status="{status}"}}"#
        ))
    };
    assert_eq!(duration("GET", "/api/v1/streams", 401), 1.0);
    assert_eq!(duration("POST", "/api/v1/keys", 201), 1.0);
    assert!(duration("GET", "/healthz", 429) >= 1.0);
    assert!(body.value("onair_tokio_tasks_alive") > 0.0);

    for secret in ["secretstream9", USER, "127.0.0.1", key.as_str(), &token] {
        assert!(!body.0.contains(secret), "the scrape names {secret:?}");
    }

    // Viewers and the member leave: the gauges come back, the totals stay.
    rtmp.abort();
    flv.abort();
    ws.close(None).await.unwrap();
    drop(ws);
    let after = scrape_until(server.metrics, "the viewers leaving", |s| {
        s.value(r#"onair_viewers{protocol="rtmp"}"#) == 0.0
            && s.value(r#"onair_viewers{protocol="http-flv"}"#) == 0.0
            && s.value(r#"onair_room_members{protocol="ws"}"#) == 0.0
    })
    .await;
    assert_eq!(after.value(r#"onair_plays_total{protocol="rtmp"}"#), 1.0);
    assert_eq!(
        after.value(r#"onair_plays_total{protocol="http-flv"}"#),
        1.0
    );
    assert_eq!(after.value(r#"onair_room_joins_total{protocol="ws"}"#), 1.0);

    // The stream ends; what it carried still counts.
    let received = after.value("onair_media_received_bytes_total");
    publisher.abort();
    let ended = scrape_until(server.metrics, "the stream ending", |s| {
        s.value("onair_streams") == 0.0
    })
    .await;
    assert_eq!(ended.value(r#"onair_publishers{protocol="rtmp"}"#), 0.0);
    assert!(ended.value("onair_media_received_bytes_total") >= received);
    assert_eq!(
        ended.value(r#"onair_publishes_total{protocol="rtmp"}"#),
        1.0
    );
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_per_ip_limit_are_counted_by_protocol_and_reason() {
    let server = start_server(|settings| settings.limits.max_connections_per_ip = 2).await;
    let held = [
        TcpStream::connect(server.rtmp).await.unwrap(),
        TcpStream::connect(server.rtmp).await.unwrap(),
    ];
    // Accepted, then closed at once: wait for the close so the count is in.
    for addr in [server.rtmp, server.http] {
        let mut refused = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 16];
        let read = timeout(WAIT, refused.read(&mut buf)).await.unwrap();
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    drop(held);
    // The held connections' slots free up once the server sees them close.
    let deadline = tokio::time::Instant::now() + WAIT;
    let body = loop {
        match reqwest::get(server.http_url("/metrics")).await {
            Ok(response) if response.status() == 200 => {
                break Scrape(response.text().await.unwrap())
            }
            _ => {
                assert!(tokio::time::Instant::now() < deadline, "no scrape");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let refused = |proto: &str| {
        body.value(&format!(
            r#"onair_connections_refused_total{{protocol="{proto}",reason="max_connections_per_ip"}}"#
        ))
    };
    assert!(refused("rtmp") >= 1.0);
    assert!(refused("http") >= 1.0);
    assert_eq!(
        body.value(r#"onair_connections_refused_total{protocol="rtmp",reason="max_connections"}"#),
        0.0
    );
    server.stop().await;
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let server = start_server(|settings| settings.metrics.enabled = false).await;
    let response = reqwest::get(server.http_url("/metrics")).await.unwrap();
    assert_eq!(response.status(), 404);
    server.stop().await;
}

#[tokio::test]
async fn a_refused_publish_is_counted_by_reason() {
    let server = start_server(|_| {}).await;
    let publisher = spawn_publisher(&server, "live/first").await;
    let url = RtmpUrl::parse(&server.rtmp_url("live/first")).unwrap();
    let mut second = RtmpClient::connect(&url).await.unwrap();
    assert!(second.publish(&url.name).await.is_err());
    let body = Scrape(
        reqwest::get(server.http_url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(
        body.value(r#"onair_publishes_refused_total{reason="already_publishing"}"#),
        1.0
    );
    publisher.abort();
    server.stop().await;
}
