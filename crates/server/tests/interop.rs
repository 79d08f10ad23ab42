#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Interop with programs nobody here wrote: ffmpeg/ffprobe, rtmpdump (librtmp) and
//! GStreamer. Each test skips with a printed reason when its tool is missing, unless
//! ONAIR_REQUIRE_INTEROP is set (as in CI), which turns the skip into a failure.

mod common;

use std::time::Duration;

use common::{run_tool, spawn_publisher, start_server, tool, TestServer};
use tokio::process::{Child, Command};

const WAIT: Duration = Duration::from_secs(15);

/// Streams as ffprobe reports them: (codec, width, height, frame rate).
async fn probe(url: &str) -> Vec<(String, u64, u64, String)> {
    let (ok, stdout, stderr) = run_tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-rw_timeout",
            "10000000",
            "-show_entries",
            "stream=codec_name,width,height,r_frame_rate",
            "-of",
            "json",
            url,
        ],
        Duration::from_secs(30),
    )
    .await;
    assert!(ok, "ffprobe {url} failed: {stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let mut streams: Vec<_> = json["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["codec_name"].as_str().unwrap_or_default().to_owned(),
                s["width"].as_u64().unwrap_or(0),
                s["height"].as_u64().unwrap_or(0),
                s["r_frame_rate"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    streams.sort();
    streams
}

fn spawn_ffmpeg(args: &[&str]) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ffmpeg")
}

async fn ffmpeg_publishes_fixture(server: &TestServer, path: &str) -> Child {
    let fixture = common::fixture_path();
    let url = server.rtmp_url(path);
    let child = spawn_ffmpeg(&[
        "-re",
        "-stream_loop",
        "-1",
        "-i",
        fixture.to_str().unwrap(),
        "-c",
        "copy",
        "-f",
        "flv",
        &url,
    ]);
    server.wait_live(path, WAIT).await;
    child
}

