//! What survives a restart: one SQLite file, `{data_dir}/onair.db` (embedded, no
//! server), holding stream keys, stream titles and last-live times, and the moderation
//! and settings changed through the API.
//!
//! Every call runs on tokio's blocking pool behind one connection mutex, so the async
//! runtime never waits on the disk. The schema is versioned by [`migrations`]; a
//! database written by a newer onair is refused rather than guessed at.
//!
//! Deliberately absent: caching (callers keep what they need in memory, as the rooms
//! do with moderation) and any plaintext secret (keys are stored as SHA-256).

mod health;
mod keys;
mod migrations;
mod moderation;
mod stream_info;

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use crate::settings::StoreSettings;

pub use keys::{KeyRecord, KEY_ID_PREFIX};
pub use onair_rooms_rt::{ModerationKind, ModerationRecord, SavedModerationRows};
pub use stream_info::{StreamInfo, StreamInfoPatch};

/// The database file's name inside the data dir.
pub const DB_FILE: &str = "onair.db";

/// How long a statement waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the database is at schema version {found}, newer than this onair knows ({known}); \
         run a newer onair or use another data dir"
    )]
    TooNew { found: u32, known: u32 },
    #[error("{scope} already has {max} stream keys (store.{setting})")]
    TooManyKeys {
        scope: String,
        max: usize,
        setting: &'static str,
    },
    #[error("titles are kept for {max} streams already (store.max_stream_infos)")]
    TooManyStreams { max: usize },
    #[error("the storage task ended without an answer")]
    TaskFailed,
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// The database, cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    settings: StoreSettings,
    /// The database file; `None` in memory.
    path: Option<PathBuf>,
    /// One readiness check at a time, so a stuck database holds one blocking thread
    /// however often it is probed.
    checking: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating it, mode 0600) `{data_dir}/onair.db` and brings its schema up
    /// to date.
    pub async fn open(data_dir: &Path, settings: StoreSettings) -> Result<Self, StoreError> {
        let path = data_dir.join(DB_FILE);
        tokio::task::spawn_blocking(move || {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                    path: dir.to_owned(),
                    source,
                })?;
            }
            create_private(&path)?;
            let conn = Connection::open(&path)?;
            // Returns the mode it ended up in; an in-memory or read-only db may refuse WAL.
            let _mode: String =
                conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
            Self::from_connection(conn, settings, Some(path))
        })
        .await
        .map_err(|_| StoreError::TaskFailed)?
    }

    /// A private database in memory, for tests.
    pub fn open_in_memory(settings: StoreSettings) -> Result<Self, StoreError> {
        Self::from_connection(Connection::open_in_memory()?, settings, None)
    }

    fn from_connection(
        mut conn: Connection,
        settings: StoreSettings,
        path: Option<PathBuf>,
    ) -> Result<Self, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        migrations::migrate(&mut conn)?;
        Ok(Self {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                settings,
                path,
                checking: tokio::sync::Mutex::new(()),
            }),
        })
    }

    pub fn settings(&self) -> &StoreSettings {
        &self.inner.settings
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &StoreSettings) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.lock();
            f(&mut conn, &inner.settings)
        })
        .await
        .map_err(|_| StoreError::TaskFailed)?
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Creates `path` with mode 0600 when missing, and narrows it to 0600 when it exists,
/// so SQLite (which gives its -wal and -shm files the database's mode) never makes a
/// readable copy.
fn create_private(path: &Path) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    Ok(())
}

/// Unix seconds now.
fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_is_private_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreSettings::default())
            .await
            .unwrap();
        drop(store);
        Store::open(dir.path(), StoreSettings::default())
            .await
            .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(DB_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[tokio::test]
    async fn a_database_from_a_newer_onair_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Connection::open(dir.path().join(DB_FILE))
            .unwrap()
            .pragma_update(None, "user_version", 1000)
            .unwrap();
        let error = Store::open(dir.path(), StoreSettings::default())
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::TooNew { found: 1000, .. }));
        assert!(error.to_string().contains("newer than this onair knows"));
    }
}
