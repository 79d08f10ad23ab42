#![allow(clippy::unwrap_used, clippy::expect_used)]

//! `http.request_head_timeout_ms`: a connection that stalls in a request head, the
//! first or a kept-alive connection's next one, is closed by the server.

mod common;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous: only keeps a broken server from hanging the test.
const BOUND: Duration = Duration::from_secs(20);

/// Reads until the server closes the connection; returns what came.
async fn read_until_closed(socket: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(BOUND, read)
        .await
        .expect("the server kept the stalled connection open");
    out
}

#[tokio::test]
async fn a_stalled_first_request_head_is_closed() {
    let server = common::start_server(|s| s.http.request_head_timeout_ms = 300).await;
    let mut socket = TcpStream::connect(server.http).await.unwrap();
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let got = read_until_closed(&mut socket).await;
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
}

#[tokio::test]
async fn a_kept_alive_connection_that_stalls_in_its_next_head_is_closed() {
    let server = common::start_server(|s| s.http.request_head_timeout_ms = 300).await;
    let mut socket = TcpStream::connect(server.http).await.unwrap();
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let got = read_until_closed(&mut socket).await;
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert_eq!(got.matches("HTTP/1.1 ").count(), 1, "{got}");
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let server = common::start_server(|s| s.http.request_head_timeout_ms = 300).await;
    let mut socket = TcpStream::connect(server.http).await.unwrap();
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let got = read_until_closed(&mut socket).await;
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
}
