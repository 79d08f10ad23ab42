#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Secrets never reach the logs. This test binary installs a global `tracing` layer that
//! keeps the text of every event and every span field (debug level for onair's crates),
//! drives everything that handles a secret, right and wrong — key-mode publish, signed
//! playback over RTMP, HTTP-FLV, WebSocket and SSE, chat tokens by query and by header,
//! the admin token, webhooks signed with a secret posting to a URL with a token — and
//! then looks for each secret in what was logged.
//!
//! One test function: the capture is process-wide.

mod common;

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::routing::post;
use axum::Router;
use common::{fixture_path, start_server, TestServer, ADMIN_TOKEN, TOKEN_SECRET};
use futures_util::{SinkExt, StreamExt};
use onair_media::StreamPath;
use onair_server::client::{read_flv_tags, send_paced, RtmpClient, RtmpUrl};
use onair_server::config::{PlaybackSettings, PublishAuth};
use onair_server::rooms::Role;
use onair_server::signing::{unix_now, PlaybackSigner};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

const WAIT: Duration = Duration::from_secs(15);
const PLAYBACK_SECRET: &str = "log-test-playback-secret-0001";
const WEBHOOK_SECRET: &str = "log-test-webhook-secret-0002";
const WEBHOOK_URL_TOKEN: &str = "log-test-webhook-url-token-0003";
const WRONG_ADMIN_TOKEN: &str = "log-test-wrong-admin-token-0004";
const WRONG_STREAM_KEY: &str = "log-test-wrong-stream-key-0005";
const WRONG_CHAT_TOKEN: &str = "log-test-wrong-chat-token-0006";
const WRONG_SIG: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

// ---------------------------------------------------------------- the capture

/// Every line of text the subscriber was given: event fields, span fields at creation
/// and each later `record`.
fn captured() -> &'static Mutex<Vec<String>> {
    static CAPTURED: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    CAPTURED.get_or_init(Mutex::default)
}

struct Capture;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        let mut text = Text(format!("span {}:", attrs.metadata().name()));
        attrs.record(&mut text);
        captured().lock().unwrap().push(text.0);
    }

    fn on_record(&self, _: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut text = Text("record:".to_owned());
        values.record(&mut text);
        captured().lock().unwrap().push(text.0);
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut text = Text(format!("event {}:", event.metadata().target()));
        event.record(&mut text);
        captured().lock().unwrap().push(text.0);
    }
}

struct Text(String);

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push_str(&format!(" {}={value}", field.name()));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.push_str(&format!(" {}={value}", field.name()));
        let mut source = value.source();
        while let Some(cause) = source {
            self.0.push_str(&format!(": {cause}"));
            source = cause.source();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
}

fn install_capture() {
    let filter = Targets::new()
        .with_target("onair", Level::DEBUG)
        .with_default(Level::INFO);
    let subscriber = tracing_subscriber::registry().with(Capture.with_filter(filter));
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
}

// ---------------------------------------------------------------- helpers

fn sign(path: &str, secret: &str) -> String {
    let signer = PlaybackSigner::new(&[secret.as_bytes().to_vec()], &PlaybackSettings::default());
    signer.sign(&StreamPath::parse(path).unwrap(), unix_now() + 3600)
}

/// The `sig` value of a signed query.
fn sig_of(query: &str) -> String {
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "sig")
        .map(|(_, value)| value.into_owned())
        .unwrap()
}

