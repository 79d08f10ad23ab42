//! `onair bench hls`: an FLV file published in a loop at real-time pace, N HLS viewers
//! of it (low-latency ones against onair, plain pollers against nginx-rtmp's HLS), and
//! the report (see bench/README.md, "HLS").

mod context;
mod fetch;
mod http;
mod ll_viewer;
mod media_time;
mod plain_viewer;
mod playlist;
mod report;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, timeout, Instant};
use tokio_util::sync::CancellationToken;

use super::media::frame_log::FrameLog;
use super::media::publisher::start_publisher;
use super::media::report::BitrateReport;
use super::process::{clock_ticks_per_second, warmup};
use super::report::{BenchSelf, ServerReport};
use super::require_loopback;
use super::stats::{mean, percentile};
use super::window::Window;
use context::{Context, State, ViewerStats};
use report::{Downloads, Failures, Report, Timeline};

/// Published video frames remembered for latency lookups (over a minute at 30 fps).
const FRAME_LOG_LEN: usize = 2048;
/// Longest the bench waits, after the last viewer started, for every viewer's first
/// part or segment.
const WARM_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause between "every viewer playing" and the start of the measuring window.
const SETTLE: Duration = Duration::from_secs(2);
/// Longest one request may take: onair holds a blocked one up to three target
/// durations.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Low-latency HLS (onair): blocking playlist reload and the hinted part at once.
    Ll,
    /// Plain HLS (nginx-rtmp): poll the playlist, download each new segment.
    Plain,
}

