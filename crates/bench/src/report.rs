//! Report parts every bench that loads a server with viewers shares: the server's CPU
//! and memory per viewer, the bench's own CPU, and how the publisher kept up.

use std::fmt::Write as _;

use serde::Serialize;

use super::process::ProcSample;

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

impl ServerReport {
    /// From samples taken just before the viewers came (`before`) and at the start and
    /// end of a window of `window_secs` with `viewers` playing.
    pub(super) fn new(
        before: Option<ProcSample>,
        start: Option<ProcSample>,
        end: Option<ProcSample>,
        idle_cpu_per_minute: Option<f64>,
        viewers: usize,
        window_secs: f64,
    ) -> Option<Self> {
        let (before, start, end) = (before?, start?, end?);
        let cpu = end.cpu_secs - start.cpu_secs;
        let viewer_minutes = viewers as f64 * window_secs / 60.0;
        Some(Self {
            cpu_seconds: cpu,
            cpu_per_viewer_minute: (viewer_minutes > 0.0).then(|| cpu / viewer_minutes),
            idle_cpu_per_minute,
            rss_before_kb: before.rss_kb,
            rss_with_viewers_kb: end.rss_kb,
            rss_per_viewer_kb: (viewers > 0)
                .then(|| (end.rss_kb as f64 - before.rss_kb as f64) / viewers as f64),
        })
    }
}

#[derive(Debug, Default, Serialize)]
pub(super) struct BenchSelf {
    pub(super) cpu_seconds: f64,
    /// Average cores the bench used during the window.
    pub(super) cores: f64,
    pub(super) rss_kb: u64,
}

impl BenchSelf {
    pub(super) fn new(
        start: Option<ProcSample>,
        end: Option<ProcSample>,
        window_secs: f64,
    ) -> Self {
        match (start, end) {
            (Some(a), Some(b)) => Self {
                cpu_seconds: b.cpu_secs - a.cpu_secs,
                cores: (b.cpu_secs - a.cpu_secs) / window_secs.max(1e-3),
                rss_kb: b.rss_kb,
            },
            _ => Self::default(),
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct PublishReport {
    pub(super) video_frames: u64,
    /// Writes more than 50 ms behind schedule (the bench itself falling behind).
    pub(super) late_writes: u64,
    pub(super) max_lag_ms: f64,
    pub(super) error: Option<String>,
}

/// The server, bench and publisher lines of a text report.
pub(super) fn render_tail(
    out: &mut String,
    server: Option<&ServerReport>,
    bench: &BenchSelf,
    publisher: Option<&PublishReport>,
) {
    if let Some(s) = server {
        let _ = writeln!(
            out,
            "  server CPU         {:.2} s = {} CPU-s per viewer-minute (ingest only: {} CPU-s/min)",
            s.cpu_seconds,
            s.cpu_per_viewer_minute
                .map_or("-".to_owned(), |v| format!("{v:.4}")),
            s.idle_cpu_per_minute
                .map_or("-".to_owned(), |v| format!("{v:.3}")),
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
        bench.cpu_seconds, bench.cores, bench.rss_kb
    );
    if let Some(p) = publisher {
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
}
