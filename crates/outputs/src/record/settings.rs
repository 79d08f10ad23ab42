//! The `[record]` settings: which apps are recorded, in what container, where, and
//! when a file is cut. All of them need a restart.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use onair_media::SettingsError;

/// The `apps` entry that records every app.
pub const ALL_APPS: &str = "*";

/// Recording of live streams to disk (docs/recording.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordSettings {
    /// Apps whose streams are recorded; `"*"` records every app, empty records none.
    pub apps: Vec<String>,
    /// The container files are written in.
    pub format: RecordFormat,
    /// Where recordings go; unset: `{data_dir}/recordings`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// A file is cut at the first keyframe once it holds this much media; 0: never.
    pub max_duration_s: u64,
    /// A file is cut at the first keyframe once it is this large; 0: never.
    pub max_bytes: u64,
    /// Longest buffered media waits before it is handed to the operating system (it is
    /// also handed over at every keyframe): what a `kill -9` can lose.
    pub flush_interval_ms: u64,
    /// After a file could not be created or written, no new file is tried for this long
    /// (then at the next keyframe).
    pub retry_interval_ms: u64,
    /// Most recordings `GET /api/v1/recordings` lists (the newest).
    pub list_max_entries: usize,
}

impl Default for RecordSettings {
    fn default() -> Self {
        Self {
            apps: Vec::new(),
            format: RecordFormat::Flv,
            dir: None,
            max_duration_s: 3_600,
            max_bytes: 0,
            flush_interval_ms: 1_000,
            retry_interval_ms: 10_000,
            list_max_entries: 10_000,
        }
    }
}

/// A recording's container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordFormat {
    /// FLV: the stream's own tags, playable while it grows.
    #[default]
    Flv,
    /// Fragmented MP4 (init segment, then one `moof`+`mdat` per fragment).
    Fmp4,
}

impl RecordFormat {
    /// Every format, for parsing file names back.
    pub const ALL: [RecordFormat; 2] = [RecordFormat::Flv, RecordFormat::Fmp4];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordFormat::Flv => "flv",
            RecordFormat::Fmp4 => "fmp4",
        }
    }

    /// The file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            RecordFormat::Flv => "flv",
            RecordFormat::Fmp4 => "mp4",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            RecordFormat::Flv => "video/x-flv",
            RecordFormat::Fmp4 => "video/mp4",
        }
    }
}

impl RecordSettings {
    /// Whether streams of `app` are recorded.
    pub fn records(&self, app: &str) -> bool {
        self.apps.iter().any(|a| a == ALL_APPS || a == app)
    }

    /// The recordings directory.
    pub fn dir(&self, data_dir: &Path) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| data_dir.join("recordings"))
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        let fail = |key, reason: String| Err(SettingsError { key, reason });
        if let Some(app) = self
            .apps
            .iter()
            .find(|app| app.as_str() != ALL_APPS && onair_media::StreamPath::new(app, "x").is_err())
        {
            return fail(
                "record.apps",
                format!(
                    "{app:?} is not \"*\" or a valid app name ([A-Za-z0-9_-]{{1,64}}, not reserved)"
                ),
            );
        }
        if self.flush_interval_ms == 0 {
            return fail("record.flush_interval_ms", "must be at least 1".to_owned());
        }
        if self.retry_interval_ms == 0 {
            return fail("record.retry_interval_ms", "must be at least 1".to_owned());
        }
        if self.list_max_entries == 0 {
            return fail("record.list_max_entries", "must be at least 1".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_select_what_is_recorded() {
        let mut settings = RecordSettings::default();
        assert!(!settings.records("live"));
        settings.apps = vec!["live".into()];
        assert!(settings.records("live") && !settings.records("other"));
        settings.apps = vec![ALL_APPS.into()];
        assert!(settings.records("other"));
    }

    #[test]
    fn bad_settings_are_refused() {
        RecordSettings::default().validate().unwrap();
        for bad in [
            "apps = [\"api\"]",
            "apps = [\"a b\"]",
            "apps = [\"\"]",
            "flush_interval_ms = 0",
            "retry_interval_ms = 0",
            "list_max_entries = 0",
        ] {
            let settings: RecordSettings = toml::from_str(bad).unwrap();
            assert!(settings.validate().is_err(), "{bad}");
        }
        assert!(toml::from_str::<RecordSettings>("format = \"mkv\"").is_err());
    }
}
