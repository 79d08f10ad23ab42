//! Token buckets in integer arithmetic, one per key, in virtual time.

use hashbrown::hash_map::EntryRef;
use hashbrown::HashMap;

use crate::{Millis, RateLimit};

/// A token bucket holding up to `count` tokens and refilling `count` per `window_ms`,
/// continuously. Exact integer arithmetic: a token is `window_ms` units and each
/// millisecond adds `count` units, so results never depend on rounding.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    limit: RateLimit,
    /// Units held; `count * window_ms` is full.
    level: u64,
    last: Millis,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(limit: RateLimit, now: Millis) -> TokenBucket {
        TokenBucket {
            limit,
            level: full(limit),
            last: now,
        }
    }

    /// The rate.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    fn unlimited(&self) -> bool {
        self.limit.window_ms == 0
    }

    fn refill(&mut self, now: Millis) {
        let elapsed = now.ms_since(self.last);
        self.level = self
            .level
            .saturating_add(elapsed.saturating_mul(u64::from(self.limit.count)))
            .min(full(self.limit));
        if now > self.last {
            self.last = now;
        }
    }

    /// Whole tokens available at `now`.
    pub fn available(&mut self, now: Millis) -> u64 {
        if self.unlimited() {
            return u64::MAX;
        }
        self.refill(now);
        self.level / self.limit.window_ms
    }

    /// Takes `n` tokens, or none and says in how many milliseconds `n` will be there
    /// (`u64::MAX`: never, `n` is more than the bucket holds).
    pub fn try_take(&mut self, n: u64, now: Millis) -> Result<(), u64> {
        if self.unlimited() {
            return Ok(());
        }
        self.refill(now);
        let need = n.saturating_mul(self.limit.window_ms);
        if self.level >= need {
            self.level -= need;
            return Ok(());
        }
        if n > u64::from(self.limit.count) || self.limit.count == 0 {
            return Err(u64::MAX);
        }
        let missing = need - self.level;
        Err(missing.div_ceil(u64::from(self.limit.count)))
    }

    /// Takes as many of `n` tokens as there are; returns how many it took.
    pub fn take_up_to(&mut self, n: u64, now: Millis) -> u64 {
        let taken = self.available(now).min(n);
        if !self.unlimited() {
            self.level -= taken * self.limit.window_ms;
        }
        taken
    }

    /// Full at `now` (so forgetting the bucket changes nothing).
    pub fn is_full(&self, now: Millis) -> bool {
        let elapsed = now.ms_since(self.last);
        self.unlimited()
            || self
                .level
                .saturating_add(elapsed.saturating_mul(u64::from(self.limit.count)))
                >= full(self.limit)
    }
}

fn full(limit: RateLimit) -> u64 {
    u64::from(limit.count).saturating_mul(limit.window_ms)
}

/// Token buckets by key (a user id), at most `max_keys` of them. A full bucket is the
/// same as none, so full buckets are forgotten when room is needed. When every tracked
/// key is still refilling, a new key is refused (fails closed) until one fills up.
#[derive(Debug, Clone)]
pub struct KeyedLimiter {
    limit: RateLimit,
    max_keys: usize,
    buckets: HashMap<String, TokenBucket>,
    last_prune: Option<Millis>,
}

/// Pruning scans every bucket, so when the map is full of busy keys it happens at most
/// this often.
const PRUNE_EVERY_MS: u64 = 1000;

