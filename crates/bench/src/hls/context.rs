//! What the viewers share (the run's settings, the frame log, the latency histograms,
//! the error tally) and what each viewer counts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::super::histogram::Histogram;
use super::super::media::frame_log::FrameLog;

/// No offset measured yet.
const UNSET: i64 = i64::MIN;

pub(super) struct Context {
    pub(super) addr: SocketAddr,
    /// Path (and query) of the playlist the viewers open.
    pub(super) path: String,
    pub(super) log: Arc<FrameLog>,
    /// Subtracted from the server's media times before the frame log lookup (ms).
    pub(super) given_offset_ms: f64,
    /// Longest a request may take (blocked ones included).
    pub(super) request_timeout: Duration,
    pub(super) measuring: AtomicBool,
    /// Server media time − publisher timestamp, measured on the first keyframe seen
    /// (ms, after `given_offset_ms`); applied to every lookup after it.
    measured_offset_ms: AtomicI64,
    /// The ready-to-download latency of parts (µs) and of plain segments.
    pub(super) latency_us: Mutex<Histogram>,
    /// From the closing frame to the download of every part, late requests included
    /// (µs): how far behind the live edge the viewers are.
    pub(super) delivery_us: Mutex<Histogram>,
    pub(super) counts: Counts,
    errors: Mutex<BTreeMap<String, usize>>,
}

/// Events over all viewers during the whole run.
#[derive(Debug, Default)]
pub(super) struct Counts {
    /// HTTP requests answered (any status), in the window.
    pub(super) requests: AtomicU64,
    /// Parts (ll) or segments (plain) downloaded.
    pub(super) downloads: AtomicU64,
    /// Part requests sent before their closing frame was published: the server held
    /// them, so their latency is the server's.
    pub(super) blocked: AtomicU64,
    /// Part requests sent after their closing frame (the viewer was behind): not in the
    /// latency figure.
    pub(super) late_requests: AtomicU64,
    /// ll: hinted parts that never came (404: the segment ended before them).
    pub(super) hint_misses: AtomicU64,
    /// Media whose end time matched no published frame (timeline mismatch).
    pub(super) unmatched: AtomicU64,
    pub(super) non_2xx: AtomicU64,
    pub(super) timeouts: AtomicU64,
    /// Connection, protocol and parsing errors.
    pub(super) other_errors: AtomicU64,
    /// Parts or segments skipped over (the next one was not the one after).
    pub(super) gaps: AtomicU64,
}

impl Context {
    pub(super) fn new(
        addr: SocketAddr,
        path: String,
        log: Arc<FrameLog>,
        given_offset_ms: f64,
        request_timeout: Duration,
    ) -> Self {
        Self {
            addr,
            path,
            log,
            given_offset_ms,
            request_timeout,
            measuring: AtomicBool::new(false),
            measured_offset_ms: AtomicI64::new(UNSET),
            latency_us: Mutex::new(Histogram::default()),
            delivery_us: Mutex::new(Histogram::default()),
            counts: Counts::default(),
            errors: Mutex::new(BTreeMap::new()),
        }
    }

    pub(super) fn measuring(&self) -> bool {
        self.measuring.load(Ordering::Relaxed)
    }

    pub(super) fn error(&self, counter: &AtomicU64, message: String) {
        counter.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut errors) = self.errors.lock() {
            // Bounded: distinct messages are few; past 100 they are lumped together.
            let key = if errors.len() < 100 || errors.contains_key(&message) {
                message
            } else {
                "(other)".to_owned()
            };
            *errors.entry(key).or_default() += 1;
        }
    }

    pub(super) fn errors(&self) -> BTreeMap<String, usize> {
        self.errors.lock().map(|e| e.clone()).unwrap_or_default()
    }

    pub(super) fn measured_offset_ms(&self) -> Option<i64> {
        Some(self.measured_offset_ms.load(Ordering::Relaxed)).filter(|&o| o != UNSET)
    }

    /// A keyframe at `server_ms` on the server's timeline: the first one sets the
    /// offset to the publisher's nearest keyframe.
    pub(super) fn observe_keyframe(&self, server_ms: f64) {
        if self.measured_offset_ms().is_some() {
            return;
        }
        let ms = server_ms - self.given_offset_ms;
        if ms < 0.0 {
            return;
        }
        if let Some((ts, _)) = self.log.nearest(ms.round() as u64, true) {
            let offset = ms.round() as i64 - ts as i64;
            let _ = self.measured_offset_ms.compare_exchange(
                UNSET,
                offset,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// The publisher's timestamp (ms) for a server media time.
    fn publisher_ms(&self, server_ms: f64) -> Option<u64> {
        let ms = server_ms - self.given_offset_ms - self.measured_offset_ms().unwrap_or(0) as f64;
        (ms >= 0.0).then(|| ms.round() as u64)
    }

    /// When the publisher sent the frame at `server_ms`: exactly that timestamp, or
    /// with `tolerance_ms` the nearest frame within it.
    pub(super) fn sent_at(&self, server_ms: f64, tolerance_ms: u64) -> Option<Instant> {
        let ms = self.publisher_ms(server_ms)?;
        if tolerance_ms == 0 {
            return self.log.written_at_timestamp(ms);
        }
        let (ts, at) = self.log.nearest(ms, false)?;
        (ts.abs_diff(ms) <= tolerance_ms).then_some(at)
    }

    pub(super) fn record_latency(&self, latency: Duration) {
        if let Ok(mut h) = self.latency_us.lock() {
            h.record(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        }
    }

    pub(super) fn record_delivery(&self, delivery: Duration) {
        if let Ok(mut h) = self.delivery_us.lock() {
            h.record(u64::try_from(delivery.as_micros()).unwrap_or(u64::MAX));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum State {
    Starting = 0,
    Playing = 1,
    /// Never started, or gave up after too many errors in a row.
    Failed = 2,
}

/// One viewer's progress.
#[derive(Debug, Default)]
pub(super) struct ViewerStats {
    state: AtomicU8,
    /// Had been playing before it failed.
    pub(super) was_playing: AtomicBool,
    pub(super) bytes: AtomicU64,
}

impl ViewerStats {
    pub(super) fn state(&self) -> State {
        match self.state.load(Ordering::Relaxed) {
            0 => State::Starting,
            1 => State::Playing,
            _ => State::Failed,
        }
    }

    pub(super) fn set(&self, state: State) {
        if state == State::Playing {
            self.was_playing.store(true, Ordering::Relaxed);
        }
        self.state.store(state as u8, Ordering::Relaxed);
    }
}
