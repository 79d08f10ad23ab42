//! A WebSocket member seated in its room's delivery groups ([`onair_relay::fanout`]): the
//! group asks the member for the events that are ready and writes their frames
//! straight to the connection's socket. The room wakes the groups when it broadcasts.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use onair_rooms::Envelope;
use tokio::time::Instant;

use super::{now, Member, MemberEnd};
use onair_relay::fanout::{self, BoxedWriter, Feed};

/// The connection's side of a seated member.
pub type MemberSeat = fanout::SeatHandle<MemberFeed>;
/// What the connection gets back when its member's seat ends.
pub type MemberSeatEnd = fanout::SeatEnd<MemberFeed>;

/// What one member's connection counts (the server's metrics): one per connection,
/// living as long as it does. Called from the delivery group's task: must not block.
pub trait MemberStats: Send + 'static {
    /// `events` were written to the connection (SSE: per write).
    fn delivered(&mut self, events: usize, member: &Member);
    /// `events` were written to connections of this kind: the sum over a delivery
    /// group's round, counted once per round.
    fn delivered_events(&self, events: usize);
    /// The member stopped receiving because of `end`.
    fn ended(&mut self, member: &Member, end: &MemberEnd);
    /// The connection was closed because its client stopped reading (4008).
    fn stalled(&mut self, member: &Member);
    /// Brings the counts of chat the member's sampler left out and of events it
    /// skipped to keep up with the room up to date.
    fn count_skipped(&mut self, member: &Member);
}

/// A member, how many events may leave in one write, and its connection's counters.
pub struct MemberFeed {
    pub member: Member,
    pub stats: Box<dyn MemberStats>,
    max_batch: usize,
}

impl Member {
    /// Hands this member's delivery to its room's delivery groups, which write its
    /// events, each in its WebSocket frame, to `writer` until the seat ends: at most
    /// `max_batch` of them in one write, and not more often than the flush interval.
    pub fn seat(
        self,
        writer: BoxedWriter,
        write_timeout: Duration,
        max_batch: usize,
        stats: Box<dyn MemberStats>,
    ) -> MemberSeat {
        let cell = Arc::clone(self.cell());
        let feed = MemberFeed {
            member: self,
            stats,
            max_batch: max_batch.max(1),
        };
        cell.fanout()
            .join(feed, writer, VecDeque::new(), write_timeout)
    }
}

impl Feed for MemberFeed {
    type End = MemberEnd;
    type Scratch = Vec<Arc<Envelope>>;

    fn fill(
        &mut self,
        batch: &mut Vec<Arc<Envelope>>,
        out: &mut VecDeque<Bytes>,
        now_instant: Instant,
    ) -> Result<usize, MemberEnd> {
        if !self.member.may_flush(now_instant) {
            return Ok(0);
        }
        batch.clear();
        self.member.take_ready(batch, self.max_batch, now())?;
        self.member.flushed(now_instant, !batch.is_empty());
        match batch.as_slice() {
            [] => return Ok(0),
            [one] => out.push_back(one.ws_frame().clone()),
            // Copied into one buffer: the kernel copies a run of small slices far more
            // slowly than one contiguous write (measured at 10,000 connections).
            many => {
                let len = many.iter().map(|e| e.ws_frame().len()).sum();
                let mut joined = BytesMut::with_capacity(len);
                for event in many {
                    joined.extend_from_slice(event.ws_frame());
                }
                out.push_back(joined.freeze());
            }
        }
        self.stats.count_skipped(&self.member);
        Ok(batch.len())
    }

    fn deadline(&self) -> Option<Instant> {
        self.member.deadline()
    }

    fn quiet_until(&self) -> Option<Instant> {
        self.member.paced_until()
    }

