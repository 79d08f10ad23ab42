#![allow(clippy::unwrap_used, clippy::expect_used)]

//! TLS on the HTTP listener (HTTPS, WSS, HTTP-FLV over HTTPS) and the RTMPS listener,
//! with a self-signed certificate made for each test: reqwest and tokio-tungstenite
//! trusting it, ffmpeg/ffprobe speaking rtmps://, and clients that misbehave.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{run_tool, spawn_publisher, tool, TestServer, ADMIN_TOKEN};
use futures_util::StreamExt;
use onair_server::client::{RtmpClient, RtmpUrl};
use onair_server::{Server, Settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{self, pki_types};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(15);

/// A server with TLS on its HTTP listener and an RTMPS listener.
struct TlsServer {
    server: TestServer,
    rtmps: SocketAddr,
    cert_pem: String,
    cert_der: pki_types::CertificateDer<'static>,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for TlsServer {
    type Target = TestServer;

    fn deref(&self) -> &TestServer {
        &self.server
    }
}

async fn start_tls_server(tweak: impl FnOnce(&mut Settings)) -> TlsServer {
    let dir = tempfile::tempdir().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, certified.cert.pem()).unwrap();
    std::fs::write(&key_path, certified.key_pair.serialize_pem()).unwrap();
    let server = common::start_server(|settings| {
        settings.tls.cert_path = Some(cert_path);
        settings.tls.key_path = Some(key_path);
        settings.tls.rtmps_listen = Some("127.0.0.1:0".parse().unwrap());
        tweak(settings);
    })
    .await;
    TlsServer {
        rtmps: server.rtmps.expect("an RTMPS listener"),
        server,
        cert_pem: certified.cert.pem(),
        cert_der: certified.cert.der().clone(),
        _dir: dir,
    }
}

impl TlsServer {
    fn https_url(&self, path: &str) -> String {
        format!("https://{}{}", self.http, path)
    }

    /// A reqwest client that trusts only this server's certificate (and offers h2).
    fn https_client(&self) -> reqwest::Client {
        self.https_client_builder().build().unwrap()
    }

    fn https_client_builder(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.cert_pem.as_bytes()).unwrap())
            .timeout(WAIT)
    }

    /// A TLS connection to `addr` that trusts this server's certificate, offering `alpn`.
    async fn tls_connect(&self, addr: SocketAddr, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert_der.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = pki_types::ServerName::try_from("127.0.0.1").unwrap();
        timeout(WAIT, connector.connect(name, tcp))
            .await
            .expect("TLS handshake in time")
            .expect("TLS handshake")
    }
}

