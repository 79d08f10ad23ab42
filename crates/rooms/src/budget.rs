//! The room's broadcast budget: how much of what its audience sends a room offers to
//! every member. A viewer reads a few dozen chat lines a second at most (its sampler's
//! rate), so offering each member thousands would only cost the server a look at each
//! per member; past the budget, a message is still accepted and kept, but only its
//! sender gets it (gifts are summed into `gifts` events instead).

use crate::event::Event;
use crate::rate_limit::TokenBucket;
use crate::{Millis, RoomSettings};

/// One token bucket per kind of audience message: ordinary chat, gifts, custom events.
#[derive(Debug, Clone)]
pub struct BroadcastBudget {
    chat: TokenBucket,
    gifts: TokenBucket,
    custom: TokenBucket,
}

impl BroadcastBudget {
    /// Full buckets, at the rates `settings` give.
    pub fn new(settings: &RoomSettings, now: Millis) -> BroadcastBudget {
        BroadcastBudget {
            chat: TokenBucket::new(settings.broadcast_chat_rate(), now),
            gifts: TokenBucket::new(settings.broadcast_gift_rate(), now),
            custom: TokenBucket::new(settings.broadcast_custom_rate(), now),
        }
    }

    /// Whether `event` goes to every member at `now` (taking from its kind's budget).
    /// Moderators' and streamers' messages, and everything the platform or the room
    /// itself says, always do.
    pub fn offers(&mut self, event: &Event, now: Millis) -> bool {
        let bucket = match event {
            Event::Chat(_) => &mut self.chat,
            Event::Gift(_) => &mut self.gifts,
            Event::Custom(_) => &mut self.custom,
            _ => return true,
        };
        match event.sender() {
            Some(user) if !user.role.is_privileged() => bucket.try_take(1, now).is_ok(),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ChatEvent, CustomEvent, GiftEvent, Seq, SystemEvent};
    use crate::{Role, User};

    fn chat(role: Role) -> Event {
        Event::Chat(ChatEvent {
            seq: Seq::ZERO,
            ts: Millis(0),
            id: Seq::ZERO,
            user: User::new("u", "u", role),
            text: "x".into(),
        })
    }

    fn gift() -> Event {
        Event::Gift(GiftEvent {
            seq: Seq::ZERO,
            ts: Millis(0),
            user: User::new("u", "u", Role::Viewer),
            gift: "rose".into(),
            count: 1,
            combo: 1,
            combo_total: 1,
        })
    }

    fn custom(user: Option<User>) -> Event {
        Event::Custom(CustomEvent {
            seq: Seq::ZERO,
            ts: Millis(0),
            name: "board.stroke".into(),
            data: serde_json::Value::Null,
            user,
        })
    }

    #[test]
    fn each_kind_has_its_own_rate_and_privileged_senders_none() {
        let settings = RoomSettings {
            broadcast_chat_rate_count: 3,
            broadcast_gift_rate_count: 2,
            broadcast_custom_rate_count: 1,
            ..RoomSettings::default()
        };
        let mut budget = BroadcastBudget::new(&settings, Millis(0));
        let offered = |budget: &mut BroadcastBudget, event: &Event, n| {
            (0..n).filter(|_| budget.offers(event, Millis(0))).count()
        };
        assert_eq!(offered(&mut budget, &chat(Role::Viewer), 10), 3);
        assert_eq!(offered(&mut budget, &gift(), 10), 2);
        let viewer = Some(User::new("v", "v", Role::Viewer));
        assert_eq!(offered(&mut budget, &custom(viewer), 10), 1);
        // Never shed: moderators, streamers, the platform, the room's own events.
        assert_eq!(offered(&mut budget, &chat(Role::Moderator), 10), 10);
        assert_eq!(offered(&mut budget, &chat(Role::Streamer), 10), 10);
        assert_eq!(offered(&mut budget, &custom(None), 10), 10);
        let system = Event::System(SystemEvent {
            seq: Seq::ZERO,
            ts: Millis(0),
            text: "hi".into(),
        });
        assert_eq!(offered(&mut budget, &system, 10), 10);
        // The budget refills with time: a third of a second brings one chat back.
        assert!(budget.offers(&chat(Role::Viewer), Millis(334)));
        assert!(!budget.offers(&chat(Role::Viewer), Millis(334)));
    }
}
