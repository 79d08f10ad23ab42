//! The decisions of the relay and the recorder, in virtual time.
//!
//! What it owns: the rules that decide what happens to a live stream's frames, taken
//! out of the IO crates so they can be read in one place and tested without a
//! runtime or a clock:
//! - [`GopCache`]: the frames since the last video keyframe that a late viewer starts
//!   with, bounded in frames and bytes;
//! - [`TimestampRebaser`]: monotonic outgoing timestamps per track, whatever the
//!   encoder's clock does (restarts, jumps);
//! - [`SkipPolicy`]: what a viewer that fell off its stream's ring does (jump to the
//!   newest keyframe, or drop media until the next one) and when it has skipped too
//!   often and must go;
//! - [`CodecInfo`]: what a stream's metadata and sequence headers say (codecs, picture
//!   size, rates; the RFC 6381 `CODECS` attribute; whether it has video);
//! - [`RecordCuts`]: where the recorder begins and ends files (keyframes, duration and
//!   size limits, header changes, skips, audio-only streams, the wait after a failure).
//!
//! Frames are `onair_media::MediaFrame`s, or anything that shows one ([`FrameFacts`]:
//! the relay's `HubFrame`); sequence headers are read by `onair_flv::SequenceHeader`.
//! Time is passed in as any [`Moment`]: `std::time::Instant` in the server, a
//! `Duration` since an origin in the tests.
//!
//! Deliberately absent: IO of any kind (sockets, files, the ring viewers read), clocks
//! (`clippy.toml` forbids `Instant::now` and `SystemTime::now`), tasks, locks and
//! tokio, counters and logging. The relay and the server hold the state that is shared
//! or written, ask these types what to do, and do it.

// Tests unwrap freely; the library itself is linted without this.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod codec_info;
mod frame;
mod gop;
mod record_cuts;
mod skip;
mod time;
mod timestamps;

#[cfg(test)]
mod fixtures;

pub use codec_info::CodecInfo;
pub use frame::FrameFacts;
pub use gop::GopCache;
pub use record_cuts::{CutRules, FileHeaders, RecordAction, RecordCuts};
pub use skip::{KeyframeWait, Lag, SkipPolicy, SKIP_WINDOW};
pub use time::Moment;
pub use timestamps::TimestampRebaser;
