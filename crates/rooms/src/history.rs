//! A room's recent events, for clients that reconnect.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::event::{Draft, Event, EventKind, GapEvent, ResetEvent, Seq};
use crate::{Envelope, Error, Millis};

#[derive(Debug)]
struct Entry {
    envelope: Arc<Envelope>,
    /// A deleted message stays in place (so the seqs around it still resume) but is not
    /// replayed; the `delete` event that removed it is.
    deleted: bool,
}

/// What a reconnecting client gets: an optional notice (`gap` or `reset`, sent first),
/// then the events it missed, oldest first.
#[derive(Debug, Default)]
pub struct Resume {
    /// `gap` (some missed events are no longer kept) or `reset` (the client's seq is
    /// ahead of the room), or `None` when nothing was lost.
    pub notice: Option<Arc<Envelope>>,
    /// The events after the asked-for seq that are still in history.
    pub events: Vec<Arc<Envelope>>,
}

impl Resume {
    /// Nothing was lost: no gap, no reset.
    pub fn is_complete(&self) -> bool {
        self.notice.is_none()
    }

    /// Notice first, then events: the order to send them in.
    pub fn into_envelopes(self) -> impl Iterator<Item = Arc<Envelope>> {
        self.notice.into_iter().chain(self.events)
    }
}

/// What history knows about a message id (for deletes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// In history, of this kind; `deleted` if already deleted.
    Present { kind: EventKind, deleted: bool },
    /// Was in history, pushed out by count or age.
    Evicted,
    /// Never had this seq (0, in the future, or not seen by this node).
    Unknown,
}

/// A bounded ring of the events kept in history (by count and by age), with resume.
///
/// Resume from `since` (the last seq the client has):
/// - `since == 0`: everything still kept, no notice (a fresh client asks for this).
/// - `since` is the newest seq: nothing.
/// - `since` at or after the oldest kept seq minus one: the events after it, no notice.
/// - `since` older than that: a `gap` event naming the lost seqs
///   `since+1 ..= oldest-1`, then everything kept.
/// - `since` newer than the newest seq (the room was recreated since, or the number is
///   made up): a `reset` event, then everything kept.
///
/// Apart from the ring, the newest events that are not ordinary chat (see
/// [`is_priority`]) are kept in a smaller ring of their own, so a connection that fell
/// behind a flood of chat can be given them ([`catch_up`](History::catch_up)).
#[derive(Debug)]
pub struct History {
    max_events: usize,
    max_age_ms: u64,
    entries: VecDeque<Entry>,
    last_seq: Seq,
    max_priority: usize,
    /// The newest priority events, not deleted, oldest first. They outlive `entries`'
    /// count limit (that is what they are for), not its age limit.
    priority: VecDeque<Arc<Envelope>>,
}

/// What a connection that fell behind the room gets back: see [`History::catch_up`].
#[derive(Debug, Default)]
pub struct CatchUp {
    /// The kept events it skipped, `from ..= to`, when history no longer reaches back.
    pub gap: Option<(Seq, Seq)>,
    /// Priority events from inside the gap, oldest first: they are not lost.
    pub rescued: Vec<Arc<Envelope>>,
    /// The events after the gap (or after the seq asked for), oldest first.
    pub events: Vec<Arc<Envelope>>,
}

/// Whether a connection behind a flood must still get `envelope`: every kept event
/// but ordinary chat (moderators' and streamers' chat is priority).
pub fn is_priority(envelope: &Envelope) -> bool {
    match envelope.event() {
        Event::Chat(chat) => chat.user.role.is_privileged(),
        _ => envelope.seq().is_some(),
    }
}

/// Who a kept event was sent to when it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offered {
    Everyone,
    SenderOnly,
}

impl History {
    /// Keeps at most `max_events` events, none older than `max_age_ms` (0: no age limit).
    pub fn new(max_events: usize, max_age_ms: u64) -> History {
        History {
            max_events,
            max_age_ms,
            entries: VecDeque::with_capacity(max_events.min(1024)),
            last_seq: Seq::ZERO,
            max_priority: 0,
            priority: VecDeque::new(),
        }
    }

    /// Also keeps the newest `max` priority events apart (see [`is_priority`]).
    pub fn with_priority_events(mut self, max: usize) -> History {
        self.max_priority = max;
        self
    }

