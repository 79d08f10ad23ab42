//! Time as the caller sees it. The crate never reads a clock.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A point in time in milliseconds since the Unix epoch, as passed in by the caller.
///
/// Every method that needs the time takes one of these, so tests run in virtual time and
/// two rooms driven with the same inputs behave the same. Event `ts` fields carry it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Millis(pub u64);

impl Millis {
    /// The Unix epoch.
    pub const ZERO: Millis = Millis(0);

    /// The raw number of milliseconds.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// `self` plus `ms` milliseconds, saturating at the far future.
    #[must_use]
    pub const fn add_ms(self, ms: u64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self`; 0 when `earlier` is not earlier.
    pub const fn ms_since(self, earlier: Millis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Millis(5).add_ms(3), Millis(8));
        assert_eq!(Millis(u64::MAX).add_ms(3), Millis(u64::MAX));
        assert_eq!(Millis(10).ms_since(Millis(4)), 6);
        assert_eq!(Millis(4).ms_since(Millis(10)), 0);
    }

    #[test]
    fn serializes_as_a_plain_number() {
        assert_eq!(
            serde_json::to_string(&Millis(1_700_000_000_000)).unwrap(),
            "1700000000000"
        );
    }
}
