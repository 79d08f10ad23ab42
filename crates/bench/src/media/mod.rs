//! `onair bench media`: an FLV file published in a loop at real-time pace, N RTMP or
//! HTTP-FLV viewers of it, and the report (see bench/README.md).

mod chunked;
pub(super) mod flv_viewer;
pub(super) mod frame_log;
pub(super) mod publisher;
pub(super) mod report;
pub(super) mod rtmp_conn;
mod rtmp_viewer;
mod video_tag;
pub(super) mod viewer;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::bail;
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, timeout, Instant};
use tokio_util::sync::CancellationToken;

use super::process::{clock_ticks_per_second, warmup};
use super::report::{BenchSelf, ServerReport};
use super::stats::{mean, percentile, Percentiles};
use super::window::Window;
use frame_log::FrameLog;
use publisher::start_publisher;
use report::{BitrateReport, Failures, Report};
use viewer::{viewer, PlayUrl, Shared, State, ViewerStats};

/// Largest FLV tag read from the file or from a server.
pub(super) const MAX_TAG_SIZE: usize = 8 << 20;
/// Published video frames remembered for latency lookups.
const FRAME_LOG_LEN: usize = 2048;
/// Longest a viewer may take to connect and start playing.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the bench waits, after the last connect, for every viewer's first keyframe.
const WARM_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause between "every viewer warm" and the start of the measuring window.
const SETTLE: Duration = Duration::from_secs(2);

#[derive(Debug, clap::Args)]
pub struct MediaArgs {
    /// FLV file to publish in a loop at real-time pace (needed for latency figures).
    #[arg(long, value_name = "FILE.flv", requires = "publish_url")]
    publish: Option<PathBuf>,
    /// Where to publish: rtmp://127.0.0.1:PORT/APP/NAME.
    #[arg(long, value_name = "URL", requires = "publish")]
    publish_url: Option<String>,
    /// What the viewers play: rtmp://127.0.0.1:PORT/APP/NAME or http://127.0.0.1:PORT/APP/NAME.flv.
    #[arg(long, value_name = "URL")]
    play: String,
    /// Number of viewers.
    #[arg(long, default_value_t = 100)]
    viewers: usize,
    /// Viewers connected per second.
    #[arg(long, default_value_t = 200.0)]
    ramp_per_sec: f64,
    /// Length of the measuring window, in seconds.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Seconds between the start of publishing and the first viewer (fills the GOP cache).
    #[arg(long, default_value_t = 4)]
    warmup: u64,
    /// Server process(es) whose CPU time and RSS are sampled (repeatable or comma-separated).
    #[arg(long, value_name = "PID", value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// A name for this run in the output.
    #[arg(long, default_value = "")]
    label: String,
    /// Print the report as one line of JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: MediaArgs) -> anyhow::Result<()> {
    if args.viewers == 0 || args.duration == 0 || args.ramp_per_sec <= 0.0 {
        bail!("--viewers, --duration and --ramp-per-sec must be positive");
    }
    let play = PlayUrl::parse(&args.play)?;
    let clk_tck = clock_ticks_per_second();
    let cancel = CancellationToken::new();
    let bench_start = Instant::now();

    // Publisher first, so the stream is live (and its GOP cached) before viewers come.
    let log = Arc::new(FrameLog::new(FRAME_LOG_LEN));
    let publisher = match (&args.publish, &args.publish_url) {
        (Some(file), Some(url)) => {
            let publisher = start_publisher(file, url, log.clone(), cancel.clone()).await?;
            progress(&args, format_args!("publishing to {url}"));
            Some(publisher)
        }
        _ => None,
    };
    let source_kbps = publisher.as_ref().map(|p| p.source_kbps);
    let (before, idle_cpu_per_min) =
        warmup(&args.server_pid, clk_tck, Duration::from_secs(args.warmup)).await;

