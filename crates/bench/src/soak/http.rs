//! HTTP cycles over a plain socket (so that a reset is ours to send): an HTTP-FLV
//! viewer and an SSE room client.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::super::media::flv_viewer::{find, parse_response_head, MAX_HTTP_HEAD};
use super::kind::Leave;
use super::{reset, Outcome, Target};

/// Read buffer of each HTTP cycle.
const READ_BUF: usize = 8 << 10;
/// Most a cycle reads before it has what it waits for.
const MAX_READ: usize = 1 << 20;
/// FLV bytes an HTTP-FLV viewer waits for: the file header and at least one tag.
const FLV_BYTES: usize = 13 + 11 + 1;

/// Plays the long-lived stream's `.flv` until FLV bytes arrive, then leaves.
pub(super) async fn flv(target: &Target, leave: Leave) -> Result<Outcome, String> {
    let path = format!("/{}/{}.flv", target.app(), target.name());
    let (socket, body) = get(target, &path, |body| body.len() >= FLV_BYTES).await?;
    // A chunk-size line may come first.
    if find(&body, b"FLV").is_none() {
        return Err("the body is not FLV".to_owned());
    }
    finish(socket, leave).await
}

/// Subscribes to the room of cycle `i` until its `welcome` event, then leaves.
pub(super) async fn sse(i: u64, target: &Target, leave: Leave) -> Result<Outcome, String> {
    let path = format!("/sse/{}", target.room(i));
    let (socket, _) = get(target, &path, |body| find(body, b"welcome").is_some()).await?;
    finish(socket, leave).await
}

/// Sends `GET path`, checks for a 200, and reads the body until `enough` says so.
async fn get(
    target: &Target,
    path: &str,
    enough: impl Fn(&[u8]) -> bool,
) -> Result<(TcpStream, Vec<u8>), String> {
    let mut socket = TcpStream::connect(target.http)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: onair-soak\r\nAccept: */*\r\n\r\n",
        target.http
    );
    socket
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("request: {e}"))?;
    let mut buf = vec![0u8; READ_BUF];
    let mut data = Vec::new();
    let mut body_start = None;
    loop {
        let n = socket
            .read(&mut buf)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("closed before the body was seen".to_owned());
        }
        data.extend_from_slice(buf.get(..n).unwrap_or_default());
        if data.len() > MAX_READ {
            return Err(format!("nothing useful in the first {MAX_READ} bytes"));
        }
        if body_start.is_none() {
            if let Some(end) = find(&data, b"\r\n\r\n") {
                parse_response_head(data.get(..end).unwrap_or_default())
                    .map_err(|e| e.to_string())?;
                body_start = Some(end + 4);
            } else if data.len() > MAX_HTTP_HEAD {
                return Err("response head too long".to_owned());
            }
        }
        if let Some(start) = body_start {
            let body = data.get(start..).unwrap_or_default();
            if enough(body) {
                let body = body.to_vec();
                return Ok((socket, body));
            }
        }
    }
}

async fn finish(mut socket: TcpStream, leave: Leave) -> Result<Outcome, String> {
    match leave {
        Leave::Clean => {
            let _ = socket.shutdown().await;
        }
        Leave::Abrupt => reset(socket),
    }
    Ok(Outcome::Done)
}
