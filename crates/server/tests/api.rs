//! The REST API with real HTTP clients: admin auth, live stream figures, kicking a
//! publisher, the OpenAPI document, CORS, body limits and the request rate limit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{spawn_publisher, start_server, ADMIN_TOKEN};
use futures_util::StreamExt;
use serde_json::{json, Value};
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
        (reqwest::Method::PATCH, "/api/v1/streams/live/x"),
        (reqwest::Method::POST, "/api/v1/tokens"),
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

/// Sends `body` as JSON text (or without a content type when `content_type` is None).
async fn send_raw(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    content_type: Option<&str>,
    body: &str,
) -> reqwest::Response {
    let mut request = admin(client.request(method, url)).body(body.to_owned());
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    request.send().await.unwrap()
}

async fn assert_error(response: reqwest::Response, status: u16, code: &str, what: &str) {
    assert_eq!(response.status(), status, "{what}");
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "{what}"
    );
    let body = json(response).await;
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    assert!(body["error"]["message"].is_string(), "{what}: {body}");
}

#[tokio::test]
async fn every_body_endpoint_refuses_bad_bodies_the_same_way() {
    let server = start_server(|s| s.http.max_body_bytes = 4096).await;
    let client = reqwest::Client::new();
    let post = reqwest::Method::POST;
    let put = reqwest::Method::PUT;
    let endpoints = [
        (post.clone(), "/api/v1/keys", r#"{"stream":"live/x"}"#),
        (
            post.clone(),
            "/api/v1/rooms/live/x/messages",
            r#"{"text":"hi"}"#,
        ),
        (
            post.clone(),
            "/api/v1/rooms/live/x/mutes",
            r#"{"user_id":"u"}"#,
        ),
        (
            post.clone(),
            "/api/v1/rooms/live/x/bans",
            r#"{"user_id":"u"}"#,
        ),
        (
            put.clone(),
            "/api/v1/rooms/live/x/slow-mode",
            r#"{"seconds":1}"#,
        ),
    ];
    let json_type = Some("application/json");
    for (method, path, good) in endpoints {
        let url = server.http_url(path);
        let what = |case: &str| format!("{method} {path}: {case}");
        let syntax = send_raw(&client, method.clone(), &url, json_type, "{not json").await;
        assert_error(syntax, 400, "invalid_json", &what("malformed")).await;
        let unknown = format!("{}, \"extra\": 1}}", good.trim_end_matches('}'));
        let unknown = send_raw(&client, method.clone(), &url, json_type, &unknown).await;
        assert_error(unknown, 400, "invalid_body", &what("unknown field")).await;
        let missing = send_raw(&client, method.clone(), &url, json_type, "{}").await;
        assert_error(missing, 400, "invalid_body", &what("missing field")).await;
        // serde would read an array as the fields in order; the schema says object.
        let fields: Value = serde_json::from_str(good).unwrap();
        let values: Vec<&Value> = fields.as_object().unwrap().values().collect();
        let array = serde_json::to_string(&values).unwrap();
        let array = send_raw(&client, method.clone(), &url, json_type, &array).await;
        assert_error(array, 400, "invalid_body", &what("an array")).await;
        let scalar = send_raw(&client, method.clone(), &url, json_type, "7").await;
        assert_error(scalar, 400, "invalid_body", &what("a number")).await;
        let untyped = send_raw(&client, method.clone(), &url, None, good).await;
        assert_error(untyped, 415, "unsupported_media_type", &what("no type")).await;
        let text = send_raw(&client, method.clone(), &url, Some("text/plain"), good).await;
        assert_error(text, 415, "unsupported_media_type", &what("text/plain")).await;
        let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(8192));
        let big = send_raw(&client, method.clone(), &url, json_type, &big).await;
        assert_error(big, 413, "body_too_large", &what("too large")).await;
        // White space around the object is fine.
        let good = format!(" \n{good}\n");
        let ok = send_raw(&client, method.clone(), &url, json_type, &good).await;
        assert!(
            ok.status().is_success(),
            "{}: {}",
            what("good"),
            ok.status()
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn keys_and_rooms_refuse_bad_fields_paths_and_queries_with_400() {
    let server = start_server(|_| {}).await;
    server.set_title("live/x", "x").await;
    let client = reqwest::Client::new();
    let json_type = Some("application/json");
    let post = |path: &'static str, body: &'static str| {
        let url = server.http_url(path);
        let client = client.clone();
        async move { send_raw(&client, reqwest::Method::POST, &url, json_type, body).await }
    };
    // Wrong types are data errors, never 422.
    for (path, body) in [
        ("/api/v1/keys", r#"{"stream": 5}"#),
        ("/api/v1/keys", r#"{"stream": "live/x", "label": 7}"#),
        ("/api/v1/rooms/live/x/messages", r#"{"text": null}"#),
        (
            "/api/v1/rooms/live/x/mutes",
            r#"{"user_id": "u", "seconds": -1}"#,
        ),
        (
            "/api/v1/rooms/live/x/mutes",
            r#"{"user_id": "u", "seconds": 1.5}"#,
        ),
        (
            "/api/v1/rooms/live/x/bans",
            r#"{"user_id": "u", "seconds": "60"}"#,
        ),
        (
            "/api/v1/rooms/live/x/bans",
            r#"{"user_id": "u", "seconds": 18446744073709551616}"#,
        ),
    ] {
        assert_error(post(path, body).await, 400, "invalid_body", body).await;
    }
    // A whole number written as a double is a whole number.
    let ok = post(
        "/api/v1/rooms/live/x/mutes",
        r#"{"user_id": "u", "seconds": 60.0}"#,
    )
    .await;
    assert_eq!(ok.status(), 204);

    // The room endpoints' own checks.
    for (body, code) in [
        (r#"{"text": " \t "}"#, "empty_text"),
        (r#"{"text": "a\u0007b"}"#, "control_character"),
    ] {
        let response = post("/api/v1/rooms/live/x/messages", body).await;
        assert_error(response, 400, code, body).await;
    }
    let long = format!(r#"{{"text": "{}"}}"#, "x".repeat(2001));
    let url = server.http_url("/api/v1/rooms/live/x/messages");
    let response = send_raw(&client, reqwest::Method::POST, &url, json_type, &long).await;
    assert_error(response, 400, "text_too_long", "2001 characters").await;
    let padded = format!(r#"{{"text": "  {}\n"}}"#, "é".repeat(2000));
    let response = send_raw(&client, reqwest::Method::POST, &url, json_type, &padded).await;
    assert_eq!(response.status(), 201, "2000 characters after trimming");
    let id_too_long = format!(r#"{{"user_id": "{}"}}"#, "é".repeat(257));
    let url = server.http_url("/api/v1/rooms/live/x/bans");
    let response = send_raw(
        &client,
        reqwest::Method::POST,
        &url,
        json_type,
        &id_too_long,
    )
    .await;
    assert_error(response, 400, "invalid_user_id", "257 characters").await;

    // Paths and queries.
    let get = |path: &'static str| admin(client.get(server.http_url(path))).send();
    let delete = |path: &'static str| admin(client.delete(server.http_url(path))).send();
    let cases = [
        (
            delete("/api/v1/rooms/live/x/messages/abc").await,
            400,
            "invalid_path",
        ),
        (
            delete("/api/v1/rooms/live/x/messages/-1").await,
            400,
            "invalid_path",
        ),
        (
            get("/api/v1/rooms/live/bad.name").await,
            400,
            "invalid_stream",
        ),
        (get("/api/v1/rooms/api/x").await, 404, "not_found"),
        (
            delete("/api/v1/rooms/live/x/messages/999").await,
            404,
            "message_not_found",
        ),
        (
            delete("/api/v1/rooms/live/x/mutes/nobody").await,
            404,
            "not_found",
        ),
        (
            get("/api/v1/keys?stream=live/x&extra=1").await,
            400,
            "invalid_query",
        ),
        (
            get("/api/v1/keys?stream=api/x").await,
            400,
            "invalid_stream",
        ),
        (
            delete("/api/v1/keys/k_0000000000000000").await,
            404,
            "not_found",
        ),
    ];
    for (index, (response, status, code)) in cases.into_iter().enumerate() {
        let response = response.unwrap();
        assert_error(response, status, code, &format!("case {index}")).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn the_openapi_document_describes_the_keys_and_rooms_endpoints() {
    let server = start_server(|s| s.rooms.system_max_chars = 300).await;
    let doc = json(
        reqwest::get(server.http_url("/api/v1/openapi.json"))
            .await
            .unwrap(),
    )
    .await;
    for (path, method, tag) in [
        ("/api/v1/keys", "post", "keys"),
        ("/api/v1/keys", "get", "keys"),
        ("/api/v1/keys/{id}", "delete", "keys"),
        ("/api/v1/rooms/{app}/{name}", "get", "rooms"),
        ("/api/v1/rooms/{app}/{name}/messages", "post", "rooms"),
        (
            "/api/v1/rooms/{app}/{name}/messages/{id}",
            "delete",
            "rooms",
        ),
        ("/api/v1/rooms/{app}/{name}/mutes", "post", "rooms"),
        (
            "/api/v1/rooms/{app}/{name}/mutes/{user_id}",
            "delete",
            "rooms",
        ),
        ("/api/v1/rooms/{app}/{name}/bans", "post", "rooms"),
        (
            "/api/v1/rooms/{app}/{name}/bans/{user_id}",
            "delete",
            "rooms",
        ),
        ("/api/v1/rooms/{app}/{name}/slow-mode", "put", "rooms"),
    ] {
        let operation = &doc["paths"][path][method];
        assert_eq!(operation["tags"][0], tag, "{method} {path}");
        assert_eq!(
            operation["security"][0]["admin_token"],
            serde_json::json!([])
        );
        assert!(operation["responses"]["401"].is_object(), "{method} {path}");
        assert!(operation["responses"]["403"].is_object(), "{method} {path}");
    }
    let created = &doc["paths"]["/api/v1/keys"]["post"]["responses"]["201"];
    assert_eq!(
        created["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/CreatedKey"
    );
    let required = &doc["components"]["schemas"]["CreatedKey"]["required"];
    for field in ["id", "stream", "key"] {
        assert!(
            required.as_array().unwrap().contains(&field.into()),
            "{field}"
        );
    }
    // The served limit follows the setting.
    let text = &doc["components"]["schemas"]["PostMessage"]["properties"]["text"];
    assert!(
        text["pattern"].as_str().unwrap().contains("{0,298}"),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn streams_have_titles_and_an_offline_card() {
    let server = start_server(|_| {}).await;
    let client = reqwest::Client::new();
    let patch = |body: Value| {
        admin(client.patch(server.http_url("/api/v1/streams/live/card")))
            .json(&body)
            .send()
    };
    let public = || async {
        let response = reqwest::get(server.http_url("/api/v1/live/live/card"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        json(response).await
    };
    // Never live, nothing saved: still an answer.
    let state = public().await;
    assert_eq!(state["live"], false, "{state}");
    assert_eq!(state["title"], Value::Null);
    assert_eq!(state["last_live_at"], Value::Null);

    let response = patch(json!({"title": "Card tricks", "description": "Line one\nline two"}))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let saved = json(response).await;
    assert_eq!(saved["stream"], "live/card");
    assert_eq!(saved["title"], "Card tricks");
    // A field left out stays; null clears.
    let saved = json(patch(json!({"description": null})).await.unwrap()).await;
    assert_eq!(saved["title"], "Card tricks", "{saved}");
    assert_eq!(saved["description"], Value::Null, "{saved}");
    for (body, code) in [
        (json!({"title": "x".repeat(141)}), "invalid_title"),
        (json!({"title": "a\nb"}), "invalid_title"),
        (json!({"description": "a\u{7}b"}), "invalid_description"),
        (json!({"title": 5}), "invalid_body"),
        (json!({"name": "x"}), "invalid_body"),
    ] {
        let response = patch(body.clone()).await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(json(response).await["error"]["code"], code, "{body}");
    }

    // Live: the title is in every view of the stream.
    let publisher = spawn_publisher(&server, "live/card").await;
    server.wait_live("live/card", WAIT).await;
    // From the moment it is live, not once its title is cached.
    let list = json(reqwest::get(server.http_url("/api/v1/live")).await.unwrap()).await;
    assert_eq!(list["streams"][0]["title"], "Card tricks", "{list}");
    assert_eq!(list["streams"][0]["stream"], "live/card");
    let state = public().await;
    assert_eq!(state["live"], true, "{state}");
    assert_eq!(state["title"], "Card tricks");
    assert_eq!(state["video"]["codec"], "h264");
    let view = json(
        admin(client.get(server.http_url("/api/v1/streams/live/card")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(view["title"], "Card tricks", "{view}");
    // Changed while live: shown at once.
    patch(json!({"title": "More card tricks"})).await.unwrap();
    let list = json(reqwest::get(server.http_url("/api/v1/live")).await.unwrap()).await;
    assert_eq!(list["streams"][0]["title"], "More card tricks", "{list}");

    // Offline: the card has the last title and when the stream was last live.
    publisher.abort();
    let deadline = tokio::time::Instant::now() + WAIT;
    let state = loop {
        let state = public().await;
        if state["live"] == false {
            break state;
        }
        assert!(tokio::time::Instant::now() < deadline, "{state}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(state["title"], "More card tricks");
    assert_eq!(state["viewers"], 0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let last = public().await["last_live_at"].as_u64().unwrap_or(0);
        if last + 60 >= now {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "last_live_at {last}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn the_public_stream_view_follows_the_public_list_rules() {
    let server = start_server(|s| {
        s.playback.apps.insert(
            "paid".to_owned(),
            onair_server::config::AppPlayback { signed: true },
        );
    })
    .await;
    let response = reqwest::get(server.http_url("/api/v1/live/paid/x"))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = reqwest::get(server.http_url("/api/v1/live/live/bad.name"))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(json(response).await["error"]["code"], "invalid_stream");
    server.stop().await;
    let server = start_server(|s| s.pages.public_stream_list = false).await;
    let response = reqwest::get(server.http_url("/api/v1/live/live/x"))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    server.stop().await;
}

#[tokio::test]
async fn the_api_makes_chat_tokens_the_rooms_accept() {
    let server = start_server(|_| {}).await;
    let client = reqwest::Client::new();
    let create = |body: Value| {
        admin(client.post(server.http_url("/api/v1/tokens")))
            .json(&body)
            .send()
    };
    let response =
        create(json!({"user": "admin", "name": "Admin", "role": "moderator", "ttl": 60}))
            .await
            .unwrap();
    assert_eq!(response.status(), 201);
    let created = json(response).await;
    assert_eq!(created["user"], "admin");
    assert_eq!(created["role"], "moderator");
    assert!(created["expires_at"].as_u64().unwrap() > 1_600_000_000);
    let token = created["token"].as_str().unwrap();
    let (mut ws, _) =
        tokio_tungstenite::connect_async(server.ws_url(&format!("/ws/live/tokens?token={token}")))
            .await
            .unwrap();
    let welcome = loop {
        let message = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            break serde_json::from_str::<Value>(text.as_str()).unwrap();
        }
    };
    assert_eq!(welcome["user"]["role"], "moderator", "{welcome}");
    assert_eq!(welcome["user"]["name"], "Admin", "{welcome}");
    assert_eq!(
        welcome["viewers"], 0,
        "a moderator is not a viewer: {welcome}"
    );

    let viewer = json(create(json!({"user": "bob"})).await.unwrap()).await;
    assert_eq!(viewer["role"], "viewer");
    for (body, code) in [
        (json!({"user": ""}), "invalid_user"),
        (json!({"user": "a\u{1}"}), "invalid_user"),
        (json!({"user": "x".repeat(129)}), "invalid_user"),
        (json!({"user": "bob", "ttl": 0}), "invalid_ttl"),
        (json!({"user": "bob", "ttl": 2_592_001}), "invalid_ttl"),
        (json!({"user": "bob", "role": "admin"}), "invalid_body"),
    ] {
        let response = create(body.clone()).await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(json(response).await["error"]["code"], code, "{body}");
    }
    let anonymous = client
        .post(server.http_url("/api/v1/tokens"))
        .json(&json!({"user": "bob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    server.stop().await;
}
