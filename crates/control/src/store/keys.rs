//! Stream keys: the secret a publisher shows (`rtmp://HOST/{app}/{name}?key=K`) to be
//! let in. A key is 32 random bytes as 64 lowercase hex characters (safe after `?key=`
//! and in OBS's stream key field); only its SHA-256 is stored, so a copy of the
//! database lets nobody publish. The plaintext is returned once, at creation.

use std::fmt::Write as _;

use onair_media::StreamPath;
use rand::rngs::OsRng;
use rand::RngCore;
use rusqlite::types::Type;
use rusqlite::{params, Connection, ErrorCode, Row, TransactionBehavior};
use sha2::{Digest, Sha256};

use super::{unix_seconds, Store, StoreError};
use crate::settings::StoreSettings;

/// Every key id starts with this, then 16 hex characters.
pub const KEY_ID_PREFIX: &str = "k_";

/// A presented key longer than this is refused without hashing it.
const MAX_PRESENTED_KEY_LEN: usize = 256;

/// Tries at drawing an id and key that are not taken (a clash is ~2^-64).
const CREATE_ATTEMPTS: usize = 3;

/// A stream key as stored: everything but the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub id: String,
    pub stream: StreamPath,
    pub label: Option<String>,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds of the last successful [`Store::verify_key`].
    pub last_used_at: Option<u64>,
}

impl Store {
    /// Makes a key for `stream`. Returns its record and the key itself, which is not
    /// stored and cannot be shown again. Fails with [`StoreError::TooManyKeys`] when
    /// `store.max_keys` or `store.max_keys_per_stream` is reached.
    pub async fn create_key(
        &self,
        stream: &StreamPath,
        label: Option<String>,
    ) -> Result<(KeyRecord, String), StoreError> {
        let stream = stream.clone();
        self.run(move |conn, settings| create(conn, settings, stream, label))
            .await
    }

    /// Keys of `stream`, or every key, oldest first.
    pub async fn list_keys(
        &self,
        stream: Option<&StreamPath>,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let stream = stream.map(ToString::to_string);
        self.run(move |conn, _| list(conn, stream.as_deref())).await
    }

    /// Deletes key `id`; false if there was none.
    pub async fn revoke_key(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.run(move |conn, _| {
            Ok(conn.execute("DELETE FROM stream_keys WHERE id = ?1", [id])? == 1)
        })
        .await
    }

    /// Whether `key` is a key of `stream` (a key of another stream is not). Records
    /// the time of a successful check as the key's `last_used_at`.
    pub async fn verify_key(&self, stream: &StreamPath, key: &str) -> Result<bool, StoreError> {
        if key.is_empty() || key.len() > MAX_PRESENTED_KEY_LEN {
            return Ok(false);
        }
        let hash = hash_key(key);
        let stream = stream.to_string();
        self.run(move |conn, _| {
            let updated = conn.execute(
                "UPDATE stream_keys SET last_used_at = ?1 WHERE key_hash = ?2 AND stream = ?3",
                params![unix_seconds(), hash.as_slice(), stream],
            )?;
            Ok(updated == 1)
        })
        .await
    }
}

fn create(
    conn: &mut Connection,
    settings: &StoreSettings,
    stream: StreamPath,
    label: Option<String>,
) -> Result<(KeyRecord, String), StoreError> {
    // Immediate: take the write lock before counting, so two creations cannot both
    // see room for one more.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let total: usize = tx.query_row("SELECT COUNT(*) FROM stream_keys", [], |r| r.get(0))?;
    if total >= settings.max_keys {
        return Err(StoreError::TooManyKeys {
            scope: "the server".to_owned(),
            max: settings.max_keys,
            setting: "max_keys",
        });
    }
    let stream_text = stream.to_string();
    let per_stream: usize = tx.query_row(
        "SELECT COUNT(*) FROM stream_keys WHERE stream = ?1",
        [&stream_text],
        |r| r.get(0),
    )?;
    if per_stream >= settings.max_keys_per_stream {
        return Err(StoreError::TooManyKeys {
            scope: stream_text,
            max: settings.max_keys_per_stream,
            setting: "max_keys_per_stream",
        });
    }
    let created_at = unix_seconds();
    let mut attempt = 0;
    let (id, key) = loop {
        attempt += 1;
        let id = format!("{KEY_ID_PREFIX}{}", hex(&random::<8>()));
        let key = hex(&random::<32>());
        let inserted = tx.execute(
            "INSERT INTO stream_keys (id, stream, key_hash, label, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                id,
                stream_text,
                hash_key(&key).as_slice(),
                label,
                created_at
            ],
        );
        match inserted {
            Ok(_) => break (id, key),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == ErrorCode::ConstraintViolation && attempt < CREATE_ATTEMPTS => {}
            Err(error) => return Err(error.into()),
        }
    };
    tx.commit()?;
    let record = KeyRecord {
        id,
        stream,
        label,
        created_at,
        last_used_at: None,
    };
    Ok((record, key))
}

