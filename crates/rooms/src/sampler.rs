//! Per-connection chat sampling: what one viewer can read, not what the room can say.

use std::sync::Arc;

use crate::event::{Event, Seq, SkippedEvent};
use crate::rate_limit::TokenBucket;
use crate::{Envelope, Millis, RateLimit};

/// Decides, for one connection, which broadcast events to send.
///
/// - `chat` from anyone but the connection's own user, a moderator or a streamer is
///   delivered while the connection's token bucket (default 30 per second, burst 30) has
///   a token, and skipped otherwise.
/// - The connection's own chat, moderators' and streamers' chat are always delivered
///   (they take a token when there is one, so they count toward the rate).
/// - Every other event is always delivered: gifts, likes, viewers, stream, system,
///   delete, and custom events (applications such as a whiteboard need every one; their
///   senders are rate-limited instead).
/// - Events kept in history with a seq at or below the last one this connection was
///   offered (sent or skipped) are dropped as duplicates, so a resume backlog or a
///   catch-up from history and the live feed may overlap safely, and a skipped chat
///   offered again is not sent late, out of order.
///
/// Skipped chat is reported with a `skipped` event (`count` since the previous one) at
/// most once per `notice_interval_ms`, the interval after the first skip it counts;
/// [`poll_skipped`](Sampler::poll_skipped) hands it out and
/// [`poll_timeout`](Sampler::poll_timeout) says when.
#[derive(Debug, Clone)]
pub struct Sampler {
    own_id: Option<Arc<str>>,
    bucket: TokenBucket,
    notice_interval_ms: u64,
    skipped: u64,
    first_skip_at: Option<Millis>,
    skipped_total: u64,
    last_seq: Seq,
}

impl Sampler {
    /// A sampler for a connection whose user has `own_id` (its own messages always pass),
    /// delivering chat at up to `rate`.
    pub fn new(
        own_id: Option<Arc<str>>,
        rate: RateLimit,
        notice_interval_ms: u64,
        now: Millis,
    ) -> Sampler {
        Sampler {
            own_id,
            bucket: TokenBucket::new(rate, now),
            notice_interval_ms,
            skipped: 0,
            first_skip_at: None,
            skipped_total: 0,
            last_seq: Seq::ZERO,
        }
    }

    /// Treats every history event up to `seq` as delivered (the room does this at join).
    pub fn set_last_seq(&mut self, seq: Seq) {
        self.last_seq = self.last_seq.max(seq);
    }

    /// The newest seq offered to this connection, sent or skipped: where a catch-up
    /// from history starts.
    pub fn last_seq(&self) -> Seq {
        self.last_seq
    }

    /// Chat skipped over the connection's life, for metrics.
    pub fn skipped_total(&self) -> u64 {
        self.skipped_total
    }

    /// Whether to send `envelope` to this connection now.
    pub fn admit(&mut self, envelope: &Envelope, now: Millis) -> bool {
        if let Some(seq) = envelope.seq() {
            if seq <= self.last_seq {
                return false;
            }
        }
        let admitted = match envelope.event() {
            Event::Chat(chat) => {
                let has_token = self.bucket.try_take(1, now).is_ok();
                has_token || self.always_delivered(chat)
            }
            _ => true,
        };
        if let Some(seq) = envelope.seq() {
            self.last_seq = seq;
        }
        if !admitted {
            self.skipped += 1;
            self.skipped_total += 1;
            self.first_skip_at.get_or_insert(now);
        }
        admitted
    }

