//! The moderation saved in the store, mirrored in memory: a room is created under the
//! registry lock, where reading the disk is not allowed, so its saved mutes, bans,
//! slow mode and aggregated events come from here. Loaded once at start; every REST change updates the
//! store first and this mirror second.

use std::collections::HashMap;

use onair_rooms::{AggregatedEvent, Error, Millis, Room};

use crate::storage::{ModerationKind, SavedModerationRows};

/// Saved moderation by room, bounded in all (`store.max_moderation_entries`) and per
/// room list (`rooms.max_moderation_entries`, what a room itself holds).
#[derive(Debug)]
pub(super) struct SavedModeration {
    rooms: HashMap<String, SavedRoom>,
    /// Mutes, bans, slow modes and aggregated-event lists over all rooms.
    entries: usize,
    max_entries: usize,
    max_per_list: usize,
}

#[derive(Debug, Default)]
struct SavedRoom {
    mutes: HashMap<String, Option<Millis>>,
    bans: HashMap<String, Option<Millis>>,
    slow_mode_ms: Option<u64>,
    /// Empty: none declared for the room alone.
    aggregated_events: Vec<AggregatedEvent>,
}

impl SavedRoom {
    fn list(&mut self, kind: ModerationKind) -> &mut HashMap<String, Option<Millis>> {
        match kind {
            ModerationKind::Mute => &mut self.mutes,
            ModerationKind::Ban => &mut self.bans,
        }
    }

    fn is_empty(&self) -> bool {
        self.mutes.is_empty()
            && self.bans.is_empty()
            && self.slow_mode_ms.is_none()
            && self.aggregated_events.is_empty()
    }
}

fn active(until: Option<Millis>, now: Millis) -> bool {
    until.is_none_or(|t| now < t)
}

impl SavedModeration {
    pub fn new(max_entries: usize, max_per_list: usize) -> Self {
        Self {
            rooms: HashMap::new(),
            entries: 0,
            max_entries,
            max_per_list,
        }
    }

    /// The mirror of what the store loaded; entries beyond either bound are left out
    /// (the store gives the newest first).
    pub fn from_rows(rows: SavedModerationRows, max_entries: usize, max_per_list: usize) -> Self {
        let mut saved = Self::new(max_entries, max_per_list);
        for record in rows.entries {
            let until = record.until_ms.map(Millis);
            if saved.entries >= max_entries {
                break;
            }
            let room = saved.rooms.entry(record.room).or_default();
            let list = room.list(record.kind);
            if list.len() < max_per_list && list.insert(record.user_id, until).is_none() {
                saved.entries += 1;
            }
        }
        for (room, period_ms) in rows.slow_modes {
            if saved.entries >= max_entries {
                break;
            }
            let room = saved.rooms.entry(room).or_default();
            if room.slow_mode_ms.replace(period_ms).is_none() {
                saved.entries += 1;
            }
        }
        for (room, events) in rows.aggregated_events {
            if saved.entries >= max_entries {
                break;
            }
            let room = saved.rooms.entry(room).or_default();
            if std::mem::replace(&mut room.aggregated_events, events).is_empty() {
                saved.entries += 1;
            }
        }
        saved
    }

    /// Entries held, over all rooms.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// `Ok` when `user_id` can be put on `room`'s `kind` list: already there, or both
    /// bounds have room (after forgetting what expired by `now`).
    pub fn admit(
        &mut self,
        room: &str,
        kind: ModerationKind,
        user_id: &str,
        now: Millis,
    ) -> Result<(), Error> {
        let listed = |saved: &mut Self| {
            saved
                .rooms
                .get_mut(room)
                .map(|r| r.list(kind))
                .map_or((false, 0), |list| (list.contains_key(user_id), list.len()))
        };
        if listed(self).0 {
            return Ok(());
        }
        self.expire(now);
        let (_, len) = listed(self);
        if len >= self.max_per_list {
            return Err(Error::ListFull {
                list: kind.as_str(),
                max: self.max_per_list,
            });
        }
        self.admit_one()
    }

    /// Puts `user_id` on the list (after [`admit`](Self::admit) said yes).
    pub fn insert(
        &mut self,
        room: &str,
        kind: ModerationKind,
        user_id: &str,
        until: Option<Millis>,
    ) {
        let list = self.rooms.entry(room.to_owned()).or_default().list(kind);
        if list.insert(user_id.to_owned(), until).is_none() {
            self.entries += 1;
        }
    }

