#![allow(clippy::unwrap_used, clippy::expect_used)]

//! HLS and LL-HLS over real sockets: ffprobe and ffmpeg read the playlist, blocking
//! reload and preload hints, signed playback below the first playlist, viewers counted
//! per session, a publisher's return as a discontinuity, headers.

mod common;

use std::time::{Duration, Instant};

use common::{run_tool, spawn_publisher, start_server, tool, TestServer};
use onair_media::StreamPath;
use onair_server::config::PlaybackSettings;
use onair_server::signing::{unix_now, PlaybackSigner};

const WAIT: Duration = Duration::from_secs(20);

fn hls_url(server: &TestServer, path: &str, file: &str) -> String {
    server.http_url(&format!("/{path}/{file}"))
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::get(url).await.unwrap()
}

async fn text(url: &str) -> (u16, String) {
    let response = get(url).await;
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The media playlist URI (with its query) the multivariant playlist names.
fn variant_uri(multivariant: &str) -> String {
    multivariant
        .lines()
        .find(|l| l.starts_with("stream.m3u8"))
        .expect("a variant")
        .to_owned()
}

/// Waits until the stream's media playlist lists `segments` complete segments and
/// returns the media playlist URL (with session) and its text.
async fn wait_for_segments(server: &TestServer, path: &str, segments: usize) -> (String, String) {
    let started = Instant::now();
    loop {
        let (status, index) = text(&hls_url(server, path, "index.m3u8")).await;
        if status == 200 {
            let url = hls_url(server, path, &variant_uri(&index));
            let (status, playlist) = text(&url).await;
            if status == 200 && playlist.matches("#EXTINF").count() >= segments {
                return (url, playlist);
            }
        }
        assert!(started.elapsed() < WAIT, "no {segments} segments in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `part{msn}.{i}.m4s` the preload hint names, as (msn, part).
fn preload_hint(playlist: &str) -> (u64, u32) {
    let line = playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT"))
        .expect("a preload hint");
    let uri = line.split("URI=\"").nth(1).unwrap();
    let name = uri.split(['"', '?']).next().unwrap();
    let numbers = name.trim_start_matches("part").trim_end_matches(".m4s");
    let (msn, part) = numbers.split_once('.').unwrap();
    (msn.parse().unwrap(), part.parse().unwrap())
}

fn session_of(url: &str) -> String {
    url.split(['?', '&'])
        .find(|p| p.starts_with("session="))
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn ffprobe_reads_h264_and_aac_from_the_playlist() {
    if !tool("ffprobe") {
        return;
    }
    let server = start_server(|_| {}).await;
    let publisher = spawn_publisher(&server, "live/probe").await;
    wait_for_segments(&server, "live/probe", 2).await;
    let url = hls_url(&server, "live/probe", "index.m3u8");
    let (ok, out, err) = run_tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height,sample_rate",
            "-of",
            "compact",
            &url,
        ],
        WAIT,
    )
    .await;
    assert!(ok, "ffprobe failed: {err}");
    assert!(
        out.contains("codec_name=h264|width=640|height=360"),
        "{out}"
    );
    assert!(out.contains("codec_name=aac"), "{out}");
    publisher.abort();
    server.stop().await;
}

#[tokio::test]
async fn ffmpeg_copies_ten_seconds_that_decode_without_errors_or_gaps() {
    if !tool("ffmpeg") || !tool("ffprobe") {
        return;
    }
    let server = start_server(|_| {}).await;
    let publisher = spawn_publisher(&server, "live/copy").await;
    wait_for_segments(&server, "live/copy", 2).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("copy.mp4");
    let out = out.to_str().unwrap();
    let url = hls_url(&server, "live/copy", "index.m3u8");
    let (ok, _, err) = run_tool(
        "ffmpeg",
        &[
            "-v", "error", "-i", &url, "-t", "10", "-c", "copy", "-y", out,
        ],
        Duration::from_secs(60),
    )
    .await;
    assert!(ok, "ffmpeg copy failed: {err}");
    let (ok, _, err) = run_tool(
        "ffmpeg",
        &["-v", "error", "-i", out, "-f", "null", "-"],
        WAIT,
    )
    .await;
    assert!(ok && err.trim().is_empty(), "decode errors: {err}");
    let (ok, pts, err) = run_tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v",
            "-show_entries",
            "packet=dts_time",
            "-of",
            "csv=p=0",
            out,
        ],
        WAIT,
    )
    .await;
    assert!(ok, "{err}");
    let times: Vec<f64> = pts.lines().filter_map(|l| l.trim().parse().ok()).collect();
    assert!(times.len() > 250, "only {} video packets", times.len());
    // Frames are 1/30 s apart; where the publisher loops the fixture its own timeline
    // has a 133 ms seam (the pass is as long as its last audio frame), and nothing more.
    // So a step over one and a half frames is allowed only once per pass of the fixture (6.1 s).
    let mut seams = 0;
    for pair in times.windows(2) {
        let step = pair[1] - pair[0];
        assert!(
            (0.0..0.15).contains(&step),
            "video timestamps jump by {step} s at {}",
            pair[0]
        );
        seams += usize::from(step > 0.05);
    }
    let passes = (times.last().unwrap() - times[0]) / 6.1;
    assert!(
        seams as f64 <= passes.ceil(),
        "{seams} timestamp gaps over one and a half frames in {passes:.1} passes of the fixture"
    );
    publisher.abort();
    server.stop().await;
}

#[tokio::test]
async fn blocking_reload_and_preload_hints_wait_for_the_next_part() {
    let server = start_server(|_| {}).await;
    let publisher = spawn_publisher(&server, "live/block").await;
    let (url, playlist) = wait_for_segments(&server, "live/block", 1).await;
    assert!(playlist.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES"));
    assert!(playlist.contains("#EXT-X-PART-INF:PART-TARGET="));
    let session = session_of(&url);
    let (msn, part) = preload_hint(&playlist);
    let base = hls_url(&server, "live/block", "stream.m3u8");

    // The hinted part is held until it exists, then served.
    let part_url = hls_url(
        &server,
        "live/block",
        &format!("part{msn}.{part}.m4s?{session}"),
    );
    let response = get(&part_url).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "video/iso.segment");
    assert!(response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age"));
    let bytes = response.bytes().await.unwrap();
    assert_eq!(&bytes[4..8], b"moof", "a part is a CMAF fragment");

    // A blocking reload for the part after that returns a playlist that lists it.
    let (next_msn, next_part) = (msn, part + 1);
    let blocked = format!("{base}?_HLS_msn={next_msn}&_HLS_part={next_part}&{session}");
    let (status, reloaded) = text(&blocked).await;
    assert_eq!(status, 200);
    let listed = format!("part{next_msn}.{next_part}.m4s");
    let next_segment = format!("part{}.0.m4s", next_msn + 1);
    assert!(
        reloaded.contains(&listed) || reloaded.contains(&next_segment),
        "{listed} not in\n{reloaded}"
    );

    // Too far ahead, and a part without a segment, are the client's error.
    let far = format!("{base}?_HLS_msn={}&{session}", msn + 100);
    let response = get(&far).await;
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "hls_msn_too_far_ahead");
    let (status, _) = text(&format!("{base}?_HLS_part=1&{session}")).await;
    assert_eq!(status, 400);

    // A delta update skips older segments once the playlist is long enough.
    let (status, delta) = text(&format!("{base}?_HLS_skip=YES&{session}")).await;
    assert_eq!(status, 200);
    assert!(delta.starts_with("#EXTM3U"));
    publisher.abort();
    server.stop().await;
}

#[tokio::test]
async fn playlists_and_media_have_their_types_and_cors() {
    let server = start_server(|s| s.auth.allowed_origins = vec!["*".into()]).await;
    let publisher = spawn_publisher(&server, "live/types").await;
    let (url, playlist) = wait_for_segments(&server, "live/types", 1).await;
    let client = reqwest::Client::new();
    let response = client
        .get(&url)
        .header("origin", "http://player.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.apple.mpegurl"
    );
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://player.example"
    );
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let map = playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-MAP"))
        .unwrap();
    let init = map.split('"').nth(1).unwrap();
    let response = get(&hls_url(&server, "live/types", init)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "video/mp4");
    let bytes = response.bytes().await.unwrap();
    assert_eq!(&bytes[4..8], b"ftyp");
    let segment = playlist
        .lines()
        .find(|l| l.starts_with("seg"))
        .expect("a segment uri");
    let response = get(&hls_url(&server, "live/types", segment)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "video/iso.segment");

    let (status, body) = text(&hls_url(&server, "live/nobody", "index.m3u8")).await;
    assert_eq!(status, 404);
    assert!(body.contains("\"error\""));
    let (status, _) = text(&hls_url(&server, "live/types", "seg999999.m4s")).await;
    assert_eq!(status, 404);
    let (status, _) = text(&hls_url(&server, "live/types", "nonsense.txt")).await;
    assert_eq!(status, 404);
    publisher.abort();
    server.stop().await;
}