    /// Keeps of `events` (in seq order, all arrived since the connection's previous
    /// batch) what [`admit`](Sampler::admit) would, except which ordinary chat: when
    /// there are fewer tokens than lines, the **newest** are kept, so a connection
    /// written every few hundred milliseconds gets the freshest chat, not the lines
    /// that waited longest. Own, moderators' and streamers' chat take their tokens
    /// first, as with `admit`.
    pub fn admit_batch(&mut self, events: &mut Vec<Arc<Envelope>>, now: Millis) {
        let mut last_seq = self.last_seq;
        let mut ordinary = 0u64;
        let mut privileged = 0u64;
        for envelope in events.iter() {
            let Some(seq) = envelope.seq() else { continue };
            if seq <= last_seq {
                continue;
            }
            last_seq = seq;
            if let Event::Chat(chat) = envelope.event() {
                if self.always_delivered(chat) {
                    privileged += 1;
                } else {
                    ordinary += 1;
                }
            }
        }
        let tokens = self.bucket.available(now);
        let kept = ordinary.min(tokens.saturating_sub(privileged));
        let _ = self
            .bucket
            .try_take(tokens.min(privileged.saturating_add(kept)), now);
        let skipped = ordinary - kept;
        let mut ordinary_seen = 0u64;
        events.retain(|envelope| {
            if let Some(seq) = envelope.seq() {
                if seq <= self.last_seq {
                    return false;
                }
                self.last_seq = seq;
            }
            match envelope.event() {
                Event::Chat(chat) if !self.always_delivered(chat) => {
                    ordinary_seen += 1;
                    ordinary_seen > skipped
                }
                _ => true,
            }
        });
        if skipped > 0 {
            self.skipped += skipped;
            self.skipped_total += skipped;
            self.first_skip_at.get_or_insert(now);
        }
    }

    /// Own, moderators' and streamers' chat: never sampled away.
    fn always_delivered(&self, chat: &crate::event::ChatEvent) -> bool {
        chat.user.role.is_privileged()
            || self
                .own_id
                .as_ref()
                .is_some_and(|own| Arc::ptr_eq(own, &chat.user.id) || *own == chat.user.id)
    }

    /// The `skipped` event, when chat was skipped and the notice interval is over.
    pub fn poll_skipped(&mut self, now: Millis) -> Option<Arc<Envelope>> {
        let due = self.poll_timeout()?;
        if now < due {
            return None;
        }
        let count = std::mem::take(&mut self.skipped);
        self.first_skip_at = None;
        Some(Envelope::shared(Event::Skipped(SkippedEvent {
            ts: now,
            count,
        })))
    }

