#![allow(clippy::unwrap_used, clippy::expect_used)]

//! A real browser plays HTTP-FLV (mpegts.js) and LL-HLS (hls.js in low-latency mode)
//! in headless Chromium, driven by `tests/browser/play.mjs` (playwright-core with
//! Debian's /usr/bin/chromium).
//! Skips with a printed reason when node, chromium or `tests/browser/node_modules`
//! is missing, unless ONAIR_REQUIRE_INTEROP is set (as in CI), which makes it fail.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{run_tool, spawn_publisher, start_server, tool};

const WAIT: Duration = Duration::from_secs(15);

/// `tests/browser` at the repository root.
fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser")
}

/// Whether `npm ci --prefix tests/browser` has been run; same skip rule as `tool`.
fn browser_deps() -> bool {
    let modules = browser_dir().join("node_modules");
    let needed = ["playwright-core", "mpegts.js", "hls.js"];
    if needed.iter().all(|package| modules.join(package).is_dir()) {
        return true;
    }
    if std::env::var_os("ONAIR_REQUIRE_INTEROP").is_some() {
        panic!(
            "{} is missing (ONAIR_REQUIRE_INTEROP is set): run `npm ci --prefix tests/browser`",
            modules.display()
        );
    }
    eprintln!(
        "skipping: tests/browser/node_modules is missing; run `npm ci --prefix tests/browser`"
    );
    false
}

#[tokio::test]
async fn mpegts_js_in_chromium_plays_http_flv() {
    plays_in_chromium("flv", "live/browser", |server| {
        server.flv_url("live/browser")
    })
    .await;
}

#[tokio::test]
async fn hls_js_in_chromium_plays_low_latency_hls() {
    plays_in_chromium("hls", "live/browserhls", |server| {
        server.http_url("/live/browserhls/index.m3u8")
    })
    .await;
}

/// Publishes the 640x360 fixture to `path` and has Chromium play `url_of(server)`
/// with the `kind` player.
async fn plays_in_chromium(kind: &str, path: &str, url_of: impl Fn(&common::TestServer) -> String) {
    if !tool("node") || !tool("chromium") || !browser_deps() {
        return;
    }
    // The test page is served from another port: another origin.
    let server = start_server(|s| s.auth.allowed_origins = vec!["*".into()]).await;
    let publisher = spawn_publisher(&server, path).await;
    server.wait_live(path, WAIT).await;

    let script = browser_dir().join("play.mjs");
    let url = url_of(&server);
    // The script bounds itself (20 s of playback wait, 60 s in all); this is a backstop.
    let (ok, stdout, stderr) = run_tool(
        "node",
        &[script.to_str().unwrap(), kind, &url],
        Duration::from_secs(120),
    )
    .await;
    let line = stdout.lines().last().unwrap_or_default();
    let result: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("no JSON line from play.mjs ({e}): {stdout}\n{stderr}"));
    assert!(
        ok && result["ok"] == true,
        "Chromium did not play {url}: {line}\n{stderr}"
    );
    assert_eq!(result["videoWidth"], 640, "{line}");
    assert_eq!(result["videoHeight"], 360, "{line}");
    let current_time = result["currentTime"].as_f64().unwrap();
    let played = result["played"].as_f64().unwrap();
    assert!(
        current_time > 0.0 && played >= 2.0,
        "video did not advance: {line}"
    );
    eprintln!("browser ({kind}): {line}");
    if !stderr.trim().is_empty() {
        eprintln!("browser console:\n{stderr}");
    }

    publisher.abort();
    server.stop().await;
}
