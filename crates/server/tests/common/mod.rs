//! Shared test harness: an in-process server on ephemeral ports, the committed fixture,
//! a paced publisher, and the rule for tests that need outside programs.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use onair_server::client::{read_flv_tags, send_paced, RtmpClient, RtmpUrl};
use onair_server::{Server, Settings};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const FIXTURE: &str = "ffmpeg_testsrc2_640x360_30fps_6s.flv";

pub struct TestServer {
    pub rtmp: SocketAddr,
    pub http: SocketAddr,
    /// The RTMPS listener, when `tls.rtmps_listen` is set.
    pub rtmps: Option<SocketAddr>,
    pub hub: std::sync::Arc<onair_server::hub::Hub>,
    pub webhooks: onair_server::webhooks::Webhooks,
    /// Applies new settings to the running server, as SIGHUP does.
    pub reloader: onair_server::Reloader,
    /// The settings it started with.
    pub settings: Settings,
    shutdown: CancellationToken,
    handle: JoinHandle<std::io::Result<()>>,
    _data_dir: tempfile::TempDir,
}

/// The chat token secret and admin token every test server uses.
pub const TOKEN_SECRET: &str = "test-token-secret";
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// Starts a server on 127.0.0.1 with ephemeral ports and `tweak` applied to the defaults.
pub async fn start_server(tweak: impl FnOnce(&mut Settings)) -> TestServer {
    let mut settings = Settings::default();
    settings.rtmp.listen = "127.0.0.1:0".parse().unwrap();
    settings.http.listen = "127.0.0.1:0".parse().unwrap();
    settings.shutdown_drain_ms = 2_000;
    let data_dir = tempfile::tempdir().unwrap();
    settings.data_dir = data_dir.path().to_owned();
    settings.auth.token_secret = Some(TOKEN_SECRET.to_owned());
    settings.auth.admin_token = Some(ADMIN_TOKEN.to_owned());
    tweak(&mut settings);
    let started_with = settings.clone();
    let server = Server::bind(settings).await.expect("bind");
    let rtmp = server.rtmp_addr().unwrap();
    let http = server.http_addr().unwrap();
    let hub = server.hub();
    let rtmps = server.rtmps_addr();
    let webhooks = server.webhooks();
    let reloader = server.reloader();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(server.run(shutdown.clone()));
    TestServer {
        rtmp,
        http,
        rtmps,
        hub,
        webhooks,
        reloader,
        settings: started_with,
        shutdown,
        handle,
        _data_dir: data_dir,
    }
}

impl TestServer {
    pub fn rtmp_url(&self, path: &str) -> String {
        format!("rtmp://{}/{}", self.rtmp, path)
    }

    pub fn flv_url(&self, path: &str) -> String {
        format!("http://{}/{}.flv", self.http, path)
    }

    pub fn ws_url(&self, path_and_query: &str) -> String {
        format!("ws://{}{}", self.http, path_and_query)
    }

    /// A chat token for `user` with `role`, valid for an hour.
    pub fn token(&self, user: &str, role: onair_server::rooms::Role) -> String {
        let keys = onair_server::auth::TokenKeys::new(TOKEN_SECRET.as_bytes());
        keys.mint(&onair_server::rooms::User::new(user, user, role), 3600)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// The value of the `/metrics` sample `series` (name and labels, as printed), or
    /// a panic when the scrape has no such sample.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = reqwest::get(self.http_url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }

    /// Waits until `path` is live, or panics after `timeout`.
    pub async fn wait_live(&self, path: &str, timeout: Duration) {
        let path = onair_media::StreamPath::parse(path).unwrap();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(stream) = self.hub.stream(&path) {
                if stream.snapshot().codecs.video_codec.is_some() {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} never went live"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Gives stream `path` a title through the API: the server then knows the stream
    /// and lets the API change its room before anyone joins it.
    pub async fn set_title(&self, path: &str, title: &str) {
        let response = reqwest::Client::new()
            .patch(self.http_url(&format!("/api/v1/streams/{path}")))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({ "title": title }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "PATCH /api/v1/streams/{path}");
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.handle.await.unwrap().unwrap();
    }
}

pub fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(FIXTURE)
}

/// Publishes the fixture to `path` at real-time pace (looping) until the task is aborted.
pub async fn spawn_publisher(server: &TestServer, path: &str) -> JoinHandle<()> {
    let url = RtmpUrl::parse(&server.rtmp_url(path)).unwrap();
    let mut client = RtmpClient::connect(&url).await.expect("connect");
    client.publish(&url.name).await.expect("publish");
    let data = std::fs::read(fixture_path()).unwrap();
    let tags = read_flv_tags(&data, 16 << 20).unwrap();
    tokio::spawn(async move {
        let _ = send_paced(&mut client, &tags, true).await;
    })
}

/// Whether an outside program can be used. When it is missing the test is skipped
/// with a printed reason, unless ONAIR_REQUIRE_INTEROP is set, which makes it fail.
pub fn tool(name: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .is_ok_and(|out| out.status.success());
    if found {
        return true;
    }
    if std::env::var_os("ONAIR_REQUIRE_INTEROP").is_some() {
        panic!("{name} is required (ONAIR_REQUIRE_INTEROP is set) but not installed");
    }
    eprintln!("skipping: {name} is not installed");
    false
}

/// Runs a program to completion with a time limit, returning (status ok, stdout, stderr).
pub async fn run_tool(program: &str, args: &[&str], timeout: Duration) -> (bool, String, String) {
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(timeout, child).await {
        Ok(Ok(out)) => (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
        Ok(Err(error)) => panic!("running {program}: {error}"),
        Err(_) => panic!("{program} {args:?} did not finish within {timeout:?}"),
    }
}

/// Like [`start_server`], but keeping its state in `data_dir`, so a second server
/// started on the same directory sees what the first one saved.
pub async fn start_server_in(
    data_dir: &std::path::Path,
    tweak: impl FnOnce(&mut Settings),
) -> TestServer {
    let data_dir = data_dir.to_owned();
    start_server(move |settings| {
        settings.data_dir = data_dir;
        tweak(settings);
    })
    .await
}
