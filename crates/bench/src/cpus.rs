//! How busy each CPU of the machine was, from `/proc/stat`. A process's own CPU time
//! (`process.rs`) leaves out softirq work the kernel ran on its core for others, such
//! as the loopback receive path of the peer's sockets; this shows whether a pinned
//! core was saturated all the same.

/// Jiffies of each CPU (`cpuN` lines, in order): (busy, total).
#[derive(Debug, Clone, Default)]
pub(super) struct CpuSample(Vec<(u64, u64)>);

impl CpuSample {
    pub(super) fn now() -> Self {
        std::fs::read_to_string("/proc/stat")
            .map(|text| Self::parse(&text))
            .unwrap_or_default()
    }

    fn parse(text: &str) -> Self {
        let cpus = text
            .lines()
            .filter(|line| {
                line.strip_prefix("cpu")
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            })
            .filter_map(|line| {
                let ticks: Vec<u64> = line
                    .split_ascii_whitespace()
                    .skip(1)
                    .map_while(|field| field.parse().ok())
                    .collect();
                // user nice system idle iowait irq softirq steal ...
                let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
                let total: u64 = ticks.iter().take(8).sum();
                Some((total - idle, total))
            })
            .collect();
        Self(cpus)
    }

    /// The busy fraction (0..=1) of each CPU between `earlier` and `self`.
    pub(super) fn busy_since(&self, earlier: &Self) -> Vec<f64> {
        self.0
            .iter()
            .zip(&earlier.0)
            .map(|(&(busy, total), &(busy0, total0))| {
                let total = total.saturating_sub(total0);
                if total == 0 {
                    0.0
                } else {
                    busy.saturating_sub(busy0) as f64 / total as f64
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_per_cpu_lines() {
        let before = CpuSample::parse(
            "cpu  10 0 10 80 0 0 0 0 0 0\ncpu0 5 0 5 40 0 0 0 0 0 0\ncpu1 5 0 5 40 0 0 0 0 0 0\nintr 1 2\n",
        );
        let after = CpuSample::parse(
            "cpu  0 0 0 0 0 0 0 0 0 0\ncpu0 55 0 25 40 0 0 20 0 0 0\ncpu1 5 0 5 140 0 0 0 0 0 0\n",
        );
        assert_eq!(after.busy_since(&before), vec![1.0, 0.0]);
        assert!(!CpuSample::now().0.is_empty());
    }
}
