use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use onair_media::StreamPath;
use onair_rooms::{
    CatchUp, CloseReason, ConnId, Envelope, Error, Event, GapEvent, Identity, Millis, Sampler, Seq,
};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{now, RoomCell, RoomHub, Subscription};

/// Own chat messages a member remembers, so it gets them even when it fell behind a
/// flood past them (other priority events are kept by the room).
const OWN_KEPT: usize = 16;

/// The newest chat messages a connection sent and the room published: written by its
/// [`Voice`], read by its [`Member`] when it catches up.
#[derive(Debug, Default)]
struct OwnMessages(Mutex<VecDeque<Arc<Envelope>>>);

impl OwnMessages {
    fn record(&self, envelope: Arc<Envelope>) {
        let mut own = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if own.len() == OWN_KEPT {
            own.pop_front();
        }
        own.push_back(envelope);
    }

    /// Those with a seq in `from ..= to`, oldest first.
    fn between(&self, from: Seq, to: Seq) -> Vec<Arc<Envelope>> {
        let own = self.0.lock().unwrap_or_else(|e| e.into_inner());
        own.iter()
            .filter(|e| e.seq().is_some_and(|seq| seq >= from && seq <= to))
            .cloned()
            .collect()
    }
}

/// Why a member stops receiving.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberEnd {
    #[error("closed by the room: {}", .0.as_str())]
    Closed(CloseReason),
    #[error("the room was dropped")]
    RoomGone,
}

/// One connection's membership of a room: what it has yet to be sent, its sampler,
/// and its place in the room's fan-out. Leaving the room happens on drop.
#[derive(Debug)]
pub struct Member {
    hub: Arc<RoomHub>,
    cell: Arc<RoomCell>,
    conn: ConnId,
    receiver: Subscription,
    sampler: Sampler,
    pending: VecDeque<Arc<Envelope>>,
    closed: oneshot::Receiver<CloseReason>,
    /// The room's count of closes when `closed` was last looked at.
    closes_seen: u64,
    /// Least time between two batches; events arriving meanwhile wait and leave
    /// together. A quiet member's next event goes out at once.
    flush_interval: Duration,
    /// Most writes a second to the room's members together: a larger room waits
    /// longer between batches (0: no bound).
    room_writes_per_second: u64,
    next_flush: Option<Instant>,
    /// See [`Member::lost_events`].
    lost: u64,
    own: Arc<OwnMessages>,
    /// Who the connection is signed in as, if anyone: fixed for its life.
    user_id: Option<Arc<str>>,
}

impl Member {
    /// Joins the room of `path`; the welcome and any missed events come first.
    pub fn join(
        hub: &Arc<RoomHub>,
        path: &StreamPath,
        identity: Identity,
        since: Option<Seq>,
    ) -> Result<Self, Error> {
        hub.check_join(&identity)?;
        let user_id = identity.user_id().map(Arc::from);
        let cell = hub.room(path)?;
        let conn = ConnId(onair_relay::next_conn_id());
        // Subscribe first: the sampler drops whatever the backlog already carries.
        let receiver = cell.subscribe();
        let closed = cell.on_close(conn);
        let closes_seen = cell.closes();
        let joined = match cell.with_room(|room| room.join(conn, identity, since, now())) {
            Ok(joined) => joined,
            Err(error) => {
                cell.leave(conn);
                return Err(error);
            }
        };
        let mut pending = VecDeque::with_capacity(1 + joined.backlog.len());
        pending.push_back(joined.welcome);
        pending.extend(joined.backlog);
        Ok(Self {
            hub: Arc::clone(hub),
            cell,
            conn,
            receiver,
            sampler: joined.sampler,
            pending,
            closed,
            closes_seen,
            flush_interval: Duration::ZERO,
            room_writes_per_second: 0,
            next_flush: None,
            lost: 0,
            own: Arc::default(),
            user_id,
        })
    }

