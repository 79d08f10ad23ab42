//! CPU time and RSS of a process from `/proc`: the servers under load, and the bench
//! itself (`self`).

#[derive(Debug, Clone, Copy)]
pub(super) struct ProcSample {
    pub(super) cpu_secs: f64,
    pub(super) rss_kb: u64,
}

/// `getconf CLK_TCK`, read once; 100 if that fails.
pub(super) fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|&hz| hz > 0.0)
        .unwrap_or(100.0)
}

/// CPU time and RSS of `/proc/{pid}` (`pid` may be "self").
pub(super) fn sample_proc(pid: &str, clk_tck: f64) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(ProcSample {
        cpu_secs: stat_cpu_ticks(&stat)? as f64 / clk_tck,
        rss_kb: status_rss_kb(&status)?,
    })
}

/// The sum over `pids`; `None` when there are none or one cannot be read.
pub(super) fn sample_procs(pids: &[u32], clk_tck: f64) -> Option<ProcSample> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().try_fold(
        ProcSample {
            cpu_secs: 0.0,
            rss_kb: 0,
        },
        |sum, pid| {
            let s = sample_proc(&pid.to_string(), clk_tck)?;
            Some(ProcSample {
                cpu_secs: sum.cpu_secs + s.cpu_secs,
                rss_kb: sum.rss_kb + s.rss_kb,
            })
        },
    )
}

/// Waits `warmup` (the publisher filling the server), sampling `pids` half-way and at
/// the end: the last sample (the baseline before viewers) and the CPU seconds per
/// minute between the two (ingest only).
pub(super) async fn warmup(
    pids: &[u32],
    clk_tck: f64,
    warmup: std::time::Duration,
) -> (Option<ProcSample>, Option<f64>) {
    tokio::time::sleep(warmup / 2).await;
    let idle_start = sample_procs(pids, clk_tck);
    let idle_start_at = std::time::Instant::now();
    tokio::time::sleep(warmup - warmup / 2).await;
    let before = sample_procs(pids, clk_tck);
    let idle_cpu_per_minute = match (&idle_start, &before) {
        (Some(a), Some(b)) => {
            Some((b.cpu_secs - a.cpu_secs) / idle_start_at.elapsed().as_secs_f64().max(1e-3) * 60.0)
        }
        _ => None,
    };
    (before, idle_cpu_per_minute)
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line, in clock ticks.
pub(super) fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `VmRSS` of `/proc/PID/status`, in KiB.
pub(super) fn status_rss_kb(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_ascii_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_stat_and_status() {
        let stat = "1234 (on air) (x) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 \
                    3 0 100 1000000 300 18446744073709551615";
        assert_eq!(stat_cpu_ticks(stat), Some(325));
        assert_eq!(stat_cpu_ticks("garbage"), None);
        let status = "Name:\tonair\nVmPeak:\t 1000 kB\nVmRSS:\t   20480 kB\nThreads:\t3\n";
        assert_eq!(status_rss_kb(status), Some(20480));
        assert!(sample_proc("self", 100.0).is_some_and(|s| s.rss_kb > 0));
    }
}
