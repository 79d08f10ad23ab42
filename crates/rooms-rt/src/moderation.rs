//! Moderation through the API, saved so it survives restarts and idle rooms being
//! dropped: each change is written to the store (awaited), then to the in-memory
//! mirror new rooms are made from, then to the live room. One change at a time, so
//! the store, the mirror and the room agree on the order.

use onair_rooms::{check_room_declarations, AggregatedEvent, Millis};

use super::{now, RoomCell, RoomHub};
use crate::storage::{ModerationKind, ModerationRecord, StoreFailure};

/// Why a moderation change was not made.
#[derive(Debug, thiserror::Error)]
pub enum ModerationError {
    /// Refused by the rules (a full list).
    #[error(transparent)]
    Room(#[from] onair_rooms::Error),
    /// Could not be saved; nothing changed.
    #[error(transparent)]
    Store(#[from] StoreFailure),
}

impl RoomHub {
    /// Puts `user_id` on `cell`'s room's `kind` list until `until` (`None`: until
    /// lifted). A ban also closes the user's connections there; returns how many.
    pub async fn impose(
        &self,
        cell: &RoomCell,
        kind: ModerationKind,
        user_id: &str,
        until: Option<Millis>,
    ) -> Result<usize, ModerationError> {
        let _one_at_a_time = self.moderation_writes.lock().await;
        self.save(cell.key(), kind, user_id, until).await?;
        let now = now();
        let closed = cell.with_room(|room| match kind {
            ModerationKind::Mute => room.mute(user_id, until, now).map(|()| 0),
            ModerationKind::Ban => room.ban(user_id, until, now),
        })?;
        Ok(closed)
    }

    /// Takes `user_id` off `cell`'s room's `kind` list; false if it was not there.
    pub async fn lift(
        &self,
        cell: &RoomCell,
        kind: ModerationKind,
        user_id: &str,
    ) -> Result<bool, ModerationError> {
        let _one_at_a_time = self.moderation_writes.lock().await;
        let saved = self.forget(cell.key(), kind, user_id).await?;
        let lifted = cell.with_room(|room| match kind {
            ModerationKind::Mute => room.unmute(user_id),
            ModerationKind::Ban => room.unban(user_id),
        });
        Ok(lifted || saved)
    }

    /// Sets slow mode in `cell`'s room (0 turns it off). The room's default
    /// (`rooms.slow_mode_ms`) is not saved, so changing the default later applies.
    pub async fn set_slow_mode(
        &self,
        cell: &RoomCell,
        period_ms: u64,
    ) -> Result<(), ModerationError> {
        let _one_at_a_time = self.moderation_writes.lock().await;
        let room = cell.key();
        let period = (period_ms != self.settings.slow_mode_ms).then_some(period_ms);
        let now = now();
        if period.is_some() {
            self.saved().admit_slow_mode(room, now)?;
        }
        self.store
            .save_slow_mode(room, period, now.as_u64())
            .await?;
        self.saved().set_slow_mode(room, period);
        cell.with_room(|r| r.set_slow_mode(period_ms));
        Ok(())
    }

    /// Declares the custom events `cell`'s room aggregates on top of its app's (an
    /// empty list: only its app's). Checked by the room before anything is saved.
    pub async fn set_aggregated_events(
        &self,
        cell: &RoomCell,
        events: Vec<AggregatedEvent>,
    ) -> Result<(), ModerationError> {
        let _one_at_a_time = self.moderation_writes.lock().await;
        let room = cell.key();
        let app = room.split('/').next().unwrap_or_default();
        check_room_declarations(&self.settings.aggregated_events, app, &events)?;
        let now = now();
        if !events.is_empty() {
            self.saved().admit_aggregated_events(room, now)?;
        }
        self.store
            .save_aggregated_events(room, &events, now.as_u64())
            .await?;
        self.saved().set_aggregated_events(room, events.clone());
        cell.with_room(|r| r.declare_aggregated_events(events))?;
        Ok(())
    }

    async fn save(
        &self,
        room: &str,
        kind: ModerationKind,
        user_id: &str,
        until: Option<Millis>,
    ) -> Result<(), ModerationError> {
        let now = now();
        self.saved().admit(room, kind, user_id, now)?;
        let record = ModerationRecord {
            room: room.to_owned(),
            kind,
            user_id: user_id.to_owned(),
            until_ms: until.map(Millis::as_u64),
        };
        self.store.save_moderation(record, now.as_u64()).await?;
        self.saved().insert(room, kind, user_id, until);
        Ok(())
    }

    async fn forget(
        &self,
        room: &str,
        kind: ModerationKind,
        user_id: &str,
    ) -> Result<bool, ModerationError> {
        let stored = self.store.delete_moderation(room, kind, user_id).await?;
        let mirrored = self.saved().remove(room, kind, user_id);
        Ok(stored || mirrored)
    }
}