    /// Sends batches at most once per `interval`. Under load this turns one wake-up
    /// and one write per event into one per interval for every member of a busy room,
    /// and a member asleep until its next flush costs the room's broadcast nothing.
    pub fn with_flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Stretches the flush interval of a large room so that its members together get
    /// at most `writes_per_second` batches a second (0: no bound): each write costs the
    /// server about the same whatever it carries, so one hot room cannot take a core.
    pub fn with_room_write_budget(mut self, writes_per_second: u64) -> Self {
        self.room_writes_per_second = writes_per_second;
        self
    }

    /// The least time from this batch to the next: the flush interval, or longer in
    /// a room too large for its write budget.
    fn interval(&self) -> Duration {
        if self.room_writes_per_second == 0 {
            return self.flush_interval;
        }
        let members = self.cell.members() as u64;
        let spread = members.saturating_mul(1_000_000) / self.room_writes_per_second;
        self.flush_interval.max(Duration::from_micros(spread))
    }

    pub fn conn(&self) -> ConnId {
        self.conn
    }

    /// Chat this connection's sampler has left out so far.
    pub fn skipped_chat(&self) -> u64 {
        self.sampler.skipped_total()
    }

    /// Whether a batch may go out at `now`: the flush interval since the last one is
    /// over. A member that finds nothing to send then goes back to sending at once.
    pub(super) fn may_flush(&self, now: Instant) -> bool {
        self.next_flush.is_none_or(|at| at <= now)
    }

    /// Until when the flush interval holds this member's next batch back, if it does.
    pub(super) fn paced_until(&self) -> Option<Instant> {
        self.next_flush
    }

    /// A batch went out at `now`.
    pub(super) fn flushed(&mut self, now: Instant, sent: bool) {
        let interval = self.interval();
        self.next_flush = (sent && !interval.is_zero()).then(|| now + interval);
    }

    /// When this member may have something without a broadcast: the end of its flush
    /// interval, or its skipped-chat notice.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let notice = self.notice_due_in().map(|wait| Instant::now() + wait);
        match (self.next_flush, notice) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// What this member's connection says to the room, apart from what it is sent.
    pub fn voice(&self) -> Voice {
        Voice {
            hub: Arc::clone(&self.hub),
            cell: Arc::clone(&self.cell),
            conn: self.conn,
            own: Arc::clone(&self.own),
            user_id: self.user_id.clone(),
        }
    }

    pub(super) fn cell(&self) -> &Arc<RoomCell> {
        &self.cell
    }

    /// Waits for at least one event to send, then takes up to `max` that are ready.
    /// Cancel-safe.
    pub async fn next_batch(
        &mut self,
        out: &mut Vec<Arc<Envelope>>,
        max: usize,
    ) -> Result<(), MemberEnd> {
        if let Some(at) = self.next_flush {
            if self.pending.is_empty() {
                tokio::select! {
                    reason = &mut self.closed => {
                        return Err(reason.map_or(MemberEnd::RoomGone, MemberEnd::Closed));
                    }
                    _ = tokio::time::sleep_until(at) => {}
                }
            }
            self.next_flush = None;
        }
        loop {
            self.take_ready(out, max, now())?;
            if !out.is_empty() {
                break;
            }
            self.wait_for_event().await?;
        }
        self.flushed(Instant::now(), true);
        Ok(())
    }

