//! How often a room's members are written, following the server's load: each write
//! costs about the same whatever it carries, so a large room batches more per write
//! when the server is busy, and less (lower latency) when it has time to spare.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Largest budget the load can raise it to, as a multiple of the configured one (past
/// it, the flush interval alone paces a member).
const MAX_RAISE: u64 = 8;

/// Most batches a second written to one room's members together, shared by every
/// member and moved by [`follow`](WriteBudget::follow).
#[derive(Debug)]
pub struct WriteBudget {
    /// The budget while the server is busy: never less (0: no bound at all).
    busy: u64,
    /// Share of its cores' time the server may use before the budget comes back
    /// down to `busy`.
    busy_target: f64,
    current: AtomicU64,
}

impl WriteBudget {
    /// `writes_per_second` while the server uses `busy_percent` of its cores' time or
    /// more; more while it uses less.
    pub fn new(writes_per_second: u64, busy_percent: u8) -> Self {
        Self {
            busy: writes_per_second,
            busy_target: f64::from(busy_percent.min(100)) / 100.0,
            current: AtomicU64::new(writes_per_second),
        }
    }

    /// No bound: members are paced by their flush interval only.
    pub fn unbounded() -> Self {
        Self::new(0, 100)
    }

    /// Batches a second now (0: no bound).
    pub fn current(&self) -> u64 {
        self.current.load(Ordering::Relaxed)
    }

    /// The least time between two batches of a member of a room of `members`.
    pub fn spread(&self, members: usize) -> Duration {
        match self.current() {
            0 => Duration::ZERO,
            budget => Duration::from_micros((members as u64).saturating_mul(1_000_000) / budget),
        }
    }

    /// The server used `busy` (0.0 to 1.0) of its cores' time since the last call: below
    /// the target the budget rises by a quarter of the configured one, at or above it
    /// halves: slow up, fast down, so a room never writes itself into a backlog. Never
    /// under the configured budget nor over [`MAX_RAISE`] times it.
    pub fn follow(&self, busy: f64) {
        if self.busy == 0 {
            return;
        }
        let current = self.current();
        let next = if busy < self.busy_target {
            current.saturating_add(self.busy / 4 + 1)
        } else {
            current / 2
        };
        let next = next.clamp(self.busy, self.busy.saturating_mul(MAX_RAISE));
        self.current.store(next, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_rises_when_the_server_is_idle_and_falls_back_when_busy() {
        let budget = WriteBudget::new(70_000, 70);
        assert_eq!(budget.spread(10_000), Duration::from_micros(142_857));
        budget.follow(0.2);
        assert_eq!(budget.current(), 87_501);
        for _ in 0..40 {
            budget.follow(0.2);
        }
        assert_eq!(budget.current(), 560_000, "at most eight times the setting");
        assert_eq!(budget.spread(10_000), Duration::from_micros(17_857));
        budget.follow(0.9);
        assert_eq!(budget.current(), 280_000);
        for _ in 0..4 {
            budget.follow(0.7);
        }
        assert_eq!(budget.current(), 70_000, "never under the setting");
        let unbounded = WriteBudget::unbounded();
        unbounded.follow(0.0);
        assert_eq!(unbounded.spread(10_000), Duration::ZERO);
    }
}
