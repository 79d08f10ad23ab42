//! Tells the rooms' write budget how busy the server is: the process's CPU time over
//! the wall time of the cores it may run on, sampled every quarter second. CPU time,
//! not the runtime's busy time: on a loaded machine much of a write's cost is the
//! kernel's, which the runtime does not see as busy.

use std::sync::Arc;
use std::time::Duration;

use nix::sys::resource::{getrusage, UsageWho};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::rooms::WriteBudget;

/// How often the load is sampled.
pub(crate) const SAMPLE: Duration = Duration::from_millis(250);

/// Moves `budget` by the server's load every [`SAMPLE`] until `stop`.
pub(crate) async fn follow_cpu_load(budget: Arc<WriteBudget>, stop: CancellationToken) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let Some(cpu) = cpu_time() else {
        tracing::warn!("process CPU time unreadable; the rooms' write budget stays fixed");
        return;
    };
    let mut last = (Instant::now(), cpu);
    let mut tick = tokio::time::interval(SAMPLE);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(cpu) = cpu_time() else { continue };
        let now = (Instant::now(), cpu);
        let wall = now.0.duration_since(last.0).as_secs_f64() * cores;
        if wall > 0.0 {
            budget.follow(now.1.saturating_sub(last.1).as_secs_f64() / wall);
        }
        last = now;
    }
}

/// User and system CPU time of the whole process so far.
fn cpu_time() -> Option<Duration> {
    let usage = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    let micros = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec().max(0) as u64)
            + Duration::from_micros(t.tv_usec().max(0) as u64)
    };
    Some(micros(usage.user_time()) + micros(usage.system_time()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work() {
        let before = cpu_time().expect("getrusage works here");
        let mut x = 0u64;
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        assert!(cpu_time().unwrap() > before);
    }
}
