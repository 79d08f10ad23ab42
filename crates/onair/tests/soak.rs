#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The leak-proof soak: the real binary, `onair bench soak` against it for
//! `ONAIR_SOAK_CYCLES` connect/disconnect cycles (default 10,000; CI runs fewer) of
//! every kind of client, and then open connections, tasks, rooms, room members and
//! file descriptors must be back at their warm baseline and RSS within 10% of it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../server/tests/fixtures/ffmpeg_testsrc2_640x360_30fps_6s.flv"
);

/// Short server timeouts, so stallers are dropped and idle rooms swept within the test.
const SERVER_SETTINGS: &[&str] = &[
    "rtmp.handshake_timeout_ms=1000",
    "rtmp.idle_timeout_ms=3000",
    "http.request_head_timeout_ms=1000",
    "http.ws_ping_interval_ms=2000",
    "http.ws_idle_timeout_ms=10000",
    "rooms.room_idle_ms=500",
    // Ended publishes keep their HLS playlist this long on purpose; the soak looks for
    // what outlives it.
    "hls.linger_ms=1000",
    "limits.requests_per_second_per_ip=0",
];
/// Cycles in flight at once.
const CONCURRENCY: &str = "32";
/// A staller leaves after this long if the server has not dropped it; the server's
/// timeouts above (1 s) must drop every one first.
const STALL_MS: &str = "5000";
/// Longest the server may take to get back to its baseline after the churn.
const SETTLE: Duration = Duration::from_secs(60);
/// Longest one run of the soak driver may take.
const DRIVER_TIMEOUT: Duration = Duration::from_secs(540);

struct Killer(Child);

impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `onair` on ephemeral ports; returns it with its (rtmp, http) addresses.
fn start_server(data_dir: &std::path::Path) -> (Killer, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_onair"));
    command.args([
        "--rtmp-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
    ]);
    for setting in SERVER_SETTINGS {
        command.args(["--set", setting]);
    }
    let mut child = command
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "warn,onair=info,onair_server=info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let server = Killer(child);
    let (rtmp, http) = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if json["message"] == "onair listening" {
            break (
                json["rtmp"].as_str().unwrap().to_owned(),
                json["http"].as_str().unwrap().to_owned(),
            );
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    (server, rtmp, http)
}

/// The figures the soak compares, read from `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    connections: f64,
    tasks: f64,
    rooms: f64,
    members: f64,
    streams: f64,
    hls_playlists: f64,
    fds: f64,
    rss: f64,
}

impl Sample {
    /// Everything but memory equals `base`.
    fn matches(&self, base: &Sample) -> bool {
        self.connections == base.connections
            && self.tasks == base.tasks
            && self.rooms == base.rooms
            && self.members == base.members
            && self.streams == base.streams
            && self.hls_playlists == base.hls_playlists
            && self.fds == base.fds
    }
}

