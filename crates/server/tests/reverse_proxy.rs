#![allow(clippy::unwrap_used, clippy::expect_used)]

//! onair behind Debian's nginx, configured with the nginx block of docs/reverse-proxy.md
//! (read from the document at test time, so the two cannot drift), TLS at nginx: HTTP-FLV,
//! LL-HLS with held requests, a room WebSocket and SSE, all through the proxy.
//!
//! Skipped with a printed reason when nginx is not installed, unless ONAIR_REQUIRE_INTEROP
//! is set, which makes it fail (as `tool` does for the other outside programs).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{run_tool, spawn_publisher, start_server, tool, TestServer, ADMIN_TOKEN};
use futures_util::{SinkExt, StreamExt};
use onair_server::rooms::Role;
use serde_json::Value;
use tokio::time::timeout;
use tokio_rustls::rustls::{self, pki_types};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(20);

/// The document the nginx configuration comes from, and the line before its block.
const DOC: &str = "docs/reverse-proxy.md";
const MARKER: &str = "<!-- crates/server/tests/reverse_proxy.rs runs the next nginx block";

/// The nginx binary: on the PATH, or where Debian's package puts it (/usr/sbin is not
/// on every user's PATH). `None`, after saying why, when it is missing and not required.
fn nginx_binary() -> Option<PathBuf> {
    let on_path = Command::new("sh")
        .arg("-c")
        .arg("command -v nginx")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let found = on_path.or_else(|| {
        let debian = PathBuf::from("/usr/sbin/nginx");
        debian.exists().then_some(debian)
    });
    if found.is_none() {
        if std::env::var_os("ONAIR_REQUIRE_INTEROP").is_some() {
            panic!("nginx is required (ONAIR_REQUIRE_INTEROP is set) but not installed (Debian: nginx-light)");
        }
        eprintln!("skipping: nginx is not installed (Debian: nginx-light)");
    }
    found
}

/// The nginx block of docs/reverse-proxy.md, as the reader would copy it.
fn documented_nginx_block() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(DOC);
    let text = std::fs::read_to_string(&path).unwrap();
    let after = text
        .split_once(MARKER)
        .unwrap_or_else(|| panic!("{DOC} lost the line `{MARKER} …`"))
        .1;
    let start = after
        .find("```nginx\n")
        .expect("an nginx block after the marker")
        + 9;
    let block = &after[start..];
    let end = block.find("\n```").expect("the end of the nginx block");
    block[..=end].to_owned()
}

