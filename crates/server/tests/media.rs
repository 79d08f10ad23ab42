#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The media path end to end over real sockets, with onair's own RTMP client:
//! publish, play (RTMP and HTTP-FLV), GOP cache, refusals, endings, slow viewers.

mod common;

use std::time::Duration;

use common::{spawn_publisher, start_server};
use futures_util::StreamExt;
use onair_rtmp::{ClientEvent, MediaKind};
use onair_server::client::{read_flv_tags, ClientError, RtmpClient, RtmpUrl};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

async fn play(server: &common::TestServer, path: &str) -> Result<RtmpClient, ClientError> {
    let url = RtmpUrl::parse(&server.rtmp_url(path)).unwrap();
    let mut client = RtmpClient::connect(&url).await?;
    client.play(&url.name).await?;
    Ok(client)
}

/// The media messages a player receives, up to `count`.
async fn media(client: &mut RtmpClient, count: usize) -> Vec<(MediaKind, u32, bytes::Bytes)> {
    let mut out = Vec::new();
    while out.len() < count {
        let event = timeout(WAIT, client.next_event()).await.unwrap().unwrap();
        client.flush().await.unwrap();
        if let ClientEvent::Media {
            kind,
            timestamp,
            payload,
        } = event
        {
            out.push((kind, timestamp, payload));
        }
    }
    out
}

fn is_video_keyframe(payload: &[u8]) -> bool {
    payload.first().is_some_and(|b| b >> 4 == 1) && payload.get(1) == Some(&1)
}

#[tokio::test]
async fn late_rtmp_viewer_gets_metadata_headers_then_a_keyframe() {
    let server = start_server(|_| {}).await;
    let publisher = spawn_publisher(&server, "live/late").await;
    server.wait_live("live/late", WAIT).await;
    // Join mid-GOP.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mut viewer = play(&server, "live/late").await.unwrap();
    let frames = media(&mut viewer, 8).await;
    assert_eq!(frames[0].0, MediaKind::Data, "metadata first");
    assert_eq!(
        frames[0].1, 0,
        "metadata untimed: ffmpeg reads a timed one as subtitles"
    );
    assert_eq!(frames[1].0, MediaKind::Video);
    assert_eq!(
        &frames[1].2[..2],
        &[0x17, 0x00],
        "AVC sequence header second"
    );
    assert_eq!(frames[2].0, MediaKind::Audio);
    assert_eq!(
        &frames[2].2[..2],
        &[0xaf, 0x00],
        "AAC sequence header third"
    );
    let first_picture = frames[3..]
        .iter()
        .find(|(kind, _, _)| *kind == MediaKind::Video)
        .expect("a video frame");
    assert!(
        is_video_keyframe(&first_picture.2),
        "first picture is a keyframe"
    );
    publisher.abort();
    server.stop().await;
}

#[tokio::test]
async fn viewer_timestamps_never_go_backwards_per_track() {
    let server = start_server(|_| {}).await;
    let publisher = spawn_publisher(&server, "live/mono").await;
    server.wait_live("live/mono", WAIT).await;
    let mut viewer = play(&server, "live/mono").await.unwrap();
    let frames = media(&mut viewer, 200).await;
    for kind in [MediaKind::Audio, MediaKind::Video] {
        let stamps: Vec<u32> = frames
            .iter()
            .filter(|(k, _, p)| *k == kind && p.get(1) != Some(&0))
            .map(|(_, ts, _)| *ts)
            .collect();
        assert!(stamps.len() > 20);
        assert!(
            stamps.windows(2).all(|w| w[0] <= w[1]),
            "{kind:?}: {stamps:?}"
        );
    }
    publisher.abort();
    server.stop().await;
}

#[tokio::test]
async fn http_flv_serves_a_playable_stream_with_cors() {
    let server =
        start_server(|s| s.auth.allowed_origins = vec!["https://player.example".into()]).await;
    let publisher = spawn_publisher(&server, "live/web").await;
    server.wait_live("live/web", WAIT).await;
    let client = reqwest::Client::new();
    let foreign = client
        .get(server.flv_url("live/web"))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 200);
    assert!(foreign
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    drop(foreign);
    let response = client
        .get(server.flv_url("live/web"))
        .header("Origin", "https://player.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "video/x-flv");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://player.example"
    );
    let mut body = response.bytes_stream();
    let mut data = Vec::new();
    while data.len() < 64 * 1024 {
        let chunk = timeout(WAIT, body.next()).await.unwrap().unwrap().unwrap();
        data.extend_from_slice(&chunk);
    }
    assert_eq!(&data[..3], b"FLV");
    // Parse only complete tags: cut at the last whole one by letting the reader stop.
    let mut reader = onair_flv::FlvReader::new(1 << 24);
    reader.push(&data);
    let mut tags = Vec::new();
    while let Some(tag) = reader.next_tag().unwrap() {
        tags.push(tag);
    }
    assert!(tags.len() > 10);
    assert_eq!(tags[0].kind, onair_media::FrameKind::Script);
    assert_eq!(&tags[1].payload[..2], &[0x17, 0x00]);
    publisher.abort();
    server.stop().await;
}

