//! HLS and Low-Latency HLS (RFC 8216bis) without IO: the media playlist of one live
//! rendition (a window of segments and their parts, program date-times,
//! discontinuities, init segment versions), its rendering with LL-HLS tags and delta
//! updates, the blocking-reload decision for `_HLS_msn` / `_HLS_part`, the
//! multivariant playlist, and resource names for init segments, segments and parts.
//!
//! Deliberately absent: media bytes (the server stores them under the ids handed out
//! here), clocks (time and wall-clock dates are passed in), sockets and tasks. The
//! fMP4 segmenter lives in `onair-fmp4`; this crate only hears the facts about each
//! part it produced. The legacy MPEG-TS rendition's segmenter is here ([`ts`]),
//! because it is small and only old players need it.

// Tests unwrap freely; the library itself is linted without this.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod datetime;
mod directives;
mod error;
mod multivariant;
mod playlist;
mod readiness;
mod render;
mod resource;
mod settings;
pub mod ts;

pub use directives::Directives;
pub use error::Error;
pub use multivariant::{multivariant, Variant};
pub use playlist::{PartInfo, Playlist, Pushed};
pub use readiness::{blocking_deadline, BlockingWait, Readiness, WaitOutcome};
pub use render::{with_query, RenderRequest};
pub use resource::{
    init_uri, parse_resource, parse_ts_segment, part_uri, segment_uri, ts_segment_uri, PartId,
    Resource,
};
pub use settings::{PlaylistSettings, SegmentFormat};