/// `text` with `from`, which must occur exactly once, replaced by `to`.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "the nginx block of {DOC} no longer has `{from}` exactly once; update this test with it"
    );
    text.replacen(from, to, 1)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether this process runs as root (nginx then needs `user root;` for its worker to
/// use the temporary directory, which only root may enter).
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A self-signed certificate for 127.0.0.1, as PEM files, and the DER a client trusts.
struct Certificate {
    cert_path: PathBuf,
    key_path: PathBuf,
    pem: String,
    der: pki_types::CertificateDer<'static>,
}

impl Certificate {
    fn new(dir: &Path) -> Self {
        let certified = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .unwrap();
        let cert_path = dir.join("cert.pem");
        let key_path = dir.join("key.pem");
        std::fs::write(&cert_path, certified.cert.pem()).unwrap();
        std::fs::write(&key_path, certified.key_pair.serialize_pem()).unwrap();
        Self {
            cert_path,
            key_path,
            pem: certified.cert.pem(),
            der: certified.cert.der().clone(),
        }
    }
}

/// nginx in the foreground, in a directory of its own; stopped by PID when dropped, also
/// when the test fails.
struct Nginx {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    cert: Certificate,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx with the documented block in front of `server`, on a free port.
    async fn start(binary: &Path, server: &TestServer) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let cert = Certificate::new(root);
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

        let block = documented_nginx_block();
        let block = replace_once(
            &block,
            "server 127.0.0.1:8080;",
            &format!("server {};", server.http),
        );
        let block = replace_once(
            &block,
            "listen 443 ssl http2;",
            &format!("listen {addr} ssl http2;"),
        );
        let block = replace_once(
            &block,
            "/etc/letsencrypt/live/live.example.com/fullchain.pem",
            cert.cert_path.to_str().unwrap(),
        );
        let block = replace_once(
            &block,
            "/etc/letsencrypt/live/live.example.com/privkey.pem",
            cert.key_path.to_str().unwrap(),
        );
        // What Debian's nginx.conf around an included site would hold, with every path
        // nginx writes to in this directory.
        let dir_text = root.to_str().unwrap();
        let user = if running_as_root() {
            "user root;\n"
        } else {
            ""
        };
        let conf = format!(
            "{user}worker_processes 1;\n\
             pid {dir_text}/nginx.pid;\n\
             events {{\n    worker_connections 512;\n}}\n\
             http {{\n\
             access_log off;\n\
             client_body_temp_path {dir_text}/client_body;\n\
             proxy_temp_path {dir_text}/proxy;\n\
             fastcgi_temp_path {dir_text}/fastcgi;\n\
             uwsgi_temp_path {dir_text}/uwsgi;\n\
             scgi_temp_path {dir_text}/scgi;\n\
             {block}}}\n"
        );
        let conf_path = root.join("nginx.conf");
        std::fs::write(&conf_path, &conf).unwrap();

        let log = root.join("nginx.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(binary)
            .arg("-p")
            .arg(format!("{dir_text}/"))
            .arg("-c")
            .arg(&conf_path)
            .args(["-e", "stderr", "-g", "daemon off; error_log stderr;"])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("start nginx");
        let mut nginx = Self {
            child,
            addr,
            log,
            cert,
            _dir: dir,
        };
        nginx.wait_ready(&conf).await;
        nginx
    }

    /// Waits until nginx accepts connections; panics with its log if it exits first.
    async fn wait_ready(&mut self, conf: &str) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "nginx exited ({status}):\n{}\nwith the configuration:\n{conf}",
                    self.log_text()
                );
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return;
            }
            assert!(
                started.elapsed() < WAIT,
                "nginx did not listen on {} in time:\n{}",
                self.addr,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}{}", self.addr, path)
    }

    /// A client that trusts only this nginx's certificate; it offers HTTP/2 (nginx takes it).
    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.cert.pem.as_bytes()).unwrap())
            .build()
            .unwrap()
    }

    /// A TLS connection to nginx offering only HTTP/1.1, as browsers open WebSockets.
    async fn tls_connect(&self) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.der.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let name = pki_types::ServerName::try_from("127.0.0.1").unwrap();
        timeout(WAIT, connector.connect(name, tcp))
            .await
            .expect("TLS handshake in time")
            .expect("TLS handshake")
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let pid = self.child.id();
        // Fast shutdown: the master stops its worker, then exits.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -TERM {pid}"))
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // It did not stop: kill its worker (the master's children) and then the master.
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        for worker in children.split_whitespace() {
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!("kill -KILL {worker}"))
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server set up as docs/reverse-proxy.md says for a proxy that limits each client:
/// every connection comes from the proxy's address.
async fn start_proxied_server() -> TestServer {
    start_server(|settings| {
        settings.limits.max_connections_per_ip = settings.limits.max_connections;
        settings.limits.requests_per_second_per_ip = 0.0;
    })
    .await
}

#[tokio::test]
async fn http_flv_plays_through_nginx() {
    let Some(binary) = nginx_binary() else {
        return;
    };
    let server = start_proxied_server().await;
    let publisher = spawn_publisher(&server, "live/proxied").await;
    server.wait_live("live/proxied", WAIT).await;
    let nginx = Nginx::start(&binary, &server).await;

    let response = timeout(
        WAIT,
        nginx.client().get(nginx.url("/live/proxied.flv")).send(),
    )
    .await
    .expect("an answer in time")
    .unwrap();
    assert_eq!(response.status(), 200, "{}", nginx.log_text());
    assert_eq!(response.headers()["content-type"], "video/x-flv");
    let mut body = response.bytes_stream();
    let mut data = Vec::new();
    while data.len() < 64 * 1024 {
        let chunk = timeout(WAIT, body.next())
            .await
            .expect("FLV data in time")
            .expect("more FLV")
            .unwrap();
        data.extend_from_slice(&chunk);
    }
    assert_eq!(&data[..3], b"FLV");
    let mut reader = onair_flv::FlvReader::new(1 << 24);
    reader.push(&data);
    let mut tags = Vec::new();
    while let Some(tag) = reader.next_tag().unwrap() {
        tags.push(tag);
    }
    assert_eq!(tags[0].kind, onair_media::FrameKind::Script);
    // The AVC sequence header, then the cached GOP from its keyframe on.
    assert_eq!(&tags[1].payload[..2], &[0x17, 0x00]);
    let video = tags
        .iter()
        .filter(|t| t.kind == onair_media::FrameKind::Video)
        .count();
    assert!(
        video > 10,
        "only {video} video tags in {} bytes",
        data.len()
    );

    drop(body);
    drop(nginx);
    publisher.abort();
    server.stop().await;
}

