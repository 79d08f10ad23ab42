//! FLV, the container that RTMP and HTTP-FLV carry media in: tags and the file header,
//! a streaming sans-IO tag reader, the audio/video tag headers (legacy FLV and
//! Enhanced RTMP v1/v2 with FourCCs for HEVC, AV1, VP9, Opus) and the codec
//! configuration records a server needs to describe a stream (AVC and HEVC picture
//! size, H.264 frame rate, AAC sample rate and channels, `onMetaData`). A sequence
//! header is read in one place, [`SequenceHeader::parse`], which every muxer and the
//! relay use.
//!
//! Everything here works on byte slices handed in by the caller: no sockets, no files,
//! no clocks. Every length a peer controls is checked and capped; malformed input is
//! an [`Error`], never a panic.
//!
//! Deliberately absent: muxing to fMP4 (the `fmp4` crate's job) or MPEG-TS (the `hls`
//! crate's), any transcoding or decoding of coded pictures and audio, writing
//! `onMetaData` keyframe indexes or seeking in files, and FLV's encrypted/filtered tags.
//! Only the headers and configuration records are parsed; coded frames pass through
//! untouched.

// Tests unwrap freely; the library itself is linted without this (clippy's non-test
// pass over the lib target still denies `unwrap_used`).
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod aac;
mod audio;
mod avc;
mod bits;
mod classify;
mod error;
mod hevc;
mod metadata;
mod reader;
mod sequence_header;
mod tag;
mod video;

#[cfg(test)]
mod fixtures;

pub use aac::{parse_aac_config, AacConfig};
pub use audio::{parse_audio_tag, AudioTagInfo};
pub use avc::{parse_avc_config, AvcConfig};
pub use classify::classify;
pub use error::Error;
pub use hevc::{parse_hevc_config, HevcConfig};
pub use metadata::{parse_metadata, strip_set_data_frame, Metadata};
pub use reader::FlvReader;
pub use sequence_header::{Codec, CodecConfig, SequenceHeader};
pub use tag::{
    encode_tag, file_header, previous_tag_size, tag_header, FileHeader, Tag, FLV_HEADER_LEN,
    MAX_TAG_PAYLOAD, PREVIOUS_TAG_SIZE_LEN, TAG_HEADER_LEN,
};
pub use video::{parse_video_tag, VideoTagInfo};
