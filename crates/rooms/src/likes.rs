//! Likes: every tap counts, but a room sends at most one `like` event per interval.

use crate::event::LikeEvent;
use crate::Millis;

/// Adds up taps and releases them as one `like` event per interval.
///
/// Leading edge: the first taps after a quiet interval go out on the next
/// [`poll`](LikeAggregator::poll); taps within the interval after an event wait until the
/// interval ends, then go out together. `count` is taps since the previous event, `total`
/// every tap the room has had (including those in that event).
#[derive(Debug, Clone)]
pub struct LikeAggregator {
    interval_ms: u64,
    pending: u64,
    total: u64,
    last_emit: Option<Millis>,
}

impl LikeAggregator {
    /// At most one event per `interval_ms`.
    pub fn new(interval_ms: u64) -> LikeAggregator {
        LikeAggregator {
            interval_ms,
            pending: 0,
            total: 0,
            last_emit: None,
        }
    }

    /// Counts `taps`.
    pub fn add(&mut self, taps: u64) {
        self.pending = self.pending.saturating_add(taps);
        self.total = self.total.saturating_add(taps);
    }

    /// Every tap so far, sent or pending.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Taps not yet sent in an event.
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// Starts the total from a stored value (a node joining a room other nodes counted).
    pub fn set_total(&mut self, total: u64) {
        self.total = total.max(self.pending);
    }

    fn due(&self) -> Millis {
        self.last_emit
            .map_or(Millis::ZERO, |t| t.add_ms(self.interval_ms))
    }

    /// The `like` event, if taps are pending and the interval since the last one is over.
    pub fn poll(&mut self, now: Millis) -> Option<LikeEvent> {
        if self.pending == 0 || now < self.due() {
            return None;
        }
        let count = std::mem::take(&mut self.pending);
        self.last_emit = Some(now);
        Some(LikeEvent {
            ts: now,
            count,
            total: self.total,
        })
    }

    /// When [`poll`](LikeAggregator::poll) will have an event, if taps are pending.
    pub fn poll_timeout(&self) -> Option<Millis> {
        (self.pending > 0).then(|| self.due())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_taps_go_out_at_once_then_one_event_per_interval() {
        let mut likes = LikeAggregator::new(250);
        assert_eq!(likes.poll(Millis(1000)), None);
        assert_eq!(likes.poll_timeout(), None);

        likes.add(1);
        assert_eq!(likes.poll_timeout(), Some(Millis(0)));
        let e = likes.poll(Millis(1000)).unwrap();
        assert_eq!((e.count, e.total, e.ts), (1, 1, Millis(1000)));

        // Taps within the interval wait for its end and go out together.
        likes.add(3);
        likes.add(4);
        assert_eq!(likes.poll(Millis(1100)), None);
        assert_eq!(likes.poll(Millis(1249)), None);
        assert_eq!(likes.poll_timeout(), Some(Millis(1250)));
        let e = likes.poll(Millis(1250)).unwrap();
        assert_eq!((e.count, e.total), (7, 8));
        assert_eq!(likes.poll(Millis(1250)), None);
        assert_eq!(likes.poll_timeout(), None);
    }

    #[test]
    fn a_flood_is_one_event_per_interval_and_every_tap_counts() {
        let mut likes = LikeAggregator::new(250);
        let mut events = Vec::new();
        // 100,000 taps a second for two seconds, one tap every 10 µs: 10 per ms.
        for ms in 0..2000u64 {
            likes.add(10);
            if let Some(e) = likes.poll(Millis(10_000 + ms)) {
                events.push(e);
            }
        }
        if let Some(due) = likes.poll_timeout() {
            events.extend(likes.poll(due));
        }
        // One at the start, then one every 250 ms (8 intervals in 2 s), then the rest.
        assert_eq!(events.len(), 9);
        assert_eq!(events.iter().map(|e| e.count).sum::<u64>(), 20_000);
        assert_eq!(events.last().unwrap().total, 20_000);
        for pair in events.windows(2) {
            assert!(pair[1].ts.ms_since(pair[0].ts) >= 250);
        }
    }

    #[test]
    fn total_can_be_seeded() {
        let mut likes = LikeAggregator::new(250);
        likes.set_total(1_000);
        likes.add(2);
        let e = likes.poll(Millis(0)).unwrap();
        assert_eq!((e.count, e.total), (2, 1_002));
    }
}