    // Viewers, at the ramp rate.
    let shared = Arc::new(Shared {
        measuring: AtomicBool::new(false),
        log: args.publish.is_some().then_some(log),
        errors: Mutex::new(BTreeMap::new()),
    });
    let stats: Vec<Arc<ViewerStats>> = (0..args.viewers)
        .map(|_| Arc::new(ViewerStats::default()))
        .collect();
    let mut tasks = JoinSet::new();
    let period = Duration::from_secs_f64(1.0 / args.ramp_per_sec);
    let ramp_start = Instant::now();
    for (i, stat) in stats.iter().enumerate() {
        sleep_until(ramp_start + period.mul_f64(i as f64)).await;
        tasks.spawn(viewer(
            play.clone(),
            stat.clone(),
            shared.clone(),
            cancel.clone(),
        ));
    }
    progress(
        &args,
        format_args!(
            "{} viewers started in {:.1} s",
            args.viewers,
            ramp_start.elapsed().as_secs_f64()
        ),
    );

    // Warm: every viewer has its first keyframe or has failed (bounded).
    let warm_deadline = Instant::now() + WARM_TIMEOUT;
    while Instant::now() < warm_deadline && !stats.iter().all(|s| s.settled()) {
        sleep(Duration::from_millis(100)).await;
    }
    sleep(SETTLE).await;

    // The measuring window.
    let playing_at_start = stats.iter().filter(|s| s.state() == State::Playing).count();
    progress(
        &args,
        format_args!(
            "measuring {} s with {playing_at_start} viewers playing",
            args.duration
        ),
    );
    let window = Window::measure(
        Duration::from_secs(args.duration),
        &args.server_pid,
        clk_tck,
        &shared.measuring,
        || {
            stats
                .iter()
                .map(|s| s.bytes.load(Ordering::Relaxed))
                .collect()
        },
    )
    .await;
    let states: Vec<State> = stats.iter().map(|s| s.state()).collect();

    // Stop everything and collect the latency samples (bounded).
    cancel.cancel();
    let mut latencies_us = Vec::new();
    let collect = async {
        while let Some(done) = tasks.join_next().await {
            if let Ok(samples) = done {
                latencies_us.extend(samples);
            }
        }
    };
    if timeout(Duration::from_secs(10), collect).await.is_err() {
        tasks.abort_all();
    }
    let publish = match publisher {
        Some(publisher) => Some(publisher.finish().await),
        None => None,
    };

    // The report.
    let mut first_keyframe_ms: Vec<f64> = stats
        .iter()
        .filter_map(|s| s.first_keyframe())
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    first_keyframe_ms.sort_by(f64::total_cmp);
    let mut latency_ms: Vec<f64> = latencies_us
        .iter()
        .map(|&us| f64::from(us) / 1000.0)
        .collect();
    latency_ms.sort_by(f64::total_cmp);
    let mut kbps = window.kbps();
    kbps.sort_by(f64::total_cmp);
    let connect_failures = states
        .iter()
        .filter(|s| **s == State::ConnectFailed)
        .count();
    let disconnected = states.iter().filter(|s| **s == State::Disconnected).count();
    let no_keyframe = stats
        .iter()
        .zip(&states)
        .filter(|(s, state)| **state == State::Playing && s.first_keyframe().is_none())
        .count();
    let server = ServerReport::new(
        before,
        window.server_start,
        window.server_end,
        idle_cpu_per_min,
        playing_at_start,
        window.secs,
    );
    let bench = BenchSelf::new(window.self_start, window.self_end, window.secs);
    let errors = shared.errors.lock().map(|e| e.clone()).unwrap_or_default();
    let report = Report {
        label: args.label.clone(),
        protocol: play.protocol(),
        play_url: args.play.clone(),
        viewers: args.viewers,
        playing_at_window_start: playing_at_start,
        window_secs: window.secs,
        failures: Failures {
            total: connect_failures + disconnected + no_keyframe,
            connect: connect_failures,
            disconnected,
            no_keyframe,
            errors,
        },
        first_keyframe_ms: Percentiles::of(&first_keyframe_ms),
        latency_ms: Percentiles::of(&latency_ms),
        bitrate_kbps: BitrateReport {
            min: percentile(&kbps, 0.0),
            median: percentile(&kbps, 50.0),
            mean: mean(&kbps),
            source: source_kbps,
        },
        server,
        bench,
        publisher: publish,
        elapsed_secs: bench_start.elapsed().as_secs_f64(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(())
}

fn progress(args: &MediaArgs, message: std::fmt::Arguments<'_>) {
    super::progress(&args.label, args.json, message);
}
