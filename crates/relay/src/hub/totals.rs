//! Server-wide media totals. Each stream bumps these alongside its own counters, so
//! they keep counting what streams that have ended did (a sum over live streams would
//! go down when one ends, and Prometheus counters must not).

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct HubTotals {
    pub(super) bytes_in: AtomicU64,
    pub(super) frames_in: AtomicU64,
    pub(super) bytes_out: AtomicU64,
    pub(super) viewer_skips: AtomicU64,
    pub(super) frames_dropped: AtomicU64,
    pub(super) viewers_dropped_slow: AtomicU64,
}

/// The totals at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TotalsSnapshot {
    /// Media payload bytes publishers sent.
    pub bytes_in: u64,
    pub frames_in: u64,
    /// Bytes written to viewers of every protocol.
    pub bytes_out: u64,
    /// Times a viewer skipped ahead to a keyframe.
    pub viewer_skips: u64,
    /// Frames viewers skipped.
    pub frames_dropped: u64,
    /// Viewers disconnected for skipping too often.
    pub viewers_dropped_slow: u64,
}

impl HubTotals {
    pub fn snapshot(&self) -> TotalsSnapshot {
        let read = |n: &AtomicU64| n.load(Ordering::Relaxed);
        TotalsSnapshot {
            bytes_in: read(&self.bytes_in),
            frames_in: read(&self.frames_in),
            bytes_out: read(&self.bytes_out),
            viewer_skips: read(&self.viewer_skips),
            frames_dropped: read(&self.frames_dropped),
            viewers_dropped_slow: read(&self.viewers_dropped_slow),
        }
    }
}

pub(super) fn add(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}
