//! `onair bench soak`: connection churn. N connect/disconnect cycles, C at a time,
//! spread round-robin over RTMP publishers, RTMP and HTTP-FLV viewers, WebSocket and
//! SSE room clients and stallers, each leaving cleanly or with a reset, while one
//! publisher keeps a stream live for the viewers. What the server looks like after
//! (connections, tasks, rooms, descriptors, memory) is for the caller to check on
//! `/metrics`; this reports what each cycle saw.

mod http;
mod kind;
mod report;
mod rtmp;
mod stall;
mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use onair_relay::client::{RtmpUrl, Tag};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout, Instant};
use tokio_util::sync::CancellationToken;

use super::media::frame_log::FrameLog;
use super::media::publisher::{publish_loop, read_tags, PublishStats};
use super::media::rtmp_conn::RtmpConn;
use super::require_loopback;
use kind::Kind;
use report::{Report, Tally};

/// Longest one cycle may take, whatever it waits for.
const CYCLE_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest the long-lived publisher may take to connect and publish.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Tags each churn publisher sends before it leaves.
const CHURN_TAGS: usize = 24;
/// Wait after the long-lived publisher starts, so its first keyframe is cached.
const WARMUP: Duration = Duration::from_millis(500);

#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// The server's HTTP address: http://127.0.0.1:PORT.
    #[arg(long, value_name = "URL")]
    http: String,
    /// The long-lived stream: rtmp://127.0.0.1:PORT/APP/NAME. Viewers play it; churn
    /// publishers use NAME-p{cycle}, rooms NAME and NAME-r{cycle}.
    #[arg(long, value_name = "URL")]
    rtmp: String,
    /// FLV file the long-lived publisher sends in a loop (churn publishers send its start).
    #[arg(long, value_name = "FILE.flv")]
    file: PathBuf,
    /// Connect/disconnect cycles in all.
    #[arg(long, default_value_t = 10_000)]
    cycles: u64,
    /// Cycles in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// A chat token (`onair token`) for the WebSocket clients that sign in; without
    /// it they join anonymously.
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// Longest a staller waits for the server to drop it before it leaves itself, in ms.
    #[arg(long, default_value_t = 2_000)]
    stall_ms: u64,
    /// A name for this run in the output.
    #[arg(long, default_value = "")]
    label: String,
    /// Print the report as one line of JSON.
    #[arg(long)]
    json: bool,
}

/// Where and how the cycles connect; shared by all of them.
struct Target {
    http: SocketAddr,
    rtmp: RtmpUrl,
    token: Option<String>,
    stall: Duration,
    /// The start of the file, for churn publishers.
    churn_tags: Vec<Tag>,
}

impl Target {
    fn app(&self) -> &str {
        &self.rtmp.app
    }

    fn name(&self) -> &str {
        &self.rtmp.name
    }

    /// The room of cycle `i`: the live stream's room or, every other round, one of its own.
    fn room(&self, i: u64) -> String {
        if (i / Kind::ALL.len() as u64).is_multiple_of(2) {
            format!("{}/{}", self.app(), self.name())
        } else {
            format!("{}/{}-r{i}", self.app(), self.name())
        }
    }
}

/// What a cycle that went as planned saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done,
    /// A staller the server closed before the staller gave up.
    DroppedByServer,
}

