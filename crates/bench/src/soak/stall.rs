//! Stallers: clients that connect and then stop part-way (half an RTMP handshake,
//! half an HTTP request head, or nothing at all). Each waits until the server drops it
//! or the run's stall time passes, then leaves itself.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::super::media::flv_viewer::{find, MAX_HTTP_HEAD};
use super::kind::Leave;
use super::{reset, Outcome, Target};

/// Length of the handshake's C1.
const C1_LEN: usize = 1536;

/// C0 (version 3) and the first half of C1.
fn half_handshake() -> Vec<u8> {
    let mut bytes = vec![3u8];
    bytes.resize(1 + C1_LEN / 2, 0x5a);
    bytes
}

pub(super) async fn rtmp_half_handshake(target: &Target, leave: Leave) -> Result<Outcome, String> {
    let mut socket = connect(&target.rtmp.host_port).await?;
    socket
        .write_all(&half_handshake())
        .await
        .map_err(|e| format!("write: {e}"))?;
    hold(socket, target, leave).await
}

pub(super) async fn http_half_head(target: &Target, leave: Leave) -> Result<Outcome, String> {
    let mut socket = connect(&target.http.to_string()).await?;
    let head = format!(
        "GET /{}/{}.flv HTTP/1.1\r\nHost: ",
        target.app(),
        target.name()
    );
    socket
        .write_all(head.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    hold(socket, target, leave).await
}

pub(super) async fn http_keep_alive(target: &Target, leave: Leave) -> Result<Outcome, String> {
    let mut socket = connect(&target.http.to_string()).await?;
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: soak\r\n\r\n")
        .await
        .map_err(|e| format!("write: {e}"))?;
    // The whole response: its head, and a body that ends the first read or the next.
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    while find(&response, b"\r\n\r\n").is_none() {
        let n = socket
            .read(&mut buf)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 || response.len() > MAX_HTTP_HEAD {
            return Err("no response to the first request".to_owned());
        }
        response.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    if !response.starts_with(b"HTTP/1.1 200") {
        return Err(format!(
            "first request: {}",
            String::from_utf8_lossy(response.get(..12).unwrap_or_default())
        ));
    }
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .await
        .map_err(|e| format!("write: {e}"))?;
    hold(socket, target, leave).await
}

pub(super) async fn silent(addr: &str, target: &Target, leave: Leave) -> Result<Outcome, String> {
    let socket = connect(addr).await?;
    hold(socket, target, leave).await
}

async fn connect(addr: &str) -> Result<TcpStream, String> {
    TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))
}

/// Reads (and ignores) whatever comes until the server closes or the stall time is up.
async fn hold(mut socket: TcpStream, target: &Target, leave: Leave) -> Result<Outcome, String> {
    let mut buf = [0u8; 4096];
    let until_closed = async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    let outcome = match timeout(target.stall, until_closed).await {
        Ok(()) => Outcome::DroppedByServer,
        Err(_) => Outcome::Done,
    };
    match leave {
        Leave::Clean => {
            let _ = socket.shutdown().await;
        }
        Leave::Abrupt => reset(socket),
    }
    Ok(outcome)
}
