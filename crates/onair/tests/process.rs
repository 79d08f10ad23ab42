#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The `onair` binary as a process: it starts with no config, logs JSON when not on a
//! terminal, and on SIGTERM ends every connection (an RTMP publisher, an HTTP-FLV
//! viewer, a WebSocket room client and an SSE room client, each told in its protocol's
//! way) and exits within the drain time. A recording cut by `kill -9` decodes up to
//! its last flush.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_tungstenite::tungstenite;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../server/tests/fixtures/ffmpeg_testsrc2_640x360_30fps_6s.flv"
);

struct Killer(Child);

impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a started server wrote: its log (stdout) and its terminal messages (stderr).
#[derive(Clone, Default)]
struct Output {
    log: Arc<Mutex<String>>,
    terminal: Arc<Mutex<String>>,
}

/// Starts `onair` on ephemeral ports and returns it with its (rtmp, http) addresses,
/// read from its JSON "listening" log line, and what it writes.
fn start_server_with_output(data_dir: &std::path::Path) -> (Killer, String, String, Output) {
    start_server_with_args(data_dir, &[])
}

fn start_server_with_args(
    data_dir: &std::path::Path,
    extra: &[&str],
) -> (Killer, String, String, Output) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_onair"))
        .args(extra)
        .args([
            "--rtmp-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .env("ONAIR_SHUTDOWN_DRAIN_MS", "3000")
        .env_remove("ONAIR_LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = Output::default();
    let mut stderr = child.stderr.take().unwrap();
    let terminal = Arc::clone(&output.terminal);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stderr.read(&mut buf) {
            terminal
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let (rtmp, http) = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        output.log.lock().unwrap().push_str(&line);
        let json: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
        if json["message"] == "onair listening" {
            break (
                json["rtmp"].as_str().unwrap().to_owned(),
                json["http"].as_str().unwrap().to_owned(),
            );
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    let log = Arc::clone(&output.log);
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            log.lock().unwrap().push_str(&line);
        }
    });
    (Killer(child), rtmp, http, output)
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "process did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_ends_every_connection_and_exits_within_the_drain_time() {
    let data_dir = tempfile::tempdir().unwrap();
    let (mut server, rtmp, http, output) = start_server_with_output(data_dir.path());

    let publisher = Command::new(env!("CARGO_BIN_EXE_onair"))
        .args([
            "push",
            FIXTURE,
            &format!("rtmp://{rtmp}/live/sig"),
            "--loop",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut publisher = Killer(publisher);

    // An HTTP-FLV viewer, once the stream is live.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut viewer = loop {
        let mut socket = TcpStream::connect(&http).unwrap();
        write!(socket, "GET /live/sig.flv HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut head = [0u8; 12];
        socket.read_exact(&mut head).unwrap();
        if &head == b"HTTP/1.1 200" {
            break socket;
        }
        assert!(Instant::now() < deadline, "stream never went live");
        std::thread::sleep(Duration::from_millis(100));
    };
    viewer
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    assert!(viewer.read(&mut buf).unwrap() > 0);

    // A WebSocket and an SSE client in the stream's room, each past its welcome.
    let mut ws = ws_join(&http, "/ws/live/sig");
    let mut sse = sse_join(&http, "/sse/live/sig");

    let started = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    // The WebSocket client is told "going away" (1001).
    let close = loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(frame)) => break frame,
            Ok(_) => {}
            Err(e) => panic!("WebSocket ended without a Close frame: {e}"),
        }
    };
    let close = close.expect("a Close frame without a code");
    assert_eq!(
        close.code,
        tungstenite::protocol::frame::coding::CloseCode::Away
    );
    // The SSE response ends: its last chunk, then the end of the connection.
    let rest = read_to_end(&mut sse);
    assert!(
        rest.ends_with(b"0\r\n\r\n"),
        "the SSE stream did not end with its last chunk: {:?}",
        String::from_utf8_lossy(&rest)
    );

    let exit = wait_exit(&mut server.0, Duration::from_secs(6));
    assert!(exit.success(), "server exit status {exit}");
    eprintln!("server exited {:?} after SIGTERM", started.elapsed());
    // Every connection ended by itself, before the drain time ran out.
    let log = output.log.lock().unwrap().clone();
    assert!(
        !log.contains("after the drain time"),
        "connections outlived the drain time: {log}"
    );

    // The viewer's response ended and the publisher was disconnected.
    loop {
        match viewer.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let publisher_exit = wait_exit(&mut publisher.0, Duration::from_secs(5));
    assert!(
        !publisher_exit.success(),
        "push should report the lost connection"
    );
}

type Ws = tungstenite::WebSocket<TcpStream>;

/// A room WebSocket past its `welcome` event.
fn ws_join(http: &str, path: &str) -> Ws {
    let socket = TcpStream::connect(http).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{http}{path}"), socket).unwrap();
    loop {
        if let tungstenite::Message::Text(text) = ws.read().unwrap() {
            if text.contains(r#""type":"welcome""#) {
                return ws;
            }
        }
    }
}

/// An SSE response past its `welcome` event.
fn sse_join(http: &str, path: &str) -> TcpStream {
    let mut socket = TcpStream::connect(http).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(socket, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("welcome") {
        let n = socket.read(&mut buf).unwrap();
        assert!(n > 0, "SSE ended before its welcome");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(seen.starts_with(b"HTTP/1.1 200"));
    socket
}

fn read_to_end(socket: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match socket.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read failed before the end: {e}"),
        }
    }
}

#[test]
fn help_lists_the_contract_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_onair"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--config",
        "--rtmp-listen",
        "--http-listen",
        "--data-dir",
        "--log-format",
        "--allowed-origins",
        "--signed-playback",
        "--publish-auth",
        "--publish-webhook",
        "push",
        "token",
        "sign",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn a_generated_admin_token_is_shown_once_on_the_terminal_and_never_logged() {
    let data_dir = tempfile::tempdir().unwrap();
    let (server, _, http, output) = start_server_with_output(data_dir.path());
    let token = std::fs::read_to_string(data_dir.path().join("admin-token")).unwrap();
    let token = token.trim();
    let shown = || output.terminal.lock().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !shown().contains(token) {
        assert!(Instant::now() < deadline, "token not shown: {}", shown());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Beside it, where to go: the stream list, the admin page, a watch page.
    let port = http.rsplit_once(':').unwrap().1;
    for url in [
        format!("http://localhost:{port}/"),
        format!("http://localhost:{port}/admin"),
        format!("http://localhost:{port}/watch/live/demo"),
    ] {
        assert!(shown().contains(&url), "{url} not shown: {}", shown());
    }
    // It works against the API.
    let mut stream = TcpStream::connect(&http).unwrap();
    write!(
        stream,
        "GET /api/v1/server HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    drop(server);
    assert!(!output.log.lock().unwrap().contains(token), "token logged");

    // The next start with the same data dir keeps the token and does not show it.
    let (server, _, _, again) = start_server_with_output(data_dir.path());
    std::thread::sleep(Duration::from_millis(300));
    drop(server);
    assert!(!again.terminal.lock().unwrap().contains(token));
    assert!(!again.log.lock().unwrap().contains(token));
}

#[test]
fn an_admin_token_is_shown_by_serve_even_after_onair_token_made_the_data_dir() {
    let data_dir = tempfile::tempdir().unwrap();
    let data_dir = data_dir.path().join("fresh");
    let out = Command::new(env!("CARGO_BIN_EXE_onair"))
        .args(["token", "--user", "x", "--data-dir"])
        .arg(&data_dir)
        .env_remove("ONAIR_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        !data_dir.join("admin-token").exists(),
        "onair token made an admin token nobody will see"
    );
    let (server, _, _, output) = start_server_with_output(&data_dir);
    let token = std::fs::read_to_string(data_dir.join("admin-token")).unwrap();
    let token = token.trim().to_owned();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !output.terminal.lock().unwrap().contains(&token) {
        assert!(
            Instant::now() < deadline,
            "the first serve did not show its token"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(server);
}

#[test]
fn sighup_reloads_what_can_change_and_names_what_needs_a_restart() {
    let data_dir = tempfile::tempdir().unwrap();
    let config = data_dir.path().join("onair.toml");
    std::fs::write(&config, "[auth]\nallowed_origins = []\n").unwrap();
    let (server, _, _, output) =
        start_server_with_args(data_dir.path(), &["--config", config.to_str().unwrap()]);
    std::fs::write(
        &config,
        "log_level = \"debug\"\n[auth]\nallowed_origins = [\"https://app.example\"]\n\
         [hub]\ngop_cache_max_frames = 100\n",
    )
    .unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let reload = loop {
        let log = output.log.lock().unwrap().clone();
        let reloaded = log
            .split("}{")
            .find(|line| line.contains("settings reloaded"))
            .map(|line| line.to_owned());
        if let Some(line) = reloaded {
            break line;
        }
        assert!(Instant::now() < deadline, "no reload logged: {log}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let json = format!(
        "{{{}}}",
        reload.trim_start_matches('{').trim_end_matches('}')
    );
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let field = |name: &str| json[name].as_str().unwrap_or_default().to_owned();
    let applied = field("applied");
    let needs_restart = field("needs_restart");
    assert!(applied.contains("auth.allowed_origins"), "{reload}");
    assert!(applied.contains("log_level"), "{reload}");
    assert!(
        needs_restart.contains("hub.gop_cache_max_frames"),
        "{reload}"
    );
    assert!(!needs_restart.contains("auth"), "{reload}");
    drop(server);
}

// ------------------------------------------------ a recording cut by kill -9

/// Whether an outside program can be used; without it the test is skipped, unless
/// ONAIR_REQUIRE_INTEROP is set.
fn tool(name: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        assert!(
            std::env::var_os("ONAIR_REQUIRE_INTEROP").is_none(),
            "{name} is required (ONAIR_REQUIRE_INTEROP is set) but not installed"
        );
        eprintln!("skipping: {name} is not installed");
    }
    found
}

fn recordings(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

fn run(program: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_flv_recording_cut_by_kill_9_decodes_up_to_its_last_flush() {
    cut_by_kill_9("flv");
}

#[test]
fn an_fmp4_recording_cut_by_kill_9_decodes_up_to_its_last_fragment() {
    cut_by_kill_9("fmp4");
}

fn cut_by_kill_9(format: &str) {
    if !tool("ffprobe") || !tool("ffmpeg") {
        return;
    }
    let data_dir = tempfile::tempdir().unwrap();
    let format_set = format!("record.format={format}");
    let (mut server, rtmp, _, _) = start_server_with_args(
        data_dir.path(),
        &["--set", "record.apps=[\"live\"]", "--set", &format_set],
    );
    let publisher = Command::new(env!("CARGO_BIN_EXE_onair"))
        .args([
            "push",
            FIXTURE,
            &format!("rtmp://{rtmp}/live/crash"),
            "--loop",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _publisher = Killer(publisher);

    // Publish for about 3.5 s once the recording has begun.
    let stream_dir = data_dir.path().join("recordings/live/crash");
    let deadline = Instant::now() + Duration::from_secs(20);
    while recordings(&stream_dir).is_empty() {
        assert!(Instant::now() < deadline, "no recording was started");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(3_500));
    server.0.kill().unwrap(); // SIGKILL: no flush, no finish, no webhook.
    server.0.wait().unwrap();

    let files = recordings(&stream_dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let file = files[0].to_str().unwrap();
    let (ok, stdout, stderr) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name:format=duration",
            "-of",
            "json",
            file,
        ],
    );
    assert!(ok, "ffprobe: {stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let mut codecs: Vec<&str> = json["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_name"].as_str().unwrap())
        .collect();
    codecs.sort_unstable();
    assert_eq!(codecs, ["aac", "h264"]);
    let duration: f64 = json["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // At most the last second (one flush interval or fragment, one GOP) is lost.
    assert!(
        (2.0..=4.0).contains(&duration),
        "{duration} s survived a 3.5 s recording"
    );
    let (ok, _, stderr) = run("ffmpeg", &["-v", "error", "-i", file, "-f", "null", "-"]);
    assert!(
        ok && stderr.trim().is_empty(),
        "decoding reported: {stderr}"
    );
}
