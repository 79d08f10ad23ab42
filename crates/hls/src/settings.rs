//! What a playlist is told by the server's configuration.

use std::time::Duration;

/// The shape of one rendition's media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaylistSettings {
    /// `EXT-X-PART-INF:PART-TARGET`: the longest a part should be.
    pub part_target: Duration,
    /// The segment duration aimed at; `EXT-X-TARGETDURATION` is its ceiling in whole
    /// seconds and never changes (RFC 8216bis 4.4.3.1), so longer segments are listed
    /// with their `EXTINF` clamped to what still rounds to it.
    pub segment_target: Duration,
    /// Complete segments kept in the playlist (and by the server); at least one.
    pub window_segments: usize,
    /// `false` renders plain HLS: complete segments only, no parts, preload hints or
    /// server control.
    pub low_latency: bool,
}

impl Default for PlaylistSettings {
    fn default() -> Self {
        Self {
            part_target: Duration::from_millis(333),
            segment_target: Duration::from_secs(2),
            window_segments: 6,
            low_latency: true,
        }
    }
}

/// What the segments of a rendition are, which decides their URIs and whether the
/// playlist carries `EXT-X-MAP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SegmentFormat {
    /// CMAF / fragmented MP4: `EXT-X-MAP` names the init segment, segments are `.m4s`.
    #[default]
    Fmp4,
    /// Legacy MPEG-TS: self-contained `.ts` segments, no `EXT-X-MAP`, never parts.
    MpegTs,
}
