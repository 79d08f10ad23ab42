//! The HLS bench's report: JSON for scripts, text for people.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::super::media::report::BitrateReport;
use super::super::report::{render_tail, BenchSelf, PublishReport, ServerReport};
use super::super::stats::Percentiles;

#[derive(Debug, Serialize)]
pub(super) struct Report {
    pub(super) label: String,
    /// `ll` or `plain`.
    pub(super) mode: &'static str,
    pub(super) url: String,
    pub(super) viewers: usize,
    pub(super) playing_at_window_start: usize,
    pub(super) window_secs: f64,
    pub(super) failures: Failures,
    /// ll: from the publisher's write of the frame that closed a part to the part
    /// downloaded, over every blocked part request of every viewer in the window; for
    /// the first part of a segment (after a preload hint that did not come true), to
    /// the return of the blocked playlist reload that listed it.
    /// plain: from the write of the frame that closed a segment (the next segment's
    /// first) to the segment downloaded by a viewer polling every half target duration.
    pub(super) latency_ms: Percentiles,
    /// ll: from the write of a part's closing frame to its download, for every part
    /// (late requests included): how far behind the live edge the viewers fetch.
    pub(super) delivery_ms: Percentiles,
    pub(super) downloads: Downloads,
    pub(super) timeline: Timeline,
    pub(super) bitrate_kbps: BitrateReport,
    pub(super) server: Option<ServerReport>,
    pub(super) bench: BenchSelf,
    /// How busy each CPU of the machine was in the window (0..=1), softirq included:
    /// whether the server's pinned core was saturated.
    pub(super) cpu_busy: Vec<f64>,
    pub(super) publisher: Option<PublishReport>,
    pub(super) elapsed_secs: f64,
}

/// Over the whole run.
#[derive(Debug, Serialize)]
pub(super) struct Failures {
    /// Everything below except `errors`.
    pub(super) total: u64,
    /// Viewers that never got a part or segment.
    pub(super) never_started: usize,
    /// Viewers that played, then gave up after repeated failures.
    pub(super) stopped: usize,
    pub(super) non_2xx: u64,
    pub(super) timeouts: u64,
    pub(super) other_errors: u64,
    pub(super) gaps: u64,
    /// Error messages and how often each came.
    pub(super) errors: BTreeMap<String, usize>,
}

/// In the window.
#[derive(Debug, Serialize)]
pub(super) struct Downloads {
    /// HTTP requests answered, any status (playlists, init segments, media).
    pub(super) requests: u64,
    /// `requests` per viewer playing per second.
    pub(super) requests_per_viewer_sec: Option<f64>,
    /// Parts (ll) or segments (plain) downloaded.
    pub(super) count: u64,
    /// ll: parts the server held a request for until they existed, or listed in a
    /// held playlist reload (in `latency_ms`).
    pub(super) blocked: u64,
    /// ll: part requests sent after the part's closing frame (the viewer was behind;
    /// not in `latency_ms`).
    pub(super) late_requests: u64,
    /// Media whose end matched no published frame (not in `latency_ms`).
    pub(super) unmatched: u64,
    /// ll: hinted parts answered 404 because the segment ended before them (the part
    /// after is then fetched from the reloaded playlist, late).
    pub(super) hint_misses: u64,
}

#[derive(Debug, Serialize)]
pub(super) struct Timeline {
    /// Subtracted from the server's media times first (`--timeline-offset-ms`).
    pub(super) given_offset_ms: f64,
    /// The rest, measured on the first keyframe: server time − the publisher's
    /// nearest keyframe (0 when the server keeps the publisher's timestamps).
    pub(super) measured_offset_ms: Option<i64>,
}

impl Report {
    pub(super) fn render(&self) -> String {
        let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1} ms"));
        let mut out = String::new();
        let _ = writeln!(
            out,
            "onair bench hls {}: {} x{} viewers, {:.1} s window, {} playing",
            self.label, self.mode, self.viewers, self.window_secs, self.playing_at_window_start
        );
        let f = &self.failures;
        let _ = writeln!(
            out,
            "  failures           {} (never started {}, stopped {}, non-2xx {}, timeouts {}, other {}, gaps {})",
            f.total, f.never_started, f.stopped, f.non_2xx, f.timeouts, f.other_errors, f.gaps
        );
        for (error, count) in &f.errors {
            let _ = writeln!(out, "    {count:>6} x {error}");
        }
        let l = &self.latency_ms;
        let what = if self.mode == "ll" { "part" } else { "segment" };
        let _ = writeln!(
            out,
            "  {what} latency   p50 {}  p95 {}  p99 {}  max {}  (n={})",
            ms(l.p50),
            ms(l.p95),
            ms(l.p99),
            ms(l.max),
            l.count
        );
        let l = &self.delivery_ms;
        let _ = writeln!(
            out,
            "  delivery (all)     p50 {}  p95 {}  p99 {}  max {}  (n={})",
            ms(l.p50),
            ms(l.p95),
            ms(l.p99),
            ms(l.max),
            l.count
        );
        let d = &self.downloads;
        let _ = writeln!(
            out,
            "  downloads          {} ({} blocked, {} requested late, {} unmatched, {} hints missed); {} requests, {} per viewer-second",
            d.count, d.blocked, d.late_requests, d.unmatched, d.hint_misses, d.requests,
            d.requests_per_viewer_sec.map_or("-".to_owned(), |r| format!("{r:.2}"))
        );
        let _ = writeln!(
            out,
            "  timeline offset    given {} ms, measured {}",
            self.timeline.given_offset_ms,
            self.timeline
                .measured_offset_ms
                .map_or("-".to_owned(), |o| format!("{o} ms"))
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
