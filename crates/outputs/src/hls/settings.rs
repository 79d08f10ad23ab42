//! The `[hls]` settings (docs/configuration.md and docs/hls.md describe them).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use onair_media::SettingsError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HlsSettings {
    /// Every live stream is also served as HLS at `/{app}/{name}/index.m3u8`.
    pub enabled: bool,
    /// Low-Latency HLS: partial segments, preload hints, blocking playlist reload and
    /// delta updates. Off: plain HLS of whole segments.
    pub low_latency: bool,
    /// Duration a partial segment aims for (EXT-X-PART-INF PART-TARGET).
    pub part_target_ms: u64,
    /// A new segment starts at the first keyframe this long after the last one began.
    pub segment_target_ms: u64,
    /// Complete segments each stream keeps in memory and lists in its playlist.
    pub window_segments: usize,
    /// How long a stream's playlist stays after its publisher leaves, so a publisher
    /// that comes back continues the same playlist after an EXT-X-DISCONTINUITY.
    pub linger_ms: u64,
    /// Playlists kept after their publisher left, at most; past it the one idle
    /// longest goes first.
    pub max_lingering: usize,
    /// A player that has fetched nothing for this long stops counting as a viewer.
    pub session_timeout_ms: u64,
    /// HLS sessions counted per stream; players beyond this still play, uncounted.
    pub max_sessions_per_stream: usize,
    /// Bytes of segments and parts one stream may hold; past it the oldest segments go
    /// even if the window is not full.
    pub max_bytes_per_stream: usize,
    /// Also serve a plain-HLS MPEG-TS rendition at `/{app}/{name}/ts.m3u8` for players
    /// without fMP4 support.
    pub legacy_ts: bool,
}

impl Default for HlsSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            low_latency: true,
            part_target_ms: 333,
            segment_target_ms: 2000,
            window_segments: 8,
            linger_ms: 30_000,
            max_lingering: 100,
            session_timeout_ms: 20_000,
            max_sessions_per_stream: 100_000,
            max_bytes_per_stream: 64 * 1024 * 1024,
            legacy_ts: false,
        }
    }
}

impl HlsSettings {
    pub fn part_target(&self) -> Duration {
        Duration::from_millis(self.part_target_ms)
    }

    pub fn segment_target(&self) -> Duration {
        Duration::from_millis(self.segment_target_ms)
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        let fail = |key, reason: &str| {
            Err(SettingsError {
                key,
                reason: reason.to_owned(),
            })
        };
        if !(50..=5_000).contains(&self.part_target_ms) {
            return fail("hls.part_target_ms", "must be between 50 and 5000");
        }
        if self.segment_target_ms < self.part_target_ms || self.segment_target_ms > 60_000 {
            return fail(
                "hls.segment_target_ms",
                "must be at least hls.part_target_ms and at most 60000",
            );
        }
        if self.window_segments < 3 {
            return fail("hls.window_segments", "must be at least 3");
        }
        if self.session_timeout_ms == 0 {
            return fail("hls.session_timeout_ms", "must be at least 1");
        }
        if self.max_bytes_per_stream < 1024 * 1024 {
            return fail("hls.max_bytes_per_stream", "must be at least 1048576");
        }
        Ok(())
    }
}
