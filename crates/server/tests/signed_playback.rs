#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Signed playback over real sockets: valid, rotated (old secret), expired, tampered,
//! for another stream and missing signatures on RTMP play, HTTP-FLV (a connection's
//! first request and a later one), WebSocket and SSE; per-app overrides; ffprobe.

mod common;

use std::time::Duration;

use common::{run_tool, spawn_publisher, start_server, tool, TestServer};
use futures_util::StreamExt;
use onair_media::StreamPath;
use onair_server::client::{ClientError, RtmpClient, RtmpUrl};
use onair_server::config::{AppPlayback, PlaybackSettings};
use onair_server::signing::{unix_now, PlaybackSigner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);
/// The server's secrets after a rotation: the new one signs, the old one still verifies.
const NEW_SECRET: &str = "new-playback-secret-2024";
const OLD_SECRET: &str = "old-playback-secret-2023";

fn signed(settings: &mut onair_server::Settings) {
    settings.playback.signed = true;
    settings.playback.secrets = vec![NEW_SECRET.to_owned(), OLD_SECRET.to_owned()];
}

fn sign_with(secret: &str, path: &str, expires: u64) -> String {
    let signer = PlaybackSigner::new(&[secret.as_bytes().to_vec()], &PlaybackSettings::default());
    signer.sign(&StreamPath::parse(path).unwrap(), expires)
}

/// A query that opens `path` for an hour.
fn valid(path: &str) -> String {
    sign_with(NEW_SECRET, path, unix_now() + 3600)
}

/// Query strings that must open `path`.
fn accepted(path: &str) -> Vec<(&'static str, String)> {
    vec![
        ("valid", valid(path)),
        ("old secret", sign_with(OLD_SECRET, path, unix_now() + 3600)),
        ("beside other params", format!("token=&{}&x=1", valid(path))),
    ]
}

