//! Interop with the real ffmpeg, the sessions driven over a blocking std TCP socket.
//! Skipped with a printed reason when ffmpeg is missing, unless ONAIR_REQUIRE_INTEROP
//! is set (as in CI), which makes a missing ffmpeg a failure.
//!
//! `ONAIR_WRITE_TESTDATA=1` makes `ffmpeg_publishes` store what ffmpeg sent in
//! `testdata/ffmpeg-5.1_publish.bin`.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use onair_rtmp::{MediaKind, ServerConfig, ServerEvent, ServerSession, RANDOM_LEN};

fn ffmpeg(loglevel: &str, args: &[&str]) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", loglevel, "-nostdin"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn accept(listener: &TcpListener) -> TcpStream {
    let (sock, _) = listener.accept().unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    sock
}

/// Writes what the session queued. A peer that already hung up (ffmpeg closes right
/// after its last command, so our replies may meet a closed socket) is not an error.
fn flush(server: &mut ServerSession, sock: &mut TcpStream) {
    while let Some(out) = server.poll_transmit() {
        if let Err(error) = sock.write_all(&out) {
            assert!(is_hang_up(&error), "write failed: {error}");
            return;
        }
    }
}

fn is_hang_up(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionReset};
    matches!(error.kind(), BrokenPipe | ConnectionReset)
}

/// Reads from the peer; 0 at the end of its input, including when it reset the
/// connection after sending everything (ffmpeg does when a reply is still unread).
fn read(sock: &mut TcpStream, buf: &mut [u8]) -> usize {
    match sock.read(buf) {
        Ok(n) => n,
        Err(error) if is_hang_up(&error) => 0,
        Err(error) => panic!("read failed: {error}"),
    }
}

/// Whether ffmpeg can be used; see the module doc.
fn have_ffmpeg() -> bool {
    let found = Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("ONAIR_REQUIRE_INTEROP").is_none(),
            "ffmpeg is required (ONAIR_REQUIRE_INTEROP is set) but not installed"
        );
        eprintln!("skipping: ffmpeg is not installed");
    }
    found
}

#[test]
fn ffmpeg_publishes() {
    if !have_ffmpeg() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("rtmp://127.0.0.1:{port}/live/demo?key=abc");
    let mut child = ffmpeg(
        "error",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=10",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            "1",
            "-c:v",
            "libx264",
            "-g",
            "10",
            "-c:a",
            "aac",
            "-b:a",
            "32k",
            "-f",
            "flv",
            &url,
        ],
    );
    let mut sock = accept(&listener);
    let mut server = ServerSession::new(ServerConfig::default(), &[1; RANDOM_LEN]);
    let mut received = Vec::new();
    let mut events = Vec::new();
    let mut buf = vec![0; 65536];
    loop {
        let n = read(&mut sock, &mut buf);
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buf[..n]);
        server.handle_input(&buf[..n]).unwrap();
        while let Some(event) = server.poll_event() {
            match &event {
                ServerEvent::Connect { .. } => server.accept_connect(),
                ServerEvent::Publish { stream_id, .. } => server.accept_publish(*stream_id),
                _ => {}
            }
            events.push(event);
        }
        flush(&mut server, &mut sock);
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "ffmpeg failed: {status}");
    assert!(matches!(&events[0], ServerEvent::Connect { app, .. } if app == "live"));
    assert!(events.iter().any(|e| matches!(e,
        ServerEvent::Publish { name, publish_type, .. } if name == "demo?key=abc" && publish_type == "live")));
    let count = |k: MediaKind| {
        events
            .iter()
            .filter(|e| matches!(e, ServerEvent::Media { kind, .. } if *kind == k))
            .count()
    };
    assert_eq!(count(MediaKind::Data), 1);
    assert!(
        count(MediaKind::Video) >= 10,
        "video messages: {}",
        count(MediaKind::Video)
    );
    assert!(
        count(MediaKind::Audio) >= 20,
        "audio messages: {}",
        count(MediaKind::Audio)
    );
    assert!(matches!(events.last(), Some(ServerEvent::Unpublish { .. })));
    if std::env::var_os("ONAIR_WRITE_TESTDATA").is_some() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/ffmpeg-5.1_publish.bin"
        );
        std::fs::write(path, &received).unwrap();
    }
}

/// Media of the captured ffmpeg publish, as the server session reports it.
fn captured_media() -> Vec<(MediaKind, u32, Bytes)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/ffmpeg-5.1_publish.bin"
    );
    let capture = std::fs::read(path).unwrap();
    let mut server = ServerSession::new(ServerConfig::default(), &[1; RANDOM_LEN]);
    server.handle_input(&capture).unwrap();
    let mut media = Vec::new();
    while let Some(event) = server.poll_event() {
        match event {
            ServerEvent::Connect { .. } => server.accept_connect(),
            ServerEvent::Publish { stream_id, .. } => server.accept_publish(stream_id),
            ServerEvent::Media {
                kind,
                timestamp,
                payload,
                ..
            } => media.push((kind, timestamp, payload)),
            _ => {}
        }
        // Commands after publish only come through once publish was accepted.
        server.handle_input(&[]).unwrap();
    }
    media
}

#[test]
fn ffmpeg_plays() {
    if !have_ffmpeg() {
        return;
    }
    let media = captured_media();
    assert!(media.len() > 20);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("rtmp://127.0.0.1:{port}/live/demo");
    let child = ffmpeg("info", &["-i", &url, "-f", "null", "-"]);
    let mut sock = accept(&listener);
    let mut server = ServerSession::new(ServerConfig::default(), &[2; RANDOM_LEN]);
    let mut buf = vec![0; 65536];
    let mut playing = None;
    while playing.is_none() {
        let n = read(&mut sock, &mut buf);
        assert!(n > 0, "ffmpeg closed before play");
        server.handle_input(&buf[..n]).unwrap();
        while let Some(event) = server.poll_event() {
            match event {
                ServerEvent::Connect { app, .. } => {
                    assert_eq!(app, "live");
                    server.accept_connect();
                }
                ServerEvent::Play { stream_id, name } => {
                    assert_eq!(name, "demo");
                    server.accept_play(stream_id);
                    playing = Some(stream_id);
                }
                _ => {}
            }
        }
        flush(&mut server, &mut sock);
    }
    let stream_id = playing.unwrap();
    for (kind, timestamp, payload) in &media {
        // A player gets onMetaData without the publisher's @setDataFrame.
        let payload = match payload.strip_prefix(b"\x02\x00\x0d@setDataFrame") {
            Some(rest) if *kind == MediaKind::Data => rest,
            _ => &payload[..],
        };
        server.send_media(*kind, stream_id, *timestamp, payload);
    }
    server.end_play(stream_id);
    flush(&mut server, &mut sock);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffmpeg failed: {stderr}");
    assert!(!stderr.contains("rror"), "ffmpeg complained: {stderr}");
    // The last progress line says how many video frames were decoded.
    let frames: u32 = stderr
        .rsplit("frame=")
        .next()
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    // AVC NALU packets (not the sequence header or end of sequence).
    let sent = media
        .iter()
        .filter(|m| m.0 == MediaKind::Video && m.2.get(1) == Some(&1))
        .count() as u32;
    assert_eq!(frames, sent, "{stderr}");
}
