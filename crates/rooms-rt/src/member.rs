use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use onair_media::StreamPath;
use onair_rooms::{
    CatchUp, CloseReason, ConnId, Envelope, Error, Event, GapEvent, Identity, Millis, RoomSettings,
    Sampler, Sent, Seq,
};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{now, RoomCell, RoomHub, Subscription, WriteBudget};

/// Own chat messages a member remembers, so it gets them even when it fell behind a
/// flood past them (other priority events are kept by the room).
const OWN_KEPT: usize = 16;
/// Room for events between two batches a member keeps when it is done with them; a
/// flood's larger batch gives its memory back.
const FRESH_KEPT: usize = 256;
/// Most own messages the room shed that wait for the member's next batch, whatever
/// the sender's rates allow (see [`OwnMessages::new`]).
const MAX_OWN_SHED_WAITING: usize = 4096;

/// What a connection said that its [`Member`] must see to: written by its [`Voice`]
/// under the room's lock, so the member finds each message here before anything the
/// room broadcast after it.
#[derive(Debug)]
pub(crate) struct OwnMessages {
    /// The newest chat it sent that the room broadcast, for a catch-up.
    kept: Mutex<VecDeque<Arc<Envelope>>>,
    /// Messages the room shed (over its broadcast budget), to be sent to it alone.
    shed: Mutex<VecDeque<Arc<Envelope>>>,
    /// The seq of the oldest message in `shed` (`u64::MAX`: none): read for every event
    /// the member takes, so it is lock-free.
    oldest_shed: AtomicU64,
    max_shed: usize,
    /// The member waits out its flush interval: its delivery group's timer will come
    /// for what is shed meanwhile, so the connection need not wake the group.
    paced: AtomicBool,
}

impl OwnMessages {
    /// Keeps as many shed messages as a sender may send at once under the room's
    /// rates (a full bucket of each kind), at most [`MAX_OWN_SHED_WAITING`].
    fn new(settings: &RoomSettings) -> Self {
        let burst = [
            settings.chat_rate_count,
            settings.gift_rate_count,
            settings.custom_rate_count,
        ]
        .iter()
        .map(|&count| count as usize)
        .sum::<usize>();
        Self {
            kept: Mutex::default(),
            shed: Mutex::default(),
            oldest_shed: AtomicU64::new(NO_SHED),
            max_shed: burst.clamp(1, MAX_OWN_SHED_WAITING),
            paced: AtomicBool::new(false),
        }
    }

    /// Remembers what the room made of the connection's messages.
    pub(crate) fn record<'a>(&self, outcomes: impl Iterator<Item = &'a Sent>) {
        for sent in outcomes {
            match sent {
                Sent::Broadcast(envelope) if matches!(envelope.event(), Event::Chat(_)) => {
                    push_bounded(&mut lock(&self.kept), OWN_KEPT, Arc::clone(envelope));
                }
                Sent::Shed(envelope) => {
                    let mut shed = lock(&self.shed);
                    push_bounded(&mut shed, self.max_shed, Arc::clone(envelope));
                    self.oldest_shed.store(oldest_seq(&shed), Ordering::Release);
                }
                Sent::Broadcast(_) | Sent::Counted | Sent::Appended => {}
            }
        }
    }

    /// Those kept with a seq in `from ..= to`, oldest first.
    fn kept_between(&self, from: Seq, to: Seq) -> Vec<Arc<Envelope>> {
        lock(&self.kept)
            .iter()
            .filter(|e| e.seq().is_some_and(|seq| seq >= from && seq <= to))
            .cloned()
            .collect()
    }

    fn has_shed(&self) -> bool {
        self.oldest_shed.load(Ordering::Acquire) != NO_SHED
    }

    /// Takes the shed messages with a seq before `before` (all of them: `None`),
    /// oldest first, into `out`.
    fn take_shed(&self, before: Option<Seq>, out: &mut Vec<Arc<Envelope>>) {
        let oldest = self.oldest_shed.load(Ordering::Acquire);
        if oldest == NO_SHED || before.is_some_and(|before| oldest >= before.0) {
            return;
        }
        let mut shed = lock(&self.shed);
        while let Some(envelope) = shed.front() {
            if before.is_some_and(|before| envelope.seq().is_none_or(|seq| seq >= before)) {
                break;
            }
            out.extend(shed.pop_front());
        }
        self.oldest_shed.store(oldest_seq(&shed), Ordering::Release);
    }
}

/// [`OwnMessages::oldest_shed`] when nothing waits.
const NO_SHED: u64 = u64::MAX;

fn oldest_seq(queue: &VecDeque<Arc<Envelope>>) -> u64 {
    queue
        .front()
        .map_or(NO_SHED, |e| e.seq().map_or(0, Seq::as_u64))
}

