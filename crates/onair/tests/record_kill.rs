#![allow(clippy::unwrap_used, clippy::expect_used)]

//! A recording cut by `kill -9`: the `onair` binary records a stream that `onair push`
//! publishes, is killed without warning, and the file it leaves decodes with ffmpeg up
//! to its last flush.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

/// Starts `onair` recording app `live` as `format` into `data_dir`; returns it and its
/// RTMP address.
fn start_recording_server(data_dir: &Path, format: &str) -> (Killer, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_onair"))
        .args([
            "--rtmp-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .env("ONAIR_RECORD__APPS", r#"["live"]"#)
        .env("ONAIR_RECORD__FORMAT", format)
        .env_remove("ONAIR_LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let rtmp = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        if json["message"] == "onair listening" {
            break json["rtmp"].as_str().unwrap().to_owned();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    (Killer(child), rtmp)
}

fn recordings(dir: &Path) -> Vec<PathBuf> {
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
    let (mut server, rtmp) = start_recording_server(data_dir.path(), format);
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
