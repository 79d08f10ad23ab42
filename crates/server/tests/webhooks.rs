#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Webhooks against a real receiver (an axum server in the test) that records every
//! request and checks its signature: the media notifications of a publish with two
//! viewers, retries, a dead receiver, a full queue, room event filtering, and the
//! publish decision (allow, refuse, time out, unreachable, fail open).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use common::TestServer;
use futures_util::{SinkExt, StreamExt};
use onair_media::StreamPath;
use onair_rtmp::ClientEvent;
use onair_server::client::{RtmpClient, RtmpUrl};
use onair_server::hub::ClientInfo;
use onair_server::rooms::{Role, User};
use onair_server::webhooks::{
    verify_signature, EventDetail, PublishRequest, Refusal, WebhookEvent, WebhookSettings, Webhooks,
};
use onair_server::Settings;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);
const SECRET: &str = "test-webhook-secret";

// ---------------------------------------------------------------- the receiver

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    event: String,
    delivery: String,
    attempt: String,
    signature_ok: bool,
    raw: Bytes,
    body: Value,
}

/// How the receiver answers.
#[derive(Debug, Clone, Copy)]
enum Reply {
    Status(u16, &'static str),
    /// 500 to the first `n` requests, then 200.
    FailFirst(usize),
    /// Answers 200 after this long.
    Sleep(Duration),
}

type Log = Arc<Mutex<Vec<Received>>>;

struct Receiver {
    url: String,
    log: Log,
}

impl Receiver {
    async fn start(reply: Reply) -> Self {
        let log: Log = Arc::default();
        let app = Router::new()
            .route("/hooks", post(receive))
            .with_state((Arc::clone(&log), reply));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}/hooks?token=receiver-token"),
            log,
        }
    }

    fn requests(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until `done` holds for the requests so far; returns them.
    async fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let requests = self.requests();
            if done(&requests) {
                return requests;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "receiver never saw {what}; got {:#?}",
                requests.iter().map(|r| &r.body).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(
    State((log, reply)): State<(Log, Reply)>,
    headers: HeaderMap,
    raw: Bytes,
) -> (StatusCode, &'static str) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let signature_ok = verify_signature(
        SECRET.as_bytes(),
        &header("onair-signature"),
        &raw,
        now,
        Duration::from_secs(300),
    );
    let received = Received {
        event: header("onair-event"),
        delivery: header("onair-delivery"),
        attempt: header("onair-attempt"),
        signature_ok,
        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
        raw,
    };
    let count = {
        let mut log = log.lock().unwrap();
        log.push(received);
        log.len()
    };
    match reply {
        Reply::Status(code, text) => (StatusCode::from_u16(code).unwrap(), text),
        Reply::FailFirst(n) if count <= n => (StatusCode::INTERNAL_SERVER_ERROR, "not now"),
        Reply::FailFirst(_) => (StatusCode::OK, "ok"),
        Reply::Sleep(pause) => {
            tokio::time::sleep(pause).await;
            (StatusCode::OK, "late")
        }
    }
}

/// Every request is signed, and its headers agree with its body.
fn assert_well_formed(requests: &[Received]) {
    for request in requests {
        assert!(request.signature_ok, "bad signature on {:?}", request.body);
        assert_eq!(request.body["event"], request.event.as_str());
        assert_eq!(request.body["id"], request.delivery.as_str());
        assert!(request.body["time"].as_u64().unwrap() > 1_600_000_000_000);
        assert!(!request.attempt.is_empty());
    }
}

/// An address nothing listens on.
async fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/hooks")
}

// ---------------------------------------------------------------- the server

/// A test server with fast webhook retries; the stream helpers take `live/{name}`.
struct Node(TestServer);

impl std::ops::Deref for Node {
    type Target = TestServer;

    fn deref(&self) -> &TestServer {
        &self.0
    }
}

async fn start(tweak: impl FnOnce(&mut Settings)) -> Node {
    Node(
        common::start_server(|settings| {
            settings.webhooks.secret = Some(SECRET.to_owned());
            settings.webhooks.backoff_initial_ms = 10;
            settings.webhooks.backoff_max_ms = 40;
            tweak(settings);
        })
        .await,
    )
}

impl Node {
    fn rtmp_url(&self, name: &str) -> RtmpUrl {
        RtmpUrl::parse(&self.0.rtmp_url(&format!("live/{name}"))).unwrap()
    }

    /// Publishes the fixture as `live/{name}` (the name may carry a query) until aborted.
    async fn publish(&self, name: &str) -> JoinHandle<()> {
        common::spawn_publisher(&self.0, &format!("live/{name}")).await
    }

