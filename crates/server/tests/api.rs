//! The REST API with real HTTP clients: admin auth, live stream figures, kicking a
//! publisher, the OpenAPI document, CORS, body limits and the request rate limit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{spawn_publisher, start_server, ADMIN_TOKEN};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

fn admin(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request.bearer_auth(ADMIN_TOKEN)
}

async fn json(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

#[tokio::test]
async fn every_private_endpoint_wants_the_admin_token() {
    let server = start_server(|_| {}).await;
    let client = reqwest::Client::new();
    for (method, path) in [
        (reqwest::Method::GET, "/api/v1/server"),
        (reqwest::Method::GET, "/api/v1/streams"),
        (reqwest::Method::GET, "/api/v1/streams/live/x"),
        (reqwest::Method::DELETE, "/api/v1/streams/live/x"),
        (reqwest::Method::GET, "/api/v1/rooms/live/x"),
    ] {
        let url = server.http_url(path);
        let none = client.request(method.clone(), &url).send().await.unwrap();
        assert_eq!(none.status(), 401, "{method} {path} without a token");
        assert_eq!(json(none).await["error"]["code"], "unauthorized");
        let wrong = client
            .request(method.clone(), &url)
            .bearer_auth("not-the-token")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 403, "{method} {path} with a wrong token");
        assert_eq!(json(wrong).await["error"]["code"], "forbidden");
    }
    // The API description itself is public.
    let doc = client
        .get(server.http_url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(doc.status(), 200);
    let doc = json(doc).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/api/v1/streams/{app}/{name}"]["delete"].is_object());
    assert!(doc["components"]["securitySchemes"]["admin_token"].is_object());
    server.stop().await;
}

#[tokio::test]
async fn streams_show_codecs_rates_and_viewers_per_protocol() {
    let server = start_server(|_| {}).await;
    let publisher = spawn_publisher(&server, "live/stats").await;
    server.wait_live("live/stats", WAIT).await;
    let flv = reqwest::get(server.flv_url("live/stats")).await.unwrap();
    let mut flv = flv.bytes_stream();
    // Keep reading the viewer in the background so it counts bytes out.
    let reader = tokio::spawn(async move { while let Some(Ok(_)) = flv.next().await {} });
    // Rates are measured over whole two-second windows.
    tokio::time::sleep(Duration::from_millis(4500)).await;

    let client = reqwest::Client::new();
    let list = json(
        admin(client.get(server.http_url("/api/v1/streams")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let streams = list["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1);
    let stream = &streams[0];
    assert_eq!(stream["stream"], "live/stats");
    assert_eq!(stream["app"], "live");
    assert_eq!(stream["name"], "stats");
    assert_eq!(stream["video"]["codec"], "h264");
    assert_eq!(stream["video"]["width"], 640);
    assert_eq!(stream["video"]["height"], 360);
    let fps = stream["video"]["fps"].as_f64().unwrap();
    assert!((20.0..40.0).contains(&fps), "measured fps {fps}");
    assert_eq!(stream["audio"]["codec"], "aac");
    assert!(stream["bitrate_in_kbps"].as_f64().unwrap() > 10.0);
    assert!(stream["bitrate_out_kbps"].as_f64().unwrap() > 10.0);
    assert!(stream["bytes_out"].as_u64().unwrap() > 0);
    assert_eq!(stream["viewers"]["total"], 1);
    assert_eq!(stream["viewers"]["http_flv"], 1);
    assert_eq!(stream["viewers"]["rtmp"], 0);
    assert!(stream["uptime_seconds"].as_u64().unwrap() >= 4);
    assert_eq!(stream["frames_dropped"], 0);

    let one = admin(client.get(server.http_url("/api/v1/streams/live/stats")))
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    assert_eq!(json(one).await["stream"], "live/stats");
    let missing = admin(client.get(server.http_url("/api/v1/streams/live/none")))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(json(missing).await["error"]["code"], "not_found");
    let invalid = admin(client.get(server.http_url("/api/v1/streams/live/bad%20name")))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 400);
    assert_eq!(json(invalid).await["error"]["code"], "invalid_stream");
    reader.abort();
    publisher.abort();
    server.stop().await;
}

#[tokio::test]
async fn deleting_a_stream_disconnects_its_publisher_and_ends_its_viewers() {
    let server = start_server(|_| {}).await;
    let publisher = spawn_publisher(&server, "live/kick").await;
    server.wait_live("live/kick", WAIT).await;
    let mut viewer = reqwest::get(server.flv_url("live/kick"))
        .await
        .unwrap()
        .bytes_stream();
    timeout(WAIT, viewer.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    let client = reqwest::Client::new();
    let kicked = admin(client.delete(server.http_url("/api/v1/streams/live/kick")))
        .send()
        .await
        .unwrap();
    assert_eq!(kicked.status(), 204);
    // The publisher's task ends because the server closed its connection.
    timeout(WAIT, publisher)
        .await
        .expect("publisher disconnected")
        .ok();
    // The viewer's body ends.
    timeout(WAIT, async {
        while let Some(Ok(_)) = viewer.next().await {}
    })
    .await
    .expect("viewer ended");
    let path = onair_media::StreamPath::parse("live/kick").unwrap();
    timeout(WAIT, async {
        while server.hub.stream(&path).is_some() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("stream gone");
    let again = admin(client.delete(server.http_url("/api/v1/streams/live/kick")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    server.stop().await;
}

#[tokio::test]
async fn cors_grants_only_configured_origins() {
    let server =
        start_server(|s| s.auth.allowed_origins = vec!["https://app.example".into()]).await;
    let client = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, server.http_url("/api/v1/streams"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "authorization")
            .send()
    };
    let allowed = preflight("https://app.example").await.unwrap();
    assert!(allowed.status().is_success());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let allow_headers = allowed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allow_headers.contains("authorization"));
    let foreign = preflight("https://evil.example").await.unwrap();
    assert!(foreign
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    // A simple request from a foreign origin is answered but gets no grant to read it.
    let read = admin(client.get(server.http_url("/api/v1/streams")))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(read.headers().get("access-control-allow-origin").is_none());
    server.stop().await;

    // Nothing configured: same origin only, no grant for anyone.
    let server = start_server(|_| {}).await;
    let response = client
        .get(server.http_url("/healthz"))
        .header("Origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    server.stop().await;
}

#[tokio::test]
async fn oversized_and_malformed_bodies_get_json_errors() {
    let server = start_server(|s| s.http.max_body_bytes = 4096).await;
    let client = reqwest::Client::new();
    let url = server.http_url("/api/v1/rooms/live/body/messages");
    let big = format!(r#"{{"text":"{}"}}"#, "x".repeat(10_000));
    let response = admin(client.post(&url))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(json(response).await["error"]["code"], "body_too_large");
    let response = admin(client.post(&url))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(json(response).await["error"]["code"], "invalid_json");
    let response = admin(client.post(&url))
        .body(r#"{"text":"hi"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert_eq!(
        json(response).await["error"]["code"],
        "unsupported_media_type"
    );
    server.stop().await;
}

#[tokio::test]
async fn too_many_requests_from_one_address_get_429_with_retry_after() {
    let server = start_server(|s| {
        s.limits.requests_per_second_per_ip = 0.5;
        s.limits.request_burst_per_ip = 3;
    })
    .await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let ok = client
            .get(server.http_url("/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
    }
    let limited = client
        .get(server.http_url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    assert_eq!(json(limited).await["error"]["code"], "rate_limited");
    // A media request on a fresh connection is limited the same way.
    let flv = reqwest::get(server.flv_url("live/any")).await.unwrap();
    assert_eq!(flv.status(), 429);
    assert!(flv.headers().contains_key("retry-after"));
    server.stop().await;
}