    /// The newest seq assigned or seen (0: none yet). Not reset by eviction.
    pub fn last_seq(&self) -> Seq {
        self.last_seq
    }

    /// The oldest seq still kept.
    pub fn first_seq(&self) -> Option<Seq> {
        self.entries.front().and_then(|e| e.envelope.seq())
    }

    /// Events kept (deleted messages included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Nothing kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The events kept and not deleted, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Envelope>> {
        self.entries
            .iter()
            .filter(|e| !e.deleted)
            .map(|e| &e.envelope)
    }

    /// Assigns the next seq to `draft`, encodes it once and keeps it.
    pub fn append(&mut self, draft: Draft, now: Millis) -> Arc<Envelope> {
        let seq = self.last_seq.next();
        let envelope = Envelope::shared(draft.into_event(seq));
        self.record(Arc::clone(&envelope), now, Offered::Everyone);
        envelope
    }

    /// [`append`](History::append) for an event the room shed (over its broadcast
    /// budget): kept, but not among the priority events a connection that fell behind
    /// is given, since only its sender was ever sent it.
    pub fn append_shed(&mut self, draft: Draft, now: Millis) -> Arc<Envelope> {
        let seq = self.last_seq.next();
        let envelope = Envelope::shared(draft.into_event(seq));
        self.record(Arc::clone(&envelope), now, Offered::SenderOnly);
        envelope
    }

    /// Keeps an event sequenced elsewhere (a shared log): its seq must be after the last.
    /// Seqs may skip numbers.
    pub fn insert(&mut self, envelope: Arc<Envelope>, now: Millis) -> Result<(), Error> {
        self.insert_offered(envelope, now, Offered::Everyone)
    }

    /// [`insert`](History::insert) for an event the room shed (see
    /// [`append_shed`](History::append_shed)).
    pub fn insert_shed(&mut self, envelope: Arc<Envelope>, now: Millis) -> Result<(), Error> {
        self.insert_offered(envelope, now, Offered::SenderOnly)
    }

    fn insert_offered(
        &mut self,
        envelope: Arc<Envelope>,
        now: Millis,
        offered: Offered,
    ) -> Result<(), Error> {
        let Some(seq) = envelope.seq() else {
            return Err(Error::NotInHistory {
                kind: envelope.kind(),
            });
        };
        if seq <= self.last_seq {
            return Err(Error::OutOfOrder {
                seq,
                last: self.last_seq,
            });
        }
        self.record(envelope, now, offered);
        Ok(())
    }

    fn record(&mut self, envelope: Arc<Envelope>, now: Millis, offered: Offered) {
        if let Some(seq) = envelope.seq() {
            self.last_seq = seq;
        }
        if let Event::Delete(delete) = envelope.event() {
            if let Some(i) = self.index_of(delete.id) {
                if let Some(entry) = self.entries.get_mut(i) {
                    entry.deleted = true;
                }
            }
            self.priority.retain(|e| e.seq() != Some(delete.id));
        }
        if self.max_priority > 0 && offered == Offered::Everyone && is_priority(&envelope) {
            if self.priority.len() == self.max_priority {
                self.priority.pop_front();
            }
            self.priority.push_back(Arc::clone(&envelope));
        }
        self.entries.push_back(Entry {
            envelope,
            deleted: false,
        });
        self.expire(now);
    }

    fn index_of(&self, seq: Seq) -> Option<usize> {
        self.entries
            .binary_search_by_key(&seq, |e| e.envelope.seq().unwrap_or(Seq::ZERO))
            .ok()
    }

    /// What history knows about message `id`.
    pub fn lookup(&self, id: Seq) -> Lookup {
        if id == Seq::ZERO || id > self.last_seq {
            return Lookup::Unknown;
        }
        if let Some(entry) = self.index_of(id).and_then(|i| self.entries.get(i)) {
            return Lookup::Present {
                kind: entry.envelope.kind(),
                deleted: entry.deleted,
            };
        }
        match self.first_seq() {
            Some(first) if id > first => Lookup::Unknown,
            _ => Lookup::Evicted,
        }
    }

    /// The kept, not deleted event with this seq.
    pub fn get(&self, seq: Seq) -> Option<&Arc<Envelope>> {
        let entry = self.entries.get(self.index_of(seq)?)?;
        (!entry.deleted).then_some(&entry.envelope)
    }

    /// Drops events beyond the count limit and older than the age limit.
    pub fn expire(&mut self, now: Millis) {
        while self.entries.len() > self.max_events {
            self.entries.pop_front();
        }
        if self.max_age_ms > 0 {
            while self
                .entries
                .front()
                .is_some_and(|e| now.ms_since(e.envelope.ts()) > self.max_age_ms)
            {
                self.entries.pop_front();
            }
            while self
                .priority
                .front()
                .is_some_and(|e| now.ms_since(e.ts()) > self.max_age_ms)
            {
                self.priority.pop_front();
            }
        }
    }

    /// What a connection that was offered every kept event up to `after` (`0`: none;
    /// unlike [`since`](History::since), which takes `0` as "send everything") and then
    /// fell behind the room gets back: the kept events after `after`; when history no
    /// longer reaches back that far, the `gap` it skipped and the priority events from
    /// inside it, which it still gets.
    pub fn catch_up(&mut self, after: Seq, now: Millis) -> CatchUp {
        self.expire(now);
        if after >= self.last_seq {
            return CatchUp::default();
        }
        let oldest = self.first_seq().unwrap_or(self.last_seq.next());
        let mut catch_up = CatchUp::default();
        if after.next() < oldest {
            catch_up.gap = Some((after.next(), Seq(oldest.0 - 1)));
            catch_up.rescued = self
                .priority
                .iter()
                .filter(|e| e.seq().is_some_and(|seq| seq > after && seq < oldest))
                .cloned()
                .collect();
        }
        let start = self
            .entries
            .partition_point(|e| e.envelope.seq().unwrap_or(Seq::ZERO) <= after);
        catch_up.events = self
            .entries
            .range(start..)
            .filter(|e| !e.deleted)
            .map(|e| Arc::clone(&e.envelope))
            .collect();
        catch_up
    }

    /// The events after `since`, with a `gap` or `reset` notice when some cannot be had.
    /// See the type's documentation for each case.
    pub fn since(&mut self, since: Seq, now: Millis) -> Resume {
        self.expire(now);
        if since > self.last_seq {
            return Resume {
                notice: Some(Envelope::shared(Event::Reset(ResetEvent {
                    ts: now,
                    last_seq: self.last_seq,
                }))),
                events: self.iter().cloned().collect(),
            };
        }
        if since == self.last_seq {
            return Resume::default();
        }
        // The oldest seq we could still deliver: the first kept, or (all gone) the next.
        let oldest = self.first_seq().unwrap_or(self.last_seq.next());
        let notice = (since != Seq::ZERO && since.next() < oldest).then(|| {
            let to = Seq(oldest.0 - 1);
            Envelope::shared(Event::Gap(GapEvent {
                ts: now,
                from_seq: since.next(),
                to_seq: to,
                lost: to.0 - since.0,
            }))
        });
        let start = self
            .entries
            .partition_point(|e| e.envelope.seq().unwrap_or(Seq::ZERO) <= since);
        let events = self
            .entries
            .range(start..)
            .filter(|e| !e.deleted)
            .map(|e| Arc::clone(&e.envelope))
            .collect();
        Resume { notice, events }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{DeleteEvent, SystemEvent};

    fn system(text: &str) -> Draft {
        Draft::new(Event::System(SystemEvent {
            seq: Seq::ZERO,
            ts: Millis::ZERO,
            text: text.into(),
        }))
        .unwrap()
    }

    fn system_at(text: &str, ts: Millis) -> Draft {
        Draft::new(Event::System(SystemEvent {
            seq: Seq::ZERO,
            ts,
            text: text.into(),
        }))
        .unwrap()
    }

    fn seqs(resume: &Resume) -> Vec<u64> {
        resume
            .events
            .iter()
            .filter_map(|e| e.seq())
            .map(|s| s.0)
            .collect()
    }

    fn notice(resume: &Resume) -> Option<Event> {
        resume.notice.as_ref().map(|n| n.event().clone())
    }

    /// History holding seqs 11..=20 (the first ten pushed out by count).
    fn eleven_to_twenty() -> History {
        let mut h = History::new(10, 0);
        for i in 1..=20 {
            h.append(system(&i.to_string()), Millis(i));
        }
        assert_eq!(h.first_seq(), Some(Seq(11)));
        assert_eq!(h.last_seq(), Seq(20));
        h
    }

    #[test]
    fn appends_number_from_one() {
        let mut h = History::new(10, 0);
        assert_eq!(h.append(system("a"), Millis(0)).seq(), Some(Seq(1)));
        assert_eq!(h.append(system("b"), Millis(0)).seq(), Some(Seq(2)));
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn empty_history() {
        let mut h = History::new(10, 0);
        let r = h.since(Seq(0), Millis(0));
        assert!(r.is_complete() && r.events.is_empty());
        // Any positive seq is ahead of an empty room: reset.
        let r = h.since(Seq(3), Millis(0));
        assert_eq!(
            notice(&r),
            Some(Event::Reset(ResetEvent {
                ts: Millis(0),
                last_seq: Seq(0)
            }))
        );
        assert!(r.events.is_empty());
    }

    #[test]
    fn since_zero_is_everything_kept_without_a_gap() {
        let mut h = eleven_to_twenty();
        let r = h.since(Seq(0), Millis(100));
        assert!(r.is_complete());
        assert_eq!(seqs(&r), (11..=20).collect::<Vec<_>>());
    }

    #[test]
    fn since_the_newest_is_nothing() {
        let mut h = eleven_to_twenty();
        let r = h.since(Seq(20), Millis(100));
        assert!(r.is_complete() && r.events.is_empty());
    }

    #[test]
    fn since_exactly_the_oldest_and_one_before() {
        let mut h = eleven_to_twenty();
        let r = h.since(Seq(11), Millis(100));
        assert!(r.is_complete());
        assert_eq!(seqs(&r), (12..=20).collect::<Vec<_>>());
        // 10 was pushed out but the client has it: nothing lost.
        let r = h.since(Seq(10), Millis(100));
        assert!(r.is_complete());
        assert_eq!(seqs(&r), (11..=20).collect::<Vec<_>>());
    }

    #[test]
    fn one_older_than_the_oldest_is_a_gap_of_one() {
        let mut h = eleven_to_twenty();
        let r = h.since(Seq(9), Millis(100));
        assert_eq!(
            notice(&r),
            Some(Event::Gap(GapEvent {
                ts: Millis(100),
                from_seq: Seq(10),
                to_seq: Seq(10),
                lost: 1
            }))
        );
        assert_eq!(seqs(&r), (11..=20).collect::<Vec<_>>());
        let r = h.since(Seq(1), Millis(100));
        let Some(Event::Gap(gap)) = notice(&r) else {
            panic!("expected a gap")
        };
        assert_eq!((gap.from_seq, gap.to_seq, gap.lost), (Seq(2), Seq(10), 9));
        let all: Vec<_> = r.into_envelopes().map(|e| e.kind()).collect();
        assert_eq!(all.first(), Some(&EventKind::Gap));
        assert_eq!(all.len(), 11);
    }

    #[test]
    fn future_seq_is_a_reset_then_everything() {
        let mut h = eleven_to_twenty();
        let r = h.since(Seq(21), Millis(100));
        assert_eq!(
            notice(&r),
            Some(Event::Reset(ResetEvent {
                ts: Millis(100),
                last_seq: Seq(20)
            }))
        );
        assert_eq!(seqs(&r), (11..=20).collect::<Vec<_>>());
    }

    #[test]
    fn age_expiry() {
        let mut h = History::new(100, 1000);
        h.append(system_at("a", Millis(0)), Millis(0));
        h.append(system_at("b", Millis(0)), Millis(0));
        h.append(system_at("c", Millis(600)), Millis(600));
        // At 1000 ms everything is kept (an age of exactly the limit is allowed).
        assert_eq!(seqs(&h.since(Seq(0), Millis(1000))), vec![1, 2, 3]);
        // At 1001 ms 1 and 2 are too old. A fresh client (since 0) gets what is left
        // without a gap; one that had seq 1 is told that 2 is lost.
        assert_eq!(seqs(&h.since(Seq(0), Millis(1001))), vec![3]);
        let r = h.since(Seq(1), Millis(1001));
        let Some(Event::Gap(gap)) = notice(&r) else {
            panic!("expected a gap")
        };
        assert_eq!((gap.from_seq, gap.to_seq, gap.lost), (Seq(2), Seq(2), 1));
        assert_eq!(seqs(&r), vec![3]);
        // Everything aged out: the whole range after since is a gap, and nothing follows.
        let r = h.since(Seq(1), Millis(5000));
        let Some(Event::Gap(gap)) = notice(&r) else {
            panic!("expected a gap")
        };
        assert_eq!((gap.from_seq, gap.to_seq, gap.lost), (Seq(2), Seq(3), 2));
        assert!(r.events.is_empty());
        assert!(h.is_empty());
        assert_eq!(h.last_seq(), Seq(3));
        // A client that had everything has missed nothing, even with history empty.
        assert!(h.since(Seq(3), Millis(5000)).is_complete());
        // Numbering continues after history emptied by age.
        assert_eq!(h.append(system("d"), Millis(5000)).seq(), Some(Seq(4)));
    }

    #[test]
    fn deleted_messages_are_not_replayed_but_the_delete_is() {
        let mut h = History::new(10, 0);
        h.append(system("keep"), Millis(0));
        h.append(system("remove"), Millis(0));
        assert_eq!(
            h.lookup(Seq(2)),
            Lookup::Present {
                kind: EventKind::System,
                deleted: false
            }
        );
        let delete = Draft::new(Event::Delete(DeleteEvent {
            seq: Seq::ZERO,
            ts: Millis(1),
            id: Seq(2),
        }))
        .unwrap();
        h.append(delete, Millis(1));
        assert_eq!(
            h.lookup(Seq(2)),
            Lookup::Present {
                kind: EventKind::System,
                deleted: true
            }
        );
        assert!(h.get(Seq(2)).is_none());
        let r = h.since(Seq(0), Millis(1));
        assert_eq!(seqs(&r), vec![1, 3]);
        let r = h.since(Seq(1), Millis(1));
        assert_eq!(seqs(&r), vec![3]);
    }

    #[test]
    fn lookup_knows_evicted_from_unknown() {
        let h = eleven_to_twenty();
        assert_eq!(h.lookup(Seq(0)), Lookup::Unknown);
        assert_eq!(h.lookup(Seq(21)), Lookup::Unknown);
        assert_eq!(h.lookup(Seq(3)), Lookup::Evicted);
        assert!(matches!(h.lookup(Seq(15)), Lookup::Present { .. }));
    }

    #[test]
    fn externally_sequenced_events_must_move_forward() {
        let mut h = History::new(10, 0);
        let at = |seq: u64| Envelope::shared(system("x").into_event(Seq(seq)));
        h.insert(at(5), Millis(0)).unwrap();
        h.insert(at(9), Millis(0)).unwrap();
        assert_eq!(
            h.insert(at(9), Millis(0)),
            Err(Error::OutOfOrder {
                seq: Seq(9),
                last: Seq(9)
            })
        );
        assert_eq!(h.last_seq(), Seq(9));
        // Seqs that this node never saw are unknown, not evicted.
        assert_eq!(h.lookup(Seq(7)), Lookup::Unknown);
        assert_eq!(h.lookup(Seq(3)), Lookup::Evicted);
        let viewers = Envelope::shared(Event::Viewers(crate::event::ViewersEvent {
            ts: Millis(0),
            count: 1,
        }));
        assert!(matches!(
            h.insert(viewers, Millis(0)),
            Err(Error::NotInHistory { .. })
        ));
        assert_eq!(seqs(&h.since(Seq(5), Millis(0))), vec![9]);
    }

    #[test]
    fn zero_capacity_keeps_nothing_but_still_numbers() {
        let mut h = History::new(0, 0);
        h.append(system("a"), Millis(0));
        h.append(system("b"), Millis(0));
        assert!(h.is_empty());
        let r = h.since(Seq(1), Millis(0));
        let Some(Event::Gap(gap)) = notice(&r) else {
            panic!("expected a gap")
        };
        assert_eq!((gap.from_seq, gap.to_seq, gap.lost), (Seq(2), Seq(2), 1));
    }

    fn chat(user: &str, role: crate::Role) -> Draft {
        Draft::new(Event::Chat(crate::event::ChatEvent {
            seq: Seq::ZERO,
            ts: Millis::ZERO,
            id: Seq::ZERO,
            user: crate::User::new(user, user, role),
            text: "x".into(),
        }))
        .unwrap()
    }

    fn catch_up_seqs(events: &[Arc<Envelope>]) -> Vec<u64> {
        events.iter().filter_map(|e| e.seq()).map(|s| s.0).collect()
    }

    #[test]
    fn catch_up_within_history_loses_nothing() {
        let mut h = History::new(10, 0).with_priority_events(4);
        for _ in 0..5 {
            h.append(chat("fan", crate::Role::Viewer), Millis::ZERO);
        }
        let back = h.catch_up(Seq::ZERO, Millis::ZERO);
        assert_eq!(back.gap, None);
        assert!(back.rescued.is_empty());
        assert_eq!(catch_up_seqs(&back.events), [1, 2, 3, 4, 5]);
        let back = h.catch_up(Seq(3), Millis::ZERO);
        assert_eq!(catch_up_seqs(&back.events), [4, 5]);
        assert!(h.catch_up(Seq(5), Millis::ZERO).events.is_empty());
    }

    #[test]
    fn catch_up_behind_a_chat_flood_names_the_gap_and_rescues_priority_events() {
        let mut h = History::new(10, 0).with_priority_events(3);
        // 1: a system message, 2: the streamer's chat, 3: a fan's, 4: a moderator's,
        // 5: a system message, then 45 chat messages from fans push them all out.
        h.append(system("a"), Millis::ZERO);
        h.append(chat("host", crate::Role::Streamer), Millis::ZERO);
        h.append(chat("fan", crate::Role::Viewer), Millis::ZERO);
        h.append(chat("mod", crate::Role::Moderator), Millis::ZERO);
        h.append(system("b"), Millis::ZERO);
        for _ in 0..45 {
            h.append(chat("fan", crate::Role::Viewer), Millis::ZERO);
        }
        assert_eq!(h.first_seq(), Some(Seq(41)));
        // Offered nothing yet (0 is "nothing", not "everything" as for resume).
        let back = h.catch_up(Seq::ZERO, Millis::ZERO);
        assert_eq!(back.gap, Some((Seq(1), Seq(40))));
        // The newest three priority events survive the flood; the oldest is lost.
        assert_eq!(catch_up_seqs(&back.rescued), [2, 4, 5]);
        assert_eq!(catch_up_seqs(&back.events), (41..=50).collect::<Vec<_>>());
        // From inside the gap, only what is after it is rescued.
        let back = h.catch_up(Seq(4), Millis::ZERO);
        assert_eq!(back.gap, Some((Seq(5), Seq(40))));
        assert_eq!(catch_up_seqs(&back.rescued), [5]);
    }

    #[test]
    fn a_shed_event_is_kept_but_never_rescued() {
        let mut h = History::new(4, 0).with_priority_events(8);
        h.append(system("offered"), Millis::ZERO);
        let shed = h.append_shed(system("shed"), Millis::ZERO);
        assert_eq!(shed.seq(), Some(Seq(2)));
        assert_eq!(h.iter().count(), 2);
        for _ in 0..6 {
            h.append(chat("fan", crate::Role::Viewer), Millis::ZERO);
        }
        let back = h.catch_up(Seq::ZERO, Millis::ZERO);
        assert_eq!(catch_up_seqs(&back.rescued), [1]);
        assert_eq!(back.gap, Some((Seq(1), Seq(4))));
    }

    #[test]
    fn a_deleted_or_expired_priority_event_is_not_rescued() {
        let mut h = History::new(4, 1_000).with_priority_events(8);
        h.append(system_at("old", Millis(0)), Millis(0));
        h.append(system_at("kept", Millis(900)), Millis(900));
        let deleted = h.append(system_at("deleted", Millis(900)), Millis(900));
        h.record(
            Envelope::shared(Event::Delete(DeleteEvent {
                seq: Seq(4),
                ts: Millis(900),
                id: deleted.seq().unwrap(),
            })),
            Millis(900),
            Offered::Everyone,
        );
        for _ in 0..6 {
            h.append(chat("fan", crate::Role::Viewer), Millis(1_500));
        }
        let back = h.catch_up(Seq::ZERO, Millis(1_500));
        // 1 aged out, 3 was deleted; 2 and the delete (4) itself are priority. (The
        // chat, stamped 0, aged out of history too.)
        assert_eq!(catch_up_seqs(&back.rescued), [2, 4]);
        assert_eq!(back.gap, Some((Seq(1), Seq(10))));
    }
}