/// Query strings that must not open `path`, with the error code each gets.
fn refused(path: &str) -> Vec<(String, &'static str)> {
    let good = valid(path);
    // The last hex digit changed.
    let last = good.chars().last().unwrap();
    let tampered = format!(
        "{}{}",
        &good[..good.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    vec![
        (
            sign_with(NEW_SECRET, path, unix_now() - 60),
            "signature_expired",
        ),
        (tampered, "signature_invalid"),
        (valid("live/someone-else"), "signature_invalid"),
        (
            sign_with("a-secret-never-configured", path, unix_now() + 3600),
            "signature_invalid",
        ),
        ("expires=soon&sig=abc".to_owned(), "signature_invalid"),
        (String::new(), "signature_required"),
    ]
}

async fn rtmp_play(server: &TestServer, app: &str, name: &str) -> Result<RtmpClient, ClientError> {
    let url = RtmpUrl {
        host_port: server.rtmp.to_string(),
        app: app.to_owned(),
        name: name.to_owned(),
    };
    let mut client = timeout(WAIT, RtmpClient::connect(&url)).await.unwrap()?;
    timeout(WAIT, client.play(name)).await.unwrap()?;
    Ok(client)
}

fn with_query(base: &str, query: &str) -> String {
    if query.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{query}")
    }
}

/// GET on a fresh connection (served directly, before hyper): status and, for a
/// refusal, the error code; for a 200, the first bytes are checked to be FLV.
async fn flv_first_request(server: &TestServer, path: &str, query: &str) -> (u16, String) {
    let response = reqwest::get(with_query(&server.flv_url(path), query))
        .await
        .unwrap();
    read_flv_or_error(response).await
}

async fn read_flv_or_error(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    if status == 200 {
        let mut body = response.bytes_stream();
        let first = timeout(WAIT, body.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(&first[..3], b"FLV");
        return (status, String::new());
    }
    let body: serde_json::Value = response.json().await.unwrap();
    (status, body["error"]["code"].as_str().unwrap().to_owned())
}

/// `GET /healthz` then `GET target` on one kept-alive connection (the second request is
/// the router's): the second response's status and its body (empty for a 200).
async fn second_request(server: &TestServer, target: &str) -> (u16, String) {
    let mut socket = TcpStream::connect(server.http).await.unwrap();
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: onair\r\n\r\n")
        .await
        .unwrap();
    let (status, _) = read_response(&mut socket).await;
    assert_eq!(status, 200);
    let request = format!("GET {target} HTTP/1.1\r\nHost: onair\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    read_response(&mut socket).await
}

/// Reads one response head and, when it has a Content-Length, its body.
async fn read_response(socket: &mut TcpStream) -> (u16, String) {
    let mut data = Vec::new();
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut buf = [0u8; 4096];
        let n = timeout(WAIT, socket.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "connection closed before a response head");
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_lowercase();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map(|v| v.trim().parse::<usize>().unwrap());
    let Some(length) = length else {
        return (status, String::new());
    };
    while data.len() < head_end + length {
        let mut buf = [0u8; 4096];
        let n = timeout(WAIT, socket.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "connection closed inside a body");
        data.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&data[head_end..head_end + length]).into_owned();
    (status, body)
}

#[tokio::test]
async fn rtmp_play_needs_a_valid_signature_on_the_name_or_the_connect_url() {
    let server = start_server(signed).await;
    // Publishing is not affected by signed playback.
    let publisher = spawn_publisher(&server, "live/r").await;
    server.wait_live("live/r", WAIT).await;

    for (what, query) in accepted("live/r") {
        let on_name = rtmp_play(&server, "live", &format!("r?{query}")).await;
        assert!(
            on_name.is_ok(),
            "{what} on the play name: {:?}",
            on_name.err()
        );
        // Some players put the query on connect's app / tcUrl instead.
        let on_app = rtmp_play(&server, &format!("live?{query}"), "r").await;
        assert!(on_app.is_ok(), "{what} on the app: {:?}", on_app.err());
    }
    for (query, code) in refused("live/r") {
        let name = with_query("r", &query);
        match rtmp_play(&server, "live", &name).await {
            Err(ClientError::Refused {
                code: status,
                description,
            }) => {
                assert_eq!(status, "NetStream.Play.Failed", "{query}");
                assert!(description.starts_with(code), "{query}: {description}");
                assert!(!description.contains("sig="), "{description}");
            }
            other => panic!("{query}: expected a refusal, got {:?}", other.err()),
        }
    }
    // A bad signature on the name is not rescued by a good one on the app: the name's wins.
    let bad_name = format!("r?{}", refused("live/r")[1].0);
    assert!(
        rtmp_play(&server, &format!("live?{}", valid("live/r")), &bad_name)
            .await
            .is_err()
    );
    publisher.abort();
    server.stop().await;
}

#[tokio::test]
async fn http_flv_first_request_needs_a_valid_signature() {
    let server = start_server(signed).await;
    let publisher = spawn_publisher(&server, "live/f").await;
    server.wait_live("live/f", WAIT).await;
    for (what, query) in accepted("live/f") {
        assert_eq!(
            flv_first_request(&server, "live/f", &query).await,
            (200, String::new()),
            "{what}"
        );
    }
    for (query, code) in refused("live/f") {
        assert_eq!(
            flv_first_request(&server, "live/f", &query).await,
            (403, code.to_owned()),
            "{query}"
        );
    }
    // The signature is checked before whether the stream is live: an unsigned request
    // learns nothing about which streams exist.
    assert_eq!(
        flv_first_request(&server, "live/absent", "").await,
        (403, "signature_required".to_owned())
    );
    assert_eq!(
        flv_first_request(&server, "live/absent", &valid("live/absent"))
            .await
            .0,
        404
    );
    publisher.abort();
    server.stop().await;
}

#[tokio::test]
async fn http_flv_later_request_on_a_kept_alive_connection_needs_a_valid_signature() {
    let server = start_server(signed).await;
    let publisher = spawn_publisher(&server, "live/k").await;
    server.wait_live("live/k", WAIT).await;
    for (what, query) in accepted("live/k") {
        let target = format!("/live/k.flv?{query}");
        assert_eq!(second_request(&server, &target).await.0, 200, "{what}");
    }
    for (query, code) in refused("live/k") {
        let target = with_query("/live/k.flv", &query);
        let (status, body) = second_request(&server, &target).await;
        assert_eq!(status, 403, "{query}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["code"], code, "{query}");
    }
    publisher.abort();
    server.stop().await;
}

#[tokio::test]
async fn websocket_room_needs_a_valid_signature_before_the_upgrade() {
    let server = start_server(signed).await;
    for (what, query) in accepted("live/w") {
        let url = server.ws_url(&format!("/ws/live/w?{query}"));
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let first = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
        let event: serde_json::Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
        assert_eq!(event["type"], "welcome", "{what}");
    }
    for (query, code) in refused("live/w") {
        let url = server.ws_url(&with_query("/ws/live/w", &query));
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 403, "{query}");
                let body = response.body().as_deref().unwrap_or_default();
                let body: serde_json::Value = serde_json::from_slice(body).unwrap();
                assert_eq!(body["error"]["code"], code, "{query}");
            }
            other => panic!("{query}: expected 403, got {:?}", other.map(|_| ())),
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn sse_room_needs_a_valid_signature() {
    let server = start_server(signed).await;
    for (what, query) in accepted("live/s") {
        let response = reqwest::get(server.http_url(&format!("/sse/live/s?{query}")))
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{what}");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
    }
    for (query, code) in refused("live/s") {
        let response = reqwest::get(server.http_url(&with_query("/sse/live/s", &query)))
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{query}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{query}");
    }
    server.stop().await;
}

#[tokio::test]
async fn an_app_override_turns_signing_on_or_off_for_that_app() {
    // Globally off, on for `paid`.
    let server = start_server(|settings| {
        settings.playback.secrets = vec![NEW_SECRET.to_owned()];
        settings
            .playback
            .apps
            .insert("paid".to_owned(), AppPlayback { signed: true });
    })
    .await;
    let free = spawn_publisher(&server, "live/o").await;
    let paid = spawn_publisher(&server, "paid/o").await;
    server.wait_live("live/o", WAIT).await;
    server.wait_live("paid/o", WAIT).await;
    assert_eq!(flv_first_request(&server, "live/o", "").await.0, 200);
    assert!(rtmp_play(&server, "live", "o").await.is_ok());
    assert_eq!(
        flv_first_request(&server, "paid/o", "").await,
        (403, "signature_required".to_owned())
    );
    assert!(rtmp_play(&server, "paid", "o").await.is_err());
    assert_eq!(
        flv_first_request(&server, "paid/o", &valid("paid/o"))
            .await
            .0,
        200
    );
    assert!(
        rtmp_play(&server, "paid", &format!("o?{}", valid("paid/o")))
            .await
            .is_ok()
    );
    free.abort();
    paid.abort();
    server.stop().await;

    // Globally on, off for `free`.
    let server = start_server(|settings| {
        signed(settings);
        settings
            .playback
            .apps
            .insert("free".to_owned(), AppPlayback { signed: false });
    })
    .await;
    let free = spawn_publisher(&server, "free/o").await;
    let live = spawn_publisher(&server, "live/o").await;
    server.wait_live("free/o", WAIT).await;
    server.wait_live("live/o", WAIT).await;
    assert_eq!(flv_first_request(&server, "free/o", "").await.0, 200);
    assert!(rtmp_play(&server, "free", "o").await.is_ok());
    let sse = reqwest::get(server.http_url("/sse/free/o")).await.unwrap();
    assert_eq!(sse.status(), 200);
    assert_eq!(
        flv_first_request(&server, "live/o", "").await,
        (403, "signature_required".to_owned())
    );
    free.abort();
    live.abort();
    server.stop().await;
}

#[tokio::test]
async fn ffprobe_plays_signed_urls_and_is_refused_unsigned_ones() {
    if !tool("ffprobe") {
        return;
    }
    let server = start_server(signed).await;
    let publisher = spawn_publisher(&server, "live/probe").await;
    server.wait_live("live/probe", WAIT).await;
    let query = valid("live/probe");
    let probe = |url: String| async move {
        let args = [
            "-v",
            "error",
            "-rw_timeout",
            "10000000",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
            url.as_str(),
        ];
        run_tool("ffprobe", &args, Duration::from_secs(30)).await
    };
    for url in [
        format!("{}?{query}", server.flv_url("live/probe")),
        format!("{}?{query}", server.rtmp_url("live/probe")),
    ] {
        let (ok, stdout, stderr) = probe(url.clone()).await;
        assert!(ok, "ffprobe {url}: {stderr}");
        assert!(stdout.contains("h264"), "ffprobe {url}: {stdout}");
    }
    for url in [server.flv_url("live/probe"), server.rtmp_url("live/probe")] {
        let (ok, _, stderr) = probe(url.clone()).await;
        assert!(!ok, "ffprobe {url} should have been refused");
        eprintln!("ffprobe {url} refused as expected: {}", stderr.trim());
    }
    publisher.abort();
    server.stop().await;
}
