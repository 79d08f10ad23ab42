//! The legacy MPEG-TS rendition for players without fMP4 support: H.264 and AAC
//! frames in, self-contained `.ts` segments out, each starting with PAT and PMT and
//! (with video) a keyframe preceded by its SPS and PPS. Its playlist is a
//! [`Playlist`](crate::Playlist) made with [`SegmentFormat::MpegTs`](crate::SegmentFormat):
//! plain HLS, no `EXT-X-MAP`; feed it each segment with
//! [`Playlist::push_segment`](crate::Playlist::push_segment).

mod adts;
mod avc;
mod packets;
mod segmenter;

pub use segmenter::{TsSegment, TsSegmenter, TsSettings};
