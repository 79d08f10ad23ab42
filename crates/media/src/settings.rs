//! The error every subsystem's settings `validate` returns: which key is wrong and why,
//! so the binary can say `setting hub.viewer_queue_frames: must be at least 16` whatever
//! crate the setting belongs to.

/// A setting whose value cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("setting {key}: {reason}")]
pub struct SettingsError {
    /// The setting as written in the TOML file, `section.key`.
    pub key: &'static str,
    pub reason: String,
}

impl SettingsError {
    pub fn new(key: &'static str, reason: impl Into<String>) -> Self {
        Self {
            key,
            reason: reason.into(),
        }
    }
}
