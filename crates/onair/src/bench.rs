//! `onair bench`: a load tool. Optionally publishes an FLV file in a loop at real-time
//! pace, opens N RTMP or HTTP-FLV viewers of one stream, and reports per-viewer
//! bitrate, time to the first video keyframe, the latency the server adds (publisher
//! write to viewer receipt), failures, and the server's CPU seconds and RSS.
//!
//! It only talks to loopback addresses and stops by itself: every phase has a bound.
//! Deliberately absent: decoding media, other protocols (HLS), more than one stream.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use onair_media::FrameKind;
use onair_rtmp::{ClientConfig, ClientEvent, ClientSession, MediaKind};
use onair_server::client::{read_flv_tags, ClientError, RtmpUrl, Tag};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, timeout, Instant};
use tokio_util::sync::CancellationToken;

/// Largest FLV tag read from the file or from a server.
const MAX_TAG_SIZE: usize = 8 << 20;
/// Largest HTTP response head accepted.
const MAX_HTTP_HEAD: usize = 16 << 10;
/// Read buffer of each HTTP-FLV viewer.
const HTTP_READ_BUF: usize = 16 << 10;
/// Read buffer of each RTMP viewer.
const VIEWER_READ_BUF: usize = 16 << 10;
/// Read buffer of the publisher (it only reads acknowledgements and status).
const PUBLISH_READ_BUF: usize = 4 << 10;
/// Published video frames remembered for latency lookups.
const FRAME_LOG_LEN: usize = 2048;
/// Latency samples kept per viewer (the first ones of the window).
const MAX_SAMPLES_PER_VIEWER: usize = 16_384;
/// Longest a viewer may take to connect and start playing.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the bench waits, after the last connect, for every viewer's first keyframe.
const WARM_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause between "every viewer warm" and the start of the measuring window.
const SETTLE: Duration = Duration::from_secs(2);
/// A publisher write this much behind its schedule counts as late.
const LATE_WRITE: Duration = Duration::from_millis(50);
/// Distinct error messages kept; the rest are counted under "other".
const MAX_ERROR_KINDS: usize = 32;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
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

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.viewers == 0 || args.duration == 0 || args.ramp_per_sec <= 0.0 {
        bail!("--viewers, --duration and --ramp-per-sec must be positive");
    }
    let play = PlayUrl::parse(&args.play)?;
    let clk_tck = clock_ticks_per_second();
    let cancel = CancellationToken::new();
    let bench_start = Instant::now();

    // Publisher first, so the stream is live (and its GOP cached) before viewers come.
    let mut publisher = None;
    let mut source_kbps = None;
    let log = Arc::new(FrameLog::new(FRAME_LOG_LEN));
    if let (Some(file), Some(url)) = (&args.publish, &args.publish_url) {
        let tags = read_tags(file)?;
        source_kbps = Some(file_kbps(&tags));
        let url = RtmpUrl::parse(url)?;
        require_loopback(&url.host_port)?;
        let mut client = timeout(CONNECT_TIMEOUT, RtmpConn::connect(&url, PUBLISH_READ_BUF))
            .await
            .context("connecting the publisher: timed out")?
            .with_context(|| format!("connecting the publisher to {}", url.tc_url()))?;
        timeout(CONNECT_TIMEOUT, client.publish(&url.name))
            .await
            .context("publishing: timed out")?
            .context("publishing")?;
        let stats = Arc::new(PublishStats::default());
        let task = tokio::spawn(publish_loop(
            client,
            tags,
            log.clone(),
            stats.clone(),
            cancel.clone(),
        ));
        publisher = Some((task, stats));
        progress(
            &args,
            format_args!(
                "publishing to {}",
                args.publish_url.as_deref().unwrap_or("")
            ),
        );
    }
    let warmup = Duration::from_secs(args.warmup);
    sleep(warmup / 2).await;
    let idle_start = sample_procs(&args.server_pid, clk_tck);
    let idle_start_at = Instant::now();
    sleep(warmup - warmup / 2).await;
    let before = sample_procs(&args.server_pid, clk_tck);
    let idle_cpu_per_min = match (&idle_start, &before) {
        (Some(a), Some(b)) => {
            Some((b.cpu_secs - a.cpu_secs) / idle_start_at.elapsed().as_secs_f64().max(1e-3) * 60.0)
        }
        _ => None,
    };

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
    let self_start = sample_proc("self", clk_tck);
    let start = sample_procs(&args.server_pid, clk_tck);
    let bytes_start: Vec<u64> = stats
        .iter()
        .map(|s| s.bytes.load(Ordering::Relaxed))
        .collect();
    let playing_at_start = stats.iter().filter(|s| s.state() == State::Playing).count();
    let window_start = Instant::now();
    shared.measuring.store(true, Ordering::Relaxed);
    progress(
        &args,
        format_args!(
            "measuring {} s with {playing_at_start} viewers playing",
            args.duration
        ),
    );
    sleep(Duration::from_secs(args.duration)).await;
    shared.measuring.store(false, Ordering::Relaxed);
    let window = window_start.elapsed().as_secs_f64();
    let end = sample_procs(&args.server_pid, clk_tck);
    let self_end = sample_proc("self", clk_tck);
    let bytes_end: Vec<u64> = stats
        .iter()
        .map(|s| s.bytes.load(Ordering::Relaxed))
        .collect();
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
        Some((task, stats)) => {
            let result = timeout(Duration::from_secs(5), task).await;
            let error = match result {
                Ok(Ok(Ok(()))) => None,
                Ok(Ok(Err(e))) => Some(e.to_string()),
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some("did not stop in time".to_owned()),
            };
            Some(PublishReport {
                video_frames: stats.video_frames.load(Ordering::Relaxed),
                late_writes: stats.late_writes.load(Ordering::Relaxed),
                max_lag_ms: stats.max_lag_us.load(Ordering::Relaxed) as f64 / 1000.0,
                error,
            })
        }
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
    let mut kbps: Vec<f64> = bytes_start
        .iter()
        .zip(&bytes_end)
        .map(|(a, b)| (b - a) as f64 * 8.0 / window / 1000.0)
        .collect();
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
    let server = match (&before, &start, &end) {
        (Some(before), Some(start), Some(end)) => {
            let cpu = end.cpu_secs - start.cpu_secs;
            let viewer_minutes = playing_at_start as f64 * window / 60.0;
            Some(ServerReport {
                cpu_seconds: cpu,
                cpu_per_viewer_minute: (viewer_minutes > 0.0).then(|| cpu / viewer_minutes),
                idle_cpu_per_minute: idle_cpu_per_min,
                rss_before_kb: before.rss_kb,
                rss_with_viewers_kb: end.rss_kb,
                rss_per_viewer_kb: (playing_at_start > 0)
                    .then(|| (end.rss_kb as f64 - before.rss_kb as f64) / playing_at_start as f64),
            })
        }
        _ => None,
    };
    let bench = match (&self_start, &self_end) {
        (Some(a), Some(b)) => BenchSelf {
            cpu_seconds: b.cpu_secs - a.cpu_secs,
            cores: (b.cpu_secs - a.cpu_secs) / window,
            rss_kb: b.rss_kb,
        },
        _ => BenchSelf::default(),
    };
    let errors = shared.errors.lock().map(|e| e.clone()).unwrap_or_default();
    let report = Report {
        label: args.label.clone(),
        protocol: play.protocol(),
        play_url: args.play.clone(),
        viewers: args.viewers,
        playing_at_window_start: playing_at_start,
        window_secs: window,
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

fn progress(args: &BenchArgs, message: std::fmt::Arguments<'_>) {
    if !args.json {
        eprintln!("bench: {message}");
    } else {
        eprintln!("bench[{}]: {message}", args.label);
    }
}

// ---------------------------------------------------------------------------------
// Publishing

#[derive(Debug, Default)]
struct PublishStats {
    video_frames: AtomicU64,
    late_writes: AtomicU64,
    max_lag_us: AtomicU64,
}

/// Publishes `tags` in a loop at real-time pace until cancelled, recording when each
/// video frame was written.
async fn publish_loop(
    mut client: RtmpConn,
    tags: Vec<Tag>,
    log: Arc<FrameLog>,
    stats: Arc<PublishStats>,
    cancel: CancellationToken,
) -> Result<(), ClientError> {
    let first_ts = tags.first().map_or(0, |t| t.timestamp);
    // The largest, not the last: files often end with a video frame older than the
    // audio before it.
    let max_ts = tags.iter().map(|t| t.timestamp).max().unwrap_or(0);
    // Each pass adds the file's length plus one frame so timestamps keep rising.
    let pass_length = u64::from(max_ts.saturating_sub(first_ts)) + 33;
    let start = Instant::now();
    for pass in 0u64.. {
        for tag in &tags {
            let offset = u64::from(tag.timestamp.saturating_sub(first_ts)) + pass * pass_length;
            let due = start + Duration::from_millis(offset);
            while Instant::now() < due {
                tokio::select! {
                    _ = cancel.cancelled() => {
                        let _ = timeout(Duration::from_secs(1), client.close()).await;
                        return Ok(());
                    }
                    _ = sleep_until(due) => {}
                    read = client.read_events() => read?,
                }
                client.flush().await?;
                while let Some(event) = client.events.pop_front() {
                    if let ClientEvent::Status {
                        level,
                        code,
                        description,
                    } = event
                    {
                        if level == "error" {
                            return Err(ClientError::Refused { code, description });
                        }
                    }
                }
            }
            let lag = Instant::now().saturating_duration_since(due);
            if lag > LATE_WRITE {
                stats.late_writes.fetch_add(1, Ordering::Relaxed);
            }
            let lag_us = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX);
            stats.max_lag_us.fetch_max(lag_us, Ordering::Relaxed);
            let timestamp = (offset & 0xffff_ffff) as u32;
            match tag.kind {
                FrameKind::Script => client.send_metadata(&tag.payload),
                FrameKind::Audio => client.send_media(MediaKind::Audio, timestamp, &tag.payload),
                FrameKind::Video => {
                    if !is_sequence_header(&tag.payload) {
                        log.record(&tag.payload, Instant::now());
                        stats.video_frames.fetch_add(1, Ordering::Relaxed);
                    }
                    client.send_media(MediaKind::Video, timestamp, &tag.payload);
                }
            }
            client.flush().await?;
        }
    }
    Ok(())
}

