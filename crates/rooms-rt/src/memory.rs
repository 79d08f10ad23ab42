//! `rooms.backend = "memory"`: one node, nothing shared. Rooms number their own events
//! and keep them in their own `History`; each room's fan-out is a bounded tokio
//! broadcast ring of `Arc<Envelope>`, so publishing is one refcount and one slot write.

use std::sync::Arc;

use futures_util::future;
use onair_rooms::{Draft, Envelope, Event, Seq, Sequencing};
use tokio::sync::broadcast;

use super::backend::{BackendError, BackendFuture, RoomBackend, RoomChannel, Subscription};

const NAME: &str = "memory";

/// Rooms on this node only.
#[derive(Debug, Clone)]
pub struct MemoryBackend {
    fanout_capacity: usize,
}

impl MemoryBackend {
    /// Each room's ring holds `fanout_capacity` events (`http.room_fanout_events`).
    pub fn new(fanout_capacity: usize) -> Self {
        Self {
            fanout_capacity: fanout_capacity.max(1),
        }
    }
}

impl RoomBackend for MemoryBackend {
    fn sequencing(&self) -> Sequencing {
        Sequencing::Local
    }

    fn open(&self, _key: &str) -> Box<dyn RoomChannel> {
        let (fanout, _) = broadcast::channel(self.fanout_capacity);
        Box::new(MemoryChannel { fanout })
    }
}

/// One room's ring.
#[derive(Debug)]
struct MemoryChannel {
    fanout: broadcast::Sender<Arc<Envelope>>,
}

impl RoomChannel for MemoryChannel {
    fn publish(&self, event: Arc<Envelope>) {
        // No receivers is not an error: nobody is in the room right now.
        let _ = self.fanout.send(event);
    }

    fn subscribe(&self) -> Subscription {
        self.fanout.subscribe()
    }

    fn append(&self, _draft: Draft) -> BackendFuture<Seq> {
        Box::pin(future::ready(Err(BackendError::Unsupported {
            backend: NAME,
            operation: "append (rooms sequence locally)",
        })))
    }

    fn follow(&self, _after: Seq, _max: usize) -> BackendFuture<Vec<Event>> {
        Box::pin(future::ready(Err(BackendError::Unsupported {
            backend: NAME,
            operation: "follow (rooms sequence locally)",
        })))
    }

    fn history(&self, _since: Seq, _max: usize) -> BackendFuture<Option<Vec<Event>>> {
        Box::pin(future::ready(Ok(None)))
    }
}

#[cfg(test)]
mod tests {
    use onair_rooms::{Millis, Room, RoomSettings, SystemEvent};
    use tokio::sync::broadcast::error::TryRecvError;

    use super::*;
    use crate::RoomCell;

    fn system(seq: u64) -> Arc<Envelope> {
        Envelope::shared(Event::System(SystemEvent {
            seq: Seq(seq),
            ts: Millis(seq),
            text: format!("s{seq}"),
        }))
    }

    fn channel(capacity: usize) -> Box<dyn RoomChannel> {
        let backend: Arc<dyn RoomBackend> = Arc::new(MemoryBackend::new(capacity));
        assert_eq!(backend.sequencing(), Sequencing::Local);
        backend.open("live/demo")
    }

    #[test]
    fn subscribers_get_every_event_in_order_as_the_same_allocation() {
        let channel = channel(16);
        let mut a = channel.subscribe();
        let mut b = channel.subscribe();
        let sent: Vec<_> = (1..=5).map(system).collect();
        for event in &sent {
            channel.publish(Arc::clone(event));
        }
        for receiver in [&mut a, &mut b] {
            for event in &sent {
                let got = receiver.try_recv().unwrap();
                assert!(Arc::ptr_eq(&got, event), "a copy, not the shared envelope");
            }
            assert_eq!(receiver.try_recv().unwrap_err(), TryRecvError::Empty);
        }
    }

    #[test]
    fn a_subscriber_sees_only_what_came_after_it_subscribed() {
        let channel = channel(16);
        channel.publish(system(1));
        let mut late = channel.subscribe();
        channel.publish(system(2));
        assert_eq!(late.try_recv().unwrap().seq(), Some(Seq(2)));
    }

    #[test]
    fn a_lagging_subscriber_is_told_how_much_it_missed_and_never_slows_the_room() {
        let channel = channel(4);
        let mut slow = channel.subscribe();
        let mut fast = channel.subscribe();
        for seq in 1..=10 {
            channel.publish(system(seq));
            assert_eq!(fast.try_recv().unwrap().seq(), Some(Seq(seq)));
        }
        assert_eq!(slow.try_recv().unwrap_err(), TryRecvError::Lagged(6));
        let rest: Vec<_> = std::iter::from_fn(|| slow.try_recv().ok())
            .map(|e| e.seq())
            .collect();
        assert_eq!(rest, [7, 8, 9, 10].map(|s| Some(Seq(s))));
    }

    #[tokio::test]
    async fn shared_log_calls_are_refused_and_history_is_the_rooms_own() {
        let channel = channel(4);
        let err = channel.append(Draft::new(system(0).event().clone()).unwrap());
        assert!(matches!(
            err.await,
            Err(BackendError::Unsupported {
                backend: "memory",
                ..
            })
        ));
        assert!(channel.follow(Seq(0), 10).await.is_err());
        assert_eq!(channel.history(Seq(0), 10).await, Ok(None));
    }

    #[tokio::test]
    async fn history_since_a_seq_comes_from_the_room_through_the_cell() {
        let backend: Arc<dyn RoomBackend> = Arc::new(MemoryBackend::new(16));
        let settings = Arc::new(RoomSettings {
            history_max_events: 3,
            ..RoomSettings::default()
        });
        let now = crate::now();
        let room = Room::with_sequencing("live/demo", settings, backend.sequencing(), now);
        let cell = RoomCell::new(room, backend.as_ref(), None);
        let mut subscription = cell.subscribe();
        for i in 1..=5 {
            let seq = cell.with_room(|room| room.post_system(&format!("s{i}"), now));
            assert_eq!(seq, Ok(Some(Seq(i))));
        }
        let published: Vec<_> = std::iter::from_fn(|| subscription.try_recv().ok())
            .filter_map(|e| e.seq())
            .collect();
        assert_eq!(published, (1..=5).map(Seq).collect::<Vec<_>>());
        let resume = cell.since(Seq(3));
        assert!(resume.is_complete());
        let seqs: Vec<_> = resume.events.iter().filter_map(|e| e.seq()).collect();
        assert_eq!(seqs, [Seq(4), Seq(5)]);
        // Seq 1 was pushed out (3 kept): a gap for 2, then 3..=5.
        let resume = cell.since(Seq(1));
        assert!(!resume.is_complete());
        assert_eq!(resume.events.len(), 3);
    }
}