    /// Events delivered, counted once per round of a group.
    fn count(&self, events: usize) {
        self.stats.delivered_events(events);
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use onair_media::StreamPath;
    use onair_rooms::{CloseReason, Identity, Role, User};
    use tokio::io::DuplexStream;
    use tokio_tungstenite::tungstenite::protocol::Role as WsRole;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::WebSocketStream;

    use super::*;
    use crate::{test_room_hub as room_hub, RoomHub};
    use onair_relay::fanout::SeatEndReason;

    /// A member of `path` seated on one end of a pipe, and a WebSocket client on the other.
    async fn seated(
        hub: &Arc<RoomHub>,
        path: &StreamPath,
        identity: Identity,
        interval: Duration,
    ) -> (MemberSeat, WebSocketStream<DuplexStream>) {
        let member = Member::join(hub, path, identity, None)
            .unwrap()
            .with_flush_interval(interval);
        let (near, far) = tokio::io::duplex(256 * 1024);
        let seat = member.seat(
            Box::new(near),
            Duration::from_secs(5),
            64,
            Box::new(Uncounted),
        );
        let client = WebSocketStream::from_raw_socket(far, WsRole::Client, None).await;
        (seat, client)
    }

    /// Counts nothing.
    struct Uncounted;

    impl MemberStats for Uncounted {
        fn delivered(&mut self, _: usize, _: &Member) {}
        fn delivered_events(&self, _: usize) {}
        fn ended(&mut self, _: &Member, _: &MemberEnd) {}
        fn stalled(&mut self, _: &Member) {}
        fn count_skipped(&mut self, _: &Member) {}
    }

    /// The next text frame, viewer counts (sent as members come and go) left out.
    async fn next_text(client: &mut WebSocketStream<DuplexStream>) -> String {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), client.next())
                .await
                .expect("a frame arrives");
            match message {
                Some(Ok(Message::Text(text))) if text.contains("\"type\":\"viewers\"") => {}
                Some(Ok(Message::Text(text))) => return text.to_string(),
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    fn post(hub: &Arc<RoomHub>, path: &StreamPath, text: &str) {
        hub.room(path)
            .unwrap()
            .with_room(|room| room.post_system(text, now()))
            .unwrap();
    }

    #[tokio::test]
    async fn a_client_reads_the_welcome_then_every_event_in_order_across_groups() {
        let hub = room_hub();
        let path = StreamPath::parse("live/seat").unwrap();
        let mut clients = Vec::new();
        for _ in 0..onair_relay::fanout::GROUP_SIZE + 2 {
            clients.push(seated(&hub, &path, Identity::Anonymous, Duration::ZERO).await);
        }
        assert_eq!(hub.room(&path).unwrap().fanout().open_groups(), 2);
        let long = "é".repeat(1_900);
        for text in ["one", "two", long.as_str()] {
            post(&hub, &path, text);
        }
        for (_seat, client) in &mut clients {
            assert!(next_text(client).await.contains("\"type\":\"welcome\""));
            let mut got = Vec::new();
            while got.len() < 3 {
                got.push(next_text(client).await);
            }
            assert!(got[0].contains("\"one\"") && got[1].contains("\"two\""));
            assert!(got[2].contains(&long));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_after_a_write_waits_for_the_flush_interval() {
        let hub = room_hub();
        let path = StreamPath::parse("live/paced").unwrap();
        let interval = Duration::from_millis(100);
        let (_seat, mut client) = seated(&hub, &path, Identity::Anonymous, interval).await;
        assert!(next_text(&mut client).await.contains("welcome"));
        // Just after a write: the burst waits out the interval.
        let start = tokio::time::Instant::now();
        for text in ["a1", "a2", "a3"] {
            post(&hub, &path, text);
        }
        for text in ["a1", "a2", "a3"] {
            assert!(next_text(&mut client).await.contains(text));
        }
        assert!(tokio::time::Instant::now() - start >= interval);
        // After a quiet spell the next event leaves at once.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let quiet = tokio::time::Instant::now();
        post(&hub, &path, "b1");
        assert!(next_text(&mut client).await.contains("b1"));
        assert_eq!(tokio::time::Instant::now(), quiet);
    }

    #[tokio::test]
    async fn a_ban_ends_the_seat_and_hands_back_the_member() {
        let hub = room_hub();
        let path = StreamPath::parse("live/ban").unwrap();
        let user = Identity::User(User::new("u1", "Una", Role::Viewer));
        let (mut seat, mut client) = seated(&hub, &path, user, Duration::ZERO).await;
        assert!(next_text(&mut client).await.contains("welcome"));
        let kicked = hub
            .room(&path)
            .unwrap()
            .with_room(|room| room.kick_user("u1", CloseReason::Banned, now()));
        assert_eq!(kicked, 1);
        let end = tokio::time::timeout(Duration::from_secs(5), seat.ended())
            .await
            .expect("the seat ends")
            .expect("the socket comes back");
        assert!(
            matches!(
                end.reason,
                SeatEndReason::Feed(MemberEnd::Closed(CloseReason::Banned))
            ),
            "{}",
            end.reason
        );
    }

    #[tokio::test]
    async fn a_control_message_goes_out_between_batches() {
        let hub = room_hub();
        let path = StreamPath::parse("live/control").unwrap();
        let (seat, mut client) = seated(&hub, &path, Identity::Anonymous, Duration::ZERO).await;
        assert!(next_text(&mut client).await.contains("welcome"));
        // An unmasked server text frame "hey", as an error reply would be sent.
        assert!(seat.send(Bytes::from_static(&[0x81, 3, b'h', b'e', b'y'])));
        assert_eq!(next_text(&mut client).await, "hey");
        post(&hub, &path, "after");
        assert!(next_text(&mut client).await.contains("after"));
    }
}