fn read_tags(file: &Path) -> anyhow::Result<Vec<Tag>> {
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let tags = read_flv_tags(&data, MAX_TAG_SIZE)
        .with_context(|| format!("parsing {}", file.display()))?;
    if tags.is_empty() {
        bail!("{} holds no FLV tags", file.display());
    }
    Ok(tags)
}

/// The file's audio+video payload rate in kbit/s.
fn file_kbps(tags: &[Tag]) -> f64 {
    let bytes: usize = tags
        .iter()
        .filter(|t| t.kind != FrameKind::Script)
        .map(|t| t.payload.len())
        .sum();
    let first = tags.first().map_or(0, |t| t.timestamp);
    let last = tags.last().map_or(0, |t| t.timestamp);
    let secs = f64::from(last.saturating_sub(first)).max(1.0) / 1000.0;
    bytes as f64 * 8.0 / secs / 1000.0
}

/// When recently published video frames were written, keyed by a fingerprint of their
/// payload (length and a hash of the last bytes) rather than their timestamp, so the
/// lookup also works through servers that rebase timestamps per viewer (nginx-rtmp).
#[derive(Debug)]
struct FrameLog {
    inner: Mutex<FrameLogInner>,
}

#[derive(Debug)]
struct FrameLogInner {
    /// `None` marks a fingerprint seen twice within a few seconds: ambiguous, skipped.
    written: HashMap<u64, Option<Instant>>,
    order: VecDeque<u64>,
    capacity: usize,
}

