//! `onair bench rooms`: N WebSocket clients in one room, K of them sending chat at a
//! fixed total rate, against onair or a socket.io broadcast server (see
//! bench/README.md). Phases, each bounded: connect at the ramp rate, wait until every
//! client joined or failed, sit idle (idle CPU and RSS), send for `--warmup` seconds,
//! then measure for `--duration` seconds.

mod client;
mod mix;
mod protocol;
mod report;
mod stamped;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use onair_server::auth::TokenKeys;
use onair_server::rooms::{Role, User};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, timeout, Instant};
use tokio_util::sync::CancellationToken;

use super::cpus::CpuSample;
use super::process::{clock_ticks_per_second, sample_proc, sample_procs, ProcSample};
use super::require_loopback;
use client::{client, ConnStats, SendPlan, Shared, State, CONNECT_TIMEOUT};
use mix::Mix;
use protocol::Protocol;
use report::{BenchSelf, Failures, Report, ServerReport, Traffic};

/// Longest the bench waits, after the last connect started, for every client to join.
const JOIN_TIMEOUT: Duration = CONNECT_TIMEOUT;
/// Lifetime of the senders' chat tokens.
const TOKEN_TTL_SECS: u64 = 3600;

#[derive(Debug, clap::Args)]
pub struct RoomsArgs {
    /// The room: ws://127.0.0.1:PORT/ws/APP/NAME (onair), or
    /// ws://127.0.0.1:PORT/socket.io/?EIO=4&transport=websocket&room=APP/NAME (socket.io).
    #[arg(long, value_name = "URL")]
    url: String,
    /// The room protocol the server speaks.
    #[arg(long, value_enum, default_value = "onair")]
    protocol: Protocol,
    /// Connections in the room, senders included.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// How many of the connections send chat (each a signed-in user on onair).
    #[arg(long, default_value_t = 10)]
    senders: usize,
    /// Messages per second, all senders together (0: idle connections only).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// What the senders send, by weight: `chat`, `like` (one tap), `gift` (one rose),
    /// `wave` (a custom event the server aggregates, `--wave-name`), e.g.
    /// `chat:40,like:30,gift:10,wave:20`. onair only, except `chat:1`.
    #[arg(long, default_value = "chat:1")]
    mix: Mix,
    /// Messages each sender writes at once (one socket write), as a client does that
    /// batches taps or sends what queued up; the rate stays the same, in bursts.
    #[arg(long, default_value_t = 1)]
    burst: u32,
    /// The custom event `wave` sends (declare it in `rooms.aggregated_events`).
    #[arg(long, default_value = "gesture.wave")]
    wave_name: String,
    /// Connections opened per second.
    #[arg(long, default_value_t = 1000.0)]
    ramp_per_sec: f64,
    /// Seconds every connection sits joined and idle before any chat (idle CPU and RSS).
    #[arg(long, default_value_t = 3)]
    idle: u64,
    /// Seconds of chat before the measuring window opens.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Length of the measuring window, in seconds.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// onair: the server's chat token secret (`auth.token_secret`); the senders' tokens
    /// are minted with it.
    #[arg(long, env = "ONAIR_BENCH_TOKEN_SECRET", hide_env_values = true)]
    token_secret: Option<String>,
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

/// Counters summed over every connection at one instant.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    delivered: u64,
    skipped: u64,
    sent: u64,
    late_sends: u64,
}

impl Totals {
    fn of(stats: &[Arc<ConnStats>]) -> Self {
        let sum = |f: fn(&ConnStats) -> &AtomicU64| -> u64 {
            stats.iter().map(|s| f(s).load(Ordering::Relaxed)).sum()
        };
        Self {
            delivered: sum(|s| &s.delivered),
            skipped: sum(|s| &s.skipped),
            sent: sum(|s| &s.sent),
            late_sends: sum(|s| &s.late_sends),
        }
    }
}

