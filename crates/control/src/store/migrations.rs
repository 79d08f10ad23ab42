//! The schema, as an ordered list of steps. `PRAGMA user_version` holds how many have
//! been applied; each step and its version bump commit together, so a crash leaves
//! the database at one version or the next, never between.
//!
//! Append new steps at the end; never edit one that has shipped.

use rusqlite::Connection;

use super::StoreError;

/// Every step, oldest first. Version N means the first N have been applied.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: stream keys, moderation lists, per-room settings.
    "CREATE TABLE stream_keys (
        id           TEXT PRIMARY KEY,
        stream       TEXT NOT NULL,
        key_hash     BLOB NOT NULL UNIQUE,
        label        TEXT,
        created_at   INTEGER NOT NULL,
        last_used_at INTEGER
    );
    CREATE INDEX stream_keys_by_stream ON stream_keys (stream);

    CREATE TABLE room_moderation (
        room     TEXT NOT NULL,
        kind     TEXT NOT NULL CHECK (kind IN ('mute', 'ban')),
        user_id  TEXT NOT NULL,
        until_ms INTEGER,
        set_at   INTEGER NOT NULL,
        PRIMARY KEY (room, kind, user_id)
    );
    CREATE INDEX room_moderation_by_until ON room_moderation (until_ms);

    CREATE TABLE room_settings (
        room         TEXT PRIMARY KEY,
        slow_mode_ms INTEGER NOT NULL,
        set_at       INTEGER NOT NULL
    );",
    // 2: stream titles, descriptions and last-live times.
    "CREATE TABLE stream_info (
        stream       TEXT PRIMARY KEY,
        title        TEXT,
        description  TEXT,
        updated_at   INTEGER NOT NULL,
        last_live_at INTEGER
    );
    CREATE INDEX stream_info_by_last_live ON stream_info (last_live_at);",
    // 3: custom events a room aggregates on top of its app's (a JSON array).
    "CREATE TABLE room_aggregated_events (
        room   TEXT PRIMARY KEY,
        events TEXT NOT NULL,
        set_at INTEGER NOT NULL
    );",
];

/// Brings `conn` to the newest version, or refuses a database newer than this code.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    migrate_with(conn, MIGRATIONS)
}

fn migrate_with(conn: &mut Connection, steps: &[&str]) -> Result<(), StoreError> {
    let known = u32::try_from(steps.len()).unwrap_or(u32::MAX);
    let found = version(conn)?;
    if found > known {
        return Err(StoreError::TooNew { found, known });
    }
    for (index, step) in steps.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
        tracing::info!(version = index + 1, "database schema migrated");
    }
    Ok(())
}

fn version(conn: &Connection) -> Result<u32, StoreError> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(conn: &Connection) -> Vec<String> {
        let mut statement = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap();
        let rows = statement.query_map([], |row| row.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    #[test]
    fn from_empty_to_current() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(version(&conn).unwrap(), 0);
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn).unwrap() as usize, MIGRATIONS.len());
        assert_eq!(
            tables(&conn),
            [
                "room_aggregated_events",
                "room_moderation",
                "room_settings",
                "stream_info",
                "stream_keys"
            ]
        );
    }

    #[test]
    fn reopening_at_the_current_version_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let mut conn = Connection::open(&path).unwrap();
            migrate(&mut conn).unwrap();
            conn.execute("INSERT INTO room_settings VALUES ('live/a', 5000, 1)", [])
                .unwrap();
        }
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn).unwrap() as usize, MIGRATIONS.len());
        let kept: u64 = conn
            .query_row("SELECT slow_mode_ms FROM room_settings", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, 5000);
    }

    #[test]
    fn later_steps_apply_on_top_of_earlier_ones() {
        let mut conn = Connection::open_in_memory().unwrap();
        let first = ["CREATE TABLE a (x INTEGER)"];
        migrate_with(&mut conn, &first).unwrap();
        conn.execute("INSERT INTO a VALUES (7)", []).unwrap();
        let both = [
            first[0],
            "ALTER TABLE a ADD COLUMN y INTEGER NOT NULL DEFAULT 1",
        ];
        migrate_with(&mut conn, &both).unwrap();
        assert_eq!(version(&conn).unwrap(), 2);
        let row: (u32, u32) = conn
            .query_row("SELECT x, y FROM a", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!(row, (7, 1));
    }

    #[test]
    fn a_failing_step_leaves_the_previous_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        let steps = [
            "CREATE TABLE a (x INTEGER)",
            "CREATE TABLE b (y); BOGUS SQL",
        ];
        assert!(migrate_with(&mut conn, &steps).is_err());
        assert_eq!(version(&conn).unwrap(), 1);
        assert_eq!(tables(&conn), ["a"]);
    }

    #[test]
    fn a_newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        let error = migrate(&mut conn).unwrap_err();
        assert!(
            matches!(error, StoreError::TooNew { found: 99, known } if known as usize == MIGRATIONS.len()),
            "{error}"
        );
        assert!(tables(&conn).is_empty());
    }
}