/// Two writes of the same payload closer than this are ambiguous; further apart (the
/// file looping) the newer one replaces the older.
const SAME_FRAME_WINDOW: Duration = Duration::from_secs(5);

impl FrameLog {
    fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(FrameLogInner {
                written: HashMap::with_capacity(capacity),
                order: VecDeque::with_capacity(capacity),
                capacity,
            }),
        }
    }

    fn record(&self, payload: &[u8], at: Instant) {
        let key = fingerprint(payload);
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let value = match inner.written.get(&key) {
            Some(Some(prev)) if at.saturating_duration_since(*prev) < SAME_FRAME_WINDOW => None,
            Some(None) => None,
            _ => Some(at),
        };
        if inner.written.insert(key, value).is_none() {
            inner.order.push_back(key);
        }
        while inner.order.len() > inner.capacity {
            if let Some(old) = inner.order.pop_front() {
                inner.written.remove(&old);
            }
        }
    }

    fn written(&self, payload: &[u8]) -> Option<Instant> {
        let key = fingerprint(payload);
        self.inner.lock().ok()?.written.get(&key).copied().flatten()
    }
}

/// FNV-1a over the length and the last 64 bytes (coded picture data, effectively random).
fn fingerprint(payload: &[u8]) -> u64 {
    let tail = payload
        .get(payload.len().saturating_sub(64)..)
        .unwrap_or_default();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in (payload.len() as u64).to_le_bytes().iter().chain(tail) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

// ---------------------------------------------------------------------------------
// Viewers

#[derive(Debug)]
struct Shared {
    /// True during the measuring window: latency samples are taken only then.
    measuring: AtomicBool,
    log: Option<Arc<FrameLog>>,
    errors: Mutex<BTreeMap<String, usize>>,
}

impl Shared {
    fn count_error(&self, error: String) {
        let Ok(mut errors) = self.errors.lock() else {
            return;
        };
        let key = if errors.contains_key(&error) || errors.len() < MAX_ERROR_KINDS {
            error
        } else {
            "other".to_owned()
        };
        *errors.entry(key).or_default() += 1;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting = 0,
    Playing = 1,
    ConnectFailed = 2,
    Disconnected = 3,
}

#[derive(Debug)]
struct ViewerStats {
    /// Media payload bytes received (audio, video, data), as on the FLV tag bodies.
    bytes: AtomicU64,
    /// Microseconds from connect start to the first video keyframe; `u64::MAX` = none yet.
    first_keyframe_us: AtomicU64,
    state: AtomicU8,
}

impl Default for ViewerStats {
    fn default() -> Self {
        Self {
            bytes: AtomicU64::new(0),
            first_keyframe_us: AtomicU64::new(u64::MAX),
            state: AtomicU8::new(State::Connecting as u8),
        }
    }
}

impl ViewerStats {
    fn state(&self) -> State {
        match self.state.load(Ordering::Relaxed) {
            1 => State::Playing,
            2 => State::ConnectFailed,
            3 => State::Disconnected,
            _ => State::Connecting,
        }
    }

    fn set_state(&self, state: State) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    fn first_keyframe(&self) -> Option<Duration> {
        match self.first_keyframe_us.load(Ordering::Relaxed) {
            u64::MAX => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// Warm (has a keyframe) or out of the game.
    fn settled(&self) -> bool {
        self.first_keyframe().is_some()
            || matches!(self.state(), State::ConnectFailed | State::Disconnected)
    }
}

/// What a viewer plays, parsed once.
#[derive(Debug, Clone)]
enum PlayUrl {
    Rtmp(RtmpUrl),
    Http { addr: SocketAddr, path: String },
}

impl PlayUrl {
    fn parse(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("rtmp://") {
            let url = RtmpUrl::parse(url)?;
            require_loopback(&url.host_port)?;
            return Ok(Self::Rtmp(url));
        }
        let Some(rest) = url.strip_prefix("http://") else {
            bail!("--play must start with rtmp:// or http://");
        };
        let (host, path) = match rest.split_once('/') {
            Some((host, path)) => (host, format!("/{path}")),
            None => (rest, "/".to_owned()),
        };
        let host_port = if host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            host.to_owned()
        } else {
            format!("{host}:80")
        };
        let addr = require_loopback(&host_port)?;
        Ok(Self::Http { addr, path })
    }

    fn protocol(&self) -> &'static str {
        match self {
            Self::Rtmp(_) => "rtmp",
            Self::Http { .. } => "http-flv",
        }
    }
}

/// The bench only loads servers on this machine.
fn require_loopback(host_port: &str) -> anyhow::Result<SocketAddr> {
    let addr: SocketAddr = host_port
        .parse()
        .with_context(|| format!("{host_port}: give a literal IP address (127.0.0.1)"))?;
    if !addr.ip().is_loopback() {
        bail!("{host_port}: the bench only talks to loopback addresses (127.0.0.1)");
    }
    Ok(addr)
}

/// Why a viewer stopped before it was cancelled.
#[derive(Debug, thiserror::Error)]
enum ViewerError {
    #[error("rtmp: {0}")]
    Rtmp(#[from] ClientError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("http: {0}")]
    Http(String),
    #[error("flv: {0}")]
    Flv(#[from] onair_flv::Error),
    #[error("connect timed out")]
    Timeout,
    #[error("stream ended")]
    Ended,
}

/// Per-viewer receive state: counts bytes, spots the first keyframe, takes latency samples.
struct Receiver {
    connect_start: Instant,
    stats: Arc<ViewerStats>,
    shared: Arc<Shared>,
    samples: Vec<u32>,
}

impl Receiver {
    fn on_frame(&mut self, video: bool, payload: &[u8]) {
        let now = Instant::now();
        self.stats
            .bytes
            .fetch_add(payload.len() as u64, Ordering::Relaxed);
        if !video {
            return;
        }
        if is_keyframe(payload) && self.stats.first_keyframe().is_none() {
            let us = now
                .saturating_duration_since(self.connect_start)
                .as_micros();
            self.stats
                .first_keyframe_us
                .store(u64::try_from(us).unwrap_or(u64::MAX - 1), Ordering::Relaxed);
        }
        if self.samples.len() >= MAX_SAMPLES_PER_VIEWER
            || !self.shared.measuring.load(Ordering::Relaxed)
        {
            return;
        }
        if let Some(written) = self.shared.log.as_ref().and_then(|l| l.written(payload)) {
            let us = now.saturating_duration_since(written).as_micros();
            self.samples.push(u32::try_from(us).unwrap_or(u32::MAX));
        }
    }
}

/// One viewer: connects, plays until cancelled, returns its latency samples (µs).
async fn viewer(
    url: PlayUrl,
    stats: Arc<ViewerStats>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) -> Vec<u32> {
    let mut rx = Receiver {
        connect_start: Instant::now(),
        stats: stats.clone(),
        shared: shared.clone(),
        samples: Vec::new(),
    };
    let result = tokio::select! {
        _ = cancel.cancelled() => Ok(()),
        result = play(&url, &mut rx) => result,
    };
    if let Err(error) = result {
        let state = if stats.state() == State::Playing {
            State::Disconnected
        } else {
            State::ConnectFailed
        };
        // Failures after the window (the publisher going away) are not counted.
        if !cancel.is_cancelled() {
            shared.count_error(error.to_string());
            stats.set_state(state);
        }
    }
    rx.samples
}

async fn play(url: &PlayUrl, rx: &mut Receiver) -> Result<(), ViewerError> {
    match url {
        PlayUrl::Rtmp(url) => play_rtmp(url, rx).await,
        PlayUrl::Http { addr, path } => play_http(*addr, path, rx).await,
    }
}

async fn play_rtmp(url: &RtmpUrl, rx: &mut Receiver) -> Result<(), ViewerError> {
    let mut client = timeout(CONNECT_TIMEOUT, async {
        let mut client = RtmpConn::connect(url, VIEWER_READ_BUF).await?;
        client.play(&url.name).await?;
        Ok::<_, ClientError>(client)
    })
    .await
    .map_err(|_| ViewerError::Timeout)??;
    rx.stats.set_state(State::Playing);
    loop {
        match client.next_event().await? {
            ClientEvent::Media { kind, payload, .. } => {
                rx.on_frame(kind == MediaKind::Video, &payload)
            }
            ClientEvent::StreamEnded => return Err(ViewerError::Ended),
            _ => {}
        }
    }
}

/// An RTMP connection driven the lean way a load tool needs (rather than
/// `onair_server::client::RtmpClient`): one reused read buffer per connection instead of
/// a fresh 64 KiB one per read, and a read that stays cancel-safe because it never
/// writes, for the publisher's pacing `select!`. Whatever the session queues (C2,
/// `connect`, acknowledgements) is written after every read.
struct RtmpConn {
    session: ClientSession,
    socket: TcpStream,
    buf: Vec<u8>,
    events: VecDeque<ClientEvent>,
}

impl RtmpConn {
    /// Connects, handshakes and sends `connect`; returns once the server accepted it.
    async fn connect(url: &RtmpUrl, read_buf: usize) -> Result<Self, ClientError> {
        let socket = TcpStream::connect(&url.host_port).await?;
        socket.set_nodelay(true)?;
        let config = ClientConfig {
            app: url.app.clone(),
            tc_url: url.tc_url(),
            ..ClientConfig::default()
        };
        let mut conn = Self {
            session: ClientSession::new(config, &handshake_random()),
            socket,
            buf: vec![0; read_buf],
            events: VecDeque::new(),
        };
        conn.flush().await?;
        conn.wait_for(|e| matches!(e, ClientEvent::Connected))
            .await?;
        Ok(conn)
    }

    async fn publish(&mut self, name: &str) -> Result<(), ClientError> {
        self.session.publish(name);
        self.flush().await?;
        self.wait_for(|e| matches!(e, ClientEvent::PublishStarted { .. }))
            .await
    }

    async fn play(&mut self, name: &str) -> Result<(), ClientError> {
        self.session.play(name);
        self.flush().await?;
        self.wait_for(|e| matches!(e, ClientEvent::PlayStarted { .. }))
            .await
    }

    fn send_media(&mut self, kind: MediaKind, timestamp: u32, payload: &[u8]) {
        self.session.send_media(kind, timestamp, payload);
    }

    fn send_metadata(&mut self, payload: &[u8]) {
        self.session.send_metadata(payload);
    }

    /// Writes everything the session has queued.
    async fn flush(&mut self) -> Result<(), ClientError> {
        while let Some(bytes) = self.session.poll_transmit() {
            self.socket.write_all(&bytes).await?;
        }
        Ok(())
    }

    /// One read, fed to the session; events go to `self.events`. Cancel-safe; the
    /// caller flushes afterwards.
    async fn read_events(&mut self) -> Result<(), ClientError> {
        let n = self.socket.read(&mut self.buf).await?;
        if n == 0 {
            return Err(ClientError::Closed);
        }
        self.session
            .handle_input(self.buf.get(..n).unwrap_or_default())?;
        while let Some(event) = self.session.poll_event() {
            self.events.push_back(event);
        }
        Ok(())
    }

    /// The next event; replies the session queued are written first.
    async fn next_event(&mut self) -> Result<ClientEvent, ClientError> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(event);
            }
            self.read_events().await?;
            self.flush().await?;
        }
    }

    async fn wait_for(&mut self, done: impl Fn(&ClientEvent) -> bool) -> Result<(), ClientError> {
        loop {
            let event = self.next_event().await?;
            if done(&event) {
                return Ok(());
            }
            if let ClientEvent::Status {
                level,
                code,
                description,
            } = event
            {
                if level == "error" {
                    return Err(ClientError::Refused { code, description });
                }
            }
        }
    }

    /// Unpublishes or stops playing, then closes the socket.
    async fn close(mut self) -> Result<(), ClientError> {
        self.session.close();
        self.flush().await?;
        self.socket.shutdown().await?;
        Ok(())
    }
}

/// C1's random bytes, from the standard library's randomly seeded hasher (they need
/// not be strong, only differ between connections).
fn handshake_random() -> [u8; onair_rtmp::RANDOM_LEN] {
    use std::hash::{BuildHasher, Hasher};
    let state = std::collections::hash_map::RandomState::new();
    let mut random = [0u8; onair_rtmp::RANDOM_LEN];
    for (i, chunk) in random.chunks_mut(8).enumerate() {
        let mut hasher = state.build_hasher();
        hasher.write_usize(i);
        let bytes = hasher.finish().to_le_bytes();
        chunk.copy_from_slice(bytes.get(..chunk.len()).unwrap_or_default());
    }
    random
}

async fn play_http(addr: SocketAddr, path: &str, rx: &mut Receiver) -> Result<(), ViewerError> {
    let mut buf = vec![0u8; HTTP_READ_BUF];
    let (mut socket, body_start, chunked) = timeout(CONNECT_TIMEOUT, async {
        let mut socket = TcpStream::connect(addr).await?;
        socket.set_nodelay(true)?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: onair-bench\r\nAccept: */*\r\n\r\n"
        );
        socket.write_all(request.as_bytes()).await?;
        let mut head = Vec::new();
        loop {
            let n = socket.read(&mut buf).await?;
            if n == 0 {
                return Err(ViewerError::Http("closed before the response head".into()));
            }
            head.extend_from_slice(buf.get(..n).unwrap_or_default());
            if let Some(end) = find(&head, b"\r\n\r\n") {
                let chunked = parse_response_head(head.get(..end).unwrap_or_default())?;
                let body = head.get(end + 4..).unwrap_or_default().to_vec();
                return Ok((socket, body, chunked));
            }
            if head.len() > MAX_HTTP_HEAD {
                return Err(ViewerError::Http("response head too long".into()));
            }
        }
    })
    .await
    .map_err(|_| ViewerError::Timeout)??;
    rx.stats.set_state(State::Playing);
    let mut body = HttpFlvBody::new(chunked);
    body.feed(&body_start, rx)?;
    loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Err(ViewerError::Ended);
        }
        body.feed(buf.get(..n).unwrap_or_default(), rx)?;
        if body.done() {
            return Err(ViewerError::Ended);
        }
    }
}

/// The body of an HTTP-FLV response: transfer decoding, then FLV tags.
struct HttpFlvBody {
    chunked: Option<ChunkedDecoder>,
    flv: onair_flv::FlvReader,
}

impl HttpFlvBody {
    fn new(chunked: bool) -> Self {
        Self {
            chunked: chunked.then(ChunkedDecoder::default),
            flv: onair_flv::FlvReader::new(MAX_TAG_SIZE),
        }
    }

    fn feed(&mut self, data: &[u8], rx: &mut Receiver) -> Result<(), ViewerError> {
        match &mut self.chunked {
            Some(decoder) => {
                let flv = &mut self.flv;
                decoder
                    .decode(data, |part| flv.push(part))
                    .map_err(|e| ViewerError::Http(e.to_string()))?;
            }
            None => self.flv.push(data),
        }
        while let Some(tag) = self.flv.next_tag()? {
            if tag.kind != FrameKind::Script || !tag.payload.is_empty() {
                rx.on_frame(tag.kind == FrameKind::Video, &tag.payload);
            }
        }
        Ok(())
    }

    fn done(&self) -> bool {
        self.chunked.as_ref().is_some_and(ChunkedDecoder::done)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Checks the status is 200; returns whether the body is chunked.
fn parse_response_head(head: &[u8]) -> Result<bool, ViewerError> {
    let text =
        std::str::from_utf8(head).map_err(|_| ViewerError::Http("head is not UTF-8".into()))?;
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let code = status.split(' ').nth(1).unwrap_or_default();
    if !status.starts_with("HTTP/1.") || code != "200" {
        return Err(ViewerError::Http(format!("status {status:?}")));
    }
    Ok(lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
        })
    }))
}

/// A `Transfer-Encoding: chunked` decoder that hands back the data and drops the framing.
#[derive(Debug, Default)]
struct ChunkedDecoder {
    state: ChunkState,
    /// Hex digits read of the current size line.
    digits: u8,
    /// The size being read.
    size: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading the hex size.
    #[default]
    Size,
    /// Skipping a chunk extension up to CR LF.
    Extension,
    /// After the size line's CR.
    SizeLf,
    Data(u64),
    DataCr,
    DataLf,
    /// The zero-size chunk was read; trailers and anything after are ignored.
    Done,
}

/// A chunked body that cannot be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
enum ChunkError {
    #[error("bad chunk size line")]
    BadSize,
    #[error("chunk data not followed by CR LF")]
    MissingCrlf,
}

/// Most hex digits accepted in a chunk size (60 bits).
const SIZE_DIGITS_MAX: u8 = 15;

impl ChunkedDecoder {
    fn decode(&mut self, mut input: &[u8], mut out: impl FnMut(&[u8])) -> Result<(), ChunkError> {
        while let Some((&byte, rest)) = input.split_first() {
            match self.state {
                ChunkState::Size => {
                    if let Some(digit) = (byte as char).to_digit(16) {
                        self.digits += 1;
                        if self.digits > SIZE_DIGITS_MAX {
                            return Err(ChunkError::BadSize);
                        }
                        self.size = self.size << 4 | u64::from(digit);
                    } else if self.digits == 0 {
                        return Err(ChunkError::BadSize);
                    } else if byte == b'\r' {
                        self.state = ChunkState::SizeLf;
                    } else if byte == b';' || byte == b' ' || byte == b'\t' {
                        self.state = ChunkState::Extension;
                    } else {
                        return Err(ChunkError::BadSize);
                    }
                    input = rest;
                }
                ChunkState::Extension => {
                    if byte == b'\r' {
                        self.state = ChunkState::SizeLf;
                    }
                    input = rest;
                }
                ChunkState::SizeLf => {
                    if byte != b'\n' {
                        return Err(ChunkError::BadSize);
                    }
                    self.digits = 0;
                    self.state = if self.size == 0 {
                        ChunkState::Done
                    } else {
                        ChunkState::Data(self.size)
                    };
                    self.size = 0;
                    input = rest;
                }
                ChunkState::Data(remaining) => {
                    let take = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(input.len());
                    let (data, rest) = input.split_at(take);
                    out(data);
                    let left = remaining - take as u64;
                    self.state = if left == 0 {
                        ChunkState::DataCr
                    } else {
                        ChunkState::Data(left)
                    };
                    input = rest;
                }
                ChunkState::DataCr | ChunkState::DataLf => {
                    let expected = if self.state == ChunkState::DataCr {
                        b'\r'
                    } else {
                        b'\n'
                    };
                    if byte != expected {
                        return Err(ChunkError::MissingCrlf);
                    }
                    self.state = if self.state == ChunkState::DataCr {
                        ChunkState::DataLf
                    } else {
                        ChunkState::Size
                    };
                    input = rest;
                }
                ChunkState::Done => return Ok(()),
            }
        }
        Ok(())
    }

    fn done(&self) -> bool {
        self.state == ChunkState::Done
    }
}

/// A video tag body that starts a GOP: frame type 1 (keyframe), AVC NALU (packet type 1).
fn is_keyframe(payload: &[u8]) -> bool {
    matches!(payload, [first, 1, ..] if first >> 4 == 1 && first & 0x0f == 7)
}

/// An AVC sequence header (decoder configuration), not a picture.
fn is_sequence_header(payload: &[u8]) -> bool {
    matches!(payload, [first, 0, ..] if first & 0x0f == 7)
}

// ---------------------------------------------------------------------------------
// Process sampling

#[derive(Debug, Clone, Copy)]
struct ProcSample {
    cpu_secs: f64,
    rss_kb: u64,
}

/// `getconf CLK_TCK`, read once; 100 if that fails.
fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|&hz| hz > 0.0)
        .unwrap_or(100.0)
}

/// CPU time and RSS of `/proc/{pid}` (`pid` may be "self").
fn sample_proc(pid: &str, clk_tck: f64) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(ProcSample {
        cpu_secs: stat_cpu_ticks(&stat)? as f64 / clk_tck,
        rss_kb: status_rss_kb(&status)?,
    })
}

/// The sum over `pids`; `None` when there are none or one cannot be read.
fn sample_procs(pids: &[u32], clk_tck: f64) -> Option<ProcSample> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().try_fold(
        ProcSample {
            cpu_secs: 0.0,
            rss_kb: 0,
        },
        |sum, pid| {
            let s = sample_proc(&pid.to_string(), clk_tck)?;
            Some(ProcSample {
                cpu_secs: sum.cpu_secs + s.cpu_secs,
                rss_kb: sum.rss_kb + s.rss_kb,
            })
        },
    )
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line, in clock ticks.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `VmRSS` of `/proc/PID/status`, in KiB.
fn status_rss_kb(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_ascii_whitespace().nth(1)?.parse().ok()
}

// ---------------------------------------------------------------------------------
// Statistics and the report

/// The `p`th percentile (0..=100) of sorted values, nearest rank.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

#[derive(Debug, Serialize)]
struct Report {
    label: String,
    protocol: &'static str,
    play_url: String,
    viewers: usize,
    playing_at_window_start: usize,
    window_secs: f64,
    failures: Failures,
    first_keyframe_ms: Percentiles,
    latency_ms: Percentiles,
    bitrate_kbps: BitrateReport,
    server: Option<ServerReport>,
    bench: BenchSelf,
    publisher: Option<PublishReport>,
    elapsed_secs: f64,
}

#[derive(Debug, Serialize)]
struct Failures {
    /// Viewers that failed one way or another.
    total: usize,
    /// Could not connect or start playing.
    connect: usize,
    /// Were playing, then the connection ended before the end of the window.
    disconnected: usize,
    /// Playing, but no video keyframe by the end of the window.
    no_keyframe: usize,
    /// Error messages and how many viewers ended with each.
    errors: BTreeMap<String, usize>,
}

#[derive(Debug, Serialize)]
struct Percentiles {
    count: usize,
    p50: Option<f64>,
    p95: Option<f64>,
    p99: Option<f64>,
    max: Option<f64>,
}

impl Percentiles {
    fn of(sorted: &[f64]) -> Self {
        Self {
            count: sorted.len(),
            p50: percentile(sorted, 50.0),
            p95: percentile(sorted, 95.0),
            p99: percentile(sorted, 99.0),
            max: sorted.last().copied(),
        }
    }
}

#[derive(Debug, Serialize)]
struct BitrateReport {
    min: Option<f64>,
    median: Option<f64>,
    mean: Option<f64>,
    /// The published file's audio+video rate.
    source: Option<f64>,
}

#[derive(Debug, Serialize)]
struct ServerReport {
    /// CPU seconds (user + system) the server used during the window.
    cpu_seconds: f64,
    cpu_per_viewer_minute: Option<f64>,
    /// CPU seconds per minute before the viewers came (ingest only).
    idle_cpu_per_minute: Option<f64>,
    rss_before_kb: u64,
    rss_with_viewers_kb: u64,
    rss_per_viewer_kb: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
struct BenchSelf {
    cpu_seconds: f64,
    /// Average cores the bench used during the window.
    cores: f64,
    rss_kb: u64,
}

#[derive(Debug, Serialize)]
struct PublishReport {
    video_frames: u64,
    /// Writes more than 50 ms behind schedule (the bench itself falling behind).
    late_writes: u64,
    max_lag_ms: f64,
    error: Option<String>,
}

impl Report {
    fn render(&self) -> String {
        use std::fmt::Write as _;
        let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1} ms"));
        let mut out = String::new();
        let _ = writeln!(
            out,
            "onair bench {}: {} x{} viewers, {:.1} s window, {} playing",
            self.label, self.protocol, self.viewers, self.window_secs, self.playing_at_window_start
        );
        let f = &self.failures;
        let _ = writeln!(
            out,
            "  failures           {} (connect {}, disconnected {}, no keyframe {})",
            f.total, f.connect, f.disconnected, f.no_keyframe
        );
        for (error, count) in &f.errors {
            let _ = writeln!(out, "    {count:>6} x {error}");
        }
        let k = &self.first_keyframe_ms;
        let _ = writeln!(
            out,
            "  first keyframe     p50 {}  p95 {}  max {}  (n={})",
            ms(k.p50),
            ms(k.p95),
            ms(k.max),
            k.count
        );
        let l = &self.latency_ms;
        let _ = writeln!(
            out,
            "  latency            p50 {}  p99 {}  max {}  (n={})",
            ms(l.p50),
            ms(l.p99),
            ms(l.max),
            l.count
        );
        let b = &self.bitrate_kbps;
        let kbps = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
        let _ = writeln!(
            out,
            "  bitrate/viewer     min {}  median {}  mean {} kbit/s  (source {})",
            kbps(b.min),
            kbps(b.median),
            kbps(b.mean),
            kbps(b.source)
        );
        if let Some(s) = &self.server {
            let _ = writeln!(
                out,
                "  server CPU         {:.2} s = {} CPU-s per viewer-minute (ingest only: {} CPU-s/min)",
                s.cpu_seconds,
                s.cpu_per_viewer_minute.map_or("-".to_owned(), |v| format!("{v:.4}")),
                s.idle_cpu_per_minute.map_or("-".to_owned(), |v| format!("{v:.3}")),
            );
            let _ = writeln!(
                out,
                "  server RSS         {} KB before, {} KB with viewers = {} KB per viewer",
                s.rss_before_kb,
                s.rss_with_viewers_kb,
                s.rss_per_viewer_kb
                    .map_or("-".to_owned(), |v| format!("{v:.1}")),
            );
        }
        let _ = writeln!(
            out,
            "  bench itself       {:.2} CPU-s ({:.2} cores), RSS {} KB",
            self.bench.cpu_seconds, self.bench.cores, self.bench.rss_kb
        );
        if let Some(p) = &self.publisher {
            let _ = writeln!(
                out,
                "  publisher          {} video frames, {} late writes, max lag {:.1} ms{}",
                p.video_frames,
                p.late_writes,
                p.max_lag_ms,
                p.error
                    .as_ref()
                    .map_or(String::new(), |e| format!(", error: {e}"))
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), Some(50.0));
        assert_eq!(percentile(&values, 95.0), Some(95.0));
        assert_eq!(percentile(&values, 99.0), Some(99.0));
        assert_eq!(percentile(&values, 100.0), Some(100.0));
        assert_eq!(percentile(&values, 0.0), Some(1.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), Some(2.0));
        assert_eq!(mean(&[1.0, 2.0, 6.0]), Some(3.0));
    }

    #[test]
    fn reads_proc_stat_and_status() {
        let stat = "1234 (on air) (x) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 \
                    3 0 100 1000000 300 18446744073709551615";
        assert_eq!(stat_cpu_ticks(stat), Some(325));
        assert_eq!(stat_cpu_ticks("garbage"), None);
        let status = "Name:\tonair\nVmPeak:\t 1000 kB\nVmRSS:\t   20480 kB\nThreads:\t3\n";
        assert_eq!(status_rss_kb(status), Some(20480));
        assert!(sample_proc("self", 100.0).is_some_and(|s| s.rss_kb > 0));
    }

    #[test]
    fn decodes_chunked_bodies_split_anywhere() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
        for split in 0..=wire.len() {
            let mut decoder = ChunkedDecoder::default();
            let mut out = Vec::new();
            let (a, b) = wire.split_at(split);
            decoder.decode(a, |d| out.extend_from_slice(d)).unwrap();
            decoder.decode(b, |d| out.extend_from_slice(d)).unwrap();
            assert_eq!(out, b"hello, world", "split at {split}");
            assert!(decoder.done());
        }
    }

    #[test]
    fn refuses_bad_chunk_framing() {
        let mut decoder = ChunkedDecoder::default();
        assert_eq!(decoder.decode(b"zz\r\n", |_| {}), Err(ChunkError::BadSize));
        let mut decoder = ChunkedDecoder::default();
        assert_eq!(
            decoder.decode(b"2\r\nabXY", |_| {}),
            Err(ChunkError::MissingCrlf)
        );
        let mut decoder = ChunkedDecoder::default();
        let huge = b"1111111111111111\r\n";
        assert_eq!(decoder.decode(huge, |_| {}), Err(ChunkError::BadSize));
    }

    #[test]
    fn parses_response_heads() {
        let head = b"HTTP/1.1 200 OK\r\ncontent-type: video/x-flv\r\ntransfer-encoding: chunked";
        assert!(parse_response_head(head).unwrap());
        assert!(!parse_response_head(b"HTTP/1.0 200 OK\r\nContent-Type: video/x-flv").unwrap());
        assert!(parse_response_head(b"HTTP/1.1 404 Not Found\r\n").is_err());
    }

    #[test]
    fn spots_keyframes_and_sequence_headers() {
        assert!(is_keyframe(&[0x17, 1, 0, 0, 0]));
        assert!(!is_keyframe(&[0x17, 0, 0, 0, 0]));
        assert!(!is_keyframe(&[0x27, 1, 0, 0, 0]));
        assert!(!is_keyframe(&[0x17]));
        assert!(is_sequence_header(&[0x17, 0, 0, 0, 0]));
        assert!(!is_sequence_header(&[0x17, 1]));
    }

    #[test]
    fn frame_log_finds_recent_frames_and_skips_ambiguous_ones() {
        let log = FrameLog::new(4);
        let t0 = Instant::now();
        log.record(b"frame one", t0);
        log.record(b"frame two", t0 + Duration::from_millis(33));
        assert_eq!(log.written(b"frame one"), Some(t0));
        assert_eq!(
            log.written(b"frame two"),
            Some(t0 + Duration::from_millis(33))
        );
        assert_eq!(log.written(b"never sent"), None);
        // The same payload again soon after: ambiguous.
        log.record(b"frame one", t0 + Duration::from_millis(66));
        assert_eq!(log.written(b"frame one"), None);
        // Much later (the file looped): the newer write counts.
        let later = t0 + Duration::from_secs(30);
        log.record(b"frame two", later);
        assert_eq!(log.written(b"frame two"), Some(later));
        // Bounded: old entries fall out.
        for i in 0..8u8 {
            log.record(&[i; 10], later);
        }
        assert_eq!(log.written(b"frame two"), None);
    }

    #[test]
    fn only_loopback_urls() {
        assert!(PlayUrl::parse("rtmp://127.0.0.1:1935/live/x").is_ok());
        assert!(PlayUrl::parse("http://127.0.0.1:8080/live/x.flv").is_ok());
        assert!(PlayUrl::parse("http://10.0.0.1:8080/live/x.flv").is_err());
        assert!(PlayUrl::parse("rtmp://example.com/live/x").is_err());
        assert!(PlayUrl::parse("ftp://127.0.0.1/x").is_err());
    }
}