fn push_bounded(queue: &mut VecDeque<Arc<Envelope>>, max: usize, envelope: Arc<Envelope>) {
    if queue.len() == max {
        queue.pop_front();
    }
    queue.push_back(envelope);
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
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
    /// Events taken from the room (its broadcasts and this connection's own shed
    /// messages, in seq order) that the sampler has not looked at yet.
    fresh: Vec<Arc<Envelope>>,
    closed: oneshot::Receiver<CloseReason>,
    /// The room's count of closes when `closed` was last looked at.
    closes_seen: u64,
    /// Least time between two batches; events arriving meanwhile wait and leave
    /// together. A quiet member's next event goes out at once.
    flush_interval: Duration,
    /// Most writes a second to the room's members together: a larger room waits
    /// longer between batches.
    write_budget: Arc<WriteBudget>,
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
            fresh: Vec::new(),
            closed,
            closes_seen,
            flush_interval: Duration::ZERO,
            write_budget: Arc::new(WriteBudget::unbounded()),
            next_flush: None,
            lost: 0,
            own: Arc::new(OwnMessages::new(hub.settings())),
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
    /// at most `budget` batches a second: each write costs the server about the same
    /// whatever it carries, so one hot room cannot take a core.
    pub fn with_room_write_budget(mut self, budget: Arc<WriteBudget>) -> Self {
        self.write_budget = budget;
        self
    }

    /// The least time from this batch to the next: the flush interval, or longer in
    /// a room too large for its write budget.
    fn interval(&self) -> Duration {
        let spread = self.write_budget.spread(self.cell.members());
        self.flush_interval.max(spread)
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
        let mut next = (sent && !interval.is_zero()).then(|| now + interval);
        // Shed while this batch was made, by a connection that saw the member paced:
        // nobody woke the group for it, so the member asks its timer to come back.
        if next.is_none() && self.own.has_shed() {
            next = Some(now);
        }
        self.next_flush = next;
        self.own.paced.store(next.is_some(), Ordering::Relaxed);
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
                Err(TryRecvError::Empty) => {
                    // Everything the room broadcast so far is in: the rest of what it
                    // shed of this connection's messages comes after it. Then the
                    // sampler picks from all that arrived since the last batch.
                    self.own.take_shed(None, &mut self.fresh);
                    self.admit_fresh(now);
                    if self.pending.is_empty() {
                        break;
                    }
                    continue;
                }
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
                if event.seq().is_some() {
                    self.own.take_shed(event.seq(), &mut self.fresh);
                }
                self.fresh.push(event);
                Ok(())
            }
            Err(RecvError::Lagged(missed)) => {
                self.admit_fresh(now);
                self.catch_up(missed, now)
            }
            Err(RecvError::Closed) => Err(MemberEnd::RoomGone),
        }
    }

    /// Queues what the sampler keeps of the events taken since the last batch (see
    /// [`Sampler::admit_batch`]: the newest chat first).
    fn admit_fresh(&mut self, now: Millis) {
        if self.fresh.is_empty() {
            return;
        }
        self.sampler.admit_batch(&mut self.fresh, now);
        self.pending.extend(self.fresh.drain(..));
        if self.fresh.capacity() > FRESH_KEPT {
            self.fresh = Vec::new();
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
            // Its own messages from inside the gap: those the room broadcast, and those
            // it shed that still wait (history no longer has them).
            let mut own = self.own.kept_between(from, to);
            self.own.take_shed(Some(to.next()), &mut own);
            for own in own {
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

/// What a batch of a member's messages came to, for its connection.
#[derive(Debug, Default)]
pub struct Spoken {
    /// Refusals to send back to the client, in the order of its messages.
    pub errors: Vec<Error>,
    /// The room shed some of them (over its broadcast budget) and the member is not
    /// waiting out a flush interval: its seat should be woken to send them.
    pub shed: bool,
}

impl Voice {
    /// Text frames from the member's client, all read from its socket at once: one
    /// take of the room's lock for all of them. Errors go back to this client only.
    pub fn handle_texts<S: AsRef<str>>(&self, texts: &[S]) -> Spoken {
        let outcomes = self.hub.handle_texts(
            &self.cell,
            self.conn,
            self.user_id.as_deref(),
            texts,
            &self.own,
        );
        let mut spoken = Spoken::default();
        for outcome in outcomes {
            match outcome {
                Ok(sent) => spoken.shed |= matches!(sent, Sent::Shed(_)),
                Err(error) => spoken.errors.push(error),
            }
        }
        // A paced member's next batch is due anyway and takes them along.
        spoken.shed &= !self.own.paced.load(Ordering::Relaxed);
        spoken
    }

    /// One text frame from the member's client ([`handle_texts`](Self::handle_texts)).
    pub fn handle_text(&self, text: &str) -> Result<(), Error> {
        match self.handle_texts(&[text]).errors.pop() {
            Some(error) => Err(error),
            None => Ok(()),
        }
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

    /// The texts of the chat events in `batch`, in order.
    fn chat_texts(batch: &[Arc<Envelope>]) -> Vec<String> {
        batch
            .iter()
            .filter_map(|e| match e.event() {
                Event::Chat(chat) => Some(chat.text.clone()),
                _ => None,
            })
            .collect()
    }

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
            .with_room_write_budget(Arc::new(WriteBudget::new(1000, 100)));
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
            // The room offers everything: members fall behind its ring, not its budget.
            broadcast_chat_rate_window_ms: 0,
            ..onair_rooms::RoomSettings::default()
        };
        hub_with(settings, 4)
    }

    /// A hub on a memory backend whose rooms fan out through a ring of `ring` events.
    fn hub_with(settings: onair_rooms::RoomSettings, ring: usize) -> Arc<RoomHub> {
        RoomHub::new(
            settings,
            Arc::new(crate::MemoryBackend::new(ring)),
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
        let texts = chat_texts(&got);
        assert_eq!(texts[..2], ["mine", "from the host"]);
        // Then the newest kept, in order.
        assert_eq!(texts[2], "fan 92");
        assert_eq!(texts.last().map(String::as_str), Some("fan 99"));
    }

    #[tokio::test(start_paused = true)]
    async fn own_messages_past_the_rooms_budget_reach_their_sender_alone_in_order() {
        let settings = onair_rooms::RoomSettings {
            broadcast_chat_rate_count: 3,
            chat_rate_count: 1_000,
            ..onair_rooms::RoomSettings::default()
        };
        let hub = hub_with(settings, 64);
        let path = StreamPath::parse("live/budget").unwrap();
        let join = |id: &str, role| Member::join(&hub, &path, user(id, role), None).unwrap();
        let mut me = join("me", onair_rooms::Role::Viewer);
        let mut other = join("other", onair_rooms::Role::Viewer);
        let host = join("host", onair_rooms::Role::Streamer);
        let (my_voice, host_voice) = (me.voice(), host.voice());
        for i in 0..5 {
            let spoken = my_voice.handle_texts(&[chat(&format!("me {i}"))]);
            assert!(spoken.errors.is_empty());
            assert_eq!(spoken.shed, i >= 3, "message {i}");
            host_voice.handle_text(&chat(&format!("host {i}"))).unwrap();
        }
        let texts = |member: &mut Member| {
            let mut batch = Vec::new();
            member.take_ready(&mut batch, 64, now()).unwrap();
            let seqs: Vec<Seq> = batch.iter().filter_map(|e| e.seq()).collect();
            assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
            chat_texts(&batch)
        };
        let everything: Vec<String> = (0..5)
            .flat_map(|i| [format!("me {i}"), format!("host {i}")])
            .collect();
        assert_eq!(texts(&mut me), everything);
        assert_eq!(
            texts(&mut other),
            ["me 0", "host 0", "me 1", "host 1", "me 2", "host 2", "host 3", "host 4"]
        );
        let shed: Vec<_> = hub.counters().shed().collect();
        assert_eq!(shed[0], ("chat", 2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_shed_own_message_inside_a_gap_still_reaches_its_sender() {
        let settings = onair_rooms::RoomSettings {
            history_max_events: 8,
            priority_history_events: 4,
            chat_rate_count: 1_000_000,
            broadcast_chat_rate_count: 5,
            ..onair_rooms::RoomSettings::default()
        };
        let hub = hub_with(settings, 4);
        let path = StreamPath::parse("live/shedgap").unwrap();
        let mut me =
            Member::join(&hub, &path, user("me", onair_rooms::Role::Viewer), None).unwrap();
        let fan = Member::join(&hub, &path, user("fan", onair_rooms::Role::Viewer), None).unwrap();
        let host =
            Member::join(&hub, &path, user("host", onair_rooms::Role::Streamer), None).unwrap();
        let mut batch = Vec::new();
        me.take_ready(&mut batch, 64, now()).unwrap();
        // The fans use up the budget; my message is shed; the host's ten then push it
        // out of both the ring (4) and history (8).
        for i in 0..5 {
            fan.voice().handle_text(&chat(&format!("fan {i}"))).unwrap();
        }
        assert!(me.voice().handle_texts(&[chat("mine")]).shed);
        for i in 0..10 {
            host.voice()
                .handle_text(&chat(&format!("host {i}")))
                .unwrap();
        }
        batch.clear();
        me.take_ready(&mut batch, 64, now()).unwrap();
        let texts = chat_texts(&batch);
        assert!(batch.iter().any(|e| matches!(e.event(), Event::Gap(_))));
        assert_eq!(texts.first().map(String::as_str), Some("mine"), "{texts:?}");
        assert_eq!(texts.last().map(String::as_str), Some("host 9"));
    }
}
