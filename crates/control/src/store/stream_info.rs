//! What a stream is called and when it was last live, for the pages and the API: a
//! title and description the platform sets (`PATCH /api/v1/streams/{app}/{name}`, or
//! with a key), and the time the stream was last seen live, kept for offline cards.
//!
//! Bounded by `store.max_stream_infos`: a stream that only has a last-live time (any
//! open publish makes one) gives way, oldest first, to a newer one; streams with a
//! title or description are only ever removed by the API.

use onair_media::StreamPath;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{unix_seconds, Store, StoreError};
use crate::settings::StoreSettings;

/// A stream's saved description.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamInfo {
    pub title: Option<String>,
    pub description: Option<String>,
    /// Unix seconds the stream was last seen live: when it went offline, or when it
    /// went live while it still is.
    pub last_live_at: Option<u64>,
}

/// A change to title and description: `None` leaves a field as it is, `Some(None)`
/// clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamInfoPatch {
    pub title: Option<Option<String>>,
    pub description: Option<Option<String>>,
}

impl StreamInfoPatch {
    pub fn is_empty(&self) -> bool {
        self.title.is_none() && self.description.is_none()
    }
}

impl Store {
    /// The saved description of `stream`; default (all `None`) when nothing is saved.
    pub async fn stream_info(&self, stream: &StreamPath) -> Result<StreamInfo, StoreError> {
        let stream = stream.to_string();
        self.run(move |conn, _| load(conn, &stream)).await
    }

    /// Applies `patch` to `stream`'s title and description and returns the result.
    /// Fails with [`StoreError::TooManyStreams`] when the stream has nothing saved
    /// yet and `store.max_stream_infos` streams with a title are kept.
    pub async fn update_stream_info(
        &self,
        stream: &StreamPath,
        patch: StreamInfoPatch,
    ) -> Result<StreamInfo, StoreError> {
        let stream = stream.to_string();
        self.run(move |conn, settings| update(conn, settings, &stream, patch))
            .await
    }

    /// Records that `stream` is or was live now.
    pub async fn mark_live(&self, stream: &StreamPath) -> Result<(), StoreError> {
        let stream = stream.to_string();
        self.run(move |conn, settings| mark_live(conn, settings, &stream, unix_seconds()))
            .await
    }

    /// Whether anything is saved for `stream` (a key or a description): the platform
    /// knows it, even while it is offline.
    pub async fn knows_stream(&self, stream: &StreamPath) -> Result<bool, StoreError> {
        let stream = stream.to_string();
        self.run(move |conn, _| {
            let known = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM stream_keys WHERE stream = ?1)
                     OR EXISTS (SELECT 1 FROM stream_info WHERE stream = ?1
                                AND (title IS NOT NULL OR description IS NOT NULL))",
                [&stream],
                |row| row.get(0),
            )?;
            Ok(known)
        })
        .await
    }
}

fn load(conn: &Connection, stream: &str) -> Result<StreamInfo, StoreError> {
    let info = conn
        .query_row(
            "SELECT title, description, last_live_at FROM stream_info WHERE stream = ?1",
            [stream],
            |row| {
                Ok(StreamInfo {
                    title: row.get(0)?,
                    description: row.get(1)?,
                    last_live_at: row.get(2)?,
                })
            },
        )
        .optional()?;
    Ok(info.unwrap_or_default())
}

fn update(
    conn: &mut Connection,
    settings: &StoreSettings,
    stream: &str,
    patch: StreamInfoPatch,
) -> Result<StreamInfo, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let exists: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM stream_info WHERE stream = ?1)",
        [stream],
        |row| row.get(0),
    )?;
    if !exists {
        make_room(&tx, settings, true)?;
    }
    let mut info = load(&tx, stream)?;
    if let Some(title) = patch.title {
        info.title = title;
    }
    if let Some(description) = patch.description {
        info.description = description;
    }
    tx.execute(
        "INSERT INTO stream_info (stream, title, description, updated_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (stream) DO UPDATE
         SET title = ?2, description = ?3, updated_at = ?4",
        params![stream, info.title, info.description, unix_seconds()],
    )?;
    tx.commit()?;
    Ok(info)
}