    /// When [`poll_skipped`](Sampler::poll_skipped) will have a notice.
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.first_skip_at
            .map(|t| t.add_ms(self.notice_interval_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ChatEvent, GiftEvent, LikeEvent, SystemEvent};
    use crate::{Role, User};

    fn chat(seq: u64, user: &str, role: Role) -> Envelope {
        Envelope::new(Event::Chat(ChatEvent {
            seq: Seq(seq),
            ts: Millis(0),
            id: Seq(seq),
            user: User::new(user, user, role),
            text: "x".into(),
        }))
    }

    fn gift(seq: u64) -> Envelope {
        Envelope::new(Event::Gift(GiftEvent {
            seq: Seq(seq),
            ts: Millis(0),
            user: User::new("fan", "fan", Role::Viewer),
            gift: "rose".into(),
            count: 1,
            combo: 1,
            combo_total: 1,
        }))
    }

    fn sampler(now: Millis) -> Sampler {
        Sampler::new(Some("me".into()), RateLimit::new(30, 1000), 1000, now)
    }

    #[test]
    fn below_the_rate_everything_passes() {
        let mut s = sampler(Millis(0));
        for i in 1..=30 {
            assert!(s.admit(&chat(i, "other", Role::Viewer), Millis(0)));
        }
        assert_eq!(s.poll_timeout(), None);
        // 30 a second keeps passing indefinitely.
        let mut seq = 30;
        for ms in (0..10_000u64).step_by(34) {
            seq += 1;
            assert!(s.admit(&chat(seq, "other", Role::Viewer), Millis(1000 + ms)));
        }
        assert_eq!(s.skipped_total(), 0);
    }

    #[test]
    fn above_the_rate_priorities_are_kept_and_skips_counted() {
        let mut s = sampler(Millis(0));
        let mut seq = 0;
        let mut next = || {
            seq += 1;
            seq
        };
        // 100 chat from others in one instant: 30 pass.
        let passed = (0..100)
            .filter(|_| s.admit(&chat(next(), "other", Role::Viewer), Millis(0)))
            .count();
        assert_eq!(passed, 30);
        // Out of tokens, yet own, moderator and streamer chat, gifts, likes and system pass.
        assert!(s.admit(&chat(next(), "me", Role::Viewer), Millis(0)));
        assert!(s.admit(&chat(next(), "mod", Role::Moderator), Millis(0)));
        assert!(s.admit(&chat(next(), "host", Role::Streamer), Millis(0)));
        assert!(s.admit(&gift(next()), Millis(0)));
        assert!(s.admit(
            &Envelope::new(Event::Like(LikeEvent {
                ts: Millis(0),
                count: 1,
                total: 1
            })),
            Millis(0)
        ));
        assert!(s.admit(
            &Envelope::new(Event::System(SystemEvent {
                seq: Seq(next()),
                ts: Millis(0),
                text: "x".into()
            })),
            Millis(0)
        ));
        assert!(!s.admit(&chat(next(), "other", Role::Viewer), Millis(0)));
        assert_eq!(s.skipped_total(), 71);

        // The notice comes one interval after the first skip, with the count so far.
        assert_eq!(s.poll_timeout(), Some(Millis(1000)));
        assert!(s.poll_skipped(Millis(999)).is_none());
        let notice = s.poll_skipped(Millis(1000)).unwrap();
        assert_eq!(
            notice.json().as_ref(),
            br#"{"type":"skipped","ts":1000,"count":71}"#
        );
        assert!(s.poll_skipped(Millis(5000)).is_none());
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn a_batch_keeps_the_newest_chat_the_tokens_allow_and_every_priority_event() {
        let mut s = sampler(Millis(0));
        s.set_last_seq(Seq(2));
        let mut batch: Vec<Arc<Envelope>> = vec![Arc::new(gift(2))];
        batch.extend((3..=52).map(|i| Arc::new(chat(i, "other", Role::Viewer))));
        batch.push(Arc::new(chat(53, "me", Role::Viewer)));
        batch.push(Arc::new(gift(54)));
        batch.extend((55..=74).map(|i| Arc::new(chat(i, "other", Role::Viewer))));
        s.admit_batch(&mut batch, Millis(0));
        let seqs: Vec<u64> = batch.iter().filter_map(|e| e.seq()).map(|s| s.0).collect();
        // 30 tokens: one for my own line, 29 for the newest of the 70 others (44..=52
        // and 55..=74); the gift always; the duplicate gift (2) never.
        assert_eq!(seqs, (44..=74).collect::<Vec<u64>>());
        assert_eq!(s.skipped_total(), 41);
        assert_eq!(s.last_seq(), Seq(74));
        // Out of tokens now: the next batch keeps only what is always delivered.
        let mut next = vec![
            Arc::new(chat(75, "other", Role::Viewer)),
            Arc::new(chat(76, "host", Role::Streamer)),
        ];
        s.admit_batch(&mut next, Millis(0));
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].seq(), Some(Seq(76)));
    }

    #[test]
    fn tokens_come_back_with_time() {
        let mut s = sampler(Millis(0));
        for i in 1..=30 {
            s.admit(&chat(i, "o", Role::Viewer), Millis(0));
        }
        assert!(!s.admit(&chat(31, "o", Role::Viewer), Millis(0)));
        // One token per 33.3 ms.
        assert!(!s.admit(&chat(32, "o", Role::Viewer), Millis(33)));
        assert!(s.admit(&chat(33, "o", Role::Viewer), Millis(34)));
    }

    #[test]
    fn duplicates_by_seq_are_dropped() {
        let mut s = sampler(Millis(0));
        s.set_last_seq(Seq(10));
        assert!(!s.admit(&gift(9), Millis(0)));
        assert!(!s.admit(&gift(10), Millis(0)));
        assert!(s.admit(&gift(11), Millis(0)));
        assert!(!s.admit(&gift(11), Millis(0)));
        assert_eq!(s.last_seq(), Seq(11));
        // Duplicates are not "skipped".
        assert_eq!(s.skipped_total(), 0);
    }

    #[test]
    fn deterministic_given_now() {
        let run = || {
            let mut s = sampler(Millis(0));
            (1..=500u64)
                .map(|i| s.admit(&chat(i, "o", Role::Viewer), Millis(i * 7)))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }
}
