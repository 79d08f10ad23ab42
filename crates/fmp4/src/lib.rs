//! CMAF / fragmented MP4 for live streams: turns the server's [`MediaFrame`]s (FLV
//! tag bodies, legacy or Enhanced RTMP) into an init segment (`ftyp` + `moov`) and
//! parts (`moof` + `mdat`, one CMAF chunk each, every track in one fragment). The
//! server serves the parts as LL-HLS partial segments and whole segments as their
//! concatenation; the recorder appends init + parts to a file, which stays playable
//! up to the last part after a crash.
//!
//! Sans-IO: [`Segmenter::push`] takes a frame and appends what became ready; no
//! sockets, files or clocks, time is the frames' timestamps. H.264 (`avc1`), HEVC
//! (`hvc1`) and AAC (`mp4a`) now; the track and sample-entry split leaves room for
//! Opus and AV1.
//!
//! # How the stream is cut
//! - Tracks: video is track 1 (timescale 90 kHz), AAC audio track 2 (timescale = sample
//!   rate, 1024 samples a frame). Which tracks exist is decided once, before the first
//!   init segment: see [`Segmenter`] (with `onMetaData`, the tracks it names; without
//!   it, whatever headers arrive within [`HEADER_WAIT`] of stream time).
//! - A part is cut at the first video frame at or after `part_target` from its start,
//!   and is emitted when that frame arrives (its timestamp is the duration of the
//!   part's last picture). Audio never holds a part back. Audio-only streams cut a part
//!   as soon as its frames reach the target.
//! - A segment starts at the first keyframe at or after `segment_target` from the
//!   segment start (audio-only: the first part boundary past it). A new init segment
//!   (codec configuration change, a track added) also starts a segment, at the next
//!   keyframe; the pictures before it cannot be decoded and are dropped.
//! - Parts are also cut early at [`MAX_PART_SAMPLES`] samples or [`MAX_PART_BYTES`]
//!   bytes, so no input can grow one without bound.
//! - Timestamps never yield a zero or negative duration: a picture stamped at or
//!   before the previous one is placed one tick after it (after a jump back of a second or more,
//!   the track continues from where it was); AAC frames are counted, so millisecond
//!   jitter disappears and only real gaps (over half a frame) show; a forward gap is
//!   kept up to 10 s and anything longer is cut out of that track's timeline. The
//!   32-bit millisecond wrap is unwrapped. Decode times (`tfdt`) continue from part
//!   to part.
//!
//! Boxes are written by hand with a small writer rather than with `mp4-atom`: the
//! boxes needed are few and fixed, the decoder configuration records from FLV are
//! copied into `avcC`/`hvcC` byte for byte instead of being parsed into structures
//! and re-encoded, a part is written in one pass into one buffer, and `mp4-atom`
//! (0.17) needs Rust 1.88 where the workspace promises 1.85. The tests parse every
//! box back with `mp4-atom`, an independent reader.
//!
//! Deliberately absent: playlists (the `hls` crate), MPEG-TS, edit lists (the first
//! presentation time is the first sample's, as CMAF allows), `sidx`/`mfra`, encryption
//! and any decoding of the coded pictures or audio.

// Tests unwrap freely; the library itself is linted without this.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod config;
mod error;
mod fragment;
mod init;
mod segmenter;
mod track;
mod writer;

#[cfg(test)]
mod tests;

pub use error::Error;
pub use segmenter::{
    Output, Part, Segmenter, SegmenterSettings, HEADER_WAIT, MAX_PART_BYTES, MAX_PART_SAMPLES,
};

#[doc(no_inline)]
pub use onair_media::MediaFrame;
