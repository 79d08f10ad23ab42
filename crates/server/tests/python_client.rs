#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Interop with a WebSocket client nobody here wrote: Python's `websockets` (PyPI)
//! runs tests/python/room_client.py against a room. Skips with a printed reason when
//! python3 or the module is missing, unless ONAIR_REQUIRE_INTEROP is set (as in CI),
//! which turns the skip into a failure.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{run_tool, start_server, tool};
use onair_server::rooms::Role;

/// The script's own bound is 10 s; this one only catches a hung interpreter.
const SCRIPT_LIMIT: Duration = Duration::from_secs(30);

/// python3 with the `websockets` module, or a skip (a failure under ONAIR_REQUIRE_INTEROP).
fn python_websockets() -> bool {
    if !tool("python3") {
        return false;
    }
    let imports = Command::new("python3")
        .args(["-c", "import websockets"])
        .output()
        .is_ok_and(|out| out.status.success());
    if imports {
        return true;
    }
    if std::env::var_os("ONAIR_REQUIRE_INTEROP").is_some() {
        panic!(
            "the Python module websockets is required (ONAIR_REQUIRE_INTEROP is set) but \
             python3 cannot import it: python3 -m pip install websockets"
        );
    }
    eprintln!("skipping: the Python module websockets is not installed");
    false
}

fn script() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/python/room_client.py")
        .to_string_lossy()
        .into_owned()
}

/// Runs the script as `user`, sending `text` and waiting for `peer_text`; returns its
/// JSON line.
async fn python_client(url: &str, user: &str, text: &str, peer_text: &str) -> serde_json::Value {
    let script = script();
    let (ok, stdout, stderr) = run_tool(
        "python3",
        &[&script, url, "--text", text, "--expect", peer_text],
        SCRIPT_LIMIT,
    )
    .await;
    assert!(ok, "{user}'s Python client failed: {stderr}{stdout}");
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{user}: {e}: {stdout:?}"))
}

#[tokio::test]
async fn two_python_websockets_clients_see_each_others_chat() {
    if !python_websockets() {
        return;
    }
    let server = start_server(|_| {}).await;
    // since=0: a chat sent before the other client joined still reaches it (history).
    let url = |user: &str| {
        server.ws_url(&format!(
            "/ws/live/python?since=0&token={}",
            server.token(user, Role::Viewer)
        ))
    };
    let (alice_url, bob_url) = (url("alice"), url("bob"));
    let (alice, bob) = tokio::join!(
        python_client(&alice_url, "alice", "hello from alice", "hello from bob"),
        python_client(&bob_url, "bob", "hello from bob", "hello from alice"),
    );
    for (result, me, peer, peer_text) in [
        (&alice, "alice", "bob", "hello from bob"),
        (&bob, "bob", "alice", "hello from alice"),
    ] {
        assert_eq!(result["ok"], true, "{result}");
        assert_eq!(result["room"], "live/python", "{result}");
        assert_eq!(
            result["user"],
            serde_json::json!({"id": me, "name": me, "role": "viewer"}),
            "{result}"
        );
        assert_eq!(result["peers"][peer_text]["user"], peer, "{result}");
    }
    // The room sequenced both messages: each client's own seq is the other's peer seq.
    assert_eq!(
        alice["own_seq"], bob["peers"]["hello from alice"]["seq"],
        "{alice} {bob}"
    );
    assert_eq!(
        bob["own_seq"], alice["peers"]["hello from bob"]["seq"],
        "{alice} {bob}"
    );
    server.stop().await;
}

/// A Python client in a room flooded far beyond what it can be sent (a 16-event ring,
/// 32 events of history, a 200 ms flush) stays connected, is told what it skipped, and
/// gets its own message and the streamer's.
#[tokio::test]
async fn a_python_websockets_client_holds_through_a_flood() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    if !python_websockets() {
        return;
    }
    let server = start_server(|s| {
        s.http.room_fanout_events = 16;
        s.http.room_flush_interval_ms = 200;
        s.rooms.history_max_events = 32;
        s.rooms.chat_rate_count = 1_000_000;
        s.rooms.chat_rate_window_ms = 1_000;
    })
    .await;
    let room = "/ws/live/pyflood";
    let url = server.ws_url(&format!(
        "{room}?token={}",
        server.token("py", Role::Viewer)
    ));
    let python =
        tokio::spawn(async move { python_client(&url, "py", "python was here", "the end").await });
    // The Python client has joined when the room counts it.
    let client = reqwest::Client::new();
    let joined = async {
        loop {
            let room: serde_json::Value = client
                .get(server.http_url("/api/v1/rooms/live/pyflood"))
                .bearer_auth(common::ADMIN_TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if room["members"].as_u64().unwrap_or(0) >= 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), joined)
        .await
        .expect("the Python client joins");
    let connect = |user: &str, role| {
        let url = server.ws_url(&format!("{room}?token={}", server.token(user, role)));
        async move { tokio_tungstenite::connect_async(url).await.unwrap().0 }
    };
    let mut flooders = Vec::new();
    for f in 0..6 {
        let mut ws = connect(&format!("fan{f}"), Role::Viewer).await;
        flooders.push(tokio::spawn(async move {
            for i in 0..400 {
                let text = format!(r#"{{"type":"chat","text":"fan{f} {i}"}}"#);
                ws.send(Message::Text(text.into())).await.unwrap();
            }
            ws
        }));
    }
    let mut kept = Vec::new();
    for flooder in flooders {
        kept.push(flooder.await.unwrap());
    }
    let mut host = connect("host", Role::Streamer).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    host.send(Message::Text(r#"{"type":"chat","text":"the end"}"#.into()))
        .await
        .unwrap();
    let result = python.await.unwrap();
    assert_eq!(result["ok"], true, "{result}");
    assert!(result["peers"]["the end"]["user"] == "host", "{result}");
    assert!(
        result["gaps"].as_u64().unwrap() >= 1 && result["lost"].as_u64().unwrap() > 0,
        "the client fell behind the flood and was told: {result}"
    );
    drop(kept);
    server.stop().await;
}