#[derive(Debug, clap::Args)]
pub struct HlsArgs {
    /// FLV file to publish in a loop at real-time pace.
    #[arg(long, value_name = "FILE.flv")]
    publish: PathBuf,
    /// Where to publish: rtmp://127.0.0.1:PORT/APP/NAME.
    #[arg(long, value_name = "URL")]
    publish_url: String,
    /// The playlist: http://127.0.0.1:PORT/APP/NAME/index.m3u8 (ll) or the media playlist (plain).
    #[arg(long, value_name = "URL")]
    play: String,
    #[arg(long, value_enum, default_value = "ll")]
    mode: Mode,
    /// Number of viewers.
    #[arg(long, default_value_t = 100)]
    viewers: usize,
    /// Viewers started per second.
    #[arg(long, default_value_t = 200.0)]
    ramp_per_sec: f64,
    /// Length of the measuring window, in seconds.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Seconds between the start of publishing and the first viewer.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Milliseconds the server adds to the publisher's timestamps in its media times
    /// (nginx-rtmp's HLS: 700); what remains is measured.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    timeline_offset_ms: f64,
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

pub async fn run(args: HlsArgs) -> anyhow::Result<()> {
    if args.viewers == 0 || args.duration == 0 || args.ramp_per_sec <= 0.0 {
        bail!("--viewers, --duration and --ramp-per-sec must be positive");
    }
    let rest = args
        .play
        .strip_prefix("http://")
        .context("--play: give an http:// URL")?;
    let (host_port, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr = require_loopback(host_port)?;
    let path = if path.is_empty() { "/" } else { path };
    let clk_tck = clock_ticks_per_second();
    let cancel = CancellationToken::new();
    let bench_start = Instant::now();

    let log = Arc::new(FrameLog::new(FRAME_LOG_LEN));
    let publisher = start_publisher(
        &args.publish,
        &args.publish_url,
        log.clone(),
        cancel.clone(),
    )
    .await?;
    let source_kbps = publisher.source_kbps;
    progress(&args, format_args!("publishing to {}", args.publish_url));
    let (before, idle_cpu_per_min) =
        warmup(&args.server_pid, clk_tck, Duration::from_secs(args.warmup)).await;

    let ctx = Arc::new(Context::new(
        addr,
        path.to_owned(),
        log,
        args.timeline_offset_ms,
        REQUEST_TIMEOUT,
    ));
    let stats: Vec<Arc<ViewerStats>> = (0..args.viewers)
        .map(|_| Arc::new(ViewerStats::default()))
        .collect();
    let mut tasks = JoinSet::new();
    let period = Duration::from_secs_f64(1.0 / args.ramp_per_sec);
    let ramp_start = Instant::now();
    for (i, stat) in stats.iter().enumerate() {
        sleep_until(ramp_start + period.mul_f64(i as f64)).await;
        let (ctx, stat, cancel) = (ctx.clone(), stat.clone(), cancel.clone());
        match args.mode {
            Mode::Ll => tasks.spawn(ll_viewer::ll_viewer(ctx, stat, cancel)),
            Mode::Plain => tasks.spawn(plain_viewer::plain_viewer(ctx, stat, cancel)),
        };
    }
    progress(
        &args,
        format_args!(
            "{} viewers started in {:.1} s",
            args.viewers,
            ramp_start.elapsed().as_secs_f64()
        ),
    );
    let warm_deadline = Instant::now() + WARM_TIMEOUT;
    while Instant::now() < warm_deadline && stats.iter().any(|s| s.state() == State::Starting) {
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
        &ctx.measuring,
        || {
            stats
                .iter()
                .map(|s| s.bytes.load(Ordering::Relaxed))
                .collect()
        },
    )
    .await;

    cancel.cancel();
    if timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tasks.abort_all();
    }
    let publish = publisher.finish().await;

    let mut kbps = window.kbps();
    kbps.sort_by(f64::total_cmp);
    let never_started = stats
        .iter()
        .filter(|s| !s.was_playing.load(Ordering::Relaxed))
        .count();
    let stopped = stats
        .iter()
        .filter(|s| s.state() == State::Failed && s.was_playing.load(Ordering::Relaxed))
        .count();
    let c = &ctx.counts;
    let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    let failures = Failures {
        total: (never_started + stopped) as u64
            + load(&c.non_2xx)
            + load(&c.timeouts)
            + load(&c.other_errors)
            + load(&c.gaps),
        never_started,
        stopped,
        non_2xx: load(&c.non_2xx),
        timeouts: load(&c.timeouts),
        other_errors: load(&c.other_errors),
        gaps: load(&c.gaps),
        errors: ctx.errors(),
    };
    let latency_ms = ctx
        .latency_us
        .lock()
        .map(|h| h.percentiles(1000.0))
        .map_err(|_| anyhow::anyhow!("latency histogram poisoned"))?;
    let delivery_ms = ctx
        .delivery_us
        .lock()
        .map(|h| h.percentiles(1000.0))
        .map_err(|_| anyhow::anyhow!("delivery histogram poisoned"))?;
    let report = Report {
        label: args.label.clone(),
        mode: match args.mode {
            Mode::Ll => "ll",
            Mode::Plain => "plain",
        },
        url: args.play.clone(),
        viewers: args.viewers,
        playing_at_window_start: playing_at_start,
        window_secs: window.secs,
        failures,
        latency_ms,
        delivery_ms,
        downloads: Downloads {
            requests: load(&c.requests),
            requests_per_viewer_sec: (playing_at_start > 0)
                .then(|| load(&c.requests) as f64 / playing_at_start as f64 / window.secs),
            count: load(&c.downloads),
            blocked: load(&c.blocked),
            late_requests: load(&c.late_requests),
            unmatched: load(&c.unmatched),
            hint_misses: load(&c.hint_misses),
        },
        timeline: Timeline {
            given_offset_ms: args.timeline_offset_ms,
            measured_offset_ms: ctx.measured_offset_ms(),
        },
        bitrate_kbps: BitrateReport {
            min: percentile(&kbps, 0.0),
            median: percentile(&kbps, 50.0),
            mean: mean(&kbps),
            source: Some(source_kbps),
        },
        server: ServerReport::new(
            before,
            window.server_start,
            window.server_end,
            idle_cpu_per_min,
            playing_at_start,
            window.secs,
        ),
        bench: BenchSelf::new(window.self_start, window.self_end, window.secs),
        cpu_busy: window.cpu_busy,
        publisher: Some(publish),
        elapsed_secs: bench_start.elapsed().as_secs_f64(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(())
}

fn progress(args: &HlsArgs, message: std::fmt::Arguments<'_>) {
    super::progress(&args.label, args.json, message);
}
