#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Recording to disk against a real server: a publish (its publisher killed mid-stream)
//! becomes a file that ffprobe and ffmpeg read (h264 + aac, the broadcast's duration, no
//! decode errors) and an `on_record_done` notification; so does a server shutdown in
//! the middle of a broadcast; rotation by duration gives files that each decode on
//! their own; an unwritable directory costs the recording, never the live stream; the
//! REST API lists, downloads (whole and by range) and deletes recordings, refuses ids
//! that try to leave the directory, and needs the admin token.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use common::{run_tool, spawn_publisher, start_server, tool, TestServer, ADMIN_TOKEN};
use futures_util::StreamExt;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);
/// The fixture's GOP: a recording may differ from the broadcast by at most this.
const GOP: f64 = 1.0;

// ---------------------------------------------------------------- helpers

/// A webhook receiver that keeps every JSON body.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    async fn start() -> Self {
        let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
        let app = Router::new()
            .route(
                "/hooks",
                post(
                    |State(bodies): State<Arc<Mutex<Vec<Value>>>>, Json(body): Json<Value>| async move {
                        bodies.lock().unwrap().push(body);
                    },
                ),
            )
            .with_state(Arc::clone(&bodies));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}/hooks"),
            bodies,
        }
    }

    async fn wait_for(&self, event: &str, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            let found: Vec<Value> = self
                .bodies
                .lock()
                .unwrap()
                .iter()
                .filter(|b| b["event"] == event)
                .cloned()
                .collect();
            if found.len() >= count {
                return found;
            }
            assert!(Instant::now() < deadline, "no {count} {event} in time");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn recordings_dir(server: &TestServer) -> PathBuf {
    server.settings.data_dir.join("recordings")
}

/// Publishes the fixture to `path` for `length`, then kills the publisher (its TCP
/// connection drops without an unpublish). Returns how long it was live.
async fn publish_for(server: &TestServer, path: &str, length: Duration) -> Duration {
    let publisher = spawn_publisher(server, path).await;
    let started = Instant::now();
    server.wait_live(path, Duration::from_secs(10)).await;
    tokio::time::sleep_until((started + length).into()).await;
    publisher.abort();
    let _ = publisher.await;
    started.elapsed()
}

fn admin(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request.bearer_auth(ADMIN_TOKEN)
}

async fn list(server: &TestServer, query: &str) -> Value {
    let response =
        admin(reqwest::Client::new().get(server.http_url(&format!("/api/v1/recordings{query}"))))
            .send()
            .await
            .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Waits until nothing is being written any more and returns the list.
async fn wait_finished(server: &TestServer, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let listed = list(server, "").await;
        let recordings = listed["recordings"].as_array().unwrap().clone();
        if recordings.len() >= count && recordings.iter().all(|r| r["in_progress"] == false) {
            return recordings;
        }
        assert!(
            Instant::now() < deadline,
            "recordings never finished: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// (codec names, duration in seconds) as ffprobe reads the file.
async fn probe(file: &Path) -> (Vec<String>, f64) {
    let (ok, stdout, stderr) = run_tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name:format=duration",
            "-of",
            "json",
            file.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    )
    .await;
    assert!(ok, "ffprobe failed on {}: {stderr}", file.display());
    let json: Value = serde_json::from_str(&stdout).unwrap();
    let mut codecs: Vec<String> = json["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_name"].as_str().unwrap().to_owned())
        .collect();
    codecs.sort();
    let duration = json["format"]["duration"]
        .as_str()
        .unwrap_or_else(|| panic!("no duration for {}: {stdout}", file.display()))
        .parse()
        .unwrap();
    (codecs, duration)
}

/// Decodes the whole file; panics on any error ffmpeg reports.
async fn decode_cleanly(file: &Path) {
    let (ok, _, stderr) = run_tool(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-i",
            file.to_str().unwrap(),
            "-f",
            "null",
            "-",
        ],
        Duration::from_secs(120),
    )
    .await;
    assert!(
        ok && stderr.trim().is_empty(),
        "decoding {} reported: {stderr}",
        file.display()
    );
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_becomes_one_file_that_decodes_and_is_announced() {
    if !tool("ffprobe") || !tool("ffmpeg") {
        return;
    }
    let receiver = Receiver::start().await;
    let url = receiver.url.clone();
    let server = start_server(move |s| {
        s.record.apps = vec!["live".into()];
        s.webhooks.url = Some(url);
        s.webhooks.events = vec![onair_server::webhooks::EventName::OnRecordDone];
    })
    .await;
    // The publisher is killed mid-stream, without an unpublish.
    let live_for = publish_for(&server, "live/rec", Duration::from_secs(6)).await;

    let done = receiver.wait_for("on_record_done", 1).await;
    let recordings = wait_finished(&server, 1).await;
    assert_eq!(recordings.len(), 1, "{recordings:?}");
    let recording = &recordings[0];
    let file = recordings_dir(&server).join(recording["file"].as_str().unwrap());
    assert_eq!(
        files_in(file.parent().unwrap()),
        std::slice::from_ref(&file)
    );
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(
        name.len() == "20261124T031500Z.flv".len() && name.ends_with("Z.flv"),
        "{name}"
    );

    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(
        &bytes[..5],
        b"FLV\x01\x05",
        "FLV header with audio and video"
    );
    let (codecs, duration) = probe(&file).await;
    assert_eq!(codecs, ["aac", "h264"]);
    let broadcast = live_for.as_secs_f64();
    assert!(
        (duration - broadcast).abs() <= GOP,
        "recorded {duration} s of a {broadcast} s broadcast"
    );
    decode_cleanly(&file).await;

    let event = &done[0];
    assert_eq!(event["stream"], "live/rec");
    assert_eq!(event["recording"], recording["id"]);
    assert_eq!(event["file"], recording["file"]);
    assert_eq!(event["path"], file.to_str().unwrap());
    assert_eq!(event["bytes"], bytes.len() as u64);
    let event_duration = event["duration_ms"].as_u64().unwrap() as f64 / 1000.0;
    assert!(
        (event_duration - broadcast).abs() <= GOP,
        "on_record_done says {event_duration} s of a {broadcast} s broadcast"
    );
    assert!(event["ended_at"].as_u64().unwrap() >= event["started_at"].as_u64().unwrap());
    assert!(server.metric("onair_record_files_total").await >= 1.0);
    assert_eq!(
        server.metric("onair_record_bytes_total").await,
        bytes.len() as f64
    );
    assert_eq!(server.metric("onair_recordings_active").await, 0.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_by_duration_gives_files_that_each_decode_on_their_own() {
    if !tool("ffprobe") || !tool("ffmpeg") {
        return;
    }
    let server = start_server(|s| {
        s.record.apps = vec![onair_server::record::ALL_APPS.into()];
        s.record.max_duration_s = 2;
    })
    .await;
    publish_for(&server, "show/rot", Duration::from_secs(7)).await;
    let recordings = wait_finished(&server, 3).await;
    let files = files_in(&recordings_dir(&server).join("show/rot"));
    assert_eq!(files.len(), recordings.len());
    assert!(files.len() >= 3, "{files:?}");
    let mut total = 0.0;
    for file in &files {
        let (codecs, duration) = probe(file).await;
        assert_eq!(codecs, ["aac", "h264"], "{}", file.display());
        // Cut at the first keyframe past 2 s: 2 s plus at most one GOP.
        assert!(
            duration <= 2.0 + GOP + 0.1,
            "{}: {duration} s",
            file.display()
        );
        decode_cleanly(file).await;
        total += duration;
    }
    assert!(total >= 7.0 - 2.0 * GOP, "{total} s recorded in all");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_directory_costs_the_recording_not_the_stream() {
    let blocker = tempfile::NamedTempFile::new().unwrap();
    // A file where the recordings directory should be: nothing can be created under it
    // (root ignores permissions, so chmod would prove nothing).
    let dir = blocker.path().to_owned();
    let server = start_server(move |s| {
        s.record.apps = vec!["live".into()];
        s.record.dir = Some(dir);
        s.record.retry_interval_ms = 500;
    })
    .await;
    let publisher = spawn_publisher(&server, "live/full").await;
    server.wait_live("live/full", Duration::from_secs(10)).await;
    let response = reqwest::get(server.flv_url("live/full")).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();

    let errors = r#"onair_record_errors_total{reason="create"}"#;
    let deadline = Instant::now() + WAIT;
    while server.metric(errors).await < 2.0 {
        assert!(Instant::now() < deadline, "no recording error counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The viewer keeps getting media after the failures.
    let mut received = 0;
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let chunk = tokio::time::timeout(WAIT, body.next()).await.unwrap();
        received += chunk.expect("the viewer's stream ended").unwrap().len();
    }
    assert!(received > 10_000, "{received} bytes in 2 s");
    assert!(server
        .hub
        .stream(&onair_media::StreamPath::parse("live/full").unwrap())
        .is_some());
    assert_eq!(server.metric("onair_recordings_active").await, 0.0);
    assert!(std::fs::metadata(blocker.path()).unwrap().is_file());
    publisher.abort();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_lists_downloads_and_deletes_recordings_and_nothing_else() {
    let server = start_server(|s| s.record.apps = vec!["live".into()]).await;
    let client = reqwest::Client::new();
    let publisher = spawn_publisher(&server, "live/api").await;
    server.wait_live("live/api", Duration::from_secs(10)).await;

    // While it is written: listed as in progress, not deletable.
    let deadline = Instant::now() + WAIT;
    let live = loop {
        let listed = list(&server, "?stream=live/api").await;
        if let Some(first) = listed["recordings"].as_array().unwrap().first() {
            break first.clone();
        }
        assert!(Instant::now() < deadline, "no recording listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(live["in_progress"], true);
    assert!(live["ended_at"].is_null());
    let id = live["id"].as_str().unwrap().to_owned();
    let url = server.http_url(&format!("/api/v1/recordings/{id}"));
    let refused = admin(client.delete(&url)).send().await.unwrap();
    assert_eq!(refused.status(), 409);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "recording_in_progress");

    tokio::time::sleep(Duration::from_secs(2)).await;
    publisher.abort();
    let recordings = wait_finished(&server, 1).await;
    let recording = &recordings[0];
    assert_eq!(recording["id"], id.as_str());
    assert_eq!(recording["stream"], "live/api");
    assert_eq!(recording["format"], "flv");
    assert!(recording["duration_seconds"].is_u64() && recording["ended_at"].is_u64());
    let file = recordings_dir(&server).join(recording["file"].as_str().unwrap());
    let on_disk = std::fs::read(&file).unwrap();
    assert_eq!(recording["bytes"], on_disk.len() as u64);
    assert!(id.starts_with("live.api.") && id.ends_with(".flv"), "{id}");

    // Filters.
    let other = list(&server, "?stream=live/other").await;
    assert_eq!(other["recordings"].as_array().unwrap().len(), 0);
    assert_eq!(other["truncated"], false);
    let bad = admin(client.get(server.http_url("/api/v1/recordings?stream=nope")))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // Download: whole, and a range.
    let whole = admin(client.get(&url)).send().await.unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["content-type"], "video/x-flv");
    assert_eq!(
        whole.headers()["content-length"],
        on_disk.len().to_string().as_str()
    );
    assert!(whole.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains(file.file_name().unwrap().to_str().unwrap()));
    assert_eq!(whole.bytes().await.unwrap(), on_disk);
    let range = admin(client.get(&url))
        .header("range", "bytes=3-12")
        .send()
        .await
        .unwrap();
    assert_eq!(range.status(), 206);
    assert_eq!(range.headers()["content-type"], "video/x-flv");
    assert_eq!(
        range.headers()["content-range"],
        format!("bytes 3-12/{}", on_disk.len()).as_str()
    );
    assert_eq!(range.bytes().await.unwrap(), on_disk[3..=12]);
    let past_end = admin(client.get(&url))
        .header("range", format!("bytes={}-", on_disk.len() + 10))
        .send()
        .await
        .unwrap();
    assert_eq!(past_end.status(), 416);

    // The admin token is needed.
    assert_eq!(client.get(&url).send().await.unwrap().status(), 401);
    let wrong = client.get(&url).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status(), 403);
    let listing = client
        .get(server.http_url("/api/v1/recordings"))
        .send()
        .await
        .unwrap();
    assert_eq!(listing.status(), 401);
    assert_eq!(client.delete(&url).send().await.unwrap().status(), 401);

    // Ids that try to reach elsewhere name nothing. Something worth reaching exists.
    std::fs::write(recordings_dir(&server).join("secret.flv"), b"x").unwrap();
    assert!(server.settings.data_dir.join("onair.db").exists());
    for attempt in [
        "..",
        "..%2F..%2Fonair.db",
        "%2E%2E",
        "live.api.%2E%2E.flv",
        "..%2Fsecret.flv",
        "secret.flv",
        "live.api..flv",
        "live.api.20261124T031500Z.flv",
        "live%2Fapi%2F..%2F..%2Fsecret.flv",
    ] {
        let raw = server.http_url(&format!("/api/v1/recordings/{attempt}"));
        for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
            let response = admin(client.request(method.clone(), &raw))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            assert!(
                status == 404 || status == 400,
                "{method} {attempt}: {status}"
            );
            let body: Value = response.json().await.unwrap();
            assert!(body["error"]["code"].is_string(), "{body}");
        }
    }
    assert!(recordings_dir(&server).join("secret.flv").exists());

    // Delete.
    let deleted = admin(client.delete(&url)).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert!(!file.exists());
    assert_eq!(admin(client.get(&url)).send().await.unwrap().status(), 404);
    assert_eq!(
        admin(client.delete(&url)).send().await.unwrap().status(),
        404
    );
    let after = list(&server, "").await;
    assert_eq!(after["recordings"].as_array().unwrap().len(), 0, "{after}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fmp4_recordings_decode_and_last_the_broadcast() {
    if !tool("ffprobe") || !tool("ffmpeg") {
        return;
    }
    let server = start_server(|s| {
        s.record.apps = vec!["live".into()];
        s.record.format = onair_server::record::RecordFormat::Fmp4;
    })
    .await;
    let live_for = publish_for(&server, "live/mp4", Duration::from_secs(6)).await;
    let recordings = wait_finished(&server, 1).await;
    assert_eq!(recordings.len(), 1, "{recordings:?}");
    assert_eq!(recordings[0]["format"], "fmp4");
    let file = recordings_dir(&server).join(recordings[0]["file"].as_str().unwrap());
    assert!(
        file.to_str().unwrap().ends_with("Z.mp4"),
        "{}",
        file.display()
    );
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(&bytes[4..8], b"ftyp");
    let (codecs, duration) = probe(&file).await;
    assert_eq!(codecs, ["aac", "h264"]);
    let broadcast = live_for.as_secs_f64();
    assert!(
        (duration - broadcast).abs() <= GOP,
        "recorded {duration} s of a {broadcast} s broadcast"
    );
    decode_cleanly(&file).await;
    let download = admin(reqwest::Client::new().get(server.http_url(&format!(
        "/api/v1/recordings/{}",
        recordings[0]["id"].as_str().unwrap()
    ))))
    .send()
    .await
    .unwrap();
    assert_eq!(download.headers()["content-type"], "video/mp4");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_shutdown_finishes_the_file_and_announces_it() {
    if !tool("ffprobe") || !tool("ffmpeg") {
        return;
    }
    let receiver = Receiver::start().await;
    let url = receiver.url.clone();
    // Its own data dir, which outlives the server.
    let data_dir = tempfile::tempdir().unwrap();
    let server = common::start_server_in(data_dir.path(), move |s| {
        s.record.apps = vec!["live".into()];
        s.webhooks.url = Some(url);
        s.webhooks.events = vec![onair_server::webhooks::EventName::OnRecordDone];
    })
    .await;
    let publisher = spawn_publisher(&server, "live/stop").await;
    server.wait_live("live/stop", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let dir = recordings_dir(&server).join("live/stop");
    server.stop().await;
    publisher.abort();

    let done = receiver.wait_for("on_record_done", 1).await;
    let files = files_in(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(done[0]["path"], files[0].to_str().unwrap());
    let (codecs, duration) = probe(&files[0]).await;
    assert_eq!(codecs, ["aac", "h264"]);
    assert!(
        (2.0..=4.0).contains(&duration),
        "{duration} s of a 3 s broadcast"
    );
    decode_cleanly(&files[0]).await;
}
