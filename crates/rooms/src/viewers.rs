//! The viewer count, pushed when it changes and at most once per interval.

use crate::event::ViewersEvent;
use crate::Millis;

/// Decides when a `viewers` event goes out: only when the count differs from the last one
/// sent, and at most once per `interval_ms` (the first change after a quiet interval goes
/// out at once).
#[derive(Debug, Clone)]
pub struct ViewerThrottle {
    interval_ms: u64,
    last_sent: u64,
    last_sent_at: Option<Millis>,
}

impl ViewerThrottle {
    /// At most one event per `interval_ms`.
    pub fn new(interval_ms: u64) -> ViewerThrottle {
        ViewerThrottle {
            interval_ms,
            last_sent: 0,
            last_sent_at: None,
        }
    }

    fn due(&self) -> Millis {
        self.last_sent_at
            .map_or(Millis::ZERO, |t| t.add_ms(self.interval_ms))
    }

    /// The event for `count`, if it changed and the interval is over.
    pub fn poll(&mut self, count: u64, now: Millis) -> Option<ViewersEvent> {
        if count == self.last_sent || now < self.due() {
            return None;
        }
        self.last_sent = count;
        self.last_sent_at = Some(now);
        Some(ViewersEvent { ts: now, count })
    }

    /// When [`poll`](ViewerThrottle::poll) would send `count`, if it differs from the last.
    pub fn poll_timeout(&self, count: u64) -> Option<Millis> {
        (count != self.last_sent).then(|| self.due())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changes_and_at_most_once_a_second() {
        let mut v = ViewerThrottle::new(1000);
        assert_eq!(v.poll(0, Millis(0)), None);
        assert_eq!(v.poll(1, Millis(10)).unwrap().count, 1);
        // Changes within the second wait; only the latest count goes out.
        assert_eq!(v.poll(2, Millis(20)), None);
        assert_eq!(v.poll(3, Millis(500)), None);
        assert_eq!(v.poll_timeout(3), Some(Millis(1010)));
        assert_eq!(v.poll(3, Millis(1010)).unwrap().count, 3);
        // Back and forth within the interval to the same count: nothing to send.
        assert_eq!(v.poll(4, Millis(1500)), None);
        assert_eq!(v.poll_timeout(3), None);
        assert_eq!(v.poll(3, Millis(3000)), None);
    }
}
