//! The measuring window the viewer benches share: what the server, the bench itself,
//! the CPUs and each viewer's byte counter say at its start and at its end.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::time::sleep;

use super::cpus::CpuSample;
use super::process::{sample_proc, sample_procs, ProcSample};

pub(super) struct Window {
    pub secs: f64,
    pub server_start: Option<ProcSample>,
    pub server_end: Option<ProcSample>,
    pub self_start: Option<ProcSample>,
    pub self_end: Option<ProcSample>,
    /// Each CPU's busy share over the window (0..=1).
    pub cpu_busy: Vec<f64>,
    /// Every viewer's bytes received, at the start and at the end.
    pub bytes_start: Vec<u64>,
    pub bytes_end: Vec<u64>,
}

impl Window {
    /// Waits `duration` with `measuring` set, sampling around it; `bytes` reads every
    /// viewer's byte counter.
    pub async fn measure(
        duration: Duration,
        server_pids: &[u32],
        clk_tck: f64,
        measuring: &AtomicBool,
        bytes: impl Fn() -> Vec<u64>,
    ) -> Self {
        let cpus_start = CpuSample::now();
        let self_start = sample_proc("self", clk_tck);
        let server_start = sample_procs(server_pids, clk_tck);
        let bytes_start = bytes();
        let started = Instant::now();
        measuring.store(true, Ordering::Relaxed);
        sleep(duration).await;
        measuring.store(false, Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64();
        let server_end = sample_procs(server_pids, clk_tck);
        let self_end = sample_proc("self", clk_tck);
        let cpu_busy = CpuSample::now().busy_since(&cpus_start);
        Self {
            secs,
            server_start,
            server_end,
            self_start,
            self_end,
            cpu_busy,
            bytes_start,
            bytes_end: bytes(),
        }
    }

    /// Each viewer's receive rate over the window, kbit/s.
    pub fn kbps(&self) -> Vec<f64> {
        self.bytes_start
            .iter()
            .zip(&self.bytes_end)
            .map(|(a, b)| b.saturating_sub(*a) as f64 * 8.0 / self.secs / 1000.0)
            .collect()
    }
}