/// Reads until `want` bytes have arrived (or the stream ends).
async fn read_at_least<S: AsyncReadExt + Unpin>(stream: &mut S, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < want {
        let mut buf = [0u8; 4096];
        let n = timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("data in time")
            .unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    got
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test]
async fn https_serves_the_api_and_http_flv() {
    let server = start_tls_server(|_| {}).await;
    let publisher = spawn_publisher(&server, "live/tls").await;
    server.wait_live("live/tls", WAIT).await;
    let client = server.https_client();

    let health = client
        .get(server.https_url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let streams = client
        .get(server.https_url("/api/v1/streams"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(streams.status(), 200);

    // HTTP-FLV as an HTTP/1.1 connection's first request: the direct path over TLS.
    let fresh = server.https_client_builder().http1_only().build().unwrap();
    let mut flv = fresh
        .get(server.https_url("/live/tls.flv"))
        .send()
        .await
        .unwrap();
    assert_eq!(flv.status(), 200);
    assert_eq!(flv.headers()["content-type"], "video/x-flv");
    // The direct path's head: it serves one stream per connection.
    assert_eq!(flv.headers()["connection"], "close");
    let mut body = Vec::new();
    while body.len() < 13 + 11 {
        let chunk = timeout(WAIT, flv.chunk()).await.unwrap().unwrap();
        body.extend_from_slice(&chunk.expect("more FLV"));
    }
    assert_eq!(&body[..3], b"FLV");

    publisher.abort();
    server.server.stop().await;
}

#[tokio::test]
async fn http_flv_plays_as_a_later_request_on_the_same_tls_connection() {
    let server = start_tls_server(|_| {}).await;
    let publisher = spawn_publisher(&server, "live/later").await;
    server.wait_live("live/later", WAIT).await;

    let mut tls = server.tls_connect(server.http, &[b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let first = read_at_least(&mut tls, 1).await;
    assert!(
        first.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&first)
    );
    // The health answer is small and whole; read its body to the end before asking again.
    let head_end = find(&first, b"\r\n\r\n").expect("a whole head") + 4;
    let head = String::from_utf8_lossy(&first[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .expect("a content-length")
        .trim()
        .parse()
        .unwrap();
    let mut rest = first[head_end..].to_vec();
    if rest.len() < length {
        rest.extend(read_at_least(&mut tls, length - rest.len()).await);
    }
    assert_eq!(rest.len(), length);

    tls.write_all(b"GET /live/later.flv HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let second = read_at_least(&mut tls, 512).await;
    assert!(
        second.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&second)
    );
    assert!(
        find(&second, b"video/x-flv").is_some(),
        "{:?}",
        String::from_utf8_lossy(&second)
    );
    assert!(
        find(&second, b"FLV\x01").is_some(),
        "no FLV header in the body"
    );

    publisher.abort();
    server.server.stop().await;
}

#[tokio::test]
async fn http2_is_negotiated_by_alpn_and_serves_api_and_http_flv() {
    let server = start_tls_server(|_| {}).await;
    let publisher = spawn_publisher(&server, "live/h2").await;
    server.wait_live("live/h2", WAIT).await;
    let tls = server.tls_connect(server.http, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    drop(tls);

    // reqwest offers h2 first, as browsers do.
    let client = server.https_client();
    let health = client
        .get(server.https_url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.version(), reqwest::Version::HTTP_2);
    assert_eq!(health.status(), 200);
    let mut flv = client
        .get(server.https_url("/live/h2.flv"))
        .send()
        .await
        .unwrap();
    assert_eq!(flv.version(), reqwest::Version::HTTP_2);
    assert_eq!(flv.status(), 200);
    let first = timeout(WAIT, flv.chunk())
        .await
        .unwrap()
        .unwrap()
        .expect("FLV");
    assert_eq!(&first[..3], b"FLV");
    publisher.abort();

    // Over the RTMPS listener nothing is negotiated.
    let tls = server.tls_connect(server.rtmps, &[b"h2"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), None);
    drop(tls);
    server.server.stop().await;
}

#[tokio::test]
async fn wss_opens_a_room() {
    let server = start_tls_server(|_| {}).await;
    let tls = server.tls_connect(server.http, &[b"http/1.1"]).await;
    let url = format!("wss://127.0.0.1:{}/ws/live/x", server.http.port());
    let (mut ws, response) = timeout(WAIT, tokio_tungstenite::client_async(url, tls))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 101);
    let welcome = loop {
        match timeout(WAIT, ws.next()).await.expect("an event") {
            Some(Ok(Message::Text(text))) => {
                break serde_json::from_str::<serde_json::Value>(text.as_str()).unwrap()
            }
            Some(Ok(_)) => {}
            other => panic!("expected the welcome, got {other:?}"),
        }
    };
    assert_eq!(welcome["type"], "welcome");
    server.server.stop().await;
}

#[tokio::test]
async fn plain_http_on_the_tls_port_gets_no_response_and_costs_only_itself() {
    let server = start_tls_server(|_| {}).await;
    let plain = reqwest::Client::builder().timeout(WAIT).build().unwrap();
    let refused = plain
        .get(format!("http://{}/healthz", server.http))
        .send()
        .await;
    assert!(refused.is_err(), "plain HTTP got an answer: {refused:?}");

    let mut raw = TcpStream::connect(server.http).await.unwrap();
    raw.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = timeout(WAIT, raw.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection");
    assert!(
        !answer.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );

    let health = server
        .https_client()
        .get(server.https_url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    server.server.stop().await;
}

#[tokio::test]
async fn a_client_that_never_handshakes_is_dropped_and_blocks_no_one() {
    // Far below the 10 s request-head timeout, so an end within WAIT is the TLS one.
    let server = start_tls_server(|s| s.tls.handshake_timeout_ms = 300).await;
    let mut silent_http = TcpStream::connect(server.http).await.unwrap();
    let mut silent_rtmps = TcpStream::connect(server.rtmps).await.unwrap();

    // Others are served while the silent ones wait.
    let health = server
        .https_client()
        .get(server.https_url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let tls = server.tls_connect(server.rtmps, &[]).await;
    drop(tls);

    for silent in [&mut silent_http, &mut silent_rtmps] {
        let mut buf = [0u8; 64];
        let read = timeout(WAIT, silent.read(&mut buf))
            .await
            .expect("the server drops a connection that never handshakes");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    server.server.stop().await;
}

#[tokio::test]
async fn tls_settings_that_cannot_work_fail_bind() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.rtmp.listen = "127.0.0.1:0".parse().unwrap();
    settings.http.listen = "127.0.0.1:0".parse().unwrap();
    settings.data_dir = dir.path().join("data");
    settings.tls.cert_path = Some(dir.path().join("missing-cert.pem"));
    settings.tls.key_path = Some(dir.path().join("missing-key.pem"));
    let error = Server::bind(settings.clone())
        .await
        .err()
        .expect("bind fails");
    assert!(error.to_string().contains("missing-cert.pem"), "{error}");

    settings.tls.key_path = None;
    let error = Server::bind(settings).await.err().expect("bind fails");
    assert!(error.to_string().contains("tls.key_path"), "{error}");
}

#[tokio::test]
async fn ffmpeg_publishes_over_rtmps_and_plays_back() {
    if !tool("ffmpeg") || !tool("ffprobe") {
        return;
    }
    let server = start_tls_server(|_| {}).await;
    let fixture = common::fixture_path();
    let rtmps_url = format!("rtmps://127.0.0.1:{}/live/s", server.rtmps.port());
    // ffmpeg's tls protocol does not verify the peer by default (-tls_verify 0).
    let mut ffmpeg = tokio::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-re",
            "-stream_loop",
            "-1",
        ])
        .arg("-i")
        .arg(&fixture)
        .args(["-c", "copy", "-f", "flv", &rtmps_url])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ffmpeg");
    server.wait_live("live/s", WAIT).await;

    // A plain RTMP viewer receives the video published over RTMPS.
    let url = RtmpUrl::parse(&format!("rtmp://{}/live/s", server.rtmp)).unwrap();
    let mut viewer = RtmpClient::connect(&url).await.unwrap();
    viewer.play(&url.name).await.unwrap();
    let video = timeout(WAIT, async {
        loop {
            if let onair_rtmp::ClientEvent::Media {
                kind: onair_rtmp::MediaKind::Video,
                ..
            } = viewer.next_event().await.unwrap()
            {
                return;
            }
        }
    })
    .await;
    assert!(video.is_ok(), "no video reached the RTMP viewer");

    // And ffprobe plays it back over RTMPS.
    let (ok, stdout, stderr) = run_tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-rw_timeout",
            "10000000",
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "json",
            &rtmps_url,
        ],
        Duration::from_secs(30),
    )
    .await;
    assert!(ok, "ffprobe {rtmps_url} failed: {stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let video = json["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_name"] == "h264")
        .expect("an h264 stream");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(640), Some(360))
    );

    ffmpeg.kill().await.unwrap();
    server.server.stop().await;
}
