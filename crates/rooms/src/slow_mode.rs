//! Slow mode: one chat message per user per period.

use std::collections::HashMap;

use crate::Millis;

/// Per-room slow mode. Moderators and streamers are exempt (the room does not ask).
#[derive(Debug, Clone)]
pub struct SlowMode {
    period_ms: u64,
    max_users: usize,
    last: HashMap<String, Millis>,
}

impl SlowMode {
    /// One message per `period_ms` (0: off), tracking at most `max_users` users.
    pub fn new(period_ms: u64, max_users: usize) -> SlowMode {
        SlowMode {
            period_ms,
            max_users,
            last: HashMap::new(),
        }
    }

    /// The period; 0 is off.
    pub fn period_ms(&self) -> u64 {
        self.period_ms
    }

    /// Changes the period (0 turns slow mode off and forgets everyone).
    pub fn set_period_ms(&mut self, period_ms: u64) {
        self.period_ms = period_ms;
        if period_ms == 0 {
            self.last.clear();
        }
    }

    /// `Err(retry_after_ms)` when `user_id` sent a message less than a period ago.
    pub fn check(&self, user_id: &str, now: Millis) -> Result<(), u64> {
        if self.period_ms == 0 {
            return Ok(());
        }
        match self.last.get(user_id) {
            Some(&last) if now.ms_since(last) < self.period_ms => {
                Err(self.period_ms - now.ms_since(last))
            }
            _ => Ok(()),
        }
    }

    /// Notes that `user_id` sent a message at `now`. When the map is full of users still
    /// inside their period, the user is not tracked (the per-user rate limit still holds).
    pub fn record(&mut self, user_id: &str, now: Millis) {
        if self.period_ms == 0 {
            return;
        }
        if !self.last.contains_key(user_id) && self.last.len() >= self.max_users {
            self.prune(now);
            if self.last.len() >= self.max_users {
                return;
            }
        }
        self.last.insert(user_id.to_owned(), now);
    }

    /// Forgets users whose period is over.
    pub fn prune(&mut self, now: Millis) {
        let period = self.period_ms;
        self.last.retain(|_, &mut t| now.ms_since(t) < period);
    }

    /// Users tracked now.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    /// No user tracked.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_message_per_period() {
        let mut s = SlowMode::new(10_000, 100);
        s.check("a", Millis(0)).unwrap();
        s.record("a", Millis(0));
        assert_eq!(s.check("a", Millis(1)), Err(9_999));
        assert_eq!(s.check("a", Millis(9_999)), Err(1));
        assert_eq!(s.check("a", Millis(10_000)), Ok(()));
        assert_eq!(s.check("b", Millis(1)), Ok(()));
    }

    #[test]
    fn off_means_off() {
        let mut s = SlowMode::new(5000, 100);
        s.record("a", Millis(0));
        s.set_period_ms(0);
        assert!(s.is_empty());
        s.record("a", Millis(1));
        assert_eq!(s.check("a", Millis(1)), Ok(()));
    }

    #[test]
    fn bounded() {
        let mut s = SlowMode::new(1000, 1);
        s.record("a", Millis(0));
        s.record("b", Millis(10));
        assert_eq!(s.len(), 1);
        s.record("b", Millis(1000));
        assert_eq!(s.check("b", Millis(1001)), Err(999));
        s.prune(Millis(5000));
        assert!(s.is_empty());
    }
}
