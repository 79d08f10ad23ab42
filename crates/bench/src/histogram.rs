//! A log-linear histogram of whole numbers (latencies in microseconds): every value
//! below 128 has its own bucket, above that each power of two is split into 64, so a
//! percentile read from it is within 1.6% of the true value. Fixed size (30 KiB),
//! mergeable, for samples counted in the millions where keeping each one is too much.

use super::stats::Percentiles;

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Values below this have a bucket each.
const LINEAR: u64 = 2 * SUB;
const BUCKETS: usize = (64 - SUB_BITS as usize - 1) * SUB as usize + LINEAR as usize;

#[derive(Debug, Clone)]
pub(super) struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    pub(super) fn record(&mut self, value: u64) {
        if let Some(count) = self.counts.get_mut(index(value)) {
            *count += 1;
            self.total += 1;
            self.max = self.max.max(value);
        }
    }

    pub(super) fn extend(&mut self, values: impl IntoIterator<Item = u64>) {
        for value in values {
            self.record(value);
        }
    }

    /// The `p`th percentile (0..=100), nearest rank, as the middle of its bucket (never
    /// above the largest value recorded; the last rank is that value).
    pub(super) fn percentile(&self, p: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((p / 100.0 * self.total as f64).ceil() as u64).clamp(1, self.total);
        if rank == self.total {
            return Some(self.max);
        }
        let mut seen = 0;
        for (i, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let (low, high) = bounds(i);
                return Some((low + (high - low - 1) / 2).min(self.max));
            }
        }
        Some(self.max)
    }

    /// p50/p95/p99/max, each divided by `scale` (1000.0: microseconds to milliseconds).
    pub(super) fn percentiles(&self, scale: f64) -> Percentiles {
        let at = |p| self.percentile(p).map(|v| v as f64 / scale);
        Percentiles {
            count: usize::try_from(self.total).unwrap_or(usize::MAX),
            p50: at(50.0),
            p95: at(95.0),
            p99: at(99.0),
            max: (self.total > 0).then(|| self.max as f64 / scale),
        }
    }
}

fn index(value: u64) -> usize {
    if value < LINEAR {
        return value as usize;
    }
    let bits = 64 - value.leading_zeros();
    let shift = bits - (SUB_BITS + 1);
    (u64::from(shift) * SUB + (value >> shift)) as usize
}

/// The values bucket `i` holds: `low..high`.
fn bounds(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < LINEAR {
        return (i, i + 1);
    }
    let shift = i / SUB - 1;
    let mantissa = i % SUB + SUB;
    let high = u128::from(mantissa + 1) << shift;
    (mantissa << shift, u64::try_from(high).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_hold_their_values() {
        for value in (0..100_000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let (low, high) = bounds(index(value));
            assert!(
                low <= value && (value < high || high == u64::MAX),
                "{value}"
            );
        }
        for i in 0..BUCKETS - 1 {
            assert_eq!(bounds(i).1, bounds(i + 1).0, "bucket {i}");
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_are_within_two_percent() {
        let mut h = Histogram::default();
        h.extend(1..=100_000);
        assert_eq!(h.percentiles(1.0).count, 100_000);
        for p in [50.0, 95.0, 99.0] {
            let exact = p / 100.0 * 100_000.0;
            let got = h.percentile(p).unwrap() as f64;
            assert!(
                (got - exact).abs() / exact < 0.016,
                "p{p}: {got} vs {exact}"
            );
        }
        assert_eq!(h.percentile(100.0), Some(100_000));
        let mut small = Histogram::default();
        small.extend([3, 7, 7, 9]);
        assert_eq!(small.percentile(50.0), Some(7));
        assert_eq!(small.percentile(0.0), Some(3));
        assert_eq!(Histogram::default().percentile(50.0), None);
        let ms = small.percentiles(1000.0);
        assert_eq!((ms.count, ms.max), (4, Some(0.009)));
    }
}