impl KeyedLimiter {
    /// A limiter giving each key `limit`.
    pub fn new(limit: RateLimit, max_keys: usize) -> KeyedLimiter {
        KeyedLimiter {
            limit,
            max_keys,
            buckets: HashMap::new(),
            last_prune: None,
        }
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// No key tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Forgets buckets that are full at `now`.
    pub fn prune(&mut self, now: Millis) {
        self.buckets.retain(|_, b| !b.is_full(now));
        self.last_prune = Some(now);
    }

    fn bucket(&mut self, key: &str, now: Millis) -> Option<&mut TokenBucket> {
        if self.buckets.len() >= self.max_keys && !self.buckets.contains_key(key) {
            let due = self
                .last_prune
                .is_none_or(|t| now.ms_since(t) >= PRUNE_EVERY_MS);
            if due {
                self.prune(now);
            }
            if self.buckets.len() >= self.max_keys {
                tracing::warn!(
                    max_keys = self.max_keys,
                    "rate limiter is tracking as many users as allowed; refusing a new one"
                );
                return None;
            }
        }
        let limit = self.limit;
        Some(match self.buckets.entry_ref(key) {
            EntryRef::Occupied(bucket) => bucket.into_mut(),
            EntryRef::Vacant(place) => place.insert(TokenBucket::new(limit, now)),
        })
    }

    /// Time for one token at this rate, what a refused new key is told to wait.
    fn one_token_ms(&self) -> u64 {
        self.limit
            .window_ms
            .div_ceil(u64::from(self.limit.count).max(1))
    }

    /// Takes `n` tokens from `key`'s bucket, or says in how many ms to retry.
    pub fn try_take(&mut self, key: &str, n: u64, now: Millis) -> Result<(), u64> {
        let wait = self.one_token_ms();
        match self.bucket(key, now) {
            Some(bucket) => bucket.try_take(n, now),
            None => Err(wait),
        }
    }

    /// Takes up to `n` tokens from `key`'s bucket and returns how many; when there is not
    /// even one, says in how many ms to retry.
    pub fn take_up_to(&mut self, key: &str, n: u64, now: Millis) -> Result<u64, u64> {
        let wait = self.one_token_ms();
        let Some(bucket) = self.bucket(key, now) else {
            return Err(wait);
        };
        match bucket.take_up_to(n, now) {
            0 => Err(bucket.try_take(1, now).err().unwrap_or(wait)),
            taken => Ok(taken),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_default_twenty_per_thirty_seconds() {
        let mut b = TokenBucket::new(RateLimit::new(20, 30_000), Millis(0));
        for _ in 0..20 {
            b.try_take(1, Millis(0)).unwrap();
        }
        // One token takes 1500 ms to come back.
        assert_eq!(b.try_take(1, Millis(0)), Err(1500));
        assert_eq!(b.try_take(1, Millis(1000)), Err(500));
        assert_eq!(b.try_take(1, Millis(1499)), Err(1));
        assert_eq!(b.try_take(1, Millis(1500)), Ok(()));
        assert_eq!(b.try_take(1, Millis(1500)), Err(1500));
        // After a full window the bucket is full again, and no fuller.
        assert_eq!(b.available(Millis(100_000)), 20);
        assert!(b.is_full(Millis(100_000)));
    }

    #[test]
    fn refill_is_continuous_and_exact() {
        let mut b = TokenBucket::new(RateLimit::new(3, 1000), Millis(0));
        assert_eq!(b.take_up_to(10, Millis(0)), 3);
        assert_eq!(b.available(Millis(333)), 0);
        assert_eq!(b.available(Millis(334)), 1);
        assert_eq!(b.available(Millis(667)), 2);
        assert_eq!(b.available(Millis(1000)), 3);
    }

    #[test]
    fn time_going_backwards_does_not_refill() {
        let mut b = TokenBucket::new(RateLimit::new(1, 1000), Millis(5000));
        b.try_take(1, Millis(5000)).unwrap();
        assert!(b.try_take(1, Millis(1000)).is_err());
        assert!(b.try_take(1, Millis(5999)).is_err());
        assert!(b.try_take(1, Millis(6000)).is_ok());
    }

    #[test]
    fn more_than_the_bucket_holds_is_never() {
        let mut b = TokenBucket::new(RateLimit::new(2, 1000), Millis(0));
        assert_eq!(b.try_take(3, Millis(0)), Err(u64::MAX));
        let mut zero = TokenBucket::new(RateLimit::new(0, 1000), Millis(0));
        assert_eq!(zero.try_take(1, Millis(0)), Err(u64::MAX));
        let mut unlimited = TokenBucket::new(RateLimit::new(1, 0), Millis(0));
        for _ in 0..1000 {
            unlimited.try_take(1, Millis(0)).unwrap();
        }
    }

    #[test]
    fn keyed_buckets_are_independent() {
        let mut l = KeyedLimiter::new(RateLimit::new(1, 1000), 10);
        l.try_take("a", 1, Millis(0)).unwrap();
        assert_eq!(l.try_take("a", 1, Millis(0)), Err(1000));
        l.try_take("b", 1, Millis(0)).unwrap();
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn keyed_take_up_to_counts_every_tap_up_to_the_cap() {
        let mut l = KeyedLimiter::new(RateLimit::new(20, 1000), 10);
        assert_eq!(l.take_up_to("a", 15, Millis(0)), Ok(15));
        assert_eq!(l.take_up_to("a", 15, Millis(0)), Ok(5));
        assert_eq!(l.take_up_to("a", 1, Millis(0)), Err(50));
        assert_eq!(l.take_up_to("a", 15, Millis(100)), Ok(2));
    }

    #[test]
    fn keyed_map_is_bounded_and_forgets_full_buckets() {
        let mut l = KeyedLimiter::new(RateLimit::new(1, 1000), 2);
        l.try_take("a", 1, Millis(0)).unwrap();
        l.try_take("b", 1, Millis(0)).unwrap();
        // Both still refilling: a third user is refused, not tracked.
        assert_eq!(l.try_take("c", 1, Millis(10)), Err(1000));
        assert_eq!(l.len(), 2);
        // Once a and b are full again they are forgotten and c fits.
        assert_eq!(l.try_take("c", 1, Millis(1010)), Ok(()));
        assert_eq!(l.len(), 1);
    }
}
