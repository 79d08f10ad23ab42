//! Counters of the rooms: client messages accepted, shed and aggregated by type and
//! refused by code, and events broadcast by type. The sans-IO rooms crate stays free of metrics; the
//! `RoomHub` owns these and bumps them around the room calls; `/metrics` reads them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use onair_rooms::{Action, Envelope, Error, ErrorCode, Event, EventKind, Sent};

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

const ACTIONS: [Action; 4] = [Action::Chat, Action::Like, Action::Gift, Action::Custom];

/// `counts` by the action's name, leaving out `never` (a type the counter cannot have).
fn by_action(
    counts: &[AtomicU64; ACTIONS.len()],
    never: Option<Action>,
) -> impl Iterator<Item = (&'static str, u64)> + '_ {
    ACTIONS
        .iter()
        .zip(counts)
        .filter(move |(a, _)| Some(**a) != never)
        .map(|(a, n)| (a.as_str(), read(n)))
}

#[derive(Debug, Default)]
pub struct RoomCounters {
    accepted: [AtomicU64; ACTIONS.len()],
    /// Accepted, but over the room's broadcast budget: sent to their sender only.
    shed: [AtomicU64; ACTIONS.len()],
    /// Accepted and counted into a `like`, `aggregate` or `gifts` event.
    aggregated: [AtomicU64; ACTIONS.len()],
    refused: [AtomicU64; ErrorCode::ALL.len()],
    broadcast: [AtomicU64; EventKind::ALL.len()],
}

impl RoomCounters {
    /// One client message: `action` when it parsed, and what became of it.
    pub fn record_message(&self, action: Option<Action>, outcome: Result<&Sent, &Error>) {
        let sent = match outcome {
            Err(error) => {
                let code = error.code();
                if let Some(slot) = ErrorCode::ALL.iter().position(|c| *c == code) {
                    bump(&self.refused[slot], 1);
                }
                return;
            }
            Ok(sent) => sent,
        };
        let Some(slot) = action.and_then(|a| ACTIONS.iter().position(|x| *x == a)) else {
            return;
        };
        bump(&self.accepted[slot], 1);
        match sent {
            Sent::Shed(envelope) => {
                bump(&self.shed[slot], 1);
                if matches!(envelope.event(), Event::Gift(_)) {
                    bump(&self.aggregated[slot], 1);
                }
            }
            Sent::Counted => bump(&self.aggregated[slot], 1),
            Sent::Broadcast(_) | Sent::Appended => {}
        }
    }

    /// One event a room broadcast to all its members.
    pub fn record_broadcast(&self, event: &Envelope) {
        let kind = event.kind();
        if let Some(slot) = EventKind::ALL.iter().position(|k| *k == kind) {
            bump(&self.broadcast[slot], 1);
        }
    }

    /// The room tap that counts broadcasts, then hands each event to `then` (the
    /// webhooks' tap), if any.
    pub fn tap(counters: Arc<Self>, then: Option<crate::EventTap>) -> crate::EventTap {
        crate::EventTap::new(move |room, event| {
            counters.record_broadcast(event);
            if let Some(tap) = &then {
                tap.call(room, event);
            }
        })
    }

    pub fn accepted(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        by_action(&self.accepted, None)
    }

    /// Messages over a room's broadcast budget, by type (chat, gift, custom).
    pub fn shed(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        by_action(&self.shed, Some(Action::Like))
    }

    /// Messages counted into an aggregate event, by type (like, gift, custom).
    pub fn aggregated(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        by_action(&self.aggregated, Some(Action::Chat))
    }

    pub fn refused(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        ErrorCode::ALL
            .iter()
            .zip(&self.refused)
            .map(|(c, n)| (c.as_str(), read(n)))
    }

    /// Broadcast kinds only: per-connection kinds (welcome, error, …) never are.
    pub fn broadcast(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        EventKind::ALL
            .iter()
            .zip(&self.broadcast)
            .filter(|(k, _)| !k.is_per_connection())
            .map(|(k, n)| (k.as_str(), read(n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onair_rooms::SystemEvent;

    #[test]
    fn counts_messages_by_type_and_refusals_by_code() {
        let counters = RoomCounters::default();
        let chat = Sent::Shed(Envelope::shared(Event::System(SystemEvent {
            seq: onair_rooms::Seq(1),
            ts: onair_rooms::Millis(0),
            text: "hi".into(),
        })));
        counters.record_message(Some(Action::Chat), Ok(&Sent::Appended));
        counters.record_message(Some(Action::Chat), Ok(&chat));
        counters.record_message(Some(Action::Like), Ok(&Sent::Counted));
        counters.record_message(
            Some(Action::Like),
            Err(&Error::RateLimited {
                action: Action::Like,
                retry_after_ms: 10,
            }),
        );
        counters.record_message(None, Err(&Error::NotAnObject));
        let accepted: Vec<_> = counters.accepted().collect();
        assert!(accepted.contains(&("chat", 2)));
        assert!(accepted.contains(&("like", 1)));
        let shed: Vec<_> = counters.shed().collect();
        assert_eq!(shed, [("chat", 1), ("gift", 0), ("custom", 0)]);
        let aggregated: Vec<_> = counters.aggregated().collect();
        assert_eq!(aggregated, [("like", 1), ("gift", 0), ("custom", 0)]);
        let refused: Vec<_> = counters.refused().filter(|(_, n)| *n > 0).collect();
        assert_eq!(refused, [("invalid_message", 1), ("rate_limited", 1)]);
    }

    #[test]
    fn counts_broadcasts_by_kind() {
        let counters = RoomCounters::default();
        let event = Envelope::new(Event::System(SystemEvent {
            seq: onair_rooms::Seq(1),
            ts: onair_rooms::Millis(0),
            text: "hi".into(),
        }));
        counters.record_broadcast(&event);
        let broadcast: Vec<_> = counters.broadcast().collect();
        assert!(broadcast.contains(&("system", 1)));
        assert!(!broadcast.iter().any(|(kind, _)| *kind == "welcome"));
    }
}