pub async fn run(args: RoomsArgs) -> anyhow::Result<()> {
    if args.connections == 0 || args.duration == 0 || args.ramp_per_sec <= 0.0 {
        bail!("--connections, --duration and --ramp-per-sec must be positive");
    }
    if args.rate < 0.0
        || (args.rate > 0.0 && (args.senders == 0 || args.senders > args.connections))
    {
        bail!("--rate must be 0 or more, with 1..=--connections senders when above 0");
    }
    if !args.mix.is_chat_only() && args.protocol != Protocol::Onair {
        bail!("--mix other than chat needs --protocol onair");
    }
    let addr = ws_addr(&args.url)?;
    let senders = if args.rate > 0.0 { args.senders } else { 0 };
    let keys = match (args.protocol, senders) {
        (Protocol::Onair, 1..) => {
            let secret = args.token_secret.as_deref().context(
                "onair senders need chat tokens: give --token-secret (or ONAIR_BENCH_TOKEN_SECRET) as the server has it",
            )?;
            Some(TokenKeys::new(secret.as_bytes()))
        }
        _ => None,
    };
    let clk_tck = clock_ticks_per_second();
    let bench_start = Instant::now();
    let cancel = CancellationToken::new();
    let stop_sending = CancellationToken::new();
    let (start_tx, start_rx) = watch::channel(None);
    let shared = Arc::new(Shared::new(
        args.protocol,
        args.mix.clone(),
        &args.wave_name,
    ));
    let before = sample_procs(&args.server_pid, clk_tck);

    // Connect at the ramp rate; the first `senders` connections send.
    let stats: Vec<Arc<ConnStats>> = (0..args.connections)
        .map(|_| Arc::new(ConnStats::default()))
        .collect();
    let mut tasks = JoinSet::new();
    let period = Duration::from_secs_f64(1.0 / args.ramp_per_sec);
    let ramp_start = Instant::now();
    for (i, stat) in stats.iter().enumerate() {
        sleep_until(ramp_start + period.mul_f64(i as f64)).await;
        let plan = (i < senders).then(|| SendPlan {
            token: keys.as_ref().map(|keys| {
                let id = format!("bench-{i}");
                keys.mint(&User::new(id.clone(), id, Role::Viewer), TOKEN_TTL_SECS)
            }),
            start: start_rx.clone(),
            // Senders take turns: together they send evenly spaced bursts.
            offset: Duration::from_secs_f64(i as f64 * f64::from(args.burst.max(1)) / args.rate),
            period: Duration::from_secs_f64(senders as f64 / args.rate),
            burst: args.burst.max(1),
            first: i as u64,
            stop: stop_sending.clone(),
        });
        tasks.spawn(client(
            addr,
            args.url.clone(),
            stat.clone(),
            shared.clone(),
            plan,
            cancel.clone(),
        ));
    }
    progress(
        &args,
        format_args!(
            "{} connections started in {:.1} s",
            args.connections,
            ramp_start.elapsed().as_secs_f64()
        ),
    );
    let join_deadline = Instant::now() + JOIN_TIMEOUT;
    while Instant::now() < join_deadline && stats.iter().any(|s| s.state() == State::Connecting) {
        sleep(Duration::from_millis(100)).await;
    }
    let joined = count_state(&stats, State::Joined);
    progress(
        &args,
        format_args!("{joined} joined; idle for {} s", args.idle),
    );

    // Idle: every connection joined, nothing sent.
    let idle_start = sample_procs(&args.server_pid, clk_tck);
    let idle_start_at = Instant::now();
    sleep(Duration::from_secs(args.idle)).await;
    let idle_end = sample_procs(&args.server_pid, clk_tck);
    let idle_cores = match (&idle_start, &idle_end) {
        (Some(a), Some(b)) => {
            Some((b.cpu_secs - a.cpu_secs) / idle_start_at.elapsed().as_secs_f64().max(1e-3))
        }
        _ => None,
    };

    // Chat, then the measuring window.
    if senders > 0 {
        let _ = start_tx.send(Some(Instant::now()));
        progress(
            &args,
            format_args!(
                "{senders} senders at {} msg/s; warm-up {} s",
                args.rate, args.warmup
            ),
        );
        sleep(Duration::from_secs(args.warmup)).await;
    }
    let self_start = sample_proc("self", clk_tck);
    let cpus_start = CpuSample::now();
    let start = sample_procs(&args.server_pid, clk_tck);
    let totals_start = Totals::of(&stats);
    let joined_at_start = count_state(&stats, State::Joined);
    let window_start = Instant::now();
    shared.measuring.store(true, Ordering::Relaxed);
    progress(
        &args,
        format_args!(
            "measuring {} s with {joined_at_start} connections joined",
            args.duration
        ),
    );
    sleep(Duration::from_secs(args.duration)).await;
    shared.measuring.store(false, Ordering::Relaxed);
    let window = window_start.elapsed().as_secs_f64();
    let end = sample_procs(&args.server_pid, clk_tck);
    let cpu_busy = CpuSample::now().busy_since(&cpus_start);
    let self_end = sample_proc("self", clk_tck);
    let totals_end = Totals::of(&stats);
    let states: Vec<State> = stats.iter().map(|s| s.state()).collect();

    // Stop everything (bounded); each client adds its last latency samples on the way out.
    stop_sending.cancel();
    cancel.cancel();
    if timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tasks.abort_all();
    }

    let sent = totals_end.sent - totals_start.sent;
    let delivered = totals_end.delivered - totals_start.delivered;
    let sent_per_sec = sent as f64 / window;
    let delivered_per_sec = delivered as f64 / window;
    let connect = states
        .iter()
        .filter(|s| **s == State::ConnectFailed)
        .count();
    let closed = states.iter().filter(|s| **s == State::Closed).count();
    let per_conn = |a: &ProcSample, b: &ProcSample| {
        (joined > 0).then(|| (b.rss_kb as f64 - a.rss_kb as f64) / joined as f64)
    };
    let server = match (&before, &idle_end, &start, &end) {
        (Some(before), Some(idle), Some(start), Some(end)) => {
            let cpu = end.cpu_secs - start.cpu_secs;
            Some(ServerReport {
                cpu_seconds: cpu,
                cores: cpu / window,
                deliveries_per_cpu_second: (cpu > 0.0).then(|| delivered as f64 / cpu),
                idle_cores,
                rss_before_kb: before.rss_kb,
                rss_idle_kb: idle.rss_kb,
                rss_idle_per_conn_kb: per_conn(before, idle),
                rss_end_kb: end.rss_kb,
                rss_end_per_conn_kb: per_conn(before, end),
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
    let latency_ms = shared
        .latency
        .lock()
        .map(|h| h.percentiles(1000.0))
        .unwrap_or_else(|_| super::histogram::Histogram::default().percentiles(1000.0));
    let report = Report {
        label: args.label.clone(),
        protocol: args.protocol,
        url: args.url.clone(),
        connections: args.connections,
        senders,
        rate_target: args.rate,
        joined_at_window_start: joined_at_start,
        window_secs: window,
        traffic: Traffic {
            sent,
            sent_per_sec,
            late_sends: totals_end.late_sends - totals_start.late_sends,
            delivered,
            delivered_per_sec,
            // Chat is what is broadcast one by one (and counted as delivered).
            expected_per_sec: sent_per_sec * args.mix.chat_share() * joined_at_start as f64,
            skipped: totals_end.skipped - totals_start.skipped,
        },
        latency_ms,
        failures: Failures {
            total: connect + closed,
            connect,
            closed,
            reasons: shared
                .failures
                .lock()
                .map(|m| m.clone())
                .unwrap_or_default(),
            refused_messages: shared
                .refusals
                .lock()
                .map(|m| m.clone())
                .unwrap_or_default(),
        },
        server,
        bench,
        cpu_busy,
        elapsed_secs: bench_start.elapsed().as_secs_f64(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(())
}

fn progress(args: &RoomsArgs, message: std::fmt::Arguments<'_>) {
    super::progress(&args.label, args.json, message);
}

fn count_state(stats: &[Arc<ConnStats>], state: State) -> usize {
    stats.iter().filter(|s| s.state() == state).count()
}

/// The loopback address of a `ws://HOST:PORT/...` URL.
fn ws_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let Some(rest) = url.strip_prefix("ws://") else {
        bail!("--url must start with ws://");
    };
    let host_port = rest
        .split(['/', '?'])
        .next()
        .filter(|h| !h.is_empty())
        .context("--url has no host")?;
    require_loopback(host_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_ws_urls() {
        assert!(ws_addr("ws://127.0.0.1:8080/ws/live/x").is_ok());
        assert!(ws_addr("ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket").is_ok());
        assert!(ws_addr("ws://127.0.0.1:3000?x=1").is_ok());
        assert!(ws_addr("ws://10.0.0.1:8080/ws/live/x").is_err());
        assert!(ws_addr("ws://localhost:8080/ws/live/x").is_err());
        assert!(ws_addr("http://127.0.0.1:8080/ws/live/x").is_err());
        assert!(ws_addr("ws:///x").is_err());
    }
}
