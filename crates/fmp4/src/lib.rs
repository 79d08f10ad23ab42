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
