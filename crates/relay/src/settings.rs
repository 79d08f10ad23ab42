//! The `[hub]` settings (docs/configuration.md): how much each stream keeps for its
//! viewers and how long a slow viewer is waited for.

use onair_media::SettingsError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubSettings {
    /// Frames each stream keeps for its viewers to read; a viewer further behind skips
    /// to the next keyframe. Shared by all viewers of a stream, not per viewer.
    pub viewer_queue_frames: usize,
    /// Skips to keyframe a viewer may need within a minute before it is disconnected.
    pub viewer_max_skips_per_minute: u32,
    /// A viewer whose socket accepts nothing for this long is disconnected.
    pub viewer_write_timeout_ms: u64,
    /// Frames of the current GOP kept for late viewers; a longer GOP is not cached.
    pub gop_cache_max_frames: usize,
    /// Bytes of the current GOP kept for late viewers.
    pub gop_cache_max_bytes: usize,
    /// Let a new publisher replace the current one instead of being refused.
    pub publish_takeover: bool,
    /// Streams that may be live at once.
    pub max_streams: usize,
}

impl Default for HubSettings {
    fn default() -> Self {
        Self {
            viewer_queue_frames: 1024,
            viewer_max_skips_per_minute: 6,
            viewer_write_timeout_ms: 15_000,
            gop_cache_max_frames: 4096,
            gop_cache_max_bytes: 32 << 20,
            publish_takeover: false,
            max_streams: 1_000,
        }
    }
}

impl HubSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.viewer_queue_frames < 16 {
            return Err(SettingsError::new(
                "hub.viewer_queue_frames",
                "must be at least 16",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_a_tiny_ring_is_not() {
        assert_eq!(HubSettings::default().validate(), Ok(()));
        let tiny = HubSettings {
            viewer_queue_frames: 15,
            ..HubSettings::default()
        };
        assert_eq!(
            tiny.validate().map_err(|e| e.key),
            Err("hub.viewer_queue_frames")
        );
    }
}
