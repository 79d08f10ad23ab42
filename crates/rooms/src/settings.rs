//! Every knob of the room model, with its default.
//!
//! The server embeds [`RoomSettings`] as its `[rooms]` section, so each field is a setting
//! key (`rooms.chat_max_chars`, `ONAIR_ROOMS__CHAT_MAX_CHARS`). Keys are flat on purpose:
//! a rate is two keys, `*_rate_count` per `*_rate_window_ms`.

use serde::{Deserialize, Serialize};

use crate::aggregates::{check_declarations, AggregatedEvent};
use crate::Error;

/// A token-bucket rate: at most `count` in any `window_ms`, refilled continuously
/// (so `count` is also the burst).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Tokens in a full bucket, and tokens added per window.
    pub count: u32,
    /// Window in milliseconds. 0 means unlimited.
    pub window_ms: u64,
}

impl RateLimit {
    /// `count` per `window_ms`.
    pub const fn new(count: u32, window_ms: u64) -> RateLimit {
        RateLimit { count, window_ms }
    }
}

/// The values `backend` may take: where rooms publish and keep their events.
pub const ROOM_BACKENDS: &[&str] = &["memory"];

/// Settings of the room model. Defaults are what a fresh `cargo run` gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomSettings {
    /// Events each room keeps for resume (`?since=` / `Last-Event-ID`).
    pub history_max_events: usize,
    /// Events older than this are dropped from history. 0 keeps them until pushed out by count.
    pub history_max_age_ms: u64,
    /// Of the events kept in history, the newest this many that are not ordinary chat
    /// (moderators' and streamers' chat, gifts, system, custom, stream and delete events)
    /// are kept apart as well, so a connection that falls behind a flood of chat still
    /// gets them (docs/rooms.md "Falling behind a flood").
    pub priority_history_events: usize,
    /// Longest chat message, in characters (Unicode scalar values) after trimming.
    pub chat_max_chars: usize,
    /// Longest `system` message posted through the API, in characters.
    pub system_max_chars: usize,
    /// Largest `data` of a `custom` event, in bytes of compact JSON.
    pub custom_max_bytes: usize,
    /// Custom events counted instead of sent one by one: one `aggregate` event per name
    /// per `aggregate_interval_ms` (docs/rooms.md "Aggregated custom events").
    pub aggregated_events: Vec<AggregatedEvent>,
    /// At most one `aggregate` event per name per interval, in milliseconds.
    pub aggregate_interval_ms: u64,
    /// Most taps one `like` message may carry; larger `count`s are capped to it.
    pub like_max_batch: u32,
    /// Largest `count` of one `gift` message.
    pub gift_max_count: u32,
    /// At most one `like` event per room per this many milliseconds.
    pub like_interval_ms: u64,
    /// A gift from the same user of the same kind within this many milliseconds of the
    /// previous one continues a combo.
    pub gift_combo_window_ms: u64,
    /// At most one `viewers` event per room per this many milliseconds (and only on change).
    pub viewers_interval_ms: u64,
    /// Chat messages one user may send to a room per window.
    pub chat_rate_count: u32,
    /// Window of `chat_rate_count`, in milliseconds.
    pub chat_rate_window_ms: u64,
    /// Like taps one user may send to a room per window (taps, not messages).
    pub like_rate_count: u32,
    /// Window of `like_rate_count`, in milliseconds.
    pub like_rate_window_ms: u64,
    /// Gift messages one user may send to a room per window.
    pub gift_rate_count: u32,
    /// Window of `gift_rate_count`, in milliseconds.
    pub gift_rate_window_ms: u64,
    /// Custom events one user may send to a room per window.
    pub custom_rate_count: u32,
    /// Window of `custom_rate_count`, in milliseconds.
    pub custom_rate_window_ms: u64,
    /// Slow mode of a new room: one chat message per user per this many milliseconds
    /// (moderators and streamers exempt). 0 is off. Changed per room at run time.
    pub slow_mode_ms: u64,
    /// Let connections without a token send chat, likes, gifts and custom events.
    pub anonymous_can_send: bool,
    /// Chat messages delivered to one connection per window before sampling starts.
    pub viewer_chat_rate_count: u32,
    /// Window of `viewer_chat_rate_count`, in milliseconds.
    pub viewer_chat_rate_window_ms: u64,
    /// A connection that had chat sampled away is told how much, at most this often.
    pub skipped_notice_interval_ms: u64,
    /// Ordinary chat (not moderators' or streamers') a room offers all its members per
    /// window; more is kept in history and echoed to its sender only (docs/rooms.md
    /// "The room's broadcast budget"). Viewers read at most `viewer_chat_rate_count`.
    pub broadcast_chat_rate_count: u32,
    /// Window of `broadcast_chat_rate_count`, in milliseconds (0: no budget).
    pub broadcast_chat_rate_window_ms: u64,
    /// Gift messages (not moderators' or streamers') a room offers all its members one
    /// by one per window; more are summed into `gifts` events.
    pub broadcast_gift_rate_count: u32,
    /// Window of `broadcast_gift_rate_count`, in milliseconds (0: no budget).
    pub broadcast_gift_rate_window_ms: u64,
    /// Custom events from clients (not moderators' or streamers', not aggregated) a
    /// room offers all its members per window; more are kept in history and echoed to
    /// their sender only.
    pub broadcast_custom_rate_count: u32,
    /// Window of `broadcast_custom_rate_count`, in milliseconds (0: no budget).
    pub broadcast_custom_rate_window_ms: u64,
    /// Rooms that may exist at once; joining a new room beyond it fails with `too_many_rooms`.
    pub max_rooms: usize,
    /// A room with no members, no media viewers and no live stream is dropped after this long.
    pub room_idle_ms: u64,
    /// Connections one room may hold; more fail with `room_full`.
    pub max_members_per_room: usize,
    /// Users per room tracked by each rate limiter, slow mode and gift combos.
    pub max_tracked_users: usize,
    /// Entries in each mute and ban list (per room, and the global ones).
    pub max_moderation_entries: usize,
    /// Where rooms fan out and keep their events (one of [`ROOM_BACKENDS`]): `memory`
    /// is one node, each room numbering its own events. The server reads it; the model
    /// only checks the name.
    pub backend: String,
}

