//! Recordings read back from the directory for the REST API: listed, found by id,
//! deleted. Only files whose names a recorder writes are seen; nothing else in the
//! directory is listed, served or deleted.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use onair_media::StreamPath;

use super::{RecordingName, Recordings};

/// One recording file as the directory shows it.
#[derive(Debug, Clone)]
pub struct RecordingInfo {
    pub name: RecordingName,
    pub bytes: u64,
    /// Unix seconds of the last write.
    pub modified_at: Option<u64>,
    pub in_progress: bool,
}

/// Why a recording was not deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error("the recording is still being written")]
    InProgress,
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl Recordings {
    /// The newest recordings first (of `stream` only, when given), at most
    /// `record.list_max_entries`; and whether more were left out.
    pub async fn list(&self, stream: Option<StreamPath>) -> io::Result<(Vec<RecordingInfo>, bool)> {
        let dir = self.dir.clone();
        let found = tokio::task::spawn_blocking(move || scan(&dir, stream.as_ref()))
            .await
            .map_err(io::Error::other)??;
        let mut recordings: Vec<RecordingInfo> = found
            .into_iter()
            .map(|(name, bytes, modified_at)| RecordingInfo {
                in_progress: self.is_writing(&name),
                name,
                bytes,
                modified_at,
            })
            .collect();
        recordings.sort_by(|a, b| {
            (b.name.started_at(), b.name.id()).cmp(&(a.name.started_at(), a.name.id()))
        });
        let truncated = recordings.len() > self.settings.list_max_entries;
        recordings.truncate(self.settings.list_max_entries);
        Ok((recordings, truncated))
    }

    /// The file of the recording with this id, if it exists.
    pub async fn find(&self, id: &str) -> Option<(RecordingName, PathBuf)> {
        let name = RecordingName::from_id(id)?;
        let path = self.dir.join(name.relative_path());
        let metadata = tokio::fs::metadata(&path).await.ok()?;
        metadata.is_file().then_some((name, path))
    }

    /// Deletes a finished recording; `Ok(false)` when there is none by that id.
    pub async fn delete(&self, id: &str) -> Result<bool, DeleteError> {
        let Some((name, path)) = self.find(id).await else {
            return Ok(false);
        };
        if self.is_writing(&name) {
            return Err(DeleteError::InProgress);
        }
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error.into()),
        }
    }
}

type Found = (RecordingName, u64, Option<u64>);

/// `{dir}/{app}/{name}/{file}`, every level filtered by the names recorders write. A
/// missing directory holds no recordings.
fn scan(dir: &Path, stream: Option<&StreamPath>) -> io::Result<Vec<Found>> {
    let mut found = Vec::new();
    let apps = match stream {
        Some(stream) => vec![stream.app().to_owned()],
        None => subdirectories(dir, |app| StreamPath::new(app, "x").is_ok())?,
    };
    for app in apps {
        let app_dir = dir.join(&app);
        let names = match stream {
            Some(stream) => vec![stream.name().to_owned()],
            None => subdirectories(&app_dir, |name| StreamPath::new("x", name).is_ok())?,
        };
        for name in names {
            let stream_dir = app_dir.join(&name);
            for entry in entries(&stream_dir)? {
                let Ok(file) = entry.file_name().into_string() else {
                    continue;
                };
                let Some(recording) = RecordingName::from_file(&app, &name, &file) else {
                    continue;
                };
                let Ok(metadata) = entry.metadata() else {
                    continue;
                };
                if metadata.is_file() {
                    let modified = metadata.modified().ok().map(unix_secs);
                    found.push((recording, metadata.len(), modified));
                }
            }
        }
    }
    Ok(found)
}

fn entries(dir: &Path) -> io::Result<Vec<std::fs::DirEntry>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.collect(),
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(Vec::new())
        }
        Err(error) => Err(error),
    }
}

/// Subdirectories whose names pass `valid`.
fn subdirectories(dir: &Path, valid: impl Fn(&str) -> bool) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in entries(dir)? {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if valid(&name) && entry.file_type().is_ok_and(|t| t.is_dir()) {
            names.push(name);
        }
    }
    Ok(names)
}

fn unix_secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