    async fn wait_live(&self, path: &str) {
        self.0.wait_live(path, WAIT).await;
    }

    async fn rtmp_viewer(&self, name: &str) -> RtmpClient {
        let url = self.rtmp_url(name);
        let mut client = RtmpClient::connect(&url).await.unwrap();
        client.play(&url.name).await.unwrap();
        client
    }

    async fn stop(self) {
        self.0.stop().await;
    }
}

/// Reads `count` media messages as a player.
async fn watch(viewer: &mut RtmpClient, count: usize) {
    let mut seen = 0;
    while seen < count {
        let event = timeout(WAIT, viewer.next_event()).await.unwrap().unwrap();
        viewer.flush().await.unwrap();
        if matches!(event, ClientEvent::Media { .. }) {
            seen += 1;
        }
    }
}

async fn wait_counts(
    webhooks: &Webhooks,
    what: &str,
    done: impl Fn(&onair_server::webhooks::WebhookCounts) -> bool,
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let counts = webhooks.counts();
        if done(&counts) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "counters never showed {what}: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn events(requests: &[Received]) -> Vec<&str> {
    requests.iter().map(|r| r.event.as_str()).collect()
}

// ---------------------------------------------------------------- notifications

#[tokio::test]
async fn publish_and_two_viewers_are_notified_in_order() {
    let receiver = Receiver::start(Reply::Status(204, "")).await;
    let node = start(|s| s.webhooks.url = Some(receiver.url.clone())).await;
    let publisher = node.publish("hooks?key=stream-key-123&uid=7").await;
    node.wait_live("live/hooks").await;
    receiver
        .wait_for("on_publish", |r| events(r) == ["on_publish"])
        .await;

    let mut rtmp = node.rtmp_viewer("hooks?sig=play-sig-456&seat=3").await;
    watch(&mut rtmp, 5).await;
    receiver.wait_for("the RTMP play", |r| r.len() == 2).await;
    let mut flv = reqwest::get(format!("http://{}/live/hooks.flv", node.http))
        .await
        .unwrap();
    assert_eq!(flv.status(), 200);
    assert!(!flv.chunk().await.unwrap().unwrap().is_empty());
    receiver.wait_for("the FLV play", |r| r.len() == 3).await;

    // The RTMP viewer leaves, then the publisher: the FLV viewer's play ends with it.
    rtmp.close().await.unwrap();
    receiver
        .wait_for("the RTMP play's end", |r| r.len() == 4)
        .await;
    publisher.abort();
    let requests = receiver
        .wait_for("every notification", |r| r.len() == 6)
        .await;
    wait_counts(&node.webhooks, "six deliveries", |c| c.delivered == 6).await;
    drop(flv);

    assert_well_formed(&requests);
    assert_eq!(
        events(&requests),
        [
            "on_publish",
            "on_play",
            "on_play",
            "on_play_stop",
            "on_unpublish",
            "on_play_stop"
        ]
    );
    let bodies: Vec<&Value> = requests.iter().map(|r| &r.body).collect();
    for body in &bodies {
        assert_eq!(body["stream"], "live/hooks");
        assert_eq!(body["app"], "live");
        assert_eq!(body["name"], "hooks");
        assert_eq!(body["client"]["ip"], "127.0.0.1");
        assert!(requests.iter().all(|r| r.attempt == "1"));
    }
    let mut ids: Vec<_> = requests.iter().map(|r| r.delivery.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "every notification has its own id");

    let [publish, rtmp_play, flv_play, rtmp_stop, unpublish, flv_stop] = bodies[..] else {
        unreachable!()
    };
    // The publish's query travels without its key; the play's without its signature.
    assert_eq!(publish["params"], json!({"uid": "7"}));
    assert_eq!(rtmp_play["params"], json!({"seat": "3"}));
    for request in &requests {
        let text = String::from_utf8_lossy(&request.raw);
        assert!(!text.contains("stream-key-123") && !text.contains("play-sig-456"));
    }
    assert_eq!(publish["protocol"], "rtmp");
    assert_eq!(unpublish["client"]["conn_id"], publish["client"]["conn_id"]);
    assert!(unpublish["bytes_in"].as_u64().unwrap() > 0);
    assert!(unpublish["frames_in"].as_u64().unwrap() > 0);
    assert!(unpublish["duration_ms"].is_u64());

    assert_eq!(rtmp_play["protocol"], "rtmp");
    assert_eq!(rtmp_stop["protocol"], "rtmp");
    assert_eq!(
        rtmp_stop["client"]["conn_id"],
        rtmp_play["client"]["conn_id"]
    );
    assert_eq!(flv_play["protocol"], "http-flv");
    assert_eq!(flv_stop["protocol"], "http-flv");
    assert_eq!(flv_stop["client"]["conn_id"], flv_play["client"]["conn_id"]);
    assert_ne!(
        flv_play["client"]["conn_id"],
        rtmp_play["client"]["conn_id"]
    );
    assert!(rtmp_stop["duration_ms"].is_u64() && flv_stop["duration_ms"].is_u64());

    let counts = node.webhooks.counts();
    assert_eq!((counts.failed, counts.dropped, counts.retries), (0, 0, 0));
    node.stop().await;
}