fn list(conn: &Connection, stream: Option<&str>) -> Result<Vec<KeyRecord>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT id, stream, label, created_at, last_used_at FROM stream_keys
         WHERE ?1 IS NULL OR stream = ?1 ORDER BY created_at, id",
    )?;
    let rows = statement.query_map([stream], record)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn record(row: &Row<'_>) -> rusqlite::Result<KeyRecord> {
    let stream: String = row.get(1)?;
    let stream = StreamPath::parse(&stream)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(1, Type::Text, Box::new(e)))?;
    Ok(KeyRecord {
        id: row.get(0)?,
        stream,
        label: row.get(2)?,
        created_at: row.get(3)?,
        last_used_at: row.get(4)?,
    })
}

fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(max_keys: usize, max_keys_per_stream: usize) -> Store {
        Store::open_in_memory(StoreSettings {
            max_keys,
            max_keys_per_stream,
            ..StoreSettings::default()
        })
        .unwrap()
    }

    fn find(conn: &Connection, id: &str) -> Option<KeyRecord> {
        use rusqlite::OptionalExtension;
        conn.query_row(
            "SELECT id, stream, label, created_at, last_used_at FROM stream_keys WHERE id = ?1",
            [id],
            record,
        )
        .optional()
        .unwrap()
    }

    fn path(text: &str) -> StreamPath {
        StreamPath::parse(text).unwrap()
    }

    #[tokio::test]
    async fn create_verify_revoke() {
        let store = store(100, 10);
        let demo = path("live/demo");
        let (record, key) = store
            .create_key(&demo, Some("obs".to_owned()))
            .await
            .unwrap();
        assert!(record.id.starts_with(KEY_ID_PREFIX));
        assert_eq!(record.id.len(), KEY_ID_PREFIX.len() + 16);
        assert_eq!(record.stream, demo);
        assert_eq!(record.label.as_deref(), Some("obs"));
        assert_eq!(record.last_used_at, None);
        assert_eq!(key.len(), 64);
        assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));

        assert!(store.verify_key(&demo, &key).await.unwrap());
        assert!(!store.verify_key(&path("live/other"), &key).await.unwrap());
        assert!(!store.verify_key(&demo, &key.to_uppercase()).await.unwrap());
        assert!(!store.verify_key(&demo, "").await.unwrap());
        assert!(!store.verify_key(&demo, &"a".repeat(10_000)).await.unwrap());

        let listed = store.list_keys(Some(&demo)).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].last_used_at.is_some());

        assert!(store.revoke_key(&record.id).await.unwrap());
        assert!(!store.revoke_key(&record.id).await.unwrap());
        assert!(!store.verify_key(&demo, &key).await.unwrap());
    }

    #[tokio::test]
    async fn only_the_hash_is_stored() {
        let store = store(100, 10);
        let (record, key) = store.create_key(&path("live/demo"), None).await.unwrap();
        let stored: Vec<u8> = {
            let conn = store.inner.lock();
            conn.query_row(
                "SELECT key_hash FROM stream_keys WHERE id = ?1",
                [&record.id],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!(stored.len(), 32);
        assert_ne!(stored, key.as_bytes());
        assert_ne!(hex(&stored), key);
        assert_eq!(stored, hash_key(&key));
        let found = find(&store.inner.lock(), &record.id).unwrap();
        assert_eq!(found, record);
    }

    #[tokio::test]
    async fn keys_differ_and_listing_filters_by_stream() {
        let store = store(100, 10);
        let (a, key_a) = store.create_key(&path("live/a"), None).await.unwrap();
        let (b, key_b) = store.create_key(&path("live/b"), None).await.unwrap();
        assert_ne!(a.id, b.id);
        assert_ne!(key_a, key_b);
        assert_eq!(store.list_keys(None).await.unwrap().len(), 2);
        let only_b = store.list_keys(Some(&path("live/b"))).await.unwrap();
        assert_eq!(only_b, vec![b]);
    }

    #[tokio::test]
    async fn limits_per_stream_and_in_total() {
        let store = store(3, 2);
        let a = path("live/a");
        store.create_key(&a, None).await.unwrap();
        store.create_key(&a, None).await.unwrap();
        let error = store.create_key(&a, None).await.unwrap_err();
        assert!(
            matches!(
                error,
                StoreError::TooManyKeys {
                    max: 2,
                    setting: "max_keys_per_stream",
                    ..
                }
            ),
            "{error}"
        );
        store.create_key(&path("live/b"), None).await.unwrap();
        let error = store.create_key(&path("live/c"), None).await.unwrap_err();
        assert!(
            matches!(
                error,
                StoreError::TooManyKeys {
                    max: 3,
                    setting: "max_keys",
                    ..
                }
            ),
            "{error}"
        );
    }
}
