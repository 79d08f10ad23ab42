//! Rooms by name: created on first use, dropped when idle, bounded in number.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::event::Seq;
use crate::room::{CloseReason, Joined};
use crate::{ClientMessage, ConnId, Error, Identity, Millis, Moderation, Room, RoomSettings};

/// What the registry needs to know about what it holds: whether it may be dropped.
///
/// Implemented for [`Room`]. A server that runs each room in its own task (or behind its
/// own lock) can keep a handle type in the registry instead and implement this on it.
pub trait Idle {
    /// Whether the room may be dropped at `now`.
    fn is_idle(&self, now: Millis) -> bool;
}

impl Idle for Room {
    fn is_idle(&self, now: Millis) -> bool {
        Room::is_idle(self, now)
    }
}

/// Rooms by name (the stream path), at most `max_rooms`, plus the global mute and ban
/// lists. Rooms are made on first use and dropped by [`sweep`](Registry::sweep) once idle.
#[derive(Debug)]
pub struct Registry<R = Room> {
    settings: Arc<RoomSettings>,
    rooms: BTreeMap<String, R>,
    global: Moderation,
}

impl<R: Idle> Registry<R> {
    /// An empty registry bounded by `settings.max_rooms`.
    pub fn new(settings: Arc<RoomSettings>) -> Registry<R> {
        Registry {
            global: Moderation::new(settings.max_moderation_entries),
            settings,
            rooms: BTreeMap::new(),
        }
    }

    /// The settings rooms are made with.
    pub fn settings(&self) -> &Arc<RoomSettings> {
        &self.settings
    }

    /// The room named `key`, made with `create` if there is none. Fails with
    /// `too_many_rooms` when `max_rooms` exist and this would be a new one.
    pub fn get_or_insert_with(
        &mut self,
        key: &str,
        create: impl FnOnce() -> R,
    ) -> Result<&mut R, Error> {
        if !self.rooms.contains_key(key) {
            let max = self.settings.max_rooms;
            if self.rooms.len() >= max {
                tracing::warn!(room = key, max_rooms = max, "room refused: too many rooms");
                return Err(Error::TooManyRooms { max });
            }
            tracing::debug!(room = key, "room created");
            self.rooms.insert(key.to_owned(), create());
        }
        self.rooms.get_mut(key).ok_or(Error::TooManyRooms {
            max: self.settings.max_rooms,
        })
    }

    /// The room named `key`, if it exists.
    pub fn get(&self, key: &str) -> Option<&R> {
        self.rooms.get(key)
    }

    /// The room named `key`, if it exists.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut R> {
        self.rooms.get_mut(key)
    }

    /// Removes the room named `key`.
    pub fn remove(&mut self, key: &str) -> Option<R> {
        self.rooms.remove(key)
    }

    /// Rooms that exist.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// No rooms.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Every room with its name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &R)> {
        self.rooms.iter().map(|(k, r)| (k.as_str(), r))
    }

    /// Every room with its name.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut R)> {
        self.rooms.iter_mut().map(|(k, r)| (k.as_str(), r))
    }

    /// Drops the rooms that are idle at `now` and returns them with their names. Call it
    /// periodically (every few seconds is plenty).
    pub fn sweep(&mut self, now: Millis) -> Vec<(String, R)> {
        let idle: Vec<String> = self
            .rooms
            .iter()
            .filter(|(_, r)| r.is_idle(now))
            .map(|(k, _)| k.clone())
            .collect();
        idle.into_iter()
            .filter_map(|key| {
                let room = self.rooms.remove(&key)?;
                tracing::debug!(room = %key, "room dropped (idle)");
                Some((key, room))
            })
            .collect()
    }

    /// The global mute and ban lists (apply in every room).
    pub fn global(&self) -> &Moderation {
        &self.global
    }

    /// The global mute and ban lists, to change them. Banning someone globally should
    /// also close their connections: [`Registry::ban_everywhere`] does both for rooms
    /// held by value.
    pub fn global_mut(&mut self) -> &mut Moderation {
        &mut self.global
    }
}

