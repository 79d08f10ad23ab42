//! What the soak saw, per kind of cycle, as text or JSON.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use serde::Serialize;

use super::kind::Kind;
use super::{Outcome, SoakArgs};

/// Distinct failure messages kept; the rest are counted under "other".
const MAX_ERROR_KINDS: usize = 32;

#[derive(Debug, Default, Clone, Copy, Serialize)]
pub(super) struct KindTally {
    pub(super) ok: u64,
    pub(super) failed: u64,
    /// Stallers the server closed before they gave up.
    pub(super) dropped_by_server: u64,
}

#[derive(Debug, Default)]
pub(super) struct Tally {
    kinds: BTreeMap<Kind, KindTally>,
    errors: BTreeMap<String, u64>,
    panics: u64,
}

impl Tally {
    pub(super) fn add(&mut self, kind: Kind, outcome: Result<Outcome, String>) {
        let entry = self.kinds.entry(kind).or_default();
        match outcome {
            Ok(Outcome::Done) => entry.ok += 1,
            Ok(Outcome::DroppedByServer) => {
                entry.ok += 1;
                entry.dropped_by_server += 1;
            }
            Err(error) => {
                entry.failed += 1;
                self.error(error);
            }
        }
    }

    pub(super) fn panicked(&mut self, error: &str) {
        self.panics += 1;
        self.error(format!("cycle task failed: {error}"));
    }

    fn error(&mut self, error: String) {
        if self.errors.len() < MAX_ERROR_KINDS || self.errors.contains_key(&error) {
            *self.errors.entry(error).or_default() += 1;
        } else {
            *self.errors.entry("other".to_owned()).or_default() += 1;
        }
    }

    pub(super) fn cycles(&self) -> u64 {
        self.panics + self.kinds.values().map(|k| k.ok + k.failed).sum::<u64>()
    }

    fn failures(&self) -> u64 {
        self.panics + self.kinds.values().map(|k| k.failed).sum::<u64>()
    }
}

#[derive(Debug, Serialize)]
pub(super) struct Report {
    label: String,
    cycles: u64,
    concurrency: usize,
    with_token: bool,
    elapsed_secs: f64,
    cycles_per_sec: f64,
    /// Cycles that did not go as planned (a viewer without media, a refused join, …).
    failures: u64,
    kinds: BTreeMap<Kind, KindTally>,
    errors: BTreeMap<String, u64>,
    /// The long-lived publisher's error, if it did not last the run.
    publisher_error: Option<String>,
}

impl Report {
    pub(super) fn new(
        args: &SoakArgs,
        tally: Tally,
        elapsed: Duration,
        publisher_error: Option<String>,
    ) -> Self {
        let cycles = tally.cycles();
        let secs = elapsed.as_secs_f64();
        Self {
            label: args.label.clone(),
            cycles,
            concurrency: args.concurrency,
            with_token: args.token.is_some(),
            elapsed_secs: secs,
            cycles_per_sec: cycles as f64 / secs.max(1e-3),
            failures: tally.failures(),
            kinds: tally.kinds,
            errors: tally.errors,
            publisher_error,
        }
    }

    pub(super) fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "soak: {} cycles in {:.1} s ({:.0}/s), {} at a time, {} failed",
            self.cycles, self.elapsed_secs, self.cycles_per_sec, self.concurrency, self.failures
        );
        for (kind, tally) in &self.kinds {
            let _ = write!(
                out,
                "  {:<22} ok {:>6}  failed {:>4}",
                serde_json::to_value(kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                tally.ok,
                tally.failed
            );
            if tally.dropped_by_server > 0 {
                let _ = write!(out, "  dropped by the server {}", tally.dropped_by_server);
            }
            out.push('\n');
        }
        for (error, count) in &self.errors {
            let _ = writeln!(out, "  error x{count}: {error}");
        }
        if let Some(error) = &self.publisher_error {
            let _ = writeln!(out, "  long-lived publisher: {error}");
        }
        out
    }
}
