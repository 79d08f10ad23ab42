//! Gift combos: the same gift from the same user in quick succession.

use std::collections::{BTreeMap, HashMap};

use crate::event::GiftsEvent;
use crate::Millis;

/// Most gift kinds a `gifts` event counts one by one; later kinds count only in its
/// `count`, so a flood of made-up gift names costs no more than this.
pub const MAX_SUMMED_GIFT_KINDS: usize = 16;

/// A gift's place in its combo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Combo {
    /// Gift messages in the combo so far, this one included (1 = a new combo).
    pub combo: u32,
    /// Gifts those messages carried together (sum of their `count`).
    pub total: u64,
}

#[derive(Debug, Clone)]
struct Streak {
    last: Millis,
    combo: u32,
    total: u64,
}

/// Tracks combos per (user, gift). A gift within `window_ms` of the previous gift of the
/// same kind from the same user continues its combo; a later one starts a new combo.
/// Gifts are never delayed or merged away: each message is its own `gift` event, carrying
/// its combo position, so clients can animate "×3".
#[derive(Debug, Clone)]
pub struct ComboTracker {
    window_ms: u64,
    max_entries: usize,
    streaks: HashMap<(String, String), Streak>,
}

impl ComboTracker {
    /// Combos continue within `window_ms`; at most `max_entries` combos are tracked.
    pub fn new(window_ms: u64, max_entries: usize) -> ComboTracker {
        ComboTracker {
            window_ms,
            max_entries,
            streaks: HashMap::new(),
        }
    }

    /// Records `count` gifts of `gift` from `user_id` and returns their combo position.
    pub fn record(&mut self, user_id: &str, gift: &str, count: u32, now: Millis) -> Combo {
        let key = (user_id.to_owned(), gift.to_owned());
        if let Some(streak) = self.streaks.get_mut(&key) {
            if now.ms_since(streak.last) <= self.window_ms {
                streak.combo = streak.combo.saturating_add(1);
                streak.total = streak.total.saturating_add(u64::from(count));
            } else {
                *streak = Streak {
                    last: now,
                    combo: 1,
                    total: u64::from(count),
                };
            }
            streak.last = now;
            return Combo {
                combo: streak.combo,
                total: streak.total,
            };
        }
        if self.streaks.len() >= self.max_entries {
            self.expire(now);
        }
        if self.streaks.len() < self.max_entries {
            self.streaks.insert(
                key,
                Streak {
                    last: now,
                    combo: 1,
                    total: u64::from(count),
                },
            );
        }
        // When still full, the gift is sent as a combo of one and not tracked.
        Combo {
            combo: 1,
            total: u64::from(count),
        }
    }

    /// Forgets combos that can no longer continue.
    pub fn expire(&mut self, now: Millis) {
        let window = self.window_ms;
        self.streaks.retain(|_, s| now.ms_since(s.last) <= window);
    }

    /// Combos tracked now.
    pub fn len(&self) -> usize {
        self.streaks.len()
    }

    /// No combo tracked.
    pub fn is_empty(&self) -> bool {
        self.streaks.is_empty()
    }
}

/// Gift messages over the room's broadcast budget, summed into at most one `gifts`
/// event per interval.
#[derive(Debug, Clone)]
pub struct GiftSummary {
    interval_ms: u64,
    messages: u64,
    count: u64,
    by_kind: BTreeMap<String, u64>,
    last_emit: Option<Millis>,
}

impl GiftSummary {
    /// At most one `gifts` event per `interval_ms`.
    pub fn new(interval_ms: u64) -> GiftSummary {
        GiftSummary {
            interval_ms,
            messages: 0,
            count: 0,
            by_kind: BTreeMap::new(),
            last_emit: None,
        }
    }

    /// Sums one gift message of `count` gifts of `gift`.
    pub fn add(&mut self, gift: &str, count: u32) {
        let count = u64::from(count);
        self.messages = self.messages.saturating_add(1);
        self.count = self.count.saturating_add(count);
        if let Some(kind) = self.by_kind.get_mut(gift) {
            *kind = kind.saturating_add(count);
        } else if self.by_kind.len() < MAX_SUMMED_GIFT_KINDS {
            self.by_kind.insert(gift.to_owned(), count);
        }
    }