impl Registry<Room> {
    /// The room named `key`, created empty if there is none.
    pub fn room(&mut self, key: &str, now: Millis) -> Result<&mut Room, Error> {
        let settings = Arc::clone(&self.settings);
        self.get_or_insert_with(key, || Room::new(key, settings, now))
    }

    /// Joins `conn` to room `key`: checks the global ban list, creates the room if
    /// needed, then [`Room::join`]. A banned user does not create a room.
    pub fn join(
        &mut self,
        key: &str,
        conn: ConnId,
        identity: Identity,
        since: Option<Seq>,
        now: Millis,
    ) -> Result<Joined, Error> {
        self.global.check_join(&identity, now)?;
        self.room(key, now)?.join(conn, identity, since, now)
    }

    /// Handles a text frame from `conn` in room `key`: parses it, checks the global mute
    /// list, then [`Room::handle_message`]. Fails with `not_member` if the room does not
    /// exist.
    pub fn handle_text(
        &mut self,
        key: &str,
        conn: ConnId,
        text: &str,
        now: Millis,
    ) -> Result<(), Error> {
        let room = self.rooms.get_mut(key).ok_or(Error::NotMember { conn })?;
        let message = ClientMessage::parse(text, room.settings())?;
        if let Some(user_id) = room.identity(conn).and_then(Identity::user_id) {
            self.global.check_send(user_id, now)?;
        }
        room.handle_message(conn, message, now)
    }

    /// Bans `user_id` everywhere until `until` and closes their connections in every
    /// room (each room emits [`Output::Close`](crate::Output::Close)); returns how many.
    pub fn ban_everywhere(
        &mut self,
        user_id: &str,
        until: Option<Millis>,
        now: Millis,
    ) -> Result<usize, Error> {
        self.global.ban(user_id, until, now)?;
        tracing::info!(user_id, until = until.map(Millis::as_u64), "global ban");
        Ok(self
            .rooms
            .values_mut()
            .map(|room| room.kick_user(user_id, CloseReason::Banned, now))
            .sum())
    }