#[tokio::test]
async fn ffmpeg_copy_publish_probes_as_h264_aac_over_rtmp_and_http_flv() {
    if !tool("ffmpeg") || !tool("ffprobe") {
        return;
    }
    let server = start_server(|_| {}).await;
    let mut ffmpeg = ffmpeg_publishes_fixture(&server, "live/copy").await;
    let expected = vec![
        ("aac".to_owned(), 0, 0, "0/0".to_owned()),
        ("h264".to_owned(), 640, 360, "30/1".to_owned()),
    ];
    assert_eq!(probe(&server.rtmp_url("live/copy")).await, expected);
    assert_eq!(probe(&server.flv_url("live/copy")).await, expected);
    let snapshot = server.hub.streams()[0].snapshot();
    assert_eq!(snapshot.codecs.width, Some(640));
    assert_eq!(snapshot.codecs.sample_rate, Some(44_100));
    ffmpeg.kill().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn ffmpeg_live_encode_publishes_and_plays() {
    if !tool("ffmpeg") || !tool("ffprobe") {
        return;
    }
    let server = start_server(|_| {}).await;
    let url = server.rtmp_url("live/encode");
    let mut ffmpeg = spawn_ffmpeg(&[
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x480:rate=30",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=1000:sample_rate=48000",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-tune",
        "zerolatency",
        "-g",
        "60",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-f",
        "flv",
        &url,
    ]);
    server.wait_live("live/encode", WAIT).await;
    let streams = probe(&server.rtmp_url("live/encode")).await;
    assert_eq!(streams[0].0, "aac");
    assert_eq!(streams[1], ("h264".to_owned(), 640, 480, "30/1".to_owned()));
    assert_eq!(probe(&server.flv_url("live/encode")).await, streams);
    ffmpeg.kill().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn http_flv_recording_decodes_without_errors() {
    if !tool("ffmpeg") {
        return;
    }
    let server = start_server(|_| {}).await;
    let mut ffmpeg = ffmpeg_publishes_fixture(&server, "live/rec").await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.flv");
    let out = out.to_str().unwrap();
    let (ok, _, stderr) = run_tool(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-nostdin",
            "-i",
            &server.flv_url("live/rec"),
            "-t",
            "5",
            "-c",
            "copy",
            out,
        ],
        Duration::from_secs(30),
    )
    .await;
    assert!(ok, "recording failed: {stderr}");
    let (ok, _, stderr) = run_tool(
        "ffmpeg",
        &["-v", "error", "-nostdin", "-i", out, "-f", "null", "-"],
        Duration::from_secs(30),
    )
    .await;
    assert!(ok && stderr.trim().is_empty(), "decode errors: {stderr}");
    ffmpeg.kill().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn rtmpdump_plays_with_librtmp_handshake() {
    if !tool("rtmpdump") || !tool("ffprobe") {
        return;
    }
    let server = start_server(|_| {}).await;
    let publisher = spawn_publisher(&server, "live/dump").await;
    server.wait_live("live/dump", WAIT).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dump.flv");
    let out = out.to_str().unwrap();
    let url = server.rtmp_url("live/dump");
    // rtmpdump never ends a live stream by itself; let it record for a while.
    let mut child = Command::new("rtmpdump")
        .args(["-q", "--live", "-r", &url, "-o", out])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(child.try_wait().unwrap().is_none(), "rtmpdump exited early");
    child.kill().await.unwrap();
    let streams = probe(out).await;
    assert!(
        streams.iter().any(|s| s.0 == "h264" && s.1 == 640),
        "{streams:?}"
    );
    assert!(streams.iter().any(|s| s.0 == "aac"), "{streams:?}");
    publisher.abort();
    server.stop().await;
}

#[tokio::test]
async fn gstreamer_rtmp2sink_publishes() {
    if !tool("gst-launch-1.0") {
        return;
    }
    let server = start_server(|_| {}).await;
    let location = format!("location={}", server.rtmp_url("live/gst"));
    let pipeline = [
        "-q",
        "videotestsrc",
        "is-live=true",
        "num-buffers=300",
        "!",
        "video/x-raw,width=320,height=240,framerate=30/1",
        "!",
        "x264enc",
        "tune=zerolatency",
        "key-int-max=30",
        "!",
        "h264parse",
        "!",
        "flvmux",
        "name=mux",
        "streamable=true",
        "!",
        "rtmp2sink",
        &location,
        "audiotestsrc",
        "is-live=true",
        "!",
        "audioconvert",
        "!",
        "avenc_aac",
        "!",
        "aacparse",
        "!",
        "mux.",
    ];
    let mut gst = Command::new("gst-launch-1.0")
        .args(pipeline)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    server.wait_live("live/gst", WAIT).await;
    let path = onair_media::StreamPath::parse("live/gst").unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let codecs = server.hub.stream(&path).unwrap().snapshot().codecs;
        if codecs.audio_codec.is_some() {
            assert_eq!(codecs.video_codec.as_deref(), Some("h264"));
            assert_eq!((codecs.width, codecs.height), (Some(320), Some(240)));
            assert_eq!(codecs.audio_codec.as_deref(), Some("aac"));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no audio header from gstreamer"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if tool("ffprobe") {
        let streams = probe(&server.flv_url("live/gst")).await;
        assert!(
            streams.iter().any(|s| s.0 == "h264" && s.1 == 320),
            "{streams:?}"
        );
    }
    gst.kill().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn ffmpeg_second_publisher_is_refused_and_viewers_end_when_publisher_stops() {
    if !tool("ffmpeg") {
        return;
    }
    let server = start_server(|_| {}).await;
    let mut first = ffmpeg_publishes_fixture(&server, "live/two").await;
    let fixture = common::fixture_path();
    let url = server.rtmp_url("live/two");
    let (ok, _, stderr) = run_tool(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-nostdin",
            "-re",
            "-i",
            fixture.to_str().unwrap(),
            "-c",
            "copy",
            "-f",
            "flv",
            &url,
        ],
        Duration::from_secs(30),
    )
    .await;
    assert!(
        !ok,
        "second publisher should be refused; ffmpeg said: {stderr}"
    );

    // A viewer over each protocol, then the publisher stops: both viewers end.
    let rtmp_viewer = spawn_ffmpeg(&["-i", &url, "-c", "copy", "-f", "null", "-"]);
    let flv_viewer = spawn_ffmpeg(&[
        "-i",
        &server.flv_url("live/two"),
        "-c",
        "copy",
        "-f",
        "null",
        "-",
    ]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    first.kill().await.unwrap();
    for mut viewer in [rtmp_viewer, flv_viewer] {
        tokio::time::timeout(WAIT, viewer.wait())
            .await
            .expect("viewer ends when the publisher stops")
            .unwrap();
    }
    server.stop().await;
}