    /// Waits until an event arrives (kept in `pending` if the sampler admits it), the
    /// skipped-chat notice is due, or the member is closed.
    async fn wait_for_event(&mut self) -> Result<(), MemberEnd> {
        let notice_due_in = self.notice_due_in();
        let notice = async {
            match notice_due_in {
                Some(wait) => tokio::time::sleep(wait).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            reason = &mut self.closed => {
                Err(reason.map_or(MemberEnd::RoomGone, MemberEnd::Closed))
            }
            received = self.receiver.recv() => self.accept(received, now()),
            _ = notice => Ok(()),
        }
    }

    /// How long until the sampler's skipped-chat notice is due, if one is pending.
    fn notice_due_in(&self) -> Option<Duration> {
        let due = self.sampler.poll_timeout()?;
        Some(Duration::from_millis(
            due.as_u64().saturating_sub(now().as_u64()),
        ))
    }

    /// Appends up to `max` events that are ready to `out`, without waiting: what is
    /// pending, then what the room broadcast since, then the skipped-chat notice if due.
    pub(super) fn take_ready(
        &mut self,
        out: &mut Vec<Arc<Envelope>>,
        max: usize,
        now: Millis,
    ) -> Result<(), MemberEnd> {
        use tokio::sync::oneshot::error::TryRecvError as Closed;
        // Looked at only when the room closed someone since: a shared counter is
        // cheaper to read for every batch than each member's channel.
        let closes = self.cell.closes();
        if closes != self.closes_seen {
            self.closes_seen = closes;
            match self.closed.try_recv() {
                Ok(reason) => return Err(MemberEnd::Closed(reason)),
                Err(Closed::Closed) => return Err(MemberEnd::RoomGone),
                Err(Closed::Empty) => {}
            }
        }
        while out.len() < max {
            if let Some(event) = self.pending.pop_front() {
                out.push(event);
                continue;
            }
            let received = match self.receiver.try_recv() {
                Ok(event) => Ok(event),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
                Err(TryRecvError::Closed) => Err(RecvError::Closed),
            };
            self.accept(received, now)?;
        }
        if out.len() < max {
            if let Some(skipped) = self.sampler.poll_skipped(now) {
                out.push(skipped);
            }
        }
        if self.pending.is_empty() && self.pending.capacity() > 0 {
            // The welcome and backlog are out; don't keep their room for the member's life.
            self.pending = VecDeque::new();
        }
        Ok(())
    }

    fn accept(
        &mut self,
        received: Result<Arc<Envelope>, RecvError>,
        now: Millis,
    ) -> Result<(), MemberEnd> {
        match received {
            Ok(event) => {
                if self.sampler.admit(&event, now) {
                    self.pending.push_back(event);
                }
                Ok(())
            }
            Err(RecvError::Lagged(missed)) => self.catch_up(missed, now),
            Err(RecvError::Closed) => Err(MemberEnd::RoomGone),
        }
    }

    /// Fell off the fan-out ring (the room moved on faster than this connection could
    /// be sent events): refill the kept events from history through the sampler (the
    /// ephemeral ones, likes and viewer counts, are superseded by the next anyway).
    /// When history no longer reaches back, the member skips ahead: it is told what it
    /// skipped with a `gap` event, and still gets, from inside the gap, its own chat and
    /// the room's priority events (moderators' and the streamer's chat, gifts, system
    /// and custom events). It is never closed for the room's own pace.
    fn catch_up(&mut self, missed: u64, now: Millis) -> Result<(), MemberEnd> {
        let CatchUp {
            gap,
            mut rescued,
            events,
        } = self.cell.catch_up(self.sampler.last_seq());
        if let Some((from, to)) = gap {
            for own in self.own.between(from, to) {
                if !rescued.iter().any(|e| e.seq() == own.seq()) {
                    rescued.push(own);
                }
            }
            rescued.sort_by_key(|e| e.seq());
            let lost = (to.0 - from.0 + 1).saturating_sub(rescued.len() as u64);
            self.lost += lost;
            self.pending
                .push_back(Envelope::shared(Event::Gap(GapEvent {
                    ts: now,
                    from_seq: from,
                    to_seq: to,
                    lost,
                })));
            tracing::debug!(room = self.cell.key(), conn = %self.conn, missed, lost, "member skipped ahead of a flood");
        }
        for event in rescued.into_iter().chain(events) {
            if self.sampler.admit(&event, now) {
                self.pending.push_back(event);
            }
        }
        Ok(())
    }

    /// Events kept in history that this connection skipped because the room moved on
    /// faster than it could be sent them (told with `gap` events).
    pub fn lost_events(&self) -> u64 {
        self.lost
    }
}

/// A member's way to speak to its room, kept by the connection while the member
/// itself is seated in the room's delivery group.
#[derive(Debug, Clone)]
pub struct Voice {
    hub: Arc<RoomHub>,
    cell: Arc<RoomCell>,
    conn: ConnId,
    own: Arc<OwnMessages>,
    user_id: Option<Arc<str>>,
}

impl Voice {
    /// A text frame from the member's client. An error goes back to this client only.
    pub fn handle_text(&self, text: &str) -> Result<(), Error> {
        let published =
            self.hub
                .handle_text(&self.cell, self.conn, self.user_id.as_deref(), text)?;
        if let Some(envelope) = published.filter(|e| matches!(e.event(), Event::Chat(_))) {
            self.own.record(envelope);
        }
        Ok(())
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.cell.leave(self.conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_room_hub as room_hub;

    fn seqs(batch: &[Arc<Envelope>]) -> Vec<u64> {
        batch.iter().filter_map(|e| e.seq()).map(|s| s.0).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn events_within_the_flush_interval_leave_together_and_a_quiet_one_at_once() {
        let hub = room_hub();
        let path = StreamPath::parse("live/flush").unwrap();
        let interval = Duration::from_millis(100);
        let mut member = Member::join(&hub, &path, Identity::Anonymous, None)
            .unwrap()
            .with_flush_interval(interval);
        let cell = hub.room(&path).unwrap();
        let mut batch = Vec::new();
        member.next_batch(&mut batch, 64).await.unwrap();
        assert_eq!(batch[0].event().kind().as_str(), "welcome");
        batch.clear();

        // A burst right after a write waits for the interval and leaves as one batch.
        let start = Instant::now();
        for i in 1..=3 {
            cell.with_room(|room| room.post_system(&format!("m{i}"), now()))
                .unwrap();
        }
        member.next_batch(&mut batch, 64).await.unwrap();
        assert_eq!(seqs(&batch), [1, 2, 3]);
        assert!(Instant::now() - start >= interval);
        batch.clear();

        // After a quiet spell the next event is not held back.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let quiet = Instant::now();
        cell.with_room(|room| room.post_system("m4", now()))
            .unwrap();
        member.next_batch(&mut batch, 64).await.unwrap();
        assert_eq!(seqs(&batch), [4]);
        assert_eq!(Instant::now(), quiet);
    }

    #[tokio::test(start_paused = true)]
    async fn a_room_too_large_for_its_write_budget_waits_longer_between_batches() {
        let hub = room_hub();
        let path = StreamPath::parse("live/budget").unwrap();
        let interval = Duration::from_millis(50);
        // 200 members at 1000 writes a second: one batch each per 200 ms.
        let mut member = Member::join(&hub, &path, Identity::Anonymous, None)
            .unwrap()
            .with_flush_interval(interval)
            .with_room_write_budget(1000);
        let others: Vec<Member> = (0..199)
            .map(|_| Member::join(&hub, &path, Identity::Anonymous, None).unwrap())
            .collect();
        let cell = hub.room(&path).unwrap();
        assert_eq!(cell.members(), 200);
        let mut batch = Vec::new();
        member.next_batch(&mut batch, 64).await.unwrap();
        batch.clear();
        let start = Instant::now();
        cell.with_room(|room| room.post_system("m1", now()))
            .unwrap();
        while !batch.iter().any(|e| e.seq().is_some()) {
            batch.clear();
            member.next_batch(&mut batch, 64).await.unwrap();
        }
        assert!(Instant::now() - start >= Duration::from_millis(200));
        drop(others);
        // Alone again: after the next batch (still paced by the old size), the flush
        // interval alone paces it.
        assert_eq!(cell.members(), 1);
        for text in ["m2", "m3"] {
            batch.clear();
            let start = Instant::now();
            cell.with_room(|room| room.post_system(text, now()))
                .unwrap();
            while !batch.iter().any(|e| e.seq().is_some()) {
                batch.clear();
                member.next_batch(&mut batch, 64).await.unwrap();
            }
            if text == "m3" {
                let waited = Instant::now() - start;
                assert!(
                    waited >= interval && waited < Duration::from_millis(200),
                    "{waited:?}"
                );
            }
        }
    }

    /// A hub whose rooms have a 4-event ring, 8 events of history, 4 priority events
    /// and no chat limit for senders, so a member falls far behind at once.
    fn flooded_hub() -> Arc<RoomHub> {
        let settings = onair_rooms::RoomSettings {
            history_max_events: 8,
            priority_history_events: 4,
            chat_rate_count: 1_000_000,
            ..onair_rooms::RoomSettings::default()
        };
        RoomHub::new(
            settings,
            Arc::new(crate::MemoryBackend::new(4)),
            onair_relay::hub::Hub::new(onair_relay::HubSettings::default(), 4096),
            Arc::new(crate::NoModerationStore),
            crate::SavedModerationRows::default(),
            100,
        )
    }

    fn user(id: &str, role: onair_rooms::Role) -> Identity {
        Identity::User(onair_rooms::User::new(id, id, role))
    }

    fn chat(text: &str) -> String {
        format!(r#"{{"type":"chat","text":"{text}"}}"#)
    }

    #[tokio::test(start_paused = true)]
    async fn a_member_behind_a_flood_skips_ahead_with_its_own_and_the_streamers_messages() {
        let hub = flooded_hub();
        let path = StreamPath::parse("live/flood").unwrap();
        let mut me = Member::join(&hub, &path, user("me", onair_rooms::Role::Viewer), None)
            .unwrap()
            .with_flush_interval(Duration::from_millis(100));
        let my_voice = me.voice();
        let fan = Member::join(&hub, &path, user("fan", onair_rooms::Role::Viewer), None).unwrap();
        let host =
            Member::join(&hub, &path, user("host", onair_rooms::Role::Streamer), None).unwrap();
        let mut batch = Vec::new();
        me.next_batch(&mut batch, 64).await.unwrap();
        assert_eq!(batch[0].event().kind().as_str(), "welcome");

        my_voice.handle_text(&chat("mine")).unwrap();
        host.voice().handle_text(&chat("from the host")).unwrap();
        for i in 0..100 {
            fan.voice().handle_text(&chat(&format!("fan {i}"))).unwrap();
        }
        let mut got = Vec::new();
        while got.len() < 64 {
            batch.clear();
            tokio::time::sleep(Duration::from_millis(100)).await;
            me.take_ready(&mut batch, 64, now()).unwrap();
            if batch.is_empty() {
                break;
            }
            got.append(&mut batch);
        }
        let gap = got
            .iter()
            .find_map(|e| match e.event() {
                Event::Gap(gap) => Some(gap.clone()),
                _ => None,
            })
            .expect("a gap event");
        // Seqs 1 (mine) and 2 (the host's) are inside the gap, and not lost.
        assert_eq!((gap.from_seq, gap.to_seq), (Seq(1), Seq(94)));
        assert_eq!(gap.lost, 94 - 2);
        assert_eq!(me.lost_events(), 92);
        let texts: Vec<String> = got
            .iter()
            .filter_map(|e| match e.event() {
                Event::Chat(chat) => Some(chat.text.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(texts[..2], ["mine", "from the host"]);
        // Then the newest kept, in order.
        assert_eq!(texts[2], "fan 92");
        assert_eq!(texts.last().map(String::as_str), Some("fan 99"));
    }
}
