//! Room moderation that outlives the process: per-room mutes and bans (user id, until
//! a Unix millisecond or forever), per-room slow mode and the custom events a room
//! aggregates on top of its app's. The rooms load all of it
//! once at start and write through on every change; nothing reads it per message.

use onair_rooms::AggregatedEvent;
use onair_rooms_rt::{
    ModerationKind, ModerationRecord, ModerationStore, SavedModerationRows, StoreFailure,
    StoreFuture,
};
use rusqlite::{params, Connection};

use super::{Store, StoreError};

impl Store {
    /// Deletes expired entries, then loads what is left, newest first, at most
    /// `store.max_moderation_entries` rows (entries and slow modes together).
    pub async fn load_moderation(&self, now_ms: u64) -> Result<SavedModerationRows, StoreError> {
        self.run(move |conn, settings| {
            delete_expired(conn, now_ms)?;
            load(conn, settings.max_moderation_entries)
        })
        .await
    }

    /// Adds or replaces `record`, and forgets entries expired by `now_ms`.
    pub async fn save_moderation(
        &self,
        record: ModerationRecord,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.run(move |conn, _| {
            delete_expired(conn, now_ms)?;
            conn.execute(
                "INSERT INTO room_moderation (room, kind, user_id, until_ms, set_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (room, kind, user_id)
                 DO UPDATE SET until_ms = excluded.until_ms, set_at = excluded.set_at",
                params![
                    record.room,
                    record.kind.as_str(),
                    record.user_id,
                    record.until_ms.map(clamp),
                    now_ms
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Lifts a mute or ban; false if none was saved.
    pub async fn delete_moderation(
        &self,
        room: &str,
        kind: ModerationKind,
        user_id: &str,
    ) -> Result<bool, StoreError> {
        let (room, user_id) = (room.to_owned(), user_id.to_owned());
        self.run(move |conn, _| {
            let deleted = conn.execute(
                "DELETE FROM room_moderation WHERE room = ?1 AND kind = ?2 AND user_id = ?3",
                params![room, kind.as_str(), user_id],
            )?;
            Ok(deleted == 1)
        })
        .await
    }

    /// Saves `room`'s slow mode; `None` forgets it (the room falls back to the default).
    pub async fn save_slow_mode(
        &self,
        room: &str,
        period_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let room = room.to_owned();
        self.run(move |conn, _| {
            match period_ms {
                Some(period_ms) => conn.execute(
                    "INSERT INTO room_settings (room, slow_mode_ms, set_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (room)
                     DO UPDATE SET slow_mode_ms = excluded.slow_mode_ms, set_at = excluded.set_at",
                    params![room, clamp(period_ms), now_ms],
                )?,
                None => conn.execute("DELETE FROM room_settings WHERE room = ?1", [room])?,
            };
            Ok(())
        })
        .await
    }

    /// Saves the aggregated events declared for `room` alone; empty forgets them.
    pub async fn save_aggregated_events(
        &self,
        room: &str,
        events: &[AggregatedEvent],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let room = room.to_owned();
        let events = match events {
            [] => None,
            events => Some(serde_json::to_string(events)?),
        };
        self.run(move |conn, _| {
            match events {
                Some(events) => conn.execute(
                    "INSERT INTO room_aggregated_events (room, events, set_at)
                     VALUES (?1, ?2, ?3)
                     ON CONFLICT (room)
                     DO UPDATE SET events = excluded.events, set_at = excluded.set_at",
                    params![room, events, now_ms],
                )?,
                None => {
                    conn.execute("DELETE FROM room_aggregated_events WHERE room = ?1", [room])?
                }
            };
            Ok(())
        })
        .await
    }
}

/// SQLite integers are signed: a time or period past `i64::MAX` (hundreds of millions
/// of years) is stored as that.
/// The rooms save their moderation here.
impl ModerationStore for Store {
    fn save_moderation(&self, record: ModerationRecord, now_ms: u64) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            Store::save_moderation(self, record, now_ms)
                .await
                .map_err(failure)
        })
    }

    fn delete_moderation<'a>(
        &'a self,
        room: &'a str,
        kind: ModerationKind,
        user_id: &'a str,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            Store::delete_moderation(self, room, kind, user_id)
                .await
                .map_err(failure)
        })
    }

    fn save_slow_mode<'a>(
        &'a self,
        room: &'a str,
        period_ms: Option<u64>,
        now_ms: u64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            Store::save_slow_mode(self, room, period_ms, now_ms)
                .await
                .map_err(failure)
        })
    }

    fn save_aggregated_events<'a>(
        &'a self,
        room: &'a str,
        events: &'a [AggregatedEvent],
        now_ms: u64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            Store::save_aggregated_events(self, room, events, now_ms)
                .await
                .map_err(failure)
        })
    }
}