    /// The `gifts` event due at `now`, if gifts are pending.
    pub fn poll(&mut self, now: Millis) -> Option<GiftsEvent> {
        if now < self.poll_timeout()? {
            return None;
        }
        self.last_emit = Some(now);
        Some(GiftsEvent {
            ts: now,
            messages: std::mem::take(&mut self.messages),
            count: std::mem::take(&mut self.count),
            gifts: std::mem::take(&mut self.by_kind),
        })
    }

    /// When [`poll`](GiftSummary::poll) will have an event, if gifts are pending.
    pub fn poll_timeout(&self) -> Option<Millis> {
        (self.messages > 0).then(|| {
            self.last_emit
                .map_or(Millis::ZERO, |t| t.add_ms(self.interval_ms))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gifts_over_the_budget_leave_summed_once_per_interval() {
        let mut summary = GiftSummary::new(250);
        assert_eq!(summary.poll_timeout(), None);
        for i in 0..1_000u32 {
            summary.add(if i % 10 == 0 { "rocket" } else { "rose" }, 2);
        }
        // Kinds past the bound count in the total only.
        for i in 0..40 {
            summary.add(&format!("made-up-{i}"), 1);
        }
        let event = summary.poll(Millis(0)).unwrap();
        assert_eq!((event.messages, event.count), (1_040, 2_040));
        assert_eq!(event.gifts["rose"], 1_800);
        assert_eq!(event.gifts["rocket"], 200);
        assert_eq!(event.gifts.len(), MAX_SUMMED_GIFT_KINDS);
        summary.add("rose", 1);
        assert!(summary.poll(Millis(100)).is_none());
        assert_eq!(summary.poll_timeout(), Some(Millis(250)));
        let event = summary.poll(Millis(250)).unwrap();
        assert_eq!((event.messages, event.count), (1, 1));
        assert_eq!(summary.poll_timeout(), None);
    }

    #[test]
    fn same_user_and_gift_within_the_window_combine() {
        let mut c = ComboTracker::new(3000, 100);
        assert_eq!(
            c.record("u1", "rose", 5, Millis(0)),
            Combo { combo: 1, total: 5 }
        );
        assert_eq!(
            c.record("u1", "rose", 5, Millis(2000)),
            Combo {
                combo: 2,
                total: 10
            }
        );
        // The window slides: measured from the previous gift, not the first.
        assert_eq!(
            c.record("u1", "rose", 1, Millis(5000)),
            Combo {
                combo: 3,
                total: 11
            }
        );
        // Another gift kind, another user: their own combos.
        assert_eq!(
            c.record("u1", "rocket", 1, Millis(5000)),
            Combo { combo: 1, total: 1 }
        );
        assert_eq!(
            c.record("u2", "rose", 1, Millis(5000)),
            Combo { combo: 1, total: 1 }
        );
        // Past the window: a new combo.
        assert_eq!(
            c.record("u1", "rose", 2, Millis(8001)),
            Combo { combo: 1, total: 2 }
        );
    }

    #[test]
    fn expired_combos_are_forgotten_and_the_map_is_bounded() {
        let mut c = ComboTracker::new(1000, 2);
        c.record("a", "rose", 1, Millis(0));
        c.record("b", "rose", 1, Millis(0));
        // Full of live combos: c's gift is a combo of one, untracked.
        assert_eq!(
            c.record("c", "rose", 1, Millis(500)),
            Combo { combo: 1, total: 1 }
        );
        assert_eq!(
            c.record("c", "rose", 1, Millis(600)),
            Combo { combo: 1, total: 1 }
        );
        assert_eq!(c.len(), 2);
        // Later a and b expire and c is tracked.
        c.record("c", "rose", 1, Millis(2000));
        assert_eq!(
            c.record("c", "rose", 1, Millis(2100)),
            Combo { combo: 2, total: 2 }
        );
        c.expire(Millis(10_000));
        assert!(c.is_empty());
    }
}
