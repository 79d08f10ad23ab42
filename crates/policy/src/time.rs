//! Time as the policies take it: passed in by the caller, never read from a clock.

use std::ops::Add;
use std::time::Duration;

/// A point in time. The server passes `std::time::Instant`; tests pass a `Duration`
/// since an origin of their choosing, so they run in virtual time (as `onair-hls`'s
/// `BlockingWait` does).
pub trait Moment: Copy + Ord + Add<Duration, Output = Self> {}

impl<T: Copy + Ord + Add<Duration, Output = T>> Moment for T {}