/// One scrape on a connection of its own (it counts itself among the open
/// connections and tasks, the same in every sample).
fn scrape(http: &str) -> Sample {
    let mut socket = TcpStream::connect(http).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        socket,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    socket.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let sum = |name: &str| -> f64 {
        let values: Vec<f64> = text
            .lines()
            .filter(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
            .collect();
        assert!(!values.is_empty(), "no {name} in /metrics");
        values.iter().sum()
    };
    Sample {
        connections: sum("onair_connections_open"),
        tasks: sum("onair_tokio_tasks_alive"),
        rooms: sum("onair_rooms"),
        members: sum("onair_room_members"),
        streams: sum("onair_streams"),
        hls_playlists: sum("onair_hls_playlists"),
        fds: sum("onair_process_open_fds"),
        rss: sum("onair_process_resident_memory_bytes"),
    }
}

/// Polls `/metrics` until `done` holds (or `within` passes); returns the last sample.
fn settle(http: &str, within: Duration, done: impl Fn(&Sample) -> bool) -> Sample {
    let deadline = Instant::now() + within;
    loop {
        let sample = scrape(http);
        if done(&sample) || Instant::now() >= deadline {
            return sample;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The server at rest: nothing open but the scrape itself, no room, no stream, and the
/// task count steady over three scrapes.
fn quiet(http: &str) -> Sample {
    let idle = |s: &Sample| s.connections == 1.0 && s.members == 0.0 && s.rooms == 0.0;
    let first = settle(http, SETTLE, |s| {
        idle(s) && s.streams == 0.0 && s.hls_playlists == 0.0
    });
    assert!(idle(&first), "the server did not go quiet: {first:?}");
    let mut last = first;
    let mut steady = 0;
    let deadline = Instant::now() + SETTLE;
    while steady < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        let next = scrape(http);
        steady = if next.matches(&last) { steady + 1 } else { 0 };
        last = next;
    }
    last
}

fn chat_token(data_dir: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_onair"))
        .args(["token", "--user", "soak"])
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "onair token failed: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Runs `onair bench soak --json` and returns its report.
fn soak(rtmp: &str, http: &str, token: &str, cycles: u64, label: &str) -> serde_json::Value {
    let mut driver = Killer(
        Command::new(env!("CARGO_BIN_EXE_onair"))
            .args(["bench", "soak", "--json", "--concurrency", CONCURRENCY])
            .args(["--stall-ms", STALL_MS, "--label", label, "--token", token])
            .args(["--cycles", &cycles.to_string()])
            .args(["--http", &format!("http://{http}")])
            .args(["--rtmp", &format!("rtmp://{rtmp}/live/soak")])
            .args(["--file", FIXTURE])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdout = driver.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let deadline = Instant::now() + DRIVER_TIMEOUT;
    let status = loop {
        if let Some(status) = driver.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the soak driver ran over {DRIVER_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = reader.join().unwrap();
    assert!(status.success(), "the soak driver failed ({status}): {out}");
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    eprintln!("{label}: {report}");
    assert_eq!(report["cycles"], cycles, "{report}");
    assert_eq!(report["failures"], 0, "cycles failed: {report}");
    assert!(report["publisher_error"].is_null(), "{report}");
    for (kind, tally) in report["kinds"].as_object().unwrap() {
        if kind.starts_with("stall_") {
            assert_eq!(
                tally["dropped_by_server"], tally["ok"],
                "the server left {kind} stallers open: {report}"
            );
        }
    }
    report
}

#[test]
fn connection_churn_leaves_connections_tasks_rooms_fds_and_memory_where_they_were() {
    let cycles: u64 = std::env::var("ONAIR_SOAK_CYCLES")
        .ok()
        .map(|v| v.parse().expect("ONAIR_SOAK_CYCLES must be a number"))
        .unwrap_or(10_000);
    let data_dir = tempfile::tempdir().unwrap();
    let (_server, rtmp, http) = start_server(data_dir.path());
    let token = chat_token(data_dir.path());

    // Warm-up: every code path once, buffers and pools at their working size.
    soak(&rtmp, &http, &token, (cycles / 5).max(360), "warm-up");
    let base = quiet(&http);
    eprintln!("baseline after the warm-up: {base:?}");

    let started = Instant::now();
    let report = soak(&rtmp, &http, &token, cycles, "soak");
    let after = settle(&http, SETTLE, |s| s.matches(&base));
    eprintln!(
        "after {cycles} cycles ({:.0} s, {} failed): {after:?}, settled {:.1} s after the churn",
        report["elapsed_secs"].as_f64().unwrap_or_default(),
        report["failures"],
        started.elapsed().as_secs_f64() - report["elapsed_secs"].as_f64().unwrap_or_default()
    );
    assert_eq!(after.connections, base.connections, "open connections");
    assert_eq!(after.tasks, base.tasks, "tokio tasks alive");
    assert_eq!(after.rooms, base.rooms, "rooms");
    assert_eq!(after.members, base.members, "room members");
    assert_eq!(after.streams, base.streams, "live streams");
    assert_eq!(after.fds, base.fds, "open file descriptors");
    assert!(
        after.rss <= base.rss * 1.10,
        "RSS grew more than 10%: {:.1} MiB after, {:.1} MiB at the baseline",
        after.rss / 1048576.0,
        base.rss / 1048576.0
    );
}