/// Fetches `url` and returns its status and text.
async fn get_text(client: &reqwest::Client, url: &str) -> (u16, String) {
    let response = timeout(WAIT, client.get(url).send())
        .await
        .expect("an answer in time")
        .unwrap();
    let status = response.status().as_u16();
    (
        status,
        timeout(WAIT, response.text()).await.unwrap().unwrap(),
    )
}

/// The `(msn, part)` of the `part{msn}.{part}.m4s` the preload hint names.
fn preload_hint(playlist: &str) -> (u64, u32) {
    let line = playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT"))
        .unwrap_or_else(|| panic!("no preload hint in\n{playlist}"));
    let uri = line.split("URI=\"").nth(1).unwrap();
    let name = uri.split(['"', '?']).next().unwrap();
    let numbers = name.trim_start_matches("part").trim_end_matches(".m4s");
    let (msn, part) = numbers.split_once('.').unwrap();
    (msn.parse().unwrap(), part.parse().unwrap())
}

#[tokio::test]
async fn ll_hls_plays_through_nginx_with_held_requests_answered() {
    let Some(binary) = nginx_binary() else {
        return;
    };
    let server = start_proxied_server().await;
    let publisher = spawn_publisher(&server, "live/hls").await;
    server.wait_live("live/hls", WAIT).await;
    let nginx = Nginx::start(&binary, &server).await;
    let client = nginx.client();

    // The multivariant playlist names the media playlist, with a session.
    let started = Instant::now();
    let (media_url, playlist) = loop {
        let (status, index) = get_text(&client, &nginx.url("/live/hls/index.m3u8")).await;
        if status == 200 {
            let variant = index
                .lines()
                .find(|l| l.starts_with("stream.m3u8"))
                .expect("a variant")
                .to_owned();
            let url = nginx.url(&format!("/live/hls/{variant}"));
            let (status, playlist) = get_text(&client, &url).await;
            if status == 200 && playlist.contains("#EXTINF") {
                break (url, playlist);
            }
        }
        assert!(
            started.elapsed() < WAIT,
            "no complete segment through nginx in time"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(playlist.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES"));
    let session = media_url
        .split(['?', '&'])
        .find(|p| p.starts_with("session="))
        .expect("a session on the media playlist URL")
        .to_owned();

    // The init segment the playlist maps.
    let map = playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-MAP"))
        .expect("an EXT-X-MAP");
    let init = map
        .split("URI=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let init = timeout(
        WAIT,
        client.get(nginx.url(&format!("/live/hls/{init}"))).send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(init.status(), 200);
    assert_eq!(&init.bytes().await.unwrap()[4..8], b"ftyp");

    // A blocking reload for the hinted part is held until the part exists, then answered
    // with a playlist that lists it.
    let (msn, part) = preload_hint(&playlist);
    let blocking = nginx.url(&format!(
        "/live/hls/stream.m3u8?_HLS_msn={msn}&_HLS_part={part}&{session}"
    ));
    let (status, reloaded) = get_text(&client, &blocking).await;
    assert_eq!(status, 200, "{reloaded}\n{}", nginx.log_text());
    let listed = format!("part{msn}.{part}.m4s");
    let next_segment = format!("part{}.0.m4s", msn + 1);
    assert!(
        reloaded.contains(&listed) || reloaded.contains(&next_segment),
        "{listed} not in\n{reloaded}"
    );

    // That part, and the next hinted one, which is held until it exists.
    let (next_msn, next_part) = preload_hint(&reloaded);
    for (msn, part) in [(msn, part), (next_msn, next_part)] {
        let url = nginx.url(&format!("/live/hls/part{msn}.{part}.m4s?{session}"));
        let response = timeout(WAIT, client.get(&url).send())
            .await
            .expect("the part in time")
            .unwrap();
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(response.headers()["content-type"], "video/iso.segment");
        let bytes = response.bytes().await.unwrap();
        assert_eq!(&bytes[4..8], b"moof", "a part is a CMAF fragment");
    }

    // A real player reads the proxied playlist (ffmpeg does not check the certificate).
    if tool("ffprobe") {
        let url = nginx.url("/live/hls/index.m3u8");
        let (ok, out, err) = run_tool(
            "ffprobe",
            &[
                "-v",
                "error",
                "-show_entries",
                "stream=codec_name",
                "-of",
                "compact",
                &url,
            ],
            WAIT,
        )
        .await;
        assert!(ok, "ffprobe through nginx failed: {err}");
        assert!(out.contains("codec_name=h264"), "{out}");
        assert!(out.contains("codec_name=aac"), "{out}");
    }

    drop(nginx);
    publisher.abort();
    server.stop().await;
}

/// The next room event of type `kind` on `ws`, skipping others and pings.
async fn next_event<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>, kind: &str) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match timeout(WAIT, ws.next()).await.expect("an event in time") {
            Some(Ok(Message::Text(text))) => {
                let event: Value = serde_json::from_str(text.as_str()).unwrap();
                if event["type"] == kind {
                    return event;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("expected a {kind} event, got {other:?}"),
        }
    }
}

/// Reads the event stream into `text` until it holds `needle`.
async fn read_until<B>(body: &mut B, needle: &str, text: &mut String)
where
    B: futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin,
{
    while !text.contains(needle) {
        let chunk = timeout(WAIT, body.next())
            .await
            .unwrap_or_else(|_| panic!("no `{needle}` through nginx in time; got:\n{text}"))
            .expect("the event stream goes on")
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test]
async fn a_room_websocket_opens_through_nginx_from_a_same_origin_page() {
    let Some(binary) = nginx_binary() else {
        return;
    };
    let server = start_proxied_server().await;
    let nginx = Nginx::start(&binary, &server).await;

    // As a browser on a page of the proxied site: its Origin is the proxy's, which onair
    // accepts only if nginx passed the Host header through as the client sent it.
    let token = server.token("alice", Role::Viewer);
    let mut request = format!("wss://{}/ws/live/x?token={token}", nginx.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "origin",
        HeaderValue::from_str(&format!("https://{}", nginx.addr)).unwrap(),
    );
    let tls = nginx.tls_connect().await;
    let (mut ws, response) = timeout(WAIT, tokio_tungstenite::client_async(request, tls))
        .await
        .expect("the handshake in time")
        .unwrap_or_else(|e| panic!("WebSocket through nginx: {e}\n{}", nginx.log_text()));
    assert_eq!(response.status(), 101);

    let welcome = next_event(&mut ws, "welcome").await;
    assert_eq!(welcome["can_send"], true);

    // Both ways: a chat message goes up through nginx and comes back down.
    ws.send(Message::Text(
        r#"{"type":"chat","text":"through nginx"}"#.into(),
    ))
    .await
    .unwrap();
    let chat = next_event(&mut ws, "chat").await;
    assert_eq!(chat["text"], "through nginx");
    assert_eq!(chat["user"]["id"], "alice");

    drop(ws);
    drop(nginx);
    server.stop().await;
}

#[tokio::test]
async fn sse_events_come_through_nginx_as_they_happen() {
    let Some(binary) = nginx_binary() else {
        return;
    };
    let server = start_proxied_server().await;
    let nginx = Nginx::start(&binary, &server).await;
    let client = nginx.client();

    let response = timeout(WAIT, client.get(nginx.url("/sse/live/sse")).send())
        .await
        .expect("an answer in time")
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.bytes_stream();
    let mut text = String::new();
    read_until(&mut body, "event: welcome", &mut text).await;

    // An event that happens after the client connected reaches it while the response is
    // still open: nginx does not hold it back.
    let posted = client
        .post(nginx.url("/api/v1/rooms/live/sse/messages"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"text": "after the welcome"}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 201);
    read_until(&mut body, "\"text\":\"after the welcome\"", &mut text).await;
    assert!(text.contains("event: system"), "{text}");

    drop(body);
    drop(nginx);
    server.stop().await;
}
