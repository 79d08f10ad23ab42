//! When each published video frame was written, for latency lookups: by a fingerprint
//! of its payload (FLV viewers) or by its timestamp (HLS parts, whose media time says
//! which frame closed them).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// When recently published video frames were written, keyed by a fingerprint of their
/// payload (length and a hash of the last bytes) rather than their timestamp, so the
/// lookup also works through servers that rebase timestamps per viewer (nginx-rtmp).
#[derive(Debug)]
pub(crate) struct FrameLog {
    inner: Mutex<FrameLogInner>,
}

#[derive(Debug)]
pub(super) struct FrameLogInner {
    /// `None` marks a fingerprint seen twice within a few seconds: ambiguous, skipped.
    written: HashMap<u64, Option<Instant>>,
    order: VecDeque<u64>,
    /// (timestamp in ms as published, keyframe, when written), oldest first; the
    /// publisher's timestamps only rise, so this is sorted.
    by_timestamp: VecDeque<(u64, bool, Instant)>,
    capacity: usize,
}

/// Two writes of the same payload closer than this are ambiguous; further apart (the
/// file looping) the newer one replaces the older.
pub(super) const SAME_FRAME_WINDOW: Duration = Duration::from_secs(5);

impl FrameLog {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(FrameLogInner {
                written: HashMap::with_capacity(capacity),
                order: VecDeque::with_capacity(capacity),
                by_timestamp: VecDeque::with_capacity(capacity),
                capacity,
            }),
        }
    }

    /// A video frame stamped `timestamp` (ms, the publisher's timeline) written at `at`.
    pub(super) fn record(&self, payload: &[u8], timestamp: u64, keyframe: bool, at: Instant) {
        let key = fingerprint(payload);
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.by_timestamp.len() >= inner.capacity {
            inner.by_timestamp.pop_front();
        }
        inner.by_timestamp.push_back((timestamp, keyframe, at));
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

    pub(super) fn written(&self, payload: &[u8]) -> Option<Instant> {
        let key = fingerprint(payload);
        self.inner.lock().ok()?.written.get(&key).copied().flatten()
    }
}

impl FrameLog {
    /// When the frame stamped exactly `timestamp` was written.
    pub(crate) fn written_at_timestamp(&self, timestamp: u64) -> Option<Instant> {
        let inner = self.inner.lock().ok()?;
        let i = inner
            .by_timestamp
            .binary_search_by_key(&timestamp, |&(ts, _, _)| ts)
            .ok()?;
        inner.by_timestamp.get(i).map(|&(_, _, at)| at)
    }

    /// The frame (keyframes only, or any) whose timestamp is nearest `timestamp`:
    /// (its timestamp, when it was written).
    pub(crate) fn nearest(&self, timestamp: u64, keyframe: bool) -> Option<(u64, Instant)> {
        let inner = self.inner.lock().ok()?;
        inner
            .by_timestamp
            .iter()
            .filter(|&&(_, key, _)| key || !keyframe)
            .min_by_key(|&&(ts, _, _)| ts.abs_diff(timestamp))
            .map(|&(ts, _, at)| (ts, at))
    }
}

/// FNV-1a over the length and the last 64 bytes (coded picture data, effectively random).
pub(super) fn fingerprint(payload: &[u8]) -> u64 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_log_finds_recent_frames_and_skips_ambiguous_ones() {
        let log = FrameLog::new(4);
        let t0 = Instant::now();
        log.record(b"frame one", 0, true, t0);
        log.record(b"frame two", 33, false, t0 + Duration::from_millis(33));
        assert_eq!(log.written(b"frame one"), Some(t0));
        assert_eq!(
            log.written(b"frame two"),
            Some(t0 + Duration::from_millis(33))
        );
        assert_eq!(log.written(b"never sent"), None);
        // The same payload again soon after: ambiguous.
        log.record(b"frame one", 66, false, t0 + Duration::from_millis(66));
        assert_eq!(log.written(b"frame one"), None);
        // Much later (the file looped): the newer write counts.
        let later = t0 + Duration::from_secs(30);
        log.record(b"frame two", 30_000, false, later);
        assert_eq!(log.written(b"frame two"), Some(later));
        // Bounded: old entries fall out.
        assert_eq!(log.written_at_timestamp(30_000), Some(later));
        assert_eq!(log.nearest(29_000, true), Some((0, t0)));
        assert_eq!(log.nearest(29_000, false), Some((30_000, later)));
        for i in 0..8u8 {
            log.record(&[i; 10], 30_001 + u64::from(i), false, later);
        }
        assert_eq!(log.written(b"frame two"), None);
        assert_eq!(log.written_at_timestamp(30_000), None);
        assert_eq!(log.written_at_timestamp(30_008), Some(later));
        assert_eq!(log.written_at_timestamp(30_005), Some(later));
        assert_eq!(log.written_at_timestamp(30_004), None);
    }
}