impl Default for RoomSettings {
    fn default() -> RoomSettings {
        RoomSettings {
            history_max_events: 500,
            history_max_age_ms: 600_000,
            priority_history_events: 256,
            chat_max_chars: 500,
            system_max_chars: 2000,
            custom_max_bytes: 4096,
            aggregated_events: Vec::new(),
            aggregate_interval_ms: 250,
            like_max_batch: 50,
            gift_max_count: 1000,
            like_interval_ms: 250,
            gift_combo_window_ms: 3000,
            viewers_interval_ms: 1000,
            chat_rate_count: 20,
            chat_rate_window_ms: 30_000,
            like_rate_count: 20,
            like_rate_window_ms: 1000,
            gift_rate_count: 10,
            gift_rate_window_ms: 1000,
            custom_rate_count: 30,
            custom_rate_window_ms: 1000,
            slow_mode_ms: 0,
            anonymous_can_send: false,
            viewer_chat_rate_count: 30,
            viewer_chat_rate_window_ms: 1000,
            skipped_notice_interval_ms: 1000,
            broadcast_chat_rate_count: 100,
            broadcast_chat_rate_window_ms: 1000,
            broadcast_gift_rate_count: 20,
            broadcast_gift_rate_window_ms: 1000,
            broadcast_custom_rate_count: 200,
            broadcast_custom_rate_window_ms: 1000,
            max_rooms: 10_000,
            room_idle_ms: 60_000,
            max_members_per_room: 100_000,
            max_tracked_users: 100_000,
            max_moderation_entries: 10_000,
            backend: "memory".to_owned(),
        }
    }
}

impl RoomSettings {
    /// Per-user chat rate.
    pub const fn chat_rate(&self) -> RateLimit {
        RateLimit::new(self.chat_rate_count, self.chat_rate_window_ms)
    }

    /// Per-user like rate, in taps.
    pub const fn like_rate(&self) -> RateLimit {
        RateLimit::new(self.like_rate_count, self.like_rate_window_ms)
    }

    /// Per-user gift rate, in messages.
    pub const fn gift_rate(&self) -> RateLimit {
        RateLimit::new(self.gift_rate_count, self.gift_rate_window_ms)
    }

    /// Per-user custom event rate.
    pub const fn custom_rate(&self) -> RateLimit {
        RateLimit::new(self.custom_rate_count, self.custom_rate_window_ms)
    }

    /// Per-connection chat delivery rate before sampling.
    pub const fn viewer_chat_rate(&self) -> RateLimit {
        RateLimit::new(self.viewer_chat_rate_count, self.viewer_chat_rate_window_ms)
    }

