//! Interop: the fixture segmented into fMP4 and checked by ffprobe and ffmpeg, as a
//! whole file (what the recorder writes) and one segment at a time (init + that
//! segment's parts, what an HLS player fetches).
//!
//! Skipped with a printed reason when ffprobe or ffmpeg is missing, unless
//! ONAIR_REQUIRE_INTEROP is set (as in CI), which makes it fail.

#![allow(clippy::unwrap_used)]
// An interop test: it waits on an outside program (ffprobe) in wall time.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use onair_flv::FlvReader;
use onair_fmp4::{Output, Segmenter, SegmenterSettings};

const FIXTURE: &[u8] =
    include_bytes!("../../server/tests/fixtures/ffmpeg_testsrc2_640x360_30fps_6s.flv");

fn tool(name: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .is_ok_and(|out| out.status.success());
    if found {
        return true;
    }
    if std::env::var_os("ONAIR_REQUIRE_INTEROP").is_some() {
        panic!("{name} is required (ONAIR_REQUIRE_INTEROP is set) but not installed");
    }
    eprintln!("skipping: {name} is not installed");
    false
}

/// Runs a program with a time limit; returns (success, stdout, stderr).
fn run_tool(program: &str, args: &[&str]) -> (bool, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{program} {args:?} did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The fixture through the segmenter: the init segment and the parts of each segment.
fn segment_fixture() -> (Bytes, Vec<Vec<Bytes>>) {
    let mut reader = FlvReader::new(1 << 24);
    reader.push(FIXTURE);
    let mut seg = Segmenter::new(SegmenterSettings::default());
    let mut out = Vec::new();
    while let Some(tag) = reader.next_tag().unwrap() {
        let frame = onair_flv::classify(tag.kind, tag.timestamp, tag.payload).unwrap();
        seg.push(&frame, &mut out).unwrap();
    }
    seg.finish(&mut out);
    let mut init = None;
    let mut segments: Vec<Vec<Bytes>> = Vec::new();
    for o in out {
        match o {
            Output::Init(i) => {
                assert!(init.is_none(), "one init segment for one configuration");
                init = Some(i);
            }
            Output::Part(p) => {
                if p.starts_segment || segments.is_empty() {
                    segments.push(Vec::new());
                }
                segments.last_mut().unwrap().push(p.bytes);
            }
        }
    }
    (init.unwrap(), segments)
}

fn write(path: &Path, init: &Bytes, parts: &[Bytes]) {
    let mut file = init.to_vec();
    for p in parts {
        file.extend_from_slice(p);
    }
    std::fs::write(path, file).unwrap();
}

/// `key=value` lines of each `[STREAM]` section.
fn streams(ffprobe_out: &str) -> Vec<Vec<(String, String)>> {
    ffprobe_out
        .split("[STREAM]")
        .skip(1)
        .map(|section| {
            section
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

fn field<'a>(stream: &'a [(String, String)], key: &str) -> &'a str {
    stream
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

fn probe(path: &Path) -> Vec<Vec<(String, String)>> {
    let path = path.to_str().unwrap();
    let (ok, stdout, stderr) = run_tool(
        "ffprobe",
        &["-v", "error", "-show_streams", "-count_frames", path],
    );
    assert!(ok && stderr.trim().is_empty(), "ffprobe {path}: {stderr}");
    streams(&stdout)
}

fn decode(path: &Path) {
    let path = path.to_str().unwrap();
    let (ok, _, stderr) = run_tool("ffmpeg", &["-v", "error", "-i", path, "-f", "null", "-"]);
    assert!(
        ok && stderr.trim().is_empty(),
        "ffmpeg decoding {path}: {stderr}"
    );
}

#[test]
fn the_whole_stream_probes_and_decodes_cleanly() {
    if !tool("ffprobe") || !tool("ffmpeg") {
        return;
    }
    let (init, segments) = segment_fixture();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stream.mp4");
    let parts: Vec<Bytes> = segments.concat();
    write(&path, &init, &parts);

    let streams = probe(&path);
    assert_eq!(streams.len(), 2, "{streams:?}");
    let video = &streams[0];
    assert_eq!(field(video, "codec_name"), "h264");
    assert_eq!(field(video, "width"), "640");
    assert_eq!(field(video, "height"), "360");
    assert_eq!(field(video, "nb_read_frames"), "180");
    let audio = &streams[1];
    assert_eq!(field(audio, "codec_name"), "aac");
    assert_eq!(field(audio, "sample_rate"), "44100");
    assert_eq!(field(audio, "channels"), "2");
    decode(&path);
    // 30 fps in 90 kHz ticks (FLV's whole milliseconds make it 2970 or 3060), AAC
    // frames of 1024 samples.
    assert_no_timestamp_gaps(&path, "v", 2970..=3060);
    assert_no_timestamp_gaps(&path, "a", 1024..=1024);
}

/// Decode times step by one frame duration from packet to packet. (ffmpeg's packet
/// `duration` for fragmented input is its own estimate, so the steps are checked.)
fn assert_no_timestamp_gaps(path: &Path, stream: &str, step: std::ops::RangeInclusive<i64>) {
    let path = path.to_str().unwrap();
    let (ok, stdout, stderr) = run_tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            stream,
            "-show_entries",
            "packet=dts",
            "-of",
            "csv=p=0",
            path,
        ],
    );
    assert!(ok, "{stderr}");
    let dts: Vec<i64> = stdout
        .lines()
        .map(|l| l.trim_end_matches(',').parse().unwrap())
        .collect();
    assert!(dts.len() > 100, "{stream}: {} packets", dts.len());
    for w in dts.windows(2) {
        assert!(
            step.contains(&(w[1] - w[0])),
            "{stream}: gap or overlap after dts {}",
            w[0]
        );
    }
}

#[test]
fn each_segment_with_the_init_segment_decodes_on_its_own() {
    if !tool("ffprobe") || !tool("ffmpeg") {
        return;
    }
    let (init, segments) = segment_fixture();
    assert_eq!(segments.len(), 3, "6 s in 2 s segments");
    let dir = tempfile::tempdir().unwrap();
    let mut video_frames = 0;
    for (i, parts) in segments.iter().enumerate() {
        let path = dir.path().join(format!("segment{i}.mp4"));
        write(&path, &init, parts);
        let streams = probe(&path);
        assert_eq!(field(&streams[0], "codec_name"), "h264");
        video_frames += field(&streams[0], "nb_read_frames").parse::<u32>().unwrap();
        decode(&path);
    }
    assert_eq!(video_frames, 180);
}