    /// The earliest [`Room::poll_timeout`] of any room.
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.rooms.values().filter_map(Room::poll_timeout).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorCode, Output, Role, User};

    const T0: Millis = Millis(1_700_000_000_000);

    fn at(ms: u64) -> Millis {
        T0.add_ms(ms)
    }

    fn registry(max_rooms: usize) -> Registry {
        Registry::new(Arc::new(RoomSettings {
            max_rooms,
            ..RoomSettings::default()
        }))
    }

    #[test]
    fn rooms_appear_on_first_use_and_are_bounded() {
        let mut reg = registry(2);
        reg.join("live/a", ConnId(1), Identity::Anonymous, None, at(0))
            .unwrap();
        reg.join("live/a", ConnId(2), Identity::Anonymous, None, at(0))
            .unwrap();
        reg.join("live/b", ConnId(3), Identity::Anonymous, None, at(0))
            .unwrap();
        assert_eq!(reg.len(), 2);
        let err = reg
            .join("live/c", ConnId(4), Identity::Anonymous, None, at(0))
            .unwrap_err();
        assert_eq!(err, Error::TooManyRooms { max: 2 });
        assert_eq!(err.code(), ErrorCode::TooManyRooms);
        // Existing rooms still take members.
        reg.join("live/b", ConnId(5), Identity::Anonymous, None, at(0))
            .unwrap();
        assert_eq!(reg.get("live/a").map(Room::member_count), Some(2));
    }

    #[test]
    fn sweeps_go_in_name_order_whatever_the_order_of_creation() {
        let mut reg = registry(10);
        for (i, key) in ["live/c", "live/a", "live/d", "live/b"]
            .into_iter()
            .enumerate()
        {
            reg.join(key, ConnId(i as u64), Identity::Anonymous, None, at(0))
                .unwrap();
            reg.get_mut(key).unwrap().leave(ConnId(i as u64), at(0));
        }
        let idle = RoomSettings::default().room_idle_ms;
        let swept: Vec<String> = reg
            .sweep(at(idle + 1))
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(swept, ["live/a", "live/b", "live/c", "live/d"]);
    }

    #[test]
    fn empty_rooms_are_dropped_after_the_idle_time() {
        let mut reg = registry(10);
        reg.join("live/a", ConnId(1), Identity::Anonymous, None, at(0))
            .unwrap();
        reg.join("live/b", ConnId(2), Identity::Anonymous, None, at(0))
            .unwrap();
        reg.room("live/c", at(0))
            .unwrap()
            .post_system("hi", at(0))
            .unwrap();
        reg.get_mut("live/a").unwrap().leave(ConnId(1), at(1000));
        assert!(reg
            .sweep(at(60_000))
            .iter()
            .map(|(k, _)| k.as_str())
            .eq(["live/c"]));
        assert!(reg.sweep(at(60_999)).is_empty());
        let dropped = reg.sweep(at(61_000));
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].0, "live/a");
        assert_eq!(reg.len(), 1);
        // A dropped room starts over: seq from 1 again, so an old seq gets a reset.
        let joined = reg
            .join(
                "live/c",
                ConnId(3),
                Identity::Anonymous,
                Some(Seq(1)),
                at(70_000),
            )
            .unwrap();
        assert_eq!(joined.backlog[0].kind(), crate::EventKind::Reset);
    }

    #[test]
    fn global_ban_and_mute() {
        let mut reg = registry(10);
        let troll = || Identity::from(User::new("troll", "T", Role::Viewer));
        reg.join("live/a", ConnId(1), troll(), None, at(0)).unwrap();
        reg.join("live/b", ConnId(2), troll(), None, at(0)).unwrap();
        reg.global_mut().mute("troll", None, at(0)).unwrap();
        assert_eq!(
            reg.handle_text("live/a", ConnId(1), r#"{"type":"chat","text":"x"}"#, at(1))
                .unwrap_err()
                .code(),
            ErrorCode::Muted
        );
        assert_eq!(reg.ban_everywhere("troll", None, at(2)).unwrap(), 2);
        for key in ["live/a", "live/b"] {
            let room = reg.get_mut(key).unwrap();
            let closes = std::iter::from_fn(|| room.poll_output())
                .filter(|o| matches!(o, Output::Close { .. }))
                .count();
            assert_eq!(closes, 1);
        }
        assert_eq!(
            reg.join("live/new", ConnId(3), troll(), None, at(3))
                .unwrap_err()
                .code(),
            ErrorCode::Banned
        );
        assert!(
            reg.get("live/new").is_none(),
            "a banned user creates no room"
        );
    }

    #[test]
    fn generic_over_a_room_handle() {
        struct Handle {
            idle_at: Millis,
        }
        impl Idle for Handle {
            fn is_idle(&self, now: Millis) -> bool {
                now >= self.idle_at
            }
        }
        let mut reg: Registry<Handle> = Registry::new(Arc::new(RoomSettings::default()));
        reg.get_or_insert_with("live/a", || Handle { idle_at: at(5) })
            .unwrap();
        reg.get_or_insert_with("live/b", || Handle { idle_at: at(50) })
            .unwrap();
        assert_eq!(reg.sweep(at(10)).len(), 1);
        assert!(reg.get("live/b").is_some());
    }

    #[test]
    fn poll_timeout_is_the_earliest_room() {
        let mut reg = registry(10);
        reg.join(
            "live/a",
            ConnId(1),
            User::new("u", "u", Role::Viewer).into(),
            None,
            at(0),
        )
        .unwrap();
        reg.handle_text("live/a", ConnId(1), r#"{"type":"like"}"#, at(0))
            .unwrap();
        reg.handle_text("live/a", ConnId(1), r#"{"type":"like"}"#, at(10))
            .unwrap();
        assert_eq!(reg.poll_timeout(), Some(at(250)));
    }
}