#[tokio::test]
async fn signed_playback_carries_the_signature_onto_every_uri() {
    let secret = "hls-playback-secret-0123456789";
    let server = start_server(|s| {
        s.playback.signed = true;
        s.playback.secrets = vec![secret.to_owned()];
    })
    .await;
    let publisher = spawn_publisher(&server, "live/signed").await;
    server.wait_live("live/signed", WAIT).await;
    let signer = PlaybackSigner::new(&[secret.as_bytes().to_vec()], &PlaybackSettings::default());
    let query = signer.sign(
        &StreamPath::parse("live/signed").unwrap(),
        unix_now() + 3600,
    );

    let (status, _) = text(&hls_url(&server, "live/signed", "index.m3u8")).await;
    assert_eq!(status, 403, "unsigned playlist refused");
    let started = Instant::now();
    let playlist = loop {
        let (status, index) = text(&hls_url(
            &server,
            "live/signed",
            &format!("index.m3u8?{query}"),
        ))
        .await;
        assert_eq!(status, 200);
        let variant = variant_uri(&index);
        assert!(
            variant.contains(&query),
            "variant URI carries the signature: {variant}"
        );
        let (status, playlist) = text(&hls_url(&server, "live/signed", &variant)).await;
        assert_eq!(status, 200);
        if playlist.contains("#EXTINF") {
            break playlist;
        }
        assert!(started.elapsed() < WAIT);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let segment = playlist.lines().find(|l| l.starts_with("seg")).unwrap();
    assert!(segment.contains(&query), "{segment}");
    let (status, _) = text(&hls_url(&server, "live/signed", segment)).await;
    assert_eq!(status, 200);
    let bare = segment.split('?').next().unwrap();
    let (status, _) = text(&hls_url(&server, "live/signed", bare)).await;
    assert_eq!(status, 403, "a segment without the signature is refused");
    publisher.abort();
    server.stop().await;
}

#[tokio::test]
async fn players_count_as_viewers_per_session_until_idle() {
    let server = start_server(|s| s.hls.session_timeout_ms = 1500).await;
    let publisher = spawn_publisher(&server, "live/count").await;
    let (first, _) = wait_for_segments(&server, "live/count", 1).await;
    let (second, _) = wait_for_segments(&server, "live/count", 1).await;
    assert_ne!(session_of(&first), session_of(&second));
    let client = reqwest::Client::new();
    let admin_get = |path: &'static str| {
        let request = client
            .get(server.http_url(path))
            .bearer_auth(common::ADMIN_TOKEN);
        async move {
            let json: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
            json
        }
    };
    let hls_viewers = || async {
        let stream = admin_get("/api/v1/streams/live/count").await;
        stream["viewers"]["hls"].as_u64().unwrap()
    };
    // Polling playlists keeps both sessions; the count follows within a sweep.
    let started = Instant::now();
    loop {
        text(&first).await;
        text(&second).await;
        if hls_viewers().await == 2 {
            break;
        }
        assert!(started.elapsed() < WAIT, "two HLS viewers never counted");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The room's viewer count includes them (it follows media viewers within a second).
    let started = Instant::now();
    loop {
        text(&first).await;
        text(&second).await;
        let room = admin_get("/api/v1/rooms/live/count").await;
        if room["viewers"] == 2 {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "the room never counted them: {room}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // And /metrics, from the same sweep.
    let metrics = client
        .get(server.http_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("onair_viewers{protocol=\"hls\"} 2"),
        "{metrics}"
    );
    // A play per multivariant fetch without a session (the waits above made several).
    let plays: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("onair_plays_total{protocol=\"hls\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(plays >= 2, "{plays}");
    // Silence: they stop counting.
    let started = Instant::now();
    while hls_viewers().await != 0 {
        assert!(started.elapsed() < WAIT, "idle sessions never expired");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    publisher.abort();
    server.stop().await;
}

#[tokio::test]
async fn a_returning_publisher_continues_the_playlist_after_a_discontinuity() {
    let server = start_server(|_| {}).await;
    let publisher = spawn_publisher(&server, "live/again").await;
    let (url, playlist) = wait_for_segments(&server, "live/again", 1).await;
    assert!(!playlist.contains("#EXT-X-DISCONTINUITY\n"));
    publisher.abort();
    let started = Instant::now();
    while server
        .hub
        .stream(&StreamPath::parse("live/again").unwrap())
        .is_some()
    {
        assert!(started.elapsed() < WAIT);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Between publishers the playlist is still there.
    let (status, _) = text(&url).await;
    assert_eq!(status, 200);
    let publisher = spawn_publisher(&server, "live/again").await;
    let started = Instant::now();
    loop {
        let (status, playlist) = text(&url).await;
        assert_eq!(status, 200);
        if playlist.contains("#EXT-X-DISCONTINUITY\n") {
            let after = playlist.split("#EXT-X-DISCONTINUITY\n").nth(1).unwrap();
            if after.contains("#EXTINF") {
                break;
            }
        }
        assert!(started.elapsed() < WAIT, "no discontinuity:\n{playlist}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    publisher.abort();
    server.stop().await;
}

#[tokio::test]
async fn the_legacy_mpeg_ts_rendition_decodes() {
    if !tool("ffmpeg") {
        return;
    }
    let server = start_server(|s| s.hls.legacy_ts = true).await;
    let publisher = spawn_publisher(&server, "live/ts").await;
    wait_for_segments(&server, "live/ts", 2).await;
    let url = hls_url(&server, "live/ts", "ts.m3u8");
    let (status, playlist) = text(&url).await;
    assert_eq!(status, 200);
    assert!(!playlist.contains("#EXT-X-MAP"), "{playlist}");
    let segment = playlist.lines().find(|l| l.starts_with("seg")).unwrap();
    assert!(segment.contains(".ts"), "{segment}");
    let response = get(&hls_url(&server, "live/ts", segment)).await;
    assert_eq!(response.headers()["content-type"], "video/mp2t");
    let bytes = response.bytes().await.unwrap();
    assert_eq!(bytes[0], 0x47, "a TS packet sync byte");
    let (ok, _, err) = run_tool(
        "ffmpeg",
        &["-v", "error", "-i", &url, "-t", "3", "-f", "null", "-"],
        Duration::from_secs(60),
    )
    .await;
    assert!(ok && err.trim().is_empty(), "decode errors: {err}");
    // Off by default.
    let plain = start_server(|_| {}).await;
    let publisher2 = spawn_publisher(&plain, "live/nots").await;
    wait_for_segments(&plain, "live/nots", 1).await;
    let (status, _) = text(&hls_url(&plain, "live/nots", "ts.m3u8")).await;
    assert_eq!(status, 404);
    publisher.abort();
    publisher2.abort();
    server.stop().await;
    plain.stop().await;
}

#[tokio::test]
async fn ended_publishes_keep_at_most_max_lingering_playlists() {
    let server = start_server(|s| s.hls.max_lingering = 1).await;
    let gauge = || async {
        let metrics = get(&server.http_url("/metrics"))
            .await
            .text()
            .await
            .unwrap();
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("onair_hls_playlists "))
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    for path in ["live/gone1", "live/gone2"] {
        let publisher = spawn_publisher(&server, path).await;
        wait_for_segments(&server, path, 1).await;
        publisher.abort();
    }
    let started = Instant::now();
    while gauge().await != 1 {
        assert!(started.elapsed() < WAIT, "lingering playlists not trimmed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The one kept is the one whose publisher left last.
    let (status, _) = text(&hls_url(&server, "live/gone2", "stream.m3u8")).await;
    assert_eq!(status, 200);
    let (status, _) = text(&hls_url(&server, "live/gone1", "stream.m3u8")).await;
    assert_eq!(status, 404);
    server.stop().await;
}