async fn start_receiver() -> (String, Arc<Mutex<usize>>) {
    let count = Arc::new(Mutex::new(0usize));
    let seen = Arc::clone(&count);
    let app = Router::new().route(
        "/hooks",
        post(move || async move {
            *seen.lock().unwrap() += 1;
            "ok"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (
        format!("http://{addr}/hooks?token={WEBHOOK_URL_TOKEN}"),
        count,
    )
}

async fn create_key(server: &TestServer, http: &reqwest::Client) -> String {
    let response = http
        .post(server.http_url("/api/v1/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "stream": "live/demo" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["key"].as_str().unwrap().to_owned()
}

async fn publish(server: &TestServer, name_with_query: &str) -> Result<RtmpClient, String> {
    let url = RtmpUrl::parse(&server.rtmp_url(name_with_query)).unwrap();
    let mut client = RtmpClient::connect(&url).await.map_err(|e| e.to_string())?;
    tokio::time::timeout(WAIT, client.publish(&url.name))
        .await
        .expect("publish answered")
        .map_err(|e| e.to_string())?;
    Ok(client)
}

/// Plays `name_with_query` over RTMP; whether the server let it start.
async fn rtmp_play(server: &TestServer, name_with_query: &str) -> bool {
    let url = RtmpUrl::parse(&server.rtmp_url(name_with_query)).unwrap();
    let Ok(mut client) = RtmpClient::connect(&url).await else {
        return false;
    };
    matches!(
        tokio::time::timeout(WAIT, client.play(&url.name)).await,
        Ok(Ok(_))
    )
}

/// The status line of a direct HTTP-FLV request for `target`.
async fn flv_status(server: &TestServer, target: &str) -> String {
    let mut socket = TcpStream::connect(server.http).await.unwrap();
    socket
        .write_all(format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = vec![0u8; 12];
    tokio::time::timeout(WAIT, socket.read_exact(&mut head))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&head).into_owned()
}

/// Opens a room WebSocket at `path_and_query` (with `bearer` as a header) and reads
/// its first message; whether it got an event rather than a close.
async fn ws_open(server: &TestServer, path_and_query: &str, bearer: Option<&str>) -> bool {
    let mut request = server.ws_url(path_and_query).into_client_request().unwrap();
    if let Some(token) = bearer {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let Ok((mut socket, _)) = tokio_tungstenite::connect_async(request).await else {
        return false;
    };
    let first = tokio::time::timeout(WAIT, socket.next()).await.unwrap();
    let opened = matches!(first, Some(Ok(message)) if message.is_text());
    if opened {
        // The room's own logging runs too.
        let chat = Message::text(r#"{"type":"chat","text":"hello"}"#);
        socket.send(chat).await.unwrap();
        let _ = tokio::time::timeout(WAIT, socket.next()).await;
    }
    opened
}

async fn sse_status(http: &reqwest::Client, server: &TestServer, query: &str) -> u16 {
    let response = http
        .get(server.http_url(&format!("/sse/live/demo?{query}")))
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

// ---------------------------------------------------------------- the test

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_is_ever_logged() {
    install_capture();
    let (hook_url, hooks) = start_receiver().await;
    let server = start_server(|s| {
        s.auth.publish = PublishAuth::Key;
        s.playback.signed = true;
        s.playback.secrets = vec![PLAYBACK_SECRET.to_owned()];
        s.webhooks.url = Some(hook_url);
        s.webhooks.secret = Some(WEBHOOK_SECRET.to_owned());
    })
    .await;
    let http = reqwest::Client::new();

    // The admin token, right and wrong.
    let listed = http
        .get(server.http_url("/api/v1/streams"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let wrong = http
        .get(server.http_url("/api/v1/streams"))
        .bearer_auth(WRONG_ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);

    // Key-mode publish, wrong key then the right one.
    let key = create_key(&server, &http).await;
    let refused = publish(&server, &format!("live/demo?key={WRONG_STREAM_KEY}")).await;
    assert!(refused.is_err(), "a wrong key published");
    let mut publisher = publish(&server, &format!("live/demo?key={key}"))
        .await
        .expect("the right key publishes");
    let data = std::fs::read(fixture_path()).unwrap();
    let tags = read_flv_tags(&data, 16 << 20).unwrap();
    let pushing = tokio::spawn(async move {
        let _ = send_paced(&mut publisher, &tags, true).await;
    });
    server.wait_live("live/demo", WAIT).await;

    // Signed playback, good and bad signatures, over every protocol.
    let good = sign("live/demo", PLAYBACK_SECRET);
    let good_sig = sig_of(&good);
    let bad = good.replace(&good_sig, WRONG_SIG);
    assert!(rtmp_play(&server, &format!("live/demo?{good}")).await);
    assert!(!rtmp_play(&server, &format!("live/demo?{bad}")).await);
    assert!(flv_status(&server, &format!("/live/demo.flv?{good}"))
        .await
        .ends_with("200"));
    assert!(flv_status(&server, &format!("/live/demo.flv?{bad}"))
        .await
        .ends_with("403"));

    // Chat tokens by query and by header, good and bad, over WebSocket and SSE.
    let token = server.token("alice", Role::Viewer);
    assert!(
        ws_open(
            &server,
            &format!("/ws/live/demo?{good}&token={token}"),
            None
        )
        .await
    );
    assert!(
        !ws_open(
            &server,
            &format!("/ws/live/demo?{good}&token={WRONG_CHAT_TOKEN}"),
            None
        )
        .await
    );
    assert!(ws_open(&server, &format!("/ws/live/demo?{good}"), Some(&token)).await);
    assert!(
        !ws_open(
            &server,
            &format!("/ws/live/demo?{good}"),
            Some(WRONG_CHAT_TOKEN)
        )
        .await
    );
    assert!(!ws_open(&server, &format!("/ws/live/demo?{bad}&token={token}"), None).await);
    assert_eq!(
        sse_status(&http, &server, &format!("{good}&token={token}")).await,
        200
    );
    assert_eq!(
        sse_status(&http, &server, &format!("{good}&token={WRONG_CHAT_TOKEN}")).await,
        401
    );
    let by_header = http
        .get(server.http_url(&format!("/sse/live/demo?{bad}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(by_header.status(), 403);

    // The REST kick ends the publish: more webhooks.
    let kicked = http
        .delete(server.http_url("/api/v1/streams/live/demo"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(kicked.status(), 204);
    let deadline = tokio::time::Instant::now() + WAIT;
    while *hooks.lock().unwrap() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "webhooks never posted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pushing.abort();
    server.stop().await;

    let secrets = [
        ("admin token", ADMIN_TOKEN.to_owned()),
        ("wrong admin token", WRONG_ADMIN_TOKEN.to_owned()),
        ("chat token secret", TOKEN_SECRET.to_owned()),
        ("playback secret", PLAYBACK_SECRET.to_owned()),
        ("webhook secret", WEBHOOK_SECRET.to_owned()),
        ("webhook URL token", WEBHOOK_URL_TOKEN.to_owned()),
        ("stream key", key),
        ("wrong stream key", WRONG_STREAM_KEY.to_owned()),
        ("playback signature", good_sig),
        ("wrong playback signature", WRONG_SIG.to_owned()),
        ("chat token", token),
        ("wrong chat token", WRONG_CHAT_TOKEN.to_owned()),
    ];
    let lines = captured().lock().unwrap().clone();
    assert!(
        lines.iter().any(|l| l.contains("request finished")),
        "the capture saw no request lines: {lines:#?}"
    );
    assert!(lines.iter().any(|l| l.contains("publish started")));
    // The connection spans carry their fields.
    assert!(
        lines.iter().any(|l| l.contains("user_id=alice")),
        "{lines:#?}"
    );
    assert!(lines
        .iter()
        .any(|l| l.contains("proto=http-flv") && l.contains("request_id=")));
    assert!(lines.iter().any(|l| l.contains("proto=sse")));
    let leaks: Vec<String> = secrets
        .iter()
        .flat_map(|(what, secret)| {
            lines
                .iter()
                .filter(|line| line.contains(secret.as_str()))
                .map(move |line| format!("{what} in: {line}"))
        })
        .collect();
    assert!(leaks.is_empty(), "secrets logged:\n{}", leaks.join("\n"));
}