fn mark_live(
    conn: &mut Connection,
    settings: &StoreSettings,
    stream: &str,
    now: u64,
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let updated = tx.execute(
        "UPDATE stream_info SET last_live_at = ?2 WHERE stream = ?1",
        params![stream, now],
    )?;
    if updated == 0 && make_room(&tx, settings, false)? {
        tx.execute(
            "INSERT INTO stream_info (stream, updated_at, last_live_at) VALUES (?1, ?2, ?2)",
            params![stream, now],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Makes room for one more stream under `store.max_stream_infos` by forgetting the
/// oldest stream that has only a last-live time. When every kept stream has a title
/// or description, a `described` insert fails and a last-live one is skipped (false).
fn make_room(
    conn: &Connection,
    settings: &StoreSettings,
    described: bool,
) -> Result<bool, StoreError> {
    let count: usize = conn.query_row("SELECT COUNT(*) FROM stream_info", [], |row| row.get(0))?;
    if count < settings.max_stream_infos {
        return Ok(true);
    }
    let forgotten = conn.execute(
        "DELETE FROM stream_info WHERE stream IN (
             SELECT stream FROM stream_info
             WHERE title IS NULL AND description IS NULL
             ORDER BY last_live_at LIMIT ?1)",
        [count + 1 - settings.max_stream_infos],
    )?;
    if count + 1 - forgotten <= settings.max_stream_infos {
        return Ok(true);
    }
    if described {
        return Err(StoreError::TooManyStreams {
            max: settings.max_stream_infos,
        });
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(max_stream_infos: usize) -> Store {
        Store::open_in_memory(StoreSettings {
            max_stream_infos,
            ..StoreSettings::default()
        })
        .unwrap()
    }

    fn path(text: &str) -> StreamPath {
        StreamPath::parse(text).unwrap()
    }

    fn title(text: &str) -> StreamInfoPatch {
        StreamInfoPatch {
            title: Some(Some(text.to_owned())),
            description: None,
        }
    }

    #[tokio::test]
    async fn patch_sets_and_clears_fields() {
        let store = store(10);
        let demo = path("live/demo");
        assert_eq!(
            store.stream_info(&demo).await.unwrap(),
            StreamInfo::default()
        );
        assert!(!store.knows_stream(&demo).await.unwrap());
        store
            .update_stream_info(&demo, title("Hello"))
            .await
            .unwrap();
        let patch = StreamInfoPatch {
            title: None,
            description: Some(Some("About".to_owned())),
        };
        let info = store.update_stream_info(&demo, patch).await.unwrap();
        assert_eq!(info.title.as_deref(), Some("Hello"));
        assert_eq!(info.description.as_deref(), Some("About"));
        assert!(store.knows_stream(&demo).await.unwrap());
        let clear = StreamInfoPatch {
            title: Some(None),
            description: None,
        };
        let info = store.update_stream_info(&demo, clear).await.unwrap();
        assert_eq!(info.title, None);
        assert_eq!(store.stream_info(&demo).await.unwrap(), info);
    }

    #[tokio::test]
    async fn live_times_are_kept_with_the_title() {
        let store = store(10);
        let demo = path("live/demo");
        store.mark_live(&demo).await.unwrap();
        let info = store.stream_info(&demo).await.unwrap();
        assert!(info.last_live_at.is_some());
        // A live time alone does not make the platform know the stream.
        assert!(!store.knows_stream(&demo).await.unwrap());
        let info = store.update_stream_info(&demo, title("T")).await.unwrap();
        assert!(info.last_live_at.is_some());
    }

    #[tokio::test]
    async fn bounded_live_times_give_way_titles_do_not() {
        let store = store(2);
        store
            .update_stream_info(&path("live/a"), title("A"))
            .await
            .unwrap();
        store.mark_live(&path("live/b")).await.unwrap();
        // Full: the live-time-only stream b gives way to c.
        store.mark_live(&path("live/c")).await.unwrap();
        assert_eq!(
            store.stream_info(&path("live/b")).await.unwrap(),
            StreamInfo::default()
        );
        assert!(store
            .stream_info(&path("live/c"))
            .await
            .unwrap()
            .last_live_at
            .is_some());
        // A title takes c's place too.
        store
            .update_stream_info(&path("live/d"), title("D"))
            .await
            .unwrap();
        assert_eq!(
            store.stream_info(&path("live/c")).await.unwrap(),
            StreamInfo::default()
        );
        // Now both kept streams have titles: a third title is refused, a live time skipped.
        let refused = store.update_stream_info(&path("live/e"), title("E")).await;
        assert!(matches!(
            refused,
            Err(StoreError::TooManyStreams { max: 2 })
        ));
        store.mark_live(&path("live/f")).await.unwrap();
        assert_eq!(
            store.stream_info(&path("live/f")).await.unwrap(),
            StreamInfo::default()
        );
        // Changing a kept stream is always possible.
        store
            .update_stream_info(&path("live/a"), title("A2"))
            .await
            .unwrap();
    }
}
