//! The media bench's report: JSON for scripts, text for people.

use std::collections::BTreeMap;

use serde::Serialize;

use super::super::report::{render_tail, BenchSelf, PublishReport, ServerReport};
use super::super::stats::Percentiles;

#[derive(Debug, Serialize)]
pub(super) struct Report {
    pub(super) label: String,
    pub(super) protocol: &'static str,
    pub(super) play_url: String,
    pub(super) viewers: usize,
    pub(super) playing_at_window_start: usize,
    pub(super) window_secs: f64,
    pub(super) failures: Failures,
    pub(super) first_keyframe_ms: Percentiles,
    pub(super) latency_ms: Percentiles,
    pub(super) bitrate_kbps: BitrateReport,
    pub(super) server: Option<ServerReport>,
    pub(super) bench: BenchSelf,
    pub(super) publisher: Option<PublishReport>,
    pub(super) elapsed_secs: f64,
}

#[derive(Debug, Serialize)]
pub(super) struct Failures {
    /// Viewers that failed one way or another.
    pub(super) total: usize,
    /// Could not connect or start playing.
    pub(super) connect: usize,
    /// Were playing, then the connection ended before the end of the window.
    pub(super) disconnected: usize,
    /// Playing, but no video keyframe by the end of the window.
    pub(super) no_keyframe: usize,
    /// Error messages and how many viewers ended with each.
    pub(super) errors: BTreeMap<String, usize>,
}

#[derive(Debug, Serialize)]
pub(crate) struct BitrateReport {
    pub(crate) min: Option<f64>,
    pub(crate) median: Option<f64>,
    pub(crate) mean: Option<f64>,
    /// The published file's audio+video rate.
    pub(crate) source: Option<f64>,
}

impl Report {
    pub(super) fn render(&self) -> String {
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
        render_tail(
            &mut out,
            self.server.as_ref(),
            &self.bench,
            self.publisher.as_ref(),
        );
        out
    }
}