#[tokio::test]
async fn http_flv_also_plays_as_a_later_request_on_a_kept_alive_connection() {
    let server = start_server(|_| {}).await;
    let publisher = spawn_publisher(&server, "live/keep").await;
    server.wait_live("live/keep", WAIT).await;
    // The first request on a connection is served directly; a later one by the router.
    let client = reqwest::Client::new();
    let health = client
        .get(server.http_url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    health.bytes().await.unwrap();
    let response = client
        .get(server.flv_url("live/keep"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "video/x-flv");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let mut body = response.bytes_stream();
    let first = timeout(WAIT, body.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(&first[..3], b"FLV");
    let missing = client
        .get(server.flv_url("live/none"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    publisher.abort();
    server.stop().await;
}

#[tokio::test]
async fn unknown_streams_are_not_found() {
    let server = start_server(|s| s.auth.allowed_origins = vec!["*".into()]).await;
    let response = reqwest::get(server.flv_url("live/nobody")).await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("live/nobody"));

    match play(&server, "live/nobody").await {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, "NetStream.Play.StreamNotFound"),
        other => panic!("expected StreamNotFound, got {:?}", other.err()),
    }
    let response = reqwest::get(server.flv_url("live/bad.name")).await.unwrap();
    assert_eq!(response.status(), 400);
    server.stop().await;
}

#[tokio::test]
async fn a_second_publisher_is_refused() {
    let server = start_server(|_| {}).await;
    let first = spawn_publisher(&server, "live/dup").await;
    server.wait_live("live/dup", WAIT).await;
    let url = RtmpUrl::parse(&server.rtmp_url("live/dup")).unwrap();
    let mut second = RtmpClient::connect(&url).await.unwrap();
    match second.publish(&url.name).await {
        Err(ClientError::Refused { code, description }) => {
            assert_eq!(code, "NetStream.Publish.BadName");
            assert!(description.contains("already"), "{description}");
        }
        other => panic!("expected BadName, got {other:?}"),
    }
    // The first publisher is unaffected.
    let mut viewer = play(&server, "live/dup").await.unwrap();
    assert!(!media(&mut viewer, 10).await.is_empty());
    first.abort();
    server.stop().await;
}

#[tokio::test]
async fn takeover_when_configured_keeps_viewers() {
    let server = start_server(|s| s.hub.publish_takeover = true).await;
    let first = spawn_publisher(&server, "live/take").await;
    server.wait_live("live/take", WAIT).await;
    let mut viewer = play(&server, "live/take").await.unwrap();
    media(&mut viewer, 5).await;
    let second = spawn_publisher(&server, "live/take").await;
    // The first publisher's task ends: the server closed it.
    timeout(WAIT, first)
        .await
        .expect("first publisher kicked")
        .unwrap();
    // The viewer keeps receiving from the new publisher.
    assert_eq!(media(&mut viewer, 100).await.len(), 100);
    second.abort();
    server.stop().await;
}

#[tokio::test]
async fn when_the_publisher_stops_every_viewer_ends() {
    let server = start_server(|_| {}).await;
    let url = RtmpUrl::parse(&server.rtmp_url("live/bye")).unwrap();
    let mut publisher = RtmpClient::connect(&url).await.unwrap();
    publisher.publish(&url.name).await.unwrap();
    let data = std::fs::read(common::fixture_path()).unwrap();
    let tags = read_flv_tags(&data, 1 << 24).unwrap();
    for tag in &tags[..40] {
        let kind = match tag.kind {
            onair_media::FrameKind::Audio => MediaKind::Audio,
            onair_media::FrameKind::Video => MediaKind::Video,
            onair_media::FrameKind::Script => {
                publisher.send_metadata(&tag.payload);
                continue;
            }
        };
        publisher.send_media(kind, tag.timestamp, &tag.payload);
    }
    publisher.flush().await.unwrap();
    server.wait_live("live/bye", WAIT).await;

    let mut rtmp_viewers = Vec::new();
    for _ in 0..3 {
        rtmp_viewers.push(play(&server, "live/bye").await.unwrap());
    }
    let mut flv_viewers = Vec::new();
    for _ in 0..2 {
        let response = reqwest::get(server.flv_url("live/bye")).await.unwrap();
        assert_eq!(response.status(), 200);
        flv_viewers.push(response.bytes_stream());
    }
    publisher.close().await.unwrap();

    for mut viewer in rtmp_viewers {
        let mut saw_end = false;
        loop {
            match timeout(WAIT, viewer.next_event())
                .await
                .expect("viewer ended")
            {
                Ok(ClientEvent::StreamEnded) => saw_end = true,
                Ok(_) => {}
                Err(ClientError::Closed) | Err(ClientError::Io(_)) => break,
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert!(saw_end, "the player was told the stream ended");
    }
    for mut body in flv_viewers {
        loop {
            match timeout(WAIT, body.next()).await.expect("flv body ended") {
                Some(Ok(_)) => {}
                Some(Err(error)) => panic!("flv body should end cleanly: {error}"),
                None => break,
            }
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn shutdown_ends_long_lived_responses() {
    let server = start_server(|_| {}).await;
    let publisher = spawn_publisher(&server, "live/down").await;
    server.wait_live("live/down", WAIT).await;
    let mut viewer = play(&server, "live/down").await.unwrap();
    let response = reqwest::get(server.flv_url("live/down")).await.unwrap();
    let mut body = response.bytes_stream();
    body.next().await.unwrap().unwrap();
    timeout(Duration::from_secs(5), server.stop())
        .await
        .expect("shutdown within the drain time");
    while timeout(WAIT, viewer.next_event()).await.unwrap().is_ok() {}
    while let Some(Ok(_)) = timeout(WAIT, body.next()).await.unwrap() {}
    publisher.abort();
}

#[tokio::test]
async fn a_stalled_viewer_is_dropped_and_others_keep_playing() {
    let server = start_server(|s| {
        s.hub.viewer_write_timeout_ms = 500;
    })
    .await;
    let url = RtmpUrl::parse(&server.rtmp_url("live/slow")).unwrap();
    let mut publisher = RtmpClient::connect(&url).await.unwrap();
    publisher.publish(&url.name).await.unwrap();
    let data = std::fs::read(common::fixture_path()).unwrap();
    let tags = read_flv_tags(&data, 1 << 24).unwrap();
    let send_pass = |publisher: &mut RtmpClient, pass: u32| {
        for tag in &tags {
            let ts = tag.timestamp + pass * 6_100;
            match tag.kind {
                onair_media::FrameKind::Audio => {
                    publisher.send_media(MediaKind::Audio, ts, &tag.payload)
                }
                onair_media::FrameKind::Video => {
                    publisher.send_media(MediaKind::Video, ts, &tag.payload)
                }
                onair_media::FrameKind::Script => publisher.send_metadata(&tag.payload),
            }
        }
    };
    send_pass(&mut publisher, 0);
    publisher.flush().await.unwrap();
    server.wait_live("live/slow", WAIT).await;

    // A stalled viewer: plays, then never reads again.
    let stalled = play(&server, "live/slow").await.unwrap();
    let mut healthy = play(&server, "live/slow").await.unwrap();
    let path = onair_media::StreamPath::parse("live/slow").unwrap();
    let stream = server.hub.stream(&path).unwrap();
    assert_eq!(stream.snapshot().viewers_rtmp, 2);

    let reader = tokio::spawn(async move {
        loop {
            if healthy.next_event().await.is_err() {
                return false;
            }
            if healthy.flush().await.is_err() {
                return false;
            }
        }
    });
    let mut pass = 1;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while stream.snapshot().viewers_rtmp > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stalled viewer never dropped"
        );
        send_pass(&mut publisher, pass);
        publisher.flush().await.unwrap();
        pass += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The healthy viewer is still there.
    assert!(!reader.is_finished());
    assert_eq!(stream.snapshot().viewers_rtmp, 1);
    drop(stalled);
    reader.abort();
    server.stop().await;
}

#[tokio::test]
async fn a_tap_reads_the_stream_without_counting_as_a_viewer() {
    let server = start_server(|_| {}).await;
    let publisher = spawn_publisher(&server, "live/tap").await;
    server.wait_live("live/tap", WAIT).await;
    let path = onair_media::StreamPath::parse("live/tap").unwrap();
    let mut tap = server.hub.tap(&path).expect("live stream");
    let mut frames = Vec::new();
    timeout(WAIT, tap.next_batch(&mut frames, 64))
        .await
        .unwrap()
        .unwrap();
    assert!(frames.iter().any(|f| f.frame.sequence_header));
    let snapshot = server.hub.stream(&path).unwrap().snapshot();
    assert_eq!(snapshot.viewers, 0);
    assert!(server
        .hub
        .tap(&onair_media::StreamPath::parse("live/none").unwrap())
        .is_none());
    publisher.abort();
    server.stop().await;
}