    /// Takes `user_id` off the list; false if it was not on it.
    pub fn remove(&mut self, room: &str, kind: ModerationKind, user_id: &str) -> bool {
        let Some(saved) = self.rooms.get_mut(room) else {
            return false;
        };
        let removed = saved.list(kind).remove(user_id).is_some();
        if removed {
            self.entries -= 1;
            if saved.is_empty() {
                self.rooms.remove(room);
            }
        }
        removed
    }

    /// `Ok` when `room` can have a saved slow mode.
    pub fn admit_slow_mode(&mut self, room: &str, now: Millis) -> Result<(), Error> {
        self.admit_setting(room, now, |r| r.slow_mode_ms.is_some())
    }

    /// Saves `room`'s slow mode; `None` forgets it.
    pub fn set_slow_mode(&mut self, room: &str, period_ms: Option<u64>) {
        self.set_setting(room, |r| {
            let was_set = std::mem::replace(&mut r.slow_mode_ms, period_ms).is_some();
            (was_set, period_ms.is_some())
        });
    }

    /// `Ok` when `room` can have saved aggregated events.
    pub fn admit_aggregated_events(&mut self, room: &str, now: Millis) -> Result<(), Error> {
        self.admit_setting(room, now, |r| !r.aggregated_events.is_empty())
    }

    /// Saves the aggregated events declared for `room` alone; empty forgets them.
    pub fn set_aggregated_events(&mut self, room: &str, events: Vec<AggregatedEvent>) {
        let is_set = !events.is_empty();
        self.set_setting(room, |r| {
            let was_set = !std::mem::replace(&mut r.aggregated_events, events).is_empty();
            (was_set, is_set)
        });
    }

    /// One room-wide setting is one entry: `Ok` when it is set already or the total
    /// has room.
    fn admit_setting(
        &mut self,
        room: &str,
        now: Millis,
        is_set: impl Fn(&SavedRoom) -> bool,
    ) -> Result<(), Error> {
        if self.rooms.get(room).is_some_and(is_set) {
            return Ok(());
        }
        self.expire(now);
        self.admit_one()
    }

    /// Changes one room-wide setting with `set`, which says whether it was set before
    /// and is now, and keeps the entries counted.
    fn set_setting(&mut self, room: &str, set: impl FnOnce(&mut SavedRoom) -> (bool, bool)) {
        let saved = self.rooms.entry(room.to_owned()).or_default();
        match set(saved) {
            (false, true) => self.entries += 1,
            (true, false) => self.entries -= 1,
            _ => {}
        }
        if saved.is_empty() {
            self.rooms.remove(room);
        }
    }

    /// Whether anything is saved for `room`.
    pub fn has(&self, room: &str) -> bool {
        self.rooms.contains_key(room)
    }

    /// Gives a new room its saved lists and slow mode.
    pub fn apply(&self, room: &mut Room, now: Millis) {
        let Some(saved) = self.rooms.get(room.key()) else {
            return;
        };
        let moderation = room.moderation_mut();
        for (user_id, &until) in saved.mutes.iter().filter(|(_, &u)| active(u, now)) {
            // Cannot be full: the per-list bound here is the room's own.
            let _ = moderation.mute(user_id, until, now);
        }
        for (user_id, &until) in saved.bans.iter().filter(|(_, &u)| active(u, now)) {
            let _ = moderation.ban(user_id, until, now);
        }
        if let Some(period_ms) = saved.slow_mode_ms {
            room.set_slow_mode(period_ms);
        }
        if !saved.aggregated_events.is_empty() {
            // Checked when declared; a config changed since may refuse it, and then
            // the room follows its app's.
            if let Err(error) = room.declare_aggregated_events(saved.aggregated_events.clone()) {
                tracing::warn!(room = room.key(), %error, "saved aggregated events not applied");
            }
        }
    }

    fn admit_one(&self) -> Result<(), Error> {
        if self.entries >= self.max_entries {
            return Err(Error::ListFull {
                list: "saved moderation",
                max: self.max_entries,
            });
        }
        Ok(())
    }