pub async fn run(args: SoakArgs) -> anyhow::Result<()> {
    if args.cycles == 0 || args.concurrency == 0 {
        bail!("--cycles and --concurrency must be positive");
    }
    let http = args
        .http
        .strip_prefix("http://")
        .context("--http must be http://127.0.0.1:PORT")?;
    let http = require_loopback(http.trim_end_matches('/'))?;
    let rtmp = RtmpUrl::parse(&args.rtmp)?;
    require_loopback(&rtmp.host_port)?;
    let tags = read_tags(&args.file)?;
    let target = Arc::new(Target {
        http,
        rtmp: rtmp.clone(),
        token: args.token.clone(),
        stall: Duration::from_millis(args.stall_ms),
        churn_tags: tags.iter().take(CHURN_TAGS).cloned().collect(),
    });

    // The long-lived publisher.
    let cancel = CancellationToken::new();
    let mut client = timeout(CONNECT_TIMEOUT, RtmpConn::connect(&rtmp, 4 << 10))
        .await
        .context("connecting the publisher: timed out")?
        .with_context(|| format!("connecting the publisher to {}", rtmp.tc_url()))?;
    timeout(CONNECT_TIMEOUT, client.publish(&rtmp.name))
        .await
        .context("publishing: timed out")?
        .context("publishing")?;
    let publisher = tokio::spawn(publish_loop(
        client,
        tags,
        Arc::new(FrameLog::new(16)),
        Arc::new(PublishStats::default()),
        cancel.clone(),
    ));
    sleep(WARMUP).await;
    progress(
        &args,
        format_args!(
            "{} cycles, {} at a time, over {} kinds",
            args.cycles,
            args.concurrency,
            Kind::ALL.len()
        ),
    );

    let started = Instant::now();
    let mut tally = Tally::default();
    let mut tasks = JoinSet::new();
    let mut next = 0u64;
    while next < args.cycles || !tasks.is_empty() {
        while next < args.cycles && tasks.len() < args.concurrency {
            let kind = Kind::of_cycle(next);
            let target = Arc::clone(&target);
            let i = next;
            tasks.spawn(async move {
                let outcome = match timeout(CYCLE_TIMEOUT, cycle(i, kind, &target)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err("cycle timed out".to_owned()),
                };
                (kind, outcome)
            });
            next += 1;
        }
        match tasks.join_next().await {
            Some(Ok((kind, outcome))) => tally.add(kind, outcome),
            Some(Err(error)) => tally.panicked(&error.to_string()),
            None => {}
        }
        let done = tally.cycles();
        if done > 0 && done.is_multiple_of(1000) {
            progress(&args, format_args!("{done} cycles done"));
        }
    }
    let elapsed = started.elapsed();

    cancel.cancel();
    let publisher_error = match timeout(Duration::from_secs(5), publisher).await {
        Ok(Ok(Ok(()))) => None,
        Ok(Ok(Err(e))) => Some(e.to_string()),
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("did not stop in time".to_owned()),
    };
    let report = Report::new(&args, tally, elapsed, publisher_error);
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(())
}

async fn cycle(i: u64, kind: Kind, target: &Target) -> Result<Outcome, String> {
    let leave = kind.leave();
    match kind {
        Kind::RtmpPublishClean | Kind::RtmpPublishAbrupt => rtmp::publish(i, target, leave).await,
        Kind::RtmpPlayClean | Kind::RtmpPlayAbrupt => rtmp::play(target, leave).await,
        Kind::FlvPlayClean | Kind::FlvPlayAbrupt => http::flv(target, leave).await,
        Kind::SseClean | Kind::SseAbrupt => http::sse(i, target, leave).await,
        Kind::WsAnonymousClean | Kind::WsAnonymousAbrupt => ws::join(i, target, None, leave).await,
        Kind::WsTokenClean | Kind::WsTokenAbrupt => {
            ws::join(i, target, target.token.as_deref(), leave).await
        }
        Kind::WsBadToken => ws::bad_token(i, target).await,
        Kind::StallRtmpHandshake => stall::rtmp_half_handshake(target, leave).await,
        Kind::StallHttpHead => stall::http_half_head(target, leave).await,
        Kind::StallRtmpSilent => stall::silent(&target.rtmp.host_port, target, leave).await,
        Kind::StallHttpSilent => stall::silent(&target.http.to_string(), target, leave).await,
        Kind::StallHttpKeepAlive => stall::http_keep_alive(target, leave).await,
    }
    .map_err(|e| format!("{kind:?}: {e}"))
}

/// Drops `socket` so that the server sees a reset rather than a FIN.
fn reset(socket: TcpStream) {
    let _ = socket.set_zero_linger();
    drop(socket);
}

fn progress(args: &SoakArgs, message: std::fmt::Arguments<'_>) {
    super::progress(&args.label, args.json, message);
}
