//! Per-IP request rate limiting: a token bucket per address, in a map of bounded size.
//! A refused request learns how long to wait (`Retry-After`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets by IP address; addresses beyond `max_tracked` share one bucket, so
/// spraying addresses cannot grow the map or escape the limit.
#[derive(Debug)]
pub struct RequestLimiter {
    rate: f64,
    burst: f64,
    max_tracked: usize,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    buckets: HashMap<IpAddr, Bucket>,
    overflow: Bucket,
}

impl RequestLimiter {
    /// `rate` requests a second on average, bursts of up to `burst`.
    pub fn new(rate: f64, burst: u32, max_tracked: usize, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate,
            burst,
            max_tracked,
            state: Mutex::new(State {
                buckets: HashMap::new(),
                overflow: Bucket {
                    tokens: burst,
                    updated: now,
                },
            }),
        }
    }

    /// Takes a token for `ip`, or says how long until one is available.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !state.buckets.contains_key(&ip) && state.buckets.len() >= self.max_tracked {
            self.forget_full_buckets(&mut state.buckets, now);
        }
        let (rate, burst) = (self.rate, self.burst);
        let fresh = Bucket {
            tokens: burst,
            updated: now,
        };
        let bucket = if state.buckets.len() < self.max_tracked || state.buckets.contains_key(&ip) {
            state.buckets.entry(ip).or_insert(fresh)
        } else {
            &mut state.overflow
        };
        take(bucket, rate, burst, now)
    }

    /// Addresses tracked now.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .buckets
            .len()
    }

    /// Drops buckets that have refilled: forgetting them changes nothing.
    fn forget_full_buckets(&self, buckets: &mut HashMap<IpAddr, Bucket>, now: Instant) {
        buckets.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
            b.tokens + elapsed * self.rate < self.burst
        });
    }
}

fn take(bucket: &mut Bucket, rate: f64, burst: f64, now: Instant) -> Result<(), Duration> {
    let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
    bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
    bucket.updated = now;
    if bucket.tokens >= 1.0 {
        bucket.tokens -= 1.0;
        return Ok(());
    }
    let wait = if rate > 0.0 {
        (1.0 - bucket.tokens) / rate
    } else {
        3600.0
    };
    Err(Duration::from_secs_f64(wait))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let limiter = RequestLimiter::new(2.0, 3, 100, t0);
        for _ in 0..3 {
            limiter.check(ip(1), t0).unwrap();
        }
        let wait = limiter.check(ip(1), t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Another address has its own bucket.
        limiter.check(ip(2), t0).unwrap();
        // Half a second later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        limiter.check(ip(1), t1).unwrap();
        assert!(limiter.check(ip(1), t1).is_err());
    }

    #[test]
    fn the_map_stays_bounded_and_overflow_is_limited_too() {
        let t0 = Instant::now();
        let limiter = RequestLimiter::new(1.0, 1, 2, t0);
        limiter.check(ip(1), t0).unwrap();
        limiter.check(ip(2), t0).unwrap();
        // Both tracked buckets are empty: new addresses share the overflow bucket.
        limiter.check(ip(3), t0).unwrap();
        assert!(limiter.check(ip(4), t0).is_err());
        assert_eq!(limiter.tracked(), 2);
        // Once the tracked ones refill they are forgotten and room is made.
        let later = t0 + Duration::from_secs(5);
        limiter.check(ip(5), later).unwrap();
        assert_eq!(limiter.tracked(), 1);
    }
}