fn failure(error: StoreError) -> StoreFailure {
    StoreFailure(Box::new(error))
}

fn clamp(value: u64) -> u64 {
    value.min(i64::MAX as u64)
}

fn delete_expired(conn: &Connection, now_ms: u64) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "DELETE FROM room_moderation WHERE until_ms IS NOT NULL AND until_ms <= ?1",
        [now_ms],
    )?)
}

fn load(conn: &Connection, limit: usize) -> Result<SavedModerationRows, StoreError> {
    let total: usize = conn.query_row(
        "SELECT (SELECT COUNT(*) FROM room_moderation) + (SELECT COUNT(*) FROM room_settings)
              + (SELECT COUNT(*) FROM room_aggregated_events)",
        [],
        |r| r.get(0),
    )?;
    let mut saved = SavedModerationRows {
        left_out: total.saturating_sub(limit),
        ..SavedModerationRows::default()
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut statement = conn.prepare(
        "SELECT room, kind, user_id, until_ms FROM room_moderation
         ORDER BY set_at DESC LIMIT ?1",
    )?;
    let rows = statement.query_map([limit], |row| {
        let kind: String = row.get(1)?;
        let Some(kind) = ModerationKind::parse(&kind) else {
            return Ok(None);
        };
        Ok(Some(ModerationRecord {
            room: row.get(0)?,
            kind,
            user_id: row.get(2)?,
            until_ms: row.get(3)?,
        }))
    })?;
    for row in rows {
        // The table's CHECK keeps out other kinds; skip rather than fail if one slips in.
        if let Some(record) = row? {
            saved.entries.push(record);
        }
    }
    let remaining = |saved: &SavedModerationRows| {
        let loaded = saved.entries.len() + saved.slow_modes.len();
        limit.saturating_sub(i64::try_from(loaded).unwrap_or(i64::MAX))
    };
    let mut statement =
        conn.prepare("SELECT room, slow_mode_ms FROM room_settings ORDER BY set_at DESC LIMIT ?1")?;
    let rows = statement.query_map([remaining(&saved)], |row| Ok((row.get(0)?, row.get(1)?)))?;
    saved.slow_modes = rows.collect::<Result<_, _>>()?;
    let mut statement = conn
        .prepare("SELECT room, events FROM room_aggregated_events ORDER BY set_at DESC LIMIT ?1")?;
    let rows = statement.query_map([remaining(&saved)], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
    })?;
    for row in rows {
        let (room, events) = row?;
        match serde_json::from_str(&events) {
            Ok(events) => saved.aggregated_events.push((room, events)),
            // Written by this code; one unreadable row costs only itself.
            Err(error) => tracing::warn!(room, %error, "saved aggregated events unreadable"),
        }
    }
    Ok(saved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::StoreSettings;

    fn store(max_moderation_entries: usize) -> Store {
        Store::open_in_memory(StoreSettings {
            max_moderation_entries,
            ..StoreSettings::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn round_trip_with_expiry() {
        let store = store(100);
        let forever = ModerationRecord::new("live/a", ModerationKind::Mute, "alice", None);
        let short = ModerationRecord::new("live/a", ModerationKind::Ban, "bob", Some(2_000));
        let long = ModerationRecord::new("live/b", ModerationKind::Ban, "carol", Some(9_000));
        for r in [&forever, &short, &long] {
            store.save_moderation(r.clone(), 1_000).await.unwrap();
        }
        store
            .save_slow_mode("live/a", Some(10_000), 1_000)
            .await
            .unwrap();

        let at_1500 = store.load_moderation(1_500).await.unwrap();
        assert_eq!(at_1500.entries.len(), 3);
        assert_eq!(at_1500.slow_modes, vec![("live/a".to_owned(), 10_000)]);
        assert_eq!(at_1500.left_out, 0);

        // Bob's ban ends at 2000: gone from the load and from the table.
        let at_2000 = store.load_moderation(2_000).await.unwrap();
        let mut users: Vec<_> = at_2000.entries.iter().map(|r| r.user_id.as_str()).collect();
        users.sort_unstable();
        assert_eq!(users, ["alice", "carol"]);
        assert!(!store
            .delete_moderation("live/a", ModerationKind::Ban, "bob")
            .await
            .unwrap());

        // Replacing keeps one row with the new expiry.
        let renewed = ModerationRecord::new("live/a", ModerationKind::Mute, "alice", Some(50_000));
        store.save_moderation(renewed.clone(), 3_000).await.unwrap();
        let loaded = store.load_moderation(3_000).await.unwrap();
        assert_eq!(loaded.entries.len(), 2);
        assert!(loaded.entries.contains(&renewed));

        assert!(store
            .delete_moderation("live/a", ModerationKind::Mute, "alice")
            .await
            .unwrap());
        // A mute and a ban of the same user are separate.
        assert!(!store
            .delete_moderation("live/b", ModerationKind::Mute, "carol")
            .await
            .unwrap());
        store.save_slow_mode("live/a", None, 3_000).await.unwrap();
        let last = store.load_moderation(3_000).await.unwrap();
        assert_eq!(last.entries, vec![long]);
        assert!(last.slow_modes.is_empty());
    }

    #[tokio::test]
    async fn times_beyond_sqlite_integers_are_kept_as_the_largest() {
        let store = store(10);
        let far = ModerationRecord::new("live/a", ModerationKind::Ban, "eve", Some(u64::MAX));
        store.save_moderation(far, 1).await.unwrap();
        store
            .save_slow_mode("live/a", Some(u64::MAX), 1)
            .await
            .unwrap();
        let loaded = store.load_moderation(2).await.unwrap();
        assert_eq!(loaded.entries[0].until_ms, Some(i64::MAX as u64));
        assert_eq!(
            loaded.slow_modes,
            vec![("live/a".to_owned(), i64::MAX as u64)]
        );
    }

    #[tokio::test]
    async fn load_is_bounded_and_keeps_the_newest() {
        let store = store(2);
        for (i, user) in ["a", "b", "c"].into_iter().enumerate() {
            let r = ModerationRecord::new("live/x", ModerationKind::Mute, user, None);
            store.save_moderation(r, 1_000 + i as u64).await.unwrap();
        }
        store
            .save_slow_mode("live/x", Some(5_000), 500)
            .await
            .unwrap();
        let loaded = store.load_moderation(2_000).await.unwrap();
        let users: Vec<_> = loaded.entries.iter().map(|r| r.user_id.as_str()).collect();
        assert_eq!(users, ["c", "b"]);
        assert!(loaded.slow_modes.is_empty());
        assert_eq!(loaded.left_out, 2);
    }

    #[tokio::test]
    async fn a_rooms_aggregated_events_round_trip_and_count_toward_the_bound() {
        let store = store(2);
        let wave = AggregatedEvent {
            name: "gesture.wave".to_owned(),
            values: vec!["left".to_owned(), "right".to_owned()],
            apps: vec![],
        };
        store
            .save_aggregated_events("live/a", std::slice::from_ref(&wave), 1_000)
            .await
            .unwrap();
        store
            .save_slow_mode("live/a", Some(5_000), 900)
            .await
            .unwrap();
        let loaded = store.load_moderation(2_000).await.unwrap();
        assert_eq!(
            loaded.aggregated_events,
            vec![("live/a".to_owned(), vec![wave.clone()])]
        );
        assert_eq!(loaded.slow_modes.len(), 1);

        // A third entry is left out of the load: slow modes are loaded first.
        store
            .save_aggregated_events("live/b", std::slice::from_ref(&wave), 1_100)
            .await
            .unwrap();
        let loaded = store.load_moderation(2_000).await.unwrap();
        assert_eq!(loaded.aggregated_events.len(), 1);
        assert_eq!(loaded.left_out, 1);

        store
            .save_aggregated_events("live/a", &[], 1_200)
            .await
            .unwrap();
        store
            .save_aggregated_events("live/b", &[], 1_200)
            .await
            .unwrap();
        let loaded = store.load_moderation(2_000).await.unwrap();
        assert!(loaded.aggregated_events.is_empty());
        assert_eq!(loaded.left_out, 0);
    }
}