/// Webhooks on their own, sending to `url` with quick retries, with the sender running.
fn webhooks_for(url: &str, tweak: impl FnOnce(&mut WebhookSettings)) -> Webhooks {
    let mut settings = WebhookSettings {
        url: Some(url.to_owned()),
        backoff_initial_ms: 10,
        backoff_max_ms: 40,
        ..WebhookSettings::default()
    };
    tweak(&mut settings);
    Webhooks::new(settings, SECRET.as_bytes().to_vec()).unwrap()
}

fn record_done(file: &str) -> WebhookEvent {
    WebhookEvent::new(
        StreamPath::parse("live/rec").unwrap(),
        None,
        EventDetail::RecordDone {
            id: format!("live.rec.{file}"),
            path: format!("/data/recordings/{file}"),
            file: file.to_owned(),
            duration: Duration::from_secs(60),
            bytes: 1_000,
            started: SystemTime::now() - Duration::from_secs(60),
            ended: SystemTime::now(),
        },
    )
}

#[tokio::test]
async fn a_failing_receiver_gets_the_same_delivery_until_it_accepts_and_order_holds() {
    let receiver = Receiver::start(Reply::FailFirst(2)).await;
    let webhooks = webhooks_for(&receiver.url, |_| {});
    let shutdown = CancellationToken::new();
    let sender = tokio::spawn(
        webhooks
            .clone()
            .run(shutdown.clone(), Duration::from_secs(1)),
    );
    let first = record_done("a.flv");
    let second = record_done("b.flv");
    let (first_id, second_id) = (first.id.clone(), second.id.clone());
    webhooks.notify(first);
    webhooks.notify(second);

    let requests = receiver.wait_for("four requests", |r| r.len() == 4).await;
    wait_counts(&webhooks, "two deliveries", |c| c.delivered == 2).await;
    assert_well_formed(&requests);
    let seen: Vec<_> = requests
        .iter()
        .map(|r| (r.delivery.as_str(), r.attempt.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (first_id.as_str(), "1"),
            (first_id.as_str(), "2"),
            (first_id.as_str(), "3"),
            (second_id.as_str(), "1"),
        ],
        "the first is retried until accepted before the second is sent"
    );
    assert!(requests[..3].iter().all(|r| r.raw == requests[0].raw));
    assert_eq!(requests[3].body["file"], "b.flv");
    let counts = webhooks.counts();
    assert_eq!(
        (
            counts.delivered,
            counts.retries,
            counts.failed,
            counts.dropped
        ),
        (2, 2, 0, 0)
    );
    shutdown.cancel();
    timeout(WAIT, sender).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_dead_receiver_is_given_up_on_without_holding_up_media() {
    let url = closed_port_url().await;
    let node = start(|s| {
        s.webhooks.url = Some(url);
        s.webhooks.max_attempts = 3;
    })
    .await;
    let publisher = node.publish("dead").await;
    node.wait_live("live/dead").await;
    let mut viewer = node.rtmp_viewer("dead").await;
    watch(&mut viewer, 20).await;
    // on_publish and on_play, three tries each.
    wait_counts(&node.webhooks, "two failures", |c| c.failed == 2).await;
    let counts = node.webhooks.counts();
    assert_eq!(
        (counts.delivered, counts.retries, counts.dropped),
        (0, 4, 0)
    );
    // The viewer keeps playing.
    watch(&mut viewer, 100).await;
    publisher.abort();
    node.stop().await;
}

#[tokio::test]
async fn a_full_queue_drops_and_counts() {
    let webhooks = webhooks_for("http://127.0.0.1:9/hooks", |s| s.queue_capacity = 4);
    // No sender runs: nothing leaves the queue.
    for i in 0..10 {
        webhooks.notify(record_done(&format!("{i}.flv")));
    }
    let counts = webhooks.counts();
    assert_eq!(counts.dropped, 6);
    assert_eq!(counts.delivered + counts.failed, 0);
}

#[tokio::test]
async fn only_the_listed_room_event_types_are_sent() {
    let receiver = Receiver::start(Reply::Status(200, "")).await;
    let node = start(|s| {
        s.webhooks.url = Some(receiver.url.clone());
        s.webhooks.room_event_types = vec!["chat".to_owned()];
    })
    .await;
    let token = onair_server::auth::TokenKeys::new(common::TOKEN_SECRET.as_bytes())
        .mint(&User::new("ann", "Ann", Role::Viewer), 3600);
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/live/room?token={token}", node.http))
            .await
            .unwrap();
    let send = |value: Value| Message::Text(value.to_string().into());
    ws.send(send(json!({"type": "chat", "text": "first"})))
        .await
        .unwrap();
    ws.send(send(json!({"type": "like"}))).await.unwrap();
    // The like is broadcast (aggregated) before the second chat is sent.
    loop {
        let message = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
        if let Message::Text(text) = message {
            let event: Value = serde_json::from_str(text.as_str()).unwrap();
            if event["type"] == "like" {
                break;
            }
        }
    }
    ws.send(send(json!({"type": "chat", "text": "second"})))
        .await
        .unwrap();

    let requests = receiver
        .wait_for("the second chat", |r| {
            r.iter().any(|r| r.body["data"]["text"] == "second")
        })
        .await;
    assert_well_formed(&requests);
    let texts: Vec<_> = requests
        .iter()
        .map(|r| {
            assert_eq!(r.event, "on_room_event");
            assert_eq!(r.body["room"], "live/room");
            assert_eq!(r.body["data"]["type"], "chat", "only chat: {:?}", r.body);
            assert_eq!(r.body["data"]["user"]["id"], "ann");
            r.body["data"]["text"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(texts, ["first", "second"]);
    node.stop().await;
}

// ---------------------------------------------------------------- the publish decision

fn request() -> PublishRequest {
    PublishRequest {
        path: StreamPath::parse("live/gate").unwrap(),
        client: ClientInfo::new(
            42,
            Some("127.0.0.1:40000".parse().unwrap()),
            "key=the-key&uid=9",
        ),
    }
}

fn decider(fail_open: bool) -> Webhooks {
    Webhooks::new(
        WebhookSettings {
            publish_timeout_ms: 300,
            publish_fail_open: fail_open,
            ..WebhookSettings::default()
        },
        SECRET.as_bytes().to_vec(),
    )
    .unwrap()
}

#[tokio::test]
async fn decision_2xx_allows_and_carries_the_key() {
    let receiver = Receiver::start(Reply::Status(204, "")).await;
    assert_eq!(
        decider(false).decide(&receiver.url, &request()).await,
        Ok(())
    );
    let requests = receiver.requests();
    assert_well_formed(&requests);
    assert_eq!(requests.len(), 1);
    let body = &requests[0].body;
    assert_eq!(requests[0].event, "on_publish_request");
    assert_eq!(requests[0].attempt, "1");
    assert_eq!(body["stream"], "live/gate");
    assert_eq!(body["app"], "live");
    assert_eq!(body["name"], "gate");
    assert_eq!(body["params"], json!({"key": "the-key", "uid": "9"}));
    assert_eq!(body["client"], json!({"conn_id": 42, "ip": "127.0.0.1"}));
}

#[tokio::test]
async fn decision_refusal_carries_the_status_and_body() {
    let receiver = Receiver::start(Reply::Status(403, "banned")).await;
    assert_eq!(
        decider(false).decide(&receiver.url, &request()).await,
        Err(Refusal::Denied {
            status: 403,
            reason: "banned".to_owned()
        })
    );
    // Fail-open is about failures to decide, not refusals.
    assert!(matches!(
        decider(true).decide(&receiver.url, &request()).await,
        Err(Refusal::Denied { status: 403, .. })
    ));
}

#[tokio::test]
async fn decision_timeout_and_unreachable_refuse_unless_fail_open() {
    let slow = Receiver::start(Reply::Sleep(Duration::from_secs(10))).await;
    let dead = closed_port_url().await;
    assert!(matches!(
        decider(false).decide(&slow.url, &request()).await,
        Err(Refusal::Timeout(_))
    ));
    assert!(matches!(
        decider(false).decide(&dead, &request()).await,
        Err(Refusal::Unreachable(_))
    ));
    assert_eq!(decider(true).decide(&slow.url, &request()).await, Ok(()));
    assert_eq!(decider(true).decide(&dead, &request()).await, Ok(()));
    // The slow receiver did get (signed) requests; it just answered too late.
    assert_well_formed(&slow.requests());
    assert_eq!(slow.requests().len(), 2);
}
