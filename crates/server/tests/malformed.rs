#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Hostile and broken RTMP input: each case must close only the connection that sent
//! it, while another stream keeps flowing to its viewer.

mod common;

use std::time::Duration;

use common::{spawn_publisher, start_server, TestServer};
use onair_rtmp::ClientEvent;
use onair_server::client::{RtmpClient, RtmpUrl};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

/// Connects and completes a simple (version 0) handshake by hand.
async fn handshaken(server: &TestServer) -> TcpStream {
    let mut socket = TcpStream::connect(server.rtmp).await.unwrap();
    let mut c0c1 = vec![3u8];
    c0c1.extend_from_slice(&[0u8; 1536]);
    socket.write_all(&c0c1).await.unwrap();
    let mut s0s1s2 = vec![0u8; 1 + 1536 * 2];
    socket.read_exact(&mut s0s1s2).await.unwrap();
    assert_eq!(s0s1s2[0], 3);
    socket.write_all(&s0s1s2[1..1537]).await.unwrap();
    socket
}

/// One message as chunks of 128 bytes (the default size) on `csid`.
fn chunked(csid: u8, type_id: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![csid, 0, 0, 0];
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(type_id);
    out.extend_from_slice(&[0, 0, 0, 0]);
    for (i, piece) in payload.chunks(128).enumerate() {
        if i > 0 {
            out.push(0xc0 | csid);
        }
        out.extend_from_slice(piece);
    }
    out
}

/// Waits until the server closes `socket`, reading and discarding what it sends.
async fn assert_closed(mut socket: TcpStream, case: &str) {
    let mut buf = vec![0u8; 64 * 1024];
    let closed = timeout(WAIT, async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "{case}: server kept the connection open");
}

/// A viewer of a healthy stream that must keep receiving throughout.
async fn healthy_viewer(server: &TestServer) -> RtmpClient {
    let url = RtmpUrl::parse(&server.rtmp_url("live/healthy")).unwrap();
    let mut viewer = RtmpClient::connect(&url).await.unwrap();
    viewer.play(&url.name).await.unwrap();
    viewer
}

async fn assert_still_flowing(viewer: &mut RtmpClient, case: &str) {
    let mut frames = 0;
    while frames < 20 {
        let event = timeout(WAIT, viewer.next_event())
            .await
            .unwrap_or_else(|_| panic!("{case}: healthy stream stalled"))
            .unwrap_or_else(|e| panic!("{case}: healthy viewer lost: {e}"));
        viewer.flush().await.unwrap();
        if matches!(event, ClientEvent::Media { .. }) {
            frames += 1;
        }
    }
}

fn connect_command(extra: &[u8]) -> Vec<u8> {
    let mut payload = vec![0x02, 0x00, 0x07];
    payload.extend_from_slice(b"connect");
    payload.push(0x00);
    payload.extend_from_slice(&1f64.to_be_bytes());
    payload.extend_from_slice(extra);
    payload
}

#[tokio::test]
async fn malformed_input_costs_only_its_own_connection() {
    let server = start_server(|s| s.rtmp.handshake_timeout_ms = 500).await;
    let publisher = spawn_publisher(&server, "live/healthy").await;
    server.wait_live("live/healthy", WAIT).await;
    let mut viewer = healthy_viewer(&server).await;

    // Garbage instead of a handshake.
    let mut socket = TcpStream::connect(server.rtmp).await.unwrap();
    socket.write_all(&[0xffu8; 4000]).await.unwrap();
    assert_closed(socket, "garbage").await;
    assert_still_flowing(&mut viewer, "garbage").await;

    // A handshake that stops halfway: the handshake timeout closes it.
    let mut socket = TcpStream::connect(server.rtmp).await.unwrap();
    socket.write_all(&[3u8; 700]).await.unwrap();
    assert_closed(socket, "truncated handshake").await;
    assert_still_flowing(&mut viewer, "truncated handshake").await;

    // Set Chunk Size 0 and 2^31.
    for size in [0u32, 0x8000_0000] {
        let mut socket = handshaken(&server).await;
        socket
            .write_all(&chunked(2, 1, &size.to_be_bytes()))
            .await
            .unwrap();
        assert_closed(socket, &format!("chunk size {size}")).await;
        assert_still_flowing(&mut viewer, "chunk size").await;
    }

    // A message header declaring 16 MiB.
    let mut socket = handshaken(&server).await;
    let mut header = vec![3u8, 0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0];
    header.extend_from_slice(&[0u8; 128]);
    socket.write_all(&header).await.unwrap();
    assert_closed(socket, "16 MiB message").await;
    assert_still_flowing(&mut viewer, "16 MiB message").await;

    // AMF0 objects nested thousands deep in a connect command.
    let mut socket = handshaken(&server).await;
    let nested: Vec<u8> = std::iter::repeat_n([0x03u8, 0x00, 0x01, b'a'], 2_000)
        .flatten()
        .collect();
    socket
        .write_all(&chunked(3, 20, &connect_command(&nested)))
        .await
        .unwrap();
    assert_closed(socket, "AMF recursion").await;
    assert_still_flowing(&mut viewer, "AMF recursion").await;

    // More chunk streams than allowed, each with a message left unfinished.
    let mut socket = handshaken(&server).await;
    let mut bytes = Vec::new();
    for id in 0u8..200 {
        // Two-byte basic header: fmt 0, csid = 64 + id.
        bytes.extend_from_slice(&[0x00, id]);
        bytes.extend_from_slice(&[0, 0, 0, 0, 1, 0, 9, 0, 0, 0, 0]);
        bytes.extend_from_slice(&[0u8; 16]);
    }
    socket.write_all(&bytes).await.unwrap();
    assert_closed(socket, "too many chunk streams").await;
    assert_still_flowing(&mut viewer, "too many chunk streams").await;

    publisher.abort();
    server.stop().await;
}

#[tokio::test]
async fn connection_limits_refuse_extra_connections() {
    let server = start_server(|s| s.limits.max_connections_per_ip = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(handshaken(&server).await);
    }
    let refused = TcpStream::connect(server.rtmp).await.unwrap();
    assert_closed(refused, "over the per-IP limit").await;
    drop(held);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ok = handshaken(&server).await;
    server.stop().await;
}
