//! The seam is enough for several nodes: a fake shared log that numbers events like
//! Redis Streams would (append, follow after a seq, history), two `RoomCell`s on it
//! as two nodes, and each node's connections seeing every chat in one seq order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future;
use onair_rooms::{
    ClientMessage, ConnId, Draft, Envelope, Event, EventKind, Identity, Role, Room, RoomSettings,
    Seq, Sequencing, User,
};
use tokio::sync::{broadcast, watch};

use super::backend::{BackendFuture, RoomBackend, RoomChannel, Subscription};
use super::{now, RoomCell};

/// One log per room, shared by every node; each node has its own fan-out ring.
#[derive(Debug, Default)]
struct SharedLog {
    rooms: Mutex<HashMap<String, Arc<RoomLog>>>,
}

#[derive(Debug)]
struct RoomLog {
    events: Mutex<Vec<Event>>,
    /// The newest seq, to wake followers.
    last: watch::Sender<Seq>,
}

impl RoomLog {
    fn after(&self, after: Seq, max: usize) -> Vec<Event> {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter(|e| e.seq() > Some(after))
            .take(max)
            .cloned()
            .collect()
    }
}

impl RoomBackend for SharedLog {
    fn sequencing(&self) -> Sequencing {
        Sequencing::External
    }

    fn open(&self, key: &str) -> Box<dyn RoomChannel> {
        let log = self
            .rooms
            .lock()
            .unwrap()
            .entry(key.to_owned())
            .or_insert_with(|| {
                Arc::new(RoomLog {
                    events: Mutex::new(Vec::new()),
                    last: watch::Sender::new(Seq::ZERO),
                })
            })
            .clone();
        let (fanout, _) = broadcast::channel(64);
        Box::new(NodeChannel { log, fanout })
    }
}

#[derive(Debug)]
struct NodeChannel {
    log: Arc<RoomLog>,
    fanout: broadcast::Sender<Arc<Envelope>>,
}

impl RoomChannel for NodeChannel {
    fn publish(&self, event: Arc<Envelope>) {
        let _ = self.fanout.send(event);
    }

    fn subscribe(&self) -> Subscription {
        self.fanout.subscribe()
    }

    fn append(&self, draft: Draft) -> BackendFuture<Seq> {
        let mut events = self.log.events.lock().unwrap();
        let seq = Seq(events.len() as u64 + 1);
        events.push(draft.into_event(seq));
        drop(events);
        self.log.last.send_replace(seq);
        Box::pin(future::ready(Ok(seq)))
    }

    fn follow(&self, after: Seq, max: usize) -> BackendFuture<Vec<Event>> {
        let log = Arc::clone(&self.log);
        let mut last = log.last.subscribe();
        Box::pin(async move {
            loop {
                let events = log.after(after, max);
                if !events.is_empty() {
                    return Ok(events);
                }
                if last.changed().await.is_err() {
                    return Ok(Vec::new());
                }
            }
        })
    }

    fn history(&self, since: Seq, max: usize) -> BackendFuture<Option<Vec<Event>>> {
        Box::pin(future::ready(Ok(Some(self.log.after(since, max)))))
    }
}

/// A node's room on the shared log, following it.
fn node(backend: &Arc<SharedLog>) -> Arc<RoomCell> {
    let settings = Arc::new(RoomSettings::default());
    let room = Room::with_sequencing("live/demo", settings, backend.sequencing(), now());
    let cell = RoomCell::new(room, backend.as_ref(), None);
    tokio::spawn(Arc::clone(&cell).follow_log());
    cell
}

fn join(cell: &RoomCell, conn: u64, user: &str) -> Subscription {
    let subscription = cell.subscribe();
    let identity = Identity::User(User::new(user, user, Role::Viewer));
    cell.with_room(|room| room.join(ConnId(conn), identity, None, now()))
        .unwrap();
    subscription
}

fn chat(cell: &RoomCell, conn: u64, text: &str) {
    let message = ClientMessage::Chat { text: text.into() };
    cell.with_room(|room| room.handle_message(ConnId(conn), message, now()))
        .unwrap();
}

/// The next `n` chat events a connection receives, as (seq, text).
async fn chats(subscription: &mut Subscription, n: usize) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        let event = tokio::time::timeout(Duration::from_secs(10), subscription.recv())
            .await
            .expect("events within 10 s")
            .unwrap();
        if let Event::Chat(chat) = event.event() {
            out.push((chat.seq.0, chat.text.clone()));
        }
    }
    out
}

#[tokio::test]
async fn two_nodes_on_one_log_see_each_others_chat_in_one_order() {
    let backend = Arc::new(SharedLog::default());
    let node_a = node(&backend);
    let node_b = node(&backend);
    let mut alice = join(&node_a, 1, "alice");
    let mut bob = join(&node_b, 2, "bob");

    chat(&node_a, 1, "a1");
    chat(&node_b, 2, "b1");
    chat(&node_a, 1, "a2");
    chat(&node_b, 2, "b2");

    let expected: Vec<(u64, String)> = [(1, "a1"), (2, "b1"), (3, "a2"), (4, "b2")]
        .into_iter()
        .map(|(seq, text)| (seq, text.to_owned()))
        .collect();
    assert_eq!(chats(&mut alice, 4).await, expected);
    assert_eq!(chats(&mut bob, 4).await, expected);
    // Each node keeps them in its own history mirror, so resume works on either.
    for cell in [&node_a, &node_b] {
        let seqs: Vec<_> = cell.since(Seq(1)).events.iter().map(|e| e.seq()).collect();
        assert_eq!(seqs, [2, 3, 4].map(|s| Some(Seq(s))));
    }

    // A delete from node B goes through the log and tombstones on node A as well.
    assert_eq!(
        node_b.with_room(|room| room.delete_message(Seq(2), now())),
        Ok(None)
    );
    let deleted = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let event = alice.recv().await.unwrap();
            if event.kind() == EventKind::Delete {
                return event;
            }
        }
    })
    .await
    .expect("the delete reaches node A");
    assert_eq!(deleted.seq(), Some(Seq(5)));
    let replayed: Vec<_> = node_a
        .since(Seq(0))
        .events
        .iter()
        .map(|e| e.seq())
        .collect();
    assert_eq!(replayed, [1, 3, 4, 5].map(|s| Some(Seq(s))));

    // A third node that starts carrying the room later loads the log's history.
    let node_c = node(&backend);
    let loaded = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let last = node_c.with_room(|room| room.last_seq());
            if last == Seq(5) {
                return node_c.since(Seq(0));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("node C loads the history");
    assert_eq!(loaded.events.len(), 4);

    for cell in [node_a, node_b, node_c] {
        cell.stop.cancel();
    }
}

#[tokio::test]
async fn the_appending_node_publishes_only_what_the_log_sequenced() {
    let backend = Arc::new(SharedLog::default());
    let node_a = node(&backend);
    let mut alice = join(&node_a, 1, "alice");
    chat(&node_a, 1, "hello");
    // Until the log hands it back, the room has not numbered or kept it.
    let got = chats(&mut alice, 1).await;
    assert_eq!(got, vec![(1, "hello".to_owned())]);
    assert_eq!(node_a.with_room(|room| room.last_seq()), Seq(1));
    // Exactly once: the next thing is a new chat, not the same one again.
    chat(&node_a, 1, "again");
    assert_eq!(chats(&mut alice, 1).await, vec![(2, "again".to_owned())]);
    node_a.stop.cancel();
}
