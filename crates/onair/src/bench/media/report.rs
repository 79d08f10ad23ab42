//! The media bench's report: JSON for scripts, text for people.

use std::collections::BTreeMap;

use serde::Serialize;

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
pub(super) struct BitrateReport {
    pub(super) min: Option<f64>,
    pub(super) median: Option<f64>,
    pub(super) mean: Option<f64>,
    /// The published file's audio+video rate.
    pub(super) source: Option<f64>,
}

#[derive(Debug, Serialize)]
pub(super) struct ServerReport {
    /// CPU seconds (user + system) the server used during the window.
    pub(super) cpu_seconds: f64,
    pub(super) cpu_per_viewer_minute: Option<f64>,
    /// CPU seconds per minute before the viewers came (ingest only).
    pub(super) idle_cpu_per_minute: Option<f64>,
    pub(super) rss_before_kb: u64,
    pub(super) rss_with_viewers_kb: u64,
    pub(super) rss_per_viewer_kb: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
pub(super) struct BenchSelf {
    pub(super) cpu_seconds: f64,
    /// Average cores the bench used during the window.
    pub(super) cores: f64,
    pub(super) rss_kb: u64,
}

#[derive(Debug, Serialize)]
pub(super) struct PublishReport {
    pub(super) video_frames: u64,
    /// Writes more than 50 ms behind schedule (the bench itself falling behind).
    pub(super) late_writes: u64,
    pub(super) max_lag_ms: f64,
    pub(super) error: Option<String>,
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
