//! What recording reports outward: counters for metrics, and each finished file.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use onair_media::StreamPath;

/// Why a recording lost media (`onair_record_errors_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFailure {
    /// A file could not be created (directory missing or not writable, disk full).
    Create,
    /// Writing, flushing or syncing a file failed.
    Write,
    /// The recorder fell behind the stream and skipped frames.
    Behind,
}

impl RecordFailure {
    pub const ALL: [RecordFailure; 3] = [
        RecordFailure::Create,
        RecordFailure::Write,
        RecordFailure::Behind,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            RecordFailure::Create => "create",
            RecordFailure::Write => "write",
            RecordFailure::Behind => "behind",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counters over every recorder, read when metrics are scraped.
#[derive(Debug, Default)]
pub struct RecordStats {
    errors: [AtomicU64; RecordFailure::ALL.len()],
    bytes: AtomicU64,
    files: AtomicU64,
}

impl RecordStats {
    /// Failures of `failure`'s kind so far.
    pub fn errors(&self, failure: RecordFailure) -> u64 {
        self.errors[failure.index()].load(Ordering::Relaxed)
    }

    /// Bytes written to recording files.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Recording files finished.
    pub fn files(&self) -> u64 {
        self.files.load(Ordering::Relaxed)
    }

    pub(super) fn failed(&self, failure: RecordFailure) {
        self.errors[failure.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn written(&self, bytes: usize) {
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(super) fn finished(&self) {
        self.files.fetch_add(1, Ordering::Relaxed);
    }
}

/// A recording file that was finished (and synced to disk, unless writing failed).
#[derive(Debug, Clone)]
pub struct RecordingDone {
    pub stream: StreamPath,
    /// The recording's id in the REST API.
    pub id: String,
    /// The file on disk.
    pub path: String,
    /// The file relative to the recordings directory.
    pub file: String,
    /// Media time in the file.
    pub duration: Duration,
    pub bytes: u64,
    pub started: SystemTime,
    pub ended: SystemTime,
}

/// Whom the recorders tell about finished files (the composition root sends webhooks).
pub trait RecordingObserver: Send + Sync + 'static {
    fn finished(&self, done: RecordingDone);
}
