//! The rooms bench's report: JSON for scripts, text for people.

use std::collections::BTreeMap;

use serde::Serialize;

use super::super::stats::Percentiles;
use super::protocol::Protocol;

#[derive(Debug, Serialize)]
pub(super) struct Report {
    pub(super) label: String,
    pub(super) protocol: Protocol,
    pub(super) url: String,
    pub(super) connections: usize,
    pub(super) senders: usize,
    /// Chat messages per second the senders were asked to send, in total.
    pub(super) rate_target: f64,
    pub(super) joined_at_window_start: usize,
    pub(super) window_secs: f64,
    pub(super) traffic: Traffic,
    /// Send-to-receipt latency of every chat received in the window.
    pub(super) latency_ms: Percentiles,
    pub(super) failures: Failures,
    pub(super) server: Option<ServerReport>,
    pub(super) bench: BenchSelf,
    /// How busy each CPU of the machine was in the window (0..=1), softirq included.
    pub(super) cpu_busy: Vec<f64>,
    pub(super) elapsed_secs: f64,
}

#[derive(Debug, Serialize)]
pub(super) struct Traffic {
    /// Chat messages sent in the window, and per second.
    pub(super) sent: u64,
    pub(super) sent_per_sec: f64,
    /// Sends more than 50 ms behind schedule: the bench itself falling behind.
    pub(super) late_sends: u64,
    /// Chat messages received by all connections in the window, and per second.
    pub(super) delivered: u64,
    pub(super) delivered_per_sec: f64,
    /// Every message sent to every connection joined: sent/s x joined.
    pub(super) expected_per_sec: f64,
    /// onair: chat the server sampled away (per-viewer cap), from `skipped` events.
    pub(super) skipped: u64,
}

#[derive(Debug, Serialize)]
pub(super) struct Failures {
    /// Connections that failed one way or another.
    pub(super) total: usize,
    /// Could not connect or join.
    pub(super) connect: usize,
    /// Joined, then closed or cut off before the end of the window.
    pub(super) closed: usize,
    /// Failure messages (close codes and reasons included) and how many connections each.
    pub(super) reasons: BTreeMap<String, usize>,
    /// onair `error` events by code: messages the server refused (the connection stays).
    pub(super) refused_messages: BTreeMap<String, usize>,
}

#[derive(Debug, Serialize)]
pub(super) struct ServerReport {
    /// CPU seconds (user + system) in the window, and the average cores that is.
    pub(super) cpu_seconds: f64,
    pub(super) cores: f64,
    /// Chat messages delivered per CPU second of the server.
    pub(super) deliveries_per_cpu_second: Option<f64>,
    /// Average cores while every connection sat idle (before any chat).
    pub(super) idle_cores: Option<f64>,
    pub(super) rss_before_kb: u64,
    /// RSS with every connection joined and idle, and that less the RSS before, per connection.
    pub(super) rss_idle_kb: u64,
    pub(super) rss_idle_per_conn_kb: Option<f64>,
    /// RSS at the end of the window, and that less the RSS before, per connection.
    pub(super) rss_end_kb: u64,
    pub(super) rss_end_per_conn_kb: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
pub(super) struct BenchSelf {
    pub(super) cpu_seconds: f64,
    /// Average cores the bench used during the window.
    pub(super) cores: f64,
    pub(super) rss_kb: u64,
}

impl Report {
    pub(super) fn render(&self) -> String {
        use std::fmt::Write as _;
        let opt =
            |v: Option<f64>, digits: usize| v.map_or("-".to_owned(), |v| format!("{v:.digits$}"));
        let mut out = String::new();
        let _ = writeln!(
            out,
            "onair bench rooms {}: {:?}, {} connections ({} sending {:.0}/s), {:.1} s window, {} joined",
            self.label,
            self.protocol,
            self.connections,
            self.senders,
            self.rate_target,
            self.window_secs,
            self.joined_at_window_start
        );
        let t = &self.traffic;
        let _ = writeln!(
            out,
            "  sent               {} ({:.1}/s, {} late)",
            t.sent, t.sent_per_sec, t.late_sends
        );
        let _ = writeln!(
            out,
            "  delivered          {} ({:.0}/s of {:.0}/s expected; {} skipped by sampling)",
            t.delivered, t.delivered_per_sec, t.expected_per_sec, t.skipped
        );
        let l = &self.latency_ms;
        let _ = writeln!(
            out,
            "  latency            p50 {} ms  p95 {} ms  p99 {} ms  max {} ms  (n={})",
            opt(l.p50, 1),
            opt(l.p95, 1),
            opt(l.p99, 1),
            opt(l.max, 1),
            l.count
        );
        let f = &self.failures;
        let _ = writeln!(
            out,
            "  failures           {} (connect {}, closed {})",
            f.total, f.connect, f.closed
        );
        for (reason, count) in &f.reasons {
            let _ = writeln!(out, "    {count:>6} x {reason}");
        }
        for (code, count) in &f.refused_messages {
            let _ = writeln!(out, "    {count:>6} x refused: {code}");
        }
        if let Some(s) = &self.server {
            let _ = writeln!(
                out,
                "  server CPU         {:.2} s ({:.2} cores) = {} deliveries per CPU-s; idle {} cores",
                s.cpu_seconds,
                s.cores,
                opt(s.deliveries_per_cpu_second, 0),
                opt(s.idle_cores, 3)
            );
            let _ = writeln!(
                out,
                "  server RSS         {} KB before, {} KB idle ({} KB/conn), {} KB at the end ({} KB/conn)",
                s.rss_before_kb,
                s.rss_idle_kb,
                opt(s.rss_idle_per_conn_kb, 2),
                s.rss_end_kb,
                opt(s.rss_end_per_conn_kb, 2)
            );
        }
        let _ = writeln!(
            out,
            "  bench itself       {:.2} CPU-s ({:.2} cores), RSS {} KB",
            self.bench.cpu_seconds, self.bench.cores, self.bench.rss_kb
        );
        let busy: Vec<String> = self
            .cpu_busy
            .iter()
            .enumerate()
            .map(|(i, b)| format!("cpu{i} {:.0}%", b * 100.0))
            .collect();
        let _ = writeln!(out, "  machine CPUs busy  {}", busy.join("  "));
        out
    }
}