    /// Ordinary chat a room offers all its members.
    pub const fn broadcast_chat_rate(&self) -> RateLimit {
        RateLimit::new(
            self.broadcast_chat_rate_count,
            self.broadcast_chat_rate_window_ms,
        )
    }

    /// Gift messages a room offers all its members one by one.
    pub const fn broadcast_gift_rate(&self) -> RateLimit {
        RateLimit::new(
            self.broadcast_gift_rate_count,
            self.broadcast_gift_rate_window_ms,
        )
    }

    /// Client custom events a room offers all its members.
    pub const fn broadcast_custom_rate(&self) -> RateLimit {
        RateLimit::new(
            self.broadcast_custom_rate_count,
            self.broadcast_custom_rate_window_ms,
        )
    }

    pub fn validate(&self) -> Result<(), Error> {
        let fail =
            |key: &'static str, reason: &'static str| Err(Error::InvalidSetting { key, reason });
        if self.chat_max_chars == 0 {
            return fail("chat_max_chars", "must be at least 1");
        }
        if self.system_max_chars == 0 {
            return fail("system_max_chars", "must be at least 1");
        }
        if self.like_max_batch == 0 {
            return fail("like_max_batch", "must be at least 1");
        }
        if self.gift_max_count == 0 {
            return fail("gift_max_count", "must be at least 1");
        }
        if self.like_interval_ms == 0 {
            return fail("like_interval_ms", "must be at least 1");
        }
        if self.viewers_interval_ms == 0 {
            return fail("viewers_interval_ms", "must be at least 1");
        }
        if self.aggregate_interval_ms == 0 {
            return fail("aggregate_interval_ms", "must be at least 1");
        }
        if let Err(reason) = check_declarations(&self.aggregated_events) {
            return fail("aggregated_events", reason);
        }
        for (key, count) in [
            ("chat_rate_count", self.chat_rate_count),
            ("like_rate_count", self.like_rate_count),
            ("gift_rate_count", self.gift_rate_count),
            ("custom_rate_count", self.custom_rate_count),
            ("viewer_chat_rate_count", self.viewer_chat_rate_count),
            ("broadcast_chat_rate_count", self.broadcast_chat_rate_count),
            ("broadcast_gift_rate_count", self.broadcast_gift_rate_count),
            (
                "broadcast_custom_rate_count",
                self.broadcast_custom_rate_count,
            ),
        ] {
            if count == 0 {
                return fail(key, "must be at least 1");
            }
        }
        if self.max_rooms == 0 {
            return fail("max_rooms", "must be at least 1");
        }
        if self.max_members_per_room == 0 {
            return fail("max_members_per_room", "must be at least 1");
        }
        if !ROOM_BACKENDS.contains(&self.backend.as_str()) {
            return fail(
                "backend",
                "must be \"memory\" (the only room backend so far)",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_docs() {
        let s = RoomSettings::default();
        s.validate().unwrap();
        assert_eq!(s.history_max_events, 500);
        assert_eq!(s.chat_rate(), RateLimit::new(20, 30_000));
        assert_eq!(s.viewer_chat_rate(), RateLimit::new(30, 1000));
        assert_eq!(s.like_interval_ms, 250);
        assert!(!s.anonymous_can_send);
    }

    #[test]
    fn zero_rates_are_refused() {
        let s = RoomSettings {
            chat_rate_count: 0,
            ..RoomSettings::default()
        };
        assert_eq!(
            s.validate(),
            Err(Error::InvalidSetting {
                key: "chat_rate_count",
                reason: "must be at least 1"
            })
        );
    }

    #[test]
    fn unknown_backends_are_refused() {
        assert_eq!(RoomSettings::default().backend, "memory");
        for name in ["redis", "", "Memory"] {
            let s = RoomSettings {
                backend: name.to_owned(),
                ..RoomSettings::default()
            };
            assert_eq!(
                s.validate(),
                Err(Error::InvalidSetting {
                    key: "backend",
                    reason: "must be \"memory\" (the only room backend so far)"
                })
            );
        }
    }

    #[test]
    fn partial_json_fills_in_defaults_and_unknown_keys_fail() {
        let s: RoomSettings = serde_json::from_str(r#"{"chat_max_chars": 100}"#).unwrap();
        assert_eq!(s.chat_max_chars, 100);
        assert_eq!(s.history_max_events, 500);
        assert!(serde_json::from_str::<RoomSettings>(r#"{"nope": 1}"#).is_err());
    }
}
