//! Blocking playlist reload (RFC 8216bis 6.2.5.2): whether a request for
//! `_HLS_msn` / `_HLS_part` can be answered now, must wait, or is refused, and how
//! long it may wait.

use std::ops::Add;
use std::time::Duration;

use crate::{Directives, Playlist};

/// The answer to a blocking playlist request at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// The playlist holds what was asked for (or has already moved past it).
    Ready,
    /// Not yet: hold the request and ask again when a part lands.
    Wait,
    /// More than the spec allows beyond the live edge: answer 400 at once.
    TooFarAhead,
    /// A malformed request: answer 400 with this reason.
    BadRequest(&'static str),
}

/// A blocked request waits at most this many target durations, then gets a 503.
const WAIT_TARGET_DURATIONS: u32 = 3;
/// `_HLS_msn` may be at most this far beyond the last complete segment.
const MSN_ALLOWANCE: u64 = 2;

impl Playlist {
    /// The blocking-reload decision for `_HLS_msn=msn` (and `_HLS_part=part`).
    ///
    /// A part index beyond the parts of a complete segment means part 0 of the next
    /// one. Plain HLS playlists do not advertise blocking reload, so for them every
    /// request is `Ready` (the directives are ignored).
    pub fn readiness(&self, msn: u64, part: Option<u32>) -> Readiness {
        if !self.settings.low_latency {
            return Readiness::Ready;
        }
        let (msn, part) = match part {
            Some(p)
                if self
                    .complete_segment(msn)
                    .is_some_and(|s| p as usize >= s.parts.len()) =>
            {
                (msn.saturating_add(1), Some(0))
            }
            other => (msn, other),
        };
        // The last complete segment is `next_msn - 1`; allowing two beyond it is
        // `next_msn + 1`.
        if msn > self.next_msn.saturating_add(MSN_ALLOWANCE - 1) {
            return Readiness::TooFarAhead;
        }
        if let Some(part) = part {
            if msn == self.next_msn && part_too_far(self, part) {
                return Readiness::TooFarAhead;
            }
        }
        if msn < self.next_msn {
            // Complete (or already evicted): with a part, it exists by the rewrite above.
            return Readiness::Ready;
        }
        match (part, &self.open) {
            (Some(part), Some(open)) if open.msn == msn && (part as usize) < open.parts.len() => {
                Readiness::Ready
            }
            _ => Readiness::Wait,
        }
    }

    /// [`Playlist::readiness`] for parsed directives; no `_HLS_msn` is `Ready`.
    pub fn readiness_for(&self, directives: &Directives) -> Readiness {
        match (directives.msn, directives.part) {
            (Some(msn), part) => self.readiness(msn, part),
            (None, Some(_)) => Readiness::BadRequest("_HLS_part without _HLS_msn"),
            (None, None) => Readiness::Ready,
        }
    }

    /// How many parts a request may run ahead of the last one: three, or three
    /// seconds' worth when parts are shorter than a second (the spec's Advance Part
    /// Limit).
    pub fn advance_part_limit(&self) -> u32 {
        let target = self.settings.part_target.as_secs_f64();
        if target >= 1.0 || target <= 0.0 {
            3
        } else {
            (3.0 / target).ceil().min(f64::from(u32::MAX)) as u32
        }
    }
}

/// `part` of the segment at `next_msn` against the last part pushed into it (none
/// yet counts as index -1).
fn part_too_far(playlist: &Playlist, part: u32) -> bool {
    let pushed = playlist
        .open
        .as_ref()
        .filter(|open| open.msn == playlist.next_msn)
        .map_or(0, |open| open.parts.len() as u64);
    // part - last > limit, with last = pushed - 1.
    u64::from(part) + 1 > pushed + u64::from(playlist.advance_part_limit())
}

/// When a blocked playlist request gives up (503): three target durations after it
/// arrived. `T` is any instant type, so tests run in virtual time.
pub fn blocking_deadline<T: Add<Duration, Output = T>>(arrived: T, target_duration: Duration) -> T {
    arrived + target_duration * WAIT_TARGET_DURATIONS
}

/// What a held request should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// Render and send the playlist.
    Respond,
    /// Keep holding until the playlist changes or the deadline.
    Wait,
    /// The deadline passed: 503.
    TimedOut,
    /// 400 with this reason.
    BadRequest(&'static str),
}

/// One blocked playlist request: its directives and deadline. The server polls it
/// whenever a part lands and at the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockingWait<T> {
    directives: Directives,
    deadline: T,
}

impl<T: Copy + Ord + Add<Duration, Output = T>> BlockingWait<T> {
    pub fn new(directives: Directives, arrived: T, target_duration: Duration) -> Self {
        Self {
            directives,
            deadline: blocking_deadline(arrived, target_duration),
        }
    }

    pub fn deadline(&self) -> T {
        self.deadline
    }

    pub fn poll(&self, playlist: &Playlist, now: T) -> WaitOutcome {
        match playlist.readiness_for(&self.directives) {
            Readiness::Ready => WaitOutcome::Respond,
            Readiness::TooFarAhead => {
                WaitOutcome::BadRequest("_HLS_msn or _HLS_part too far ahead")
            }
            Readiness::BadRequest(reason) => WaitOutcome::BadRequest(reason),
            Readiness::Wait if now >= self.deadline => WaitOutcome::TimedOut,
            Readiness::Wait => WaitOutcome::Wait,
        }
    }
}
