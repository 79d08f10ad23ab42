#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Cluster mode against a real Redis (Debian's `redis-server` on a free loopback
//! port): a node enters itself among the nodes, reports Redis in `/readyz` and
//! `/metrics`, keeps serving while Redis is away and comes back with it, and leaves
//! the cluster when it stops.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{spawn_publisher, start_server, tool, TestServer, ADMIN_TOKEN};
use onair_server::client::{ClientError, RtmpClient, RtmpUrl};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(15);

/// A `redis-server` of its own, killed on drop.
struct Redis {
    child: tokio::process::Child,
    port: u16,
}

impl Redis {
    async fn start(port: u16) -> Redis {
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server starts");
        let redis = Redis { child, port };
        let deadline = tokio::time::Instant::now() + WAIT;
        while redis.connection().await.is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server never answered"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn connection(&self) -> Option<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(self.url()).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        let pong: String = redis::cmd("PING").query_async(&mut conn).await.ok()?;
        (pong == "PONG").then_some(conn)
    }

    async fn stop(mut self) {
        self.child.kill().await.unwrap();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn node(redis_url: String, node_id: &'static str) -> TestServer {
    start_server(move |s| {
        s.cluster.redis_url = Some(redis_url);
        s.cluster.node_id = node_id.to_owned();
        s.cluster.heartbeat_interval_ms = 200;
        s.cluster.node_ttl_ms = 1_000;
        s.cluster.redis_timeout_ms = 500;
    })
    .await
}

/// A Redis and two nodes sharing it, both ready.
async fn two_nodes(a: &'static str, b: &'static str) -> (Redis, TestServer, TestServer) {
    let redis = Redis::start(free_port()).await;
    let a = node(redis.url(), a).await;
    let b = node(redis.url(), b).await;
    wait_readiness(&a, true).await;
    wait_readiness(&b, true).await;
    (redis, a, b)
}

/// `/readyz`'s status code and its `redis` check.
async fn readiness(server: &TestServer) -> (u16, String) {
    let response = reqwest::get(server.http_url("/readyz")).await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    let redis = body["checks"]["redis"]
        .as_str()
        .unwrap_or("absent")
        .to_owned();
    (status, redis)
}

async fn wait_readiness(server: &TestServer, ready: bool) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, redis) = readiness(server).await;
        if (status == 200) == ready {
            return redis;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "readyz stayed {status} ({redis})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn entry(redis: &Redis, node_id: &str) -> Option<(Value, i64)> {
    let mut conn = redis.connection().await.unwrap();
    let key = format!("onair:{{node:{node_id}}}");
    let json: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    json.map(|j| (serde_json::from_str(&j).unwrap(), ttl))
}

async fn indexed(redis: &Redis, node_id: &str) -> bool {
    let mut conn = redis.connection().await.unwrap();
    let score: Option<f64> = redis::cmd("ZSCORE")
        .arg("onair:nodes")
        .arg(node_id)
        .query_async(&mut conn)
        .await
        .unwrap();
    score.is_some()
}

#[tokio::test]
async fn a_node_enters_itself_among_the_nodes_and_leaves_when_it_stops() {
    if !tool("redis-server") {
        return;
    }
    let redis = Redis::start(free_port()).await;
    let server = node(redis.url(), "node-a").await;
    assert_eq!(wait_readiness(&server, true).await, "ok");
    let (node, ttl) = entry(&redis, "node-a").await.expect("the node's entry");
    assert_eq!(node["id"], "node-a");
    assert_eq!(node["url"], format!("http://{}", server.http));
    assert!(node["started_at"].as_u64().unwrap() > 0, "{node}");
    assert!((1..=1_000).contains(&ttl), "PTTL {ttl}");
    assert!(indexed(&redis, "node-a").await);
    assert_eq!(server.metric("onair_cluster_redis_up").await, 1.0);
    assert!(server.metric("onair_cluster_redis_round_trips_total").await >= 1.0);

    server.stop().await;
    assert!(
        entry(&redis, "node-a").await.is_none(),
        "the entry is removed"
    );
    assert!(!indexed(&redis, "node-a").await);
    redis.stop().await;
}

#[tokio::test]
async fn a_node_serves_without_redis_says_so_and_recovers_when_it_returns() {
    if !tool("redis-server") {
        return;
    }
    let port = free_port();
    // Redis is not there yet when the node starts: it starts anyway, not ready.
    let server = node(format!("redis://127.0.0.1:{port}"), "node-b").await;
    let down = wait_readiness(&server, false).await;
    assert!(down.starts_with("failed"), "{down}");
    let health = reqwest::get(server.http_url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200, "the node itself is alive");

    let redis = Redis::start(port).await;
    assert_eq!(wait_readiness(&server, true).await, "ok");
    assert!(entry(&redis, "node-b").await.is_some());

    // Redis goes away under a running node, and comes back with its data lost.
    redis.stop().await;
    let down = wait_readiness(&server, false).await;
    assert!(down.starts_with("failed"), "{down}");
    assert_eq!(server.metric("onair_cluster_redis_up").await, 0.0);
    assert!(server.metric("onair_cluster_redis_failures_total").await >= 1.0);
    let redis = Redis::start(port).await;
    assert_eq!(wait_readiness(&server, true).await, "ok");
    assert!(entry(&redis, "node-b").await.is_some(), "entered again");
    server.stop().await;
    redis.stop().await;
}

/// `GET /api/v1/cluster`: status and body.
async fn cluster_view(server: &TestServer) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(server.http_url("/api/v1/cluster"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn ids(view: &Value) -> Vec<String> {
    let nodes = view["nodes"].as_array().unwrap();
    nodes
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_cluster_view_lists_the_nodes_alive() {
    if !tool("redis-server") {
        return;
    }
    let (redis, a, b) = two_nodes("node-c", "node-d").await;
    let (status, view) = cluster_view(&b).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        (view["enabled"].as_bool(), view["node"].as_str()),
        (Some(true), Some("node-d"))
    );
    assert_eq!(ids(&view), ["node-c", "node-d"]);
    let c = &view["nodes"][0];
    assert_eq!(c["url"], format!("http://{}", a.http));
    assert!(
        c["expires_at"].as_u64().unwrap() > c["started_at"].as_u64().unwrap(),
        "{c}"
    );

    // Each node's load is renewed with its entry: a stream published on A shows there.
    let publisher = spawn_publisher(&a, "live/load").await;
    a.wait_live("live/load", WAIT).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let view = cluster_view(&b).await.1;
        let load = &view["nodes"][0]["load"];
        if load["streams"] == 1 {
            assert!(load["connections"].as_u64().unwrap() >= 1, "{load}");
            assert_eq!(
                view["nodes"][0]["streams"],
                serde_json::json!(["live/load"])
            );
            assert_eq!(view["nodes"][1]["load"]["streams"], 0, "{view}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    publisher.abort();

    b.stop().await;
    assert_eq!(
        ids(&cluster_view(&a).await.1),
        ["node-c"],
        "a node that stops leaves"
    );
    redis.stop().await;
    let (status, body) = cluster_view(&a).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("redis_unavailable"))
    );
    a.stop().await;
}

#[tokio::test]
async fn a_node_without_redis_checks_none() {
    let server = start_server(|_| {}).await;
    let (status, redis) = readiness(&server).await;
    assert_eq!((status, redis.as_str()), (200, "absent"));
    let (status, view) = cluster_view(&server).await;
    assert_eq!(status, 200);
    assert_eq!(
        view,
        serde_json::json!({"enabled": false, "node": null, "nodes": []})
    );
    server.stop().await;
}

/// Publishes `path` on `server` with the repo's RTMP client: `Err` with the refusal.
async fn try_publish(server: &TestServer, path: &str) -> Result<RtmpClient, (String, String)> {
    let url = RtmpUrl::parse(&server.rtmp_url(path)).unwrap();
    let mut client = RtmpClient::connect(&url).await.unwrap();
    match client.publish(&url.name).await {
        Ok(()) => Ok(client),
        Err(ClientError::Refused { code, description }) => Err((code, description)),
        Err(other) => panic!("publishing {path}: {other}"),
    }
}

async fn owner(redis: &Redis, path: &str) -> Option<String> {
    let mut conn = redis.connection().await.unwrap();
    redis::cmd("GET")
        .arg(format!("onair:{{stream:{path}}}:owner"))
        .query_async(&mut conn)
        .await
        .unwrap()
}

async fn wait_owner(redis: &Redis, path: &str, expected: Option<&str>) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let found = owner(redis, path).await;
        if found.as_deref() == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} owned by {found:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_path_published_on_one_node_is_refused_on_another_while_it_lives() {
    if !tool("redis-server") {
        return;
    }
    let (redis, a, b) = two_nodes("node-e", "node-f").await;

    let publisher = spawn_publisher(&a, "live/one").await;
    a.wait_live("live/one", WAIT).await;
    assert_eq!(owner(&redis, "live/one").await.as_deref(), Some("node-e"));
    let (code, description) = try_publish(&b, "live/one").await.err().expect("refused");
    assert_eq!(code, "NetStream.Publish.BadName");
    assert!(description.contains("node-e"), "{description}");
    // The lease is renewed while the stream lives, past its first term.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(owner(&redis, "live/one").await.as_deref(), Some("node-e"));

    // The stream ends on A: A gives the path up, and B may publish it.
    publisher.abort();
    wait_owner(&redis, "live/one", None).await;
    let _on_b = try_publish(&b, "live/one").await.expect("B publishes");
    wait_owner(&redis, "live/one", Some("node-f")).await;

    // A node that died holds its paths until their leases run out.
    let mut conn = redis.connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("onair:{stream:live/two}:owner")
        .arg("node-dead")
        .arg("PX")
        .arg(800)
        .query_async(&mut conn)
        .await
        .unwrap();
    let (_, description) = try_publish(&a, "live/two").await.err().expect("refused");
    assert!(description.contains("node-dead"), "{description}");
    wait_owner(&redis, "live/two", None).await;
    let _on_a = try_publish(&a, "live/two")
        .await
        .expect("A publishes once the lease ran out");
    wait_owner(&redis, "live/two", Some("node-e")).await;

    // Two publishers of one path (another node took it while Redis was away): the
    // renewal finds it and counts it.
    let _: () = redis::cmd("SET")
        .arg("onair:{stream:live/two}:owner")
        .arg("node-x")
        .query_async(&mut conn)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while a.metric("onair_cluster_stream_conflicts_total").await < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no conflict counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(owner(&redis, "live/two").await.as_deref(), Some("node-x"));

    a.stop().await;
    b.stop().await;
    redis.stop().await;
}
