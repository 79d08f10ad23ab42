//! WebSocket room cycles: join (anonymously or with a token), maybe chat, leave; and
//! a malformed token the server must refuse.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use super::kind::Leave;
use super::{Outcome, Target};

type Ws = WebSocketStream<TcpStream>;

/// Read buffer of each WebSocket cycle.
const READ_BUF: usize = 4 << 10;
/// Longest a clean close waits for the server's Close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// The close code of a bad token (docs/rooms.md).
const BAD_TOKEN: u16 = 4001;
/// Error codes a chat send may get that are the room's rules, not a fault.
const EXPECTED_REFUSALS: [&str; 2] = ["rate_limited", "slow_mode"];

/// Joins the room of cycle `i` until `welcome`; with a token, sends one chat and
/// waits for the room's answer (the chat itself or a rate-limit error); then leaves.
pub(super) async fn join(
    i: u64,
    target: &Target,
    token: Option<&str>,
    leave: Leave,
) -> Result<Outcome, String> {
    let mut ws = connect(target, i, token).await?;
    next_text(&mut ws, |text| text.contains(r#""type":"welcome""#)).await?;
    if token.is_some() {
        ws.send(Message::text(r#"{"type":"chat","text":"soak"}"#))
            .await
            .map_err(|e| format!("send: {e}"))?;
        let answer = next_text(&mut ws, |text| {
            text.contains(r#""type":"chat""#) || text.contains(r#""type":"error""#)
        })
        .await?;
        if answer.contains(r#""type":"error""#)
            && !EXPECTED_REFUSALS
                .iter()
                .any(|code| answer.contains(&format!(r#""{code}""#)))
        {
            return Err(format!("chat refused: {answer}"));
        }
    }
    match leave {
        Leave::Clean => {
            ws.close(None).await.map_err(|e| format!("close: {e}"))?;
            // Until the server's Close frame and the end of the stream.
            let drain = async { while let Some(Ok(_)) = ws.next().await {} };
            timeout(CLOSE_WAIT, drain)
                .await
                .map_err(|_| "no Close frame from the server".to_owned())?;
        }
        Leave::Abrupt => {
            let _ = ws.get_ref().set_zero_linger();
            drop(ws);
        }
    }
    Ok(Outcome::Done)
}

/// A malformed token: a 401 before the upgrade or a close with 4001 after it.
pub(super) async fn bad_token(i: u64, target: &Target) -> Result<Outcome, String> {
    let mut ws = match connect_raw(target, i, Some("not-a-token")).await {
        Ok(ws) => ws,
        Err(WsError::Http(response)) if response.status().as_u16() == 401 => {
            return Ok(Outcome::Done)
        }
        Err(e) => return Err(format!("connect: {e}")),
    };
    loop {
        match ws.next().await {
            Some(Ok(Message::Close(Some(frame)))) if frame.code == CloseCode::from(BAD_TOKEN) => {
                return Ok(Outcome::Done)
            }
            Some(Ok(Message::Close(frame))) => return Err(format!("closed with {frame:?}")),
            Some(Ok(Message::Text(text))) if text.contains(r#""type":"welcome""#) => {
                return Err("a bad token was welcomed".to_owned())
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("read: {e}")),
            None => return Err("closed without a close code".to_owned()),
        }
    }
}

async fn connect(target: &Target, i: u64, token: Option<&str>) -> Result<Ws, String> {
    connect_raw(target, i, token)
        .await
        .map_err(|e| format!("connect: {e}"))
}

async fn connect_raw(target: &Target, i: u64, token: Option<&str>) -> Result<Ws, WsError> {
    let socket = TcpStream::connect(target.http).await?;
    socket.set_nodelay(true)?;
    let mut url = format!("ws://{}/ws/{}", target.http, target.room(i));
    if let Some(token) = token {
        url.push_str("?token=");
        url.push_str(token);
    }
    let config = WebSocketConfig::default().read_buffer_size(READ_BUF);
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, socket, Some(config)).await?;
    Ok(ws)
}

/// The next text frame that `wanted` accepts; a Close or the end before it is an error.
async fn next_text(ws: &mut Ws, wanted: impl Fn(&str) -> bool) -> Result<String, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) if wanted(text.as_str()) => return Ok(text.to_string()),
            Some(Ok(Message::Close(frame))) => return Err(format!("closed with {frame:?}")),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("read: {e}")),
            None => return Err("the stream ended".to_owned()),
        }
    }
}