    fn expire(&mut self, now: Millis) {
        let mut dropped = 0;
        self.rooms.retain(|_, room| {
            for list in [&mut room.mutes, &mut room.bans] {
                let before = list.len();
                list.retain(|_, &mut u| active(u, now));
                dropped += before - list.len();
            }
            !room.is_empty()
        });
        self.entries -= dropped;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use onair_rooms::RoomSettings;

    use super::*;
    use crate::storage::ModerationRecord;

    fn room(key: &str) -> Room {
        Room::new(key, Arc::new(RoomSettings::default()), Millis(0))
    }

    #[test]
    fn a_new_room_gets_what_is_saved_and_still_in_force() {
        let rows = SavedModerationRows {
            entries: vec![
                ModerationRecord::new("live/a", ModerationKind::Mute, "alice", None),
                ModerationRecord::new("live/a", ModerationKind::Ban, "bob", Some(5_000)),
                ModerationRecord::new("live/a", ModerationKind::Mute, "carol", Some(1_000)),
                ModerationRecord::new("live/b", ModerationKind::Ban, "dave", None),
            ],
            slow_modes: vec![("live/a".to_owned(), 10_000)],
            aggregated_events: vec![("live/a".to_owned(), vec![wave()])],
            left_out: 0,
        };
        let saved = SavedModeration::from_rows(rows, 100, 10);
        assert_eq!(saved.len(), 6);
        let mut a = room("live/a");
        saved.apply(&mut a, Millis(2_000));
        let now = Millis(2_000);
        assert_eq!(a.moderation().muted("alice", now), Some(None));
        assert_eq!(a.moderation().muted("carol", now), None);
        assert_eq!(a.moderation().banned("bob", now), Some(Some(Millis(5_000))));
        assert_eq!(a.moderation().banned("dave", now), None);
        assert_eq!(a.slow_mode_ms(), 10_000);
        assert_eq!(a.own_aggregated_events(), [wave()]);
        assert_eq!(a.aggregated_events().count(), 1);
        let mut c = room("live/c");
        saved.apply(&mut c, now);
        assert_eq!(c.moderation().mutes(now).count(), 0);
        assert_eq!(c.slow_mode_ms(), 0);
        assert_eq!(c.aggregated_events().count(), 0);
    }

    fn wave() -> AggregatedEvent {
        AggregatedEvent {
            name: "gesture.wave".to_owned(),
            values: vec!["left".to_owned()],
            apps: vec![],
        }
    }

    #[test]
    fn a_rooms_aggregated_events_are_one_entry_and_an_empty_list_frees_it() {
        let mut saved = SavedModeration::new(1, 10);
        let now = Millis(0);
        saved.admit_aggregated_events("r", now).unwrap();
        saved.set_aggregated_events("r", vec![wave()]);
        assert_eq!(saved.len(), 1);
        // Replacing what is saved needs no more room; another room's does.
        saved.admit_aggregated_events("r", now).unwrap();
        saved.admit_aggregated_events("s", now).unwrap_err();
        saved.set_aggregated_events("r", vec![]);
        assert_eq!(saved.len(), 0);
        assert!(!saved.has("r"));
    }

    #[test]
    fn bounded_in_all_and_per_list_with_expired_entries_making_room() {
        let mut saved = SavedModeration::new(3, 2);
        let now = Millis(0);
        saved.admit("r", ModerationKind::Mute, "a", now).unwrap();
        saved.insert("r", ModerationKind::Mute, "a", Some(Millis(100)));
        saved.insert("r", ModerationKind::Mute, "b", None);
        let full = saved
            .admit("r", ModerationKind::Mute, "c", now)
            .unwrap_err();
        assert_eq!(
            full,
            Error::ListFull {
                list: "mute",
                max: 2
            }
        );
        // Someone already listed can always be updated.
        saved.admit("r", ModerationKind::Mute, "b", now).unwrap();
        // Another list of the same room has its own bound, but the total is shared.
        saved.admit("r", ModerationKind::Ban, "c", now).unwrap();
        saved.insert("r", ModerationKind::Ban, "c", None);
        let full = saved.admit_slow_mode("s", now).unwrap_err();
        assert_eq!(
            full,
            Error::ListFull {
                list: "saved moderation",
                max: 3
            }
        );
        // Once a's mute has ended there is room again.
        saved.admit_slow_mode("s", Millis(100)).unwrap();
        assert_eq!(saved.len(), 2);
        saved.set_slow_mode("s", Some(1_000));
        assert_eq!(saved.len(), 3);
        saved.set_slow_mode("s", None);
        assert!(saved.remove("r", ModerationKind::Ban, "c"));
        assert!(!saved.remove("r", ModerationKind::Ban, "c"));
        assert_eq!(saved.len(), 1);
    }

    #[test]
    fn loading_more_than_the_bounds_keeps_the_first_rows() {
        let rows = SavedModerationRows {
            entries: ["a", "b", "c"]
                .into_iter()
                .map(|u| ModerationRecord::new("r", ModerationKind::Mute, u, None))
                .collect(),
            slow_modes: vec![("r".to_owned(), 1)],
            aggregated_events: vec![],
            left_out: 0,
        };
        let per_list = SavedModeration::from_rows(rows.clone(), 10, 2);
        assert_eq!(per_list.len(), 3);
        let total = SavedModeration::from_rows(rows, 2, 10);
        assert_eq!(total.len(), 2);
    }
}
