#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Room WebSockets as the server writes them: its own upgrade (and the JSON errors for
//! a request that is not one), events written as pre-framed batches that a WebSocket
//! client decodes exactly, and tungstenite's pongs between those batches.

mod common;

use std::time::Duration;

use common::{start_server, TestServer, ADMIN_TOKEN};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(10);

/// Sends `request` as is and returns the status code and the body.
async fn raw_request(server: &TestServer, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(server.http).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .expect("the server answers and closes")
        .unwrap();
    let response = String::from_utf8(response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn upgrade_request(path: &str, version: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: {version}\r\n\
         Connection: close\r\n\r\n"
    )
}

/// The next message that is not a ping.
async fn next_message(ws: &mut Ws) -> Message {
    loop {
        match timeout(WAIT, ws.next()).await.expect("a message") {
            Some(Ok(Message::Ping(_))) => {}
            Some(Ok(message)) => return message,
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

fn event(message: &Message) -> Value {
    match message {
        Message::Text(text) => serde_json::from_str(text.as_str()).unwrap(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

#[tokio::test]
async fn a_request_that_is_not_a_websocket_upgrade_gets_a_json_error() {
    let server = start_server(|_| {}).await;
    let response = reqwest::get(server.http_url("/ws/live/plain"))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_websocket_upgrade");

    let (status, body) = raw_request(&server, &upgrade_request("/ws/live/old", "8")).await;
    assert_eq!(status, 400);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "bad_websocket_upgrade");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Sec-WebSocket-Version"),
        "{body}"
    );
}

#[tokio::test]
async fn the_handshake_answers_the_rfc_accept_key() {
    let server = start_server(|_| {}).await;
    let mut stream = TcpStream::connect(server.http).await.unwrap();
    stream
        .write_all(upgrade_request("/ws/live/key", "13").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        timeout(WAIT, stream.read_exact(&mut byte))
            .await
            .expect("the handshake answer")
            .unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    // RFC 6455 section 1.3's example key and answer.
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    // Then the welcome, as an unmasked final text frame.
    let mut header = [0; 2];
    timeout(WAIT, stream.read_exact(&mut header))
        .await
        .expect("the welcome")
        .unwrap();
    assert_eq!(header[0], 0x81);
    assert_eq!(header[1] & 0x80, 0, "a server frame is not masked");
}

#[tokio::test]
async fn batched_events_arrive_intact_in_order_with_pongs_between() {
    // A long flush interval: the events posted below leave in a few large batches. Long
    // system texts, for frames of each length encoding (up to 125 bytes, up to 65,535,
    // above): the JSON around a text adds about 50 bytes.
    let server = start_server(|settings| {
        settings.http.room_flush_interval_ms = 300;
        settings.http.max_body_bytes = 1 << 20;
        settings.rooms.system_max_chars = 20_000;
    })
    .await;
    let (mut ws, _) = tokio_tungstenite::connect_async(server.ws_url("/ws/live/frames"))
        .await
        .unwrap();
    assert_eq!(event(&next_message(&mut ws).await)["type"], "welcome");

    let texts: Vec<String> = (0..60)
        .map(|i| match i % 4 {
            0 => format!("short {i}"),
            1 => format!("{i} {}", "x".repeat(70 + i)),
            2 => format!("{i} {}", "é\"q\"".repeat(300)),
            _ => format!("{i} {}", "😀".repeat(17_000)),
        })
        .collect();
    let client = reqwest::Client::new();
    let url = server.http_url("/api/v1/rooms/live/frames/messages");
    for (i, text) in texts.iter().enumerate() {
        let response = client
            .post(&url)
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "text": text }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{text}");
        if i == 30 {
            ws.send(Message::Ping(b"between".to_vec().into()))
                .await
                .unwrap();
        }
    }

    let mut got = Vec::new();
    let mut pong = None;
    while got.len() < texts.len() {
        match next_message(&mut ws).await {
            Message::Pong(payload) => pong = Some(payload),
            message => {
                let event = event(&message);
                if event["type"] == "system" {
                    got.push(event["text"].as_str().unwrap().to_owned());
                }
            }
        }
    }
    assert_eq!(got, texts);
    if pong.is_none() {
        // Answered after the last batch: it is still on its way.
        pong = match next_message(&mut ws).await {
            Message::Pong(payload) => Some(payload),
            other => panic!("expected the pong, got {other:?}"),
        };
    }
    assert_eq!(pong.unwrap().as_ref(), b"between");

    ws.close(None).await.unwrap();
}

/// A client that sends its first frame in the same write as the upgrade request: the
/// frame reaches the server's read side (hyper read it ahead), and is answered.
#[tokio::test]
async fn a_frame_sent_with_the_upgrade_request_is_read() {
    let server = start_server(|_| {}).await;
    let mut stream = TcpStream::connect(server.http).await.unwrap();
    let request = "GET /ws/live/ahead HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n";
    // A masked text frame: an anonymous chat, which the server refuses with an error event.
    let text = br#"{"type":"chat","text":"hi"}"#;
    let mask = [7u8, 1, 2, 3];
    let mut bytes = request.as_bytes().to_vec();
    bytes.extend_from_slice(&[0x81, 0x80 | text.len() as u8]);
    bytes.extend_from_slice(&mask);
    bytes.extend(text.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&bytes).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(r#""type":"error""#) {
        let n = timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("the server answers the early frame")
            .unwrap();
        assert!(
            n > 0,
            "closed before answering: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 101"), "{got}");
    assert!(got.contains(r#""type":"welcome""#), "{got}");
}
