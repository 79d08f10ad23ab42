#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The `onair` binary as a process: it starts with no config, logs JSON when not on a
//! terminal, and on SIGTERM ends every connection (an RTMP publisher and an HTTP-FLV
//! viewer) and exits within the drain time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
/// read from its JSON "listening" log line.
fn start_server(data_dir: &std::path::Path) -> (Killer, String, String) {
    let (server, rtmp, http, _) = start_server_with_output(data_dir);
    (server, rtmp, http)
}

fn start_server_with_output(data_dir: &std::path::Path) -> (Killer, String, String, Output) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_onair"))
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
    let (mut server, rtmp, http) = start_server(data_dir.path());

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

    let started = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = wait_exit(&mut server.0, Duration::from_secs(6));
    assert!(exit.success(), "server exit status {exit}");
    eprintln!("server exited {:?} after SIGTERM", started.elapsed());

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
