//! One room: its members, its history and everything that turns client messages into
//! events. Sans-IO: the caller feeds inputs with the time, drains
//! [`poll_output`](Room::poll_output), and calls [`handle_timeout`](Room::handle_timeout)
//! when [`poll_timeout`](Room::poll_timeout) comes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;

use crate::aggregates::{check_room_declarations, room_declarations};
use crate::client_message::{check_data_size, is_valid_custom_name, validate_text};
use crate::event::{
    ChatEvent, CustomEvent, DeleteEvent, Draft, Event, EventKind, GiftEvent, Seq, StreamEvent,
    StreamState, SystemEvent, WelcomeEvent,
};
use crate::history::{CatchUp, Lookup, Resume};
use crate::identity::anonymous_user;
use crate::rate_limit::KeyedLimiter;
use crate::{
    Action, AggregatedEvent, Aggregates, BroadcastBudget, ClientMessage, ComboTracker, ConnId,
    Envelope, Error, GiftSummary, History, Identity, LikeAggregator, Millis, Moderation,
    RoomSettings, Sampler, SlowMode, User, ViewerThrottle,
};

/// The app of a room key, `live` of `live/demo`.
fn app_of(key: &str) -> &str {
    key.split('/').next().unwrap_or_default()
}

/// Who assigns seqs to the events a room keeps in history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sequencing {
    /// The room's own [`History`] numbers events; they come out as
    /// [`Output::Broadcast`] at once. One node, in-memory.
    #[default]
    Local,
    /// Events to keep come out as [`Output::Append`] drafts; the caller appends them to a
    /// shared log that assigns the seq and delivers the event to every node, where it goes
    /// back in through [`Room::handle_sequenced`] (which keeps it in the local history
    /// and broadcasts it). Several nodes sharing a log (Redis).
    External,
}

/// What became of a client message the room accepted.
#[derive(Debug, Clone)]
pub enum Sent {
    /// Kept in history and offered to every member.
    Broadcast(Arc<Envelope>),
    /// Kept in history, but over the room's broadcast budget ([`BroadcastBudget`]):
    /// only its sender is to be sent it (a gift is also summed into the next `gifts`).
    Shed(Arc<Envelope>),
    /// Counted into an aggregate event (a like, an aggregated custom event).
    Counted,
    /// With [`Sequencing::External`]: handed to the shared log, to come back sequenced.
    Appended,
}

/// Something the room wants done. Drain with [`Room::poll_output`] after every call.
#[derive(Debug)]
#[non_exhaustive]
pub enum Output {
    /// Offer this event to every member connection (each through its own [`Sampler`]).
    Broadcast(Arc<Envelope>),
    /// With [`Sequencing::External`]: append this to the shared log.
    Append(Draft),
    /// Close this connection (WebSocket close code: see docs/rooms.md). The member is
    /// already removed; [`Room::leave`] is not needed.
    Close { conn: ConnId, reason: CloseReason },
}

/// Why the room closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The user was banned from the room (or everywhere).
    Banned,
}

impl CloseReason {
    /// A short reason for the close frame and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            CloseReason::Banned => "banned",
        }
    }
}

/// What a connection gets when it joins.
#[derive(Debug)]
pub struct Joined {
    /// The `welcome` event: send it first.
    pub welcome: Arc<Envelope>,
    /// When a `since` was given: the `gap`/`reset` notice if any, then the missed events,
    /// oldest first. Sent after the welcome, unsampled.
    pub backlog: Vec<Arc<Envelope>>,
    /// The connection's sampler for everything broadcast from now on. Its last seq is
    /// the room's at join, so broadcasts already in `backlog` are not sent twice.
    pub sampler: Sampler,
}

/// A live room. See the crate documentation for how a server drives it.
#[derive(Debug)]
pub struct Room {
    key: String,
    settings: Arc<RoomSettings>,
    sequencing: Sequencing,
    history: History,
    members: BTreeMap<ConnId, Identity>,
    /// Members who count as viewers (see [`Room::viewers`]).
    audience_members: usize,
    media_viewers: u64,
    viewer_throttle: ViewerThrottle,
    likes: LikeAggregator,
    /// Custom events counted instead of sent one by one.
    aggregates: Aggregates,
    /// The aggregated events declared for this room alone (through the API).
    own_aggregated_events: Vec<AggregatedEvent>,
    /// How much of what the audience sends goes to every member.
    budget: BroadcastBudget,
    /// Gifts over the budget, summed.
    gift_summary: GiftSummary,
    combos: ComboTracker,
    chat_limits: KeyedLimiter,
    like_limits: KeyedLimiter,
    gift_limits: KeyedLimiter,
    custom_limits: KeyedLimiter,
    slow_mode: SlowMode,
    moderation: Moderation,
    stream: StreamState,
    empty_since: Option<Millis>,
    outputs: VecDeque<Output>,
}

impl Room {
    /// A new, empty room named `key` (the stream path, `live/demo`), sequencing locally.
    pub fn new(key: impl Into<String>, settings: Arc<RoomSettings>, now: Millis) -> Room {
        Room::with_sequencing(key, settings, Sequencing::Local, now)
    }

    /// A new, empty room with the given [`Sequencing`].
    pub fn with_sequencing(
        key: impl Into<String>,
        settings: Arc<RoomSettings>,
        sequencing: Sequencing,
        now: Millis,
    ) -> Room {
        let s = &settings;
        let users = s.max_tracked_users;
        let key = key.into();
        let aggregates =
            Aggregates::new(&s.aggregated_events, app_of(&key), s.aggregate_interval_ms);
        Room {
            key,
            aggregates,
            own_aggregated_events: Vec::new(),
            budget: BroadcastBudget::new(s, now),
            gift_summary: GiftSummary::new(s.aggregate_interval_ms),
            sequencing,
            history: History::new(s.history_max_events, s.history_max_age_ms)
                .with_priority_events(s.priority_history_events),
            members: BTreeMap::new(),
            audience_members: 0,
            media_viewers: 0,
            viewer_throttle: ViewerThrottle::new(s.viewers_interval_ms),
            likes: LikeAggregator::new(s.like_interval_ms),
            combos: ComboTracker::new(s.gift_combo_window_ms, users),
            chat_limits: KeyedLimiter::new(s.chat_rate(), users),
            like_limits: KeyedLimiter::new(s.like_rate(), users),
            gift_limits: KeyedLimiter::new(s.gift_rate(), users),
            custom_limits: KeyedLimiter::new(s.custom_rate(), users),
            slow_mode: SlowMode::new(s.slow_mode_ms, users),
            moderation: Moderation::new(s.max_moderation_entries),
            stream: StreamState::Offline,
            empty_since: Some(now),
            outputs: VecDeque::new(),
            settings,
        }
    }

    // ----- members -------------------------------------------------------------------

    /// Adds connection `conn` (WebSocket or SSE) with `identity`. With `since` (from
    /// `?since=SEQ` or `Last-Event-ID`), the backlog holds what it missed; without, none.
    ///
    /// Fails with `banned` (room list; check the global list with
    /// [`Moderation::check_join`] first) or `room_full`. Joining again with the same
    /// `conn` replaces its identity.
    ///
    /// Subscribe the connection to the room's broadcasts before (or atomically with)
    /// this call: the sampler drops what the backlog already holds, so overlap is safe,
    /// a hole is not. The welcome's `can_send` reflects the room's own lists and the
    /// anonymous setting, not the global mute list.
    pub fn join(
        &mut self,
        conn: ConnId,
        identity: Identity,
        since: Option<Seq>,
        now: Millis,
    ) -> Result<Joined, Error> {
        self.moderation.check_join(&identity, now)?;
        let max = self.settings.max_members_per_room;
        if !self.members.contains_key(&conn) && self.members.len() >= max {
            return Err(Error::RoomFull { max });
        }
        let own_id = match &identity {
            Identity::User(user) => Some(user.id.clone()),
            Identity::Anonymous => Some(anonymous_user(conn).id),
        };
        let can_send = match &identity {
            Identity::User(user) => self.moderation.muted(&user.id, now).is_none(),
            Identity::Anonymous => self.settings.anonymous_can_send,
        };
        let user = identity.user().cloned();
        tracing::debug!(room = %self.key, conn_id = conn.0, user_id = user.as_ref().map(|u| &*u.id), "room join");
        let audience = !identity.role().is_privileged();
        if let Some(replaced) = self.members.insert(conn, identity) {
            self.audience_members -= usize::from(!replaced.role().is_privileged());
        }
        self.audience_members += usize::from(audience);
        self.update_idle(now);
        self.flush(now);

        let backlog = match since {
            Some(since) => self.history.since(since, now).into_envelopes().collect(),
            None => Vec::new(),
        };
        let last_seq = self.history.last_seq();
        let mut sampler = Sampler::new(
            own_id,
            self.settings.viewer_chat_rate(),
            self.settings.skipped_notice_interval_ms,
            now,
        );
        sampler.set_last_seq(last_seq);
        let welcome = Envelope::shared(Event::Welcome(WelcomeEvent {
            ts: now,
            room: self.key.clone(),
            last_seq,
            viewers: self.viewers(),
            likes: self.likes.total(),
            stream: self.stream,
            slow_mode_ms: self.slow_mode.period_ms(),
            user,
            can_send,
        }));
        Ok(Joined {
            welcome,
            backlog,
            sampler,
        })
    }

    /// Removes connection `conn`; false if it was not a member.
    pub fn leave(&mut self, conn: ConnId, now: Millis) -> bool {
        let was = self.remove_member(conn);
        if was {
            tracing::debug!(room = %self.key, conn_id = conn.0, "room leave");
            self.update_idle(now);
            self.flush(now);
        }
        was
    }

    /// Takes `conn` out of the members and the audience count; false if it was not in.
    fn remove_member(&mut self, conn: ConnId) -> bool {
        let Some(identity) = self.members.remove(&conn) else {
            return false;
        };
        self.audience_members -= usize::from(!identity.role().is_privileged());
        true
    }

    /// The identity `conn` joined with.
    pub fn identity(&self, conn: ConnId) -> Option<&Identity> {
        self.members.get(&conn)
    }

    /// Connections in the room.
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// Sets how many watch the stream over media protocols (RTMP, HTTP-FLV, HLS, WebRTC).
    pub fn set_media_viewers(&mut self, count: u64, now: Millis) {
        self.media_viewers = count;
        self.update_idle(now);
        self.flush(now);
    }

    /// Media viewers, as last set.
    pub fn media_viewers(&self) -> u64 {
        self.media_viewers
    }

    /// Members who count as viewers: anonymous connections and users with the
    /// `viewer` role. Moderators, streamers and the platform's own connections (which
    /// carry a moderator or streamer token) are in the room but do not watch it.
    pub fn audience_members(&self) -> usize {
        self.audience_members
    }

    /// The viewer count: people watching, each counted once. Someone on a watch page
    /// holds one media playback and one room connection, so the count is the larger of
    /// the media viewers and the audience members, not their sum. Either alone falls
    /// short somewhere: media viewers when the video comes through a CDN (one pull per
    /// edge), audience members when people watch with a player that has no chat.
    pub fn viewers(&self) -> u64 {
        self.media_viewers.max(self.audience_members as u64)
    }

    // ----- client messages -----------------------------------------------------------

    /// Parses and handles one WebSocket text frame from `conn`. On `Err`, send
    /// [`Error::to_envelope`] to that connection only, and keep it open.
    pub fn handle_text(&mut self, conn: ConnId, text: &str, now: Millis) -> Result<(), Error> {
        let message = ClientMessage::parse(text, &self.settings).inspect_err(|err| {
            tracing::debug!(room = %self.key, conn_id = conn.0, code = %err.code(), "room message invalid");
        })?;
        self.handle_message(conn, message, now)
    }

    /// Handles a parsed message from `conn`. Checks, in order: membership, anonymous
    /// sending, the room's mute list, slow mode (chat), the per-user rate; then publishes.
    /// The global mute list is the caller's to check ([`Moderation::check_send`]).
    pub fn handle_message(
        &mut self,
        conn: ConnId,
        message: ClientMessage,
        now: Millis,
    ) -> Result<(), Error> {
        self.handle_message_sent(conn, message, now).map(drop)
    }

    /// [`handle_message`](Room::handle_message), answering with what became of it.
    pub fn handle_message_sent(
        &mut self,
        conn: ConnId,
        message: ClientMessage,
        now: Millis,
    ) -> Result<Sent, Error> {
        let result = self.admit(conn, message, now);
        if let Err(err) = &result {
            tracing::debug!(room = %self.key, conn_id = conn.0, code = %err.code(), "room message refused");
        }
        self.flush(now);
        result
    }

    fn sender(&self, conn: ConnId, now: Millis) -> Result<User, Error> {
        let identity = self.members.get(&conn).ok_or(Error::NotMember { conn })?;
        let user = match identity {
            Identity::User(user) => user.clone(),
            Identity::Anonymous if self.settings.anonymous_can_send => anonymous_user(conn),
            Identity::Anonymous => return Err(Error::LoginRequired),
        };
        self.moderation.check_send(&user.id, now)?;
        Ok(user)
    }

    fn admit(&mut self, conn: ConnId, message: ClientMessage, now: Millis) -> Result<Sent, Error> {
        let user = self.sender(conn, now)?;
        let limited = |action| {
            move |retry_after_ms| Error::RateLimited {
                action,
                retry_after_ms,
            }
        };
        let published = match message {
            ClientMessage::Chat { text } => {
                let exempt = user.role.is_privileged();
                if !exempt {
                    let period_ms = self.slow_mode.period_ms();
                    self.slow_mode
                        .check(&user.id, now)
                        .map_err(|retry_after_ms| Error::SlowMode {
                            period_ms,
                            retry_after_ms,
                        })?;
                }
                self.chat_limits
                    .try_take(&user.id, 1, now)
                    .map_err(limited(Action::Chat))?;
                if !exempt {
                    self.slow_mode.record(&user.id, now);
                }
                self.publish_sent(
                    Event::Chat(ChatEvent {
                        seq: Seq::ZERO,
                        ts: now,
                        id: Seq::ZERO,
                        user,
                        text,
                    }),
                    now,
                )
            }
            ClientMessage::Like { count } => {
                let taken = self
                    .like_limits
                    .take_up_to(&user.id, u64::from(count), now)
                    .map_err(limited(Action::Like))?;
                self.likes.add(taken);
                Sent::Counted
            }
            ClientMessage::Gift { gift, count } => {
                self.gift_limits
                    .try_take(&user.id, 1, now)
                    .map_err(limited(Action::Gift))?;
                let combo = self.combos.record(&user.id, &gift, count, now);
                self.publish_sent(
                    Event::Gift(GiftEvent {
                        seq: Seq::ZERO,
                        ts: now,
                        user,
                        gift,
                        count,
                        combo: combo.combo,
                        combo_total: combo.total,
                    }),
                    now,
                )
            }
            ClientMessage::Custom { name, data } => {
                self.custom_limits
                    .try_take(&user.id, 1, now)
                    .map_err(limited(Action::Custom))?;
                if self.aggregates.add(&name, &data) {
                    return Ok(Sent::Counted);
                }
                self.publish_sent(
                    Event::Custom(CustomEvent {
                        seq: Seq::ZERO,
                        ts: now,
                        name,
                        data,
                        user: Some(user),
                    }),
                    now,
                )
            }
        };
        Ok(published)
    }

    // ----- server-side events --------------------------------------------------------

    /// Posts a `system` message (REST API). Returns its seq ([`Sequencing::Local`]).
    pub fn post_system(&mut self, text: &str, now: Millis) -> Result<Option<Seq>, Error> {
        let text = validate_text(text, self.settings.system_max_chars)?;
        Ok(self.publish(
            Event::System(SystemEvent {
                seq: Seq::ZERO,
                ts: now,
                text,
            }),
            now,
        ))
    }

    /// Posts a `custom` event from the platform (REST API), optionally on behalf of `user`.
    pub fn post_custom(
        &mut self,
        name: &str,
        data: Value,
        user: Option<User>,
        now: Millis,
    ) -> Result<Option<Seq>, Error> {
        if !is_valid_custom_name(name) {
            return Err(Error::InvalidName);
        }
        check_data_size(&data, self.settings.custom_max_bytes)?;
        Ok(self.publish(
            Event::Custom(CustomEvent {
                seq: Seq::ZERO,
                ts: now,
                name: name.to_owned(),
                data,
                user,
            }),
            now,
        ))
    }

    /// The publisher started or stopped. Publishes a `stream` event when the state
    /// changes; returns whether it did.
    pub fn set_stream_state(&mut self, state: StreamState, now: Millis) -> bool {
        if self.stream == state {
            return false;
        }
        self.stream = state;
        tracing::debug!(room = %self.key, state = ?state, "room stream state");
        self.publish(
            Event::Stream(StreamEvent {
                seq: Seq::ZERO,
                ts: now,
                state,
            }),
            now,
        );
        self.update_idle(now);
        self.flush(now);
        true
    }

    /// Whether the stream is live.
    pub fn stream_state(&self) -> StreamState {
        self.stream
    }

    /// Every like tap so far.
    pub fn like_total(&self) -> u64 {
        self.likes.total()
    }

    /// Starts the like total from a stored value.
    pub fn set_like_total(&mut self, total: u64) {
        self.likes.set_total(total);
    }

    /// With [`Sequencing::External`]: an event the shared log sequenced (from any node).
    /// Keeps it in the local history and broadcasts it. Its seq must be after the last.
    /// Over the room's broadcast budget, it is kept but not broadcast (the budget is
    /// each node's own).
    pub fn handle_sequenced(&mut self, event: Event, now: Millis) -> Result<(), Error> {
        let offered = self.budget.offers(&event, now);
        let envelope = Envelope::shared(event);
        if !offered {
            self.history.insert_shed(Arc::clone(&envelope), now)?;
            self.sum_if_gift(envelope.event());
            self.flush(now);
            return Ok(());
        }
        self.history.insert(Arc::clone(&envelope), now)?;
        if let Event::Stream(stream) = envelope.event() {
            self.stream = stream.state;
            self.update_idle(now);
        }
        self.outputs.push_back(Output::Broadcast(envelope));
        self.flush(now);
        Ok(())
    }

    /// Publishes a client's message: to every member while the room's broadcast budget
    /// allows it, else kept for its sender only.
    fn publish_sent(&mut self, event: Event, now: Millis) -> Sent {
        if self.sequencing == Sequencing::External || self.budget.offers(&event, now) {
            return match self.publish_envelope(event, now) {
                Some(envelope) => Sent::Broadcast(envelope),
                None => Sent::Appended,
            };
        }
        self.sum_if_gift(&event);
        match Draft::new(event) {
            Some(draft) => Sent::Shed(self.history.append_shed(draft, now)),
            // Client messages are all kept kinds; never reached.
            None => Sent::Counted,
        }
    }

    fn sum_if_gift(&mut self, event: &Event) {
        if let Event::Gift(gift) = event {
            self.gift_summary.add(&gift.gift, gift.count);
        }
    }

    fn publish(&mut self, event: Event, now: Millis) -> Option<Seq> {
        self.publish_envelope(event, now).and_then(|e| e.seq())
    }

    /// Publishes `event`: with local sequencing, numbers it, keeps it and broadcasts it
    /// (and returns it); with external sequencing, hands it to the shared log.
    fn publish_envelope(&mut self, event: Event, now: Millis) -> Option<Arc<Envelope>> {
        let kind = event.kind();
        let Some(draft) = Draft::new(event) else {
            tracing::error!(room = %self.key, %kind, "tried to keep an ephemeral event in history");
            return None;
        };
        match self.sequencing {
            Sequencing::Local => {
                let envelope = self.history.append(draft, now);
                self.outputs
                    .push_back(Output::Broadcast(Arc::clone(&envelope)));
                Some(envelope)
            }
            Sequencing::External => {
                self.outputs.push_back(Output::Append(draft));
                None
            }
        }
    }

    // ----- moderation ----------------------------------------------------------------

    /// Deletes message `id` (a chat, custom or system event): publishes a `delete` event,
    /// and history stops replaying the message. A message already pushed out of history
    /// can still be deleted (clients may show it). Fails with `message_not_found` for an
    /// id the room never had, another kind of event, or a message already deleted.
    pub fn delete_message(&mut self, id: Seq, now: Millis) -> Result<Option<Seq>, Error> {
        match self.history.lookup(id) {
            Lookup::Present {
                kind: EventKind::Chat | EventKind::Custom | EventKind::System,
                deleted: false,
            }
            | Lookup::Evicted => {}
            _ => return Err(Error::MessageNotFound { id }),
        }
        tracing::info!(room = %self.key, id = id.0, "room message deleted");
        Ok(self.publish(
            Event::Delete(DeleteEvent {
                seq: Seq::ZERO,
                ts: now,
                id,
            }),
            now,
        ))
    }

    /// Mutes `user_id` in this room until `until` (`None`: until unmuted).
    pub fn mute(&mut self, user_id: &str, until: Option<Millis>, now: Millis) -> Result<(), Error> {
        self.moderation.mute(user_id, until, now)?;
        tracing::info!(room = %self.key, user_id, until = until.map(Millis::as_u64), "room mute");
        Ok(())
    }

    /// Lifts a mute in this room; false if there was none.
    pub fn unmute(&mut self, user_id: &str) -> bool {
        self.moderation.unmute(user_id)
    }

    /// Bans `user_id` from this room until `until` and closes its connections here;
    /// returns how many.
    pub fn ban(
        &mut self,
        user_id: &str,
        until: Option<Millis>,
        now: Millis,
    ) -> Result<usize, Error> {
        self.moderation.ban(user_id, until, now)?;
        tracing::info!(room = %self.key, user_id, until = until.map(Millis::as_u64), "room ban");
        Ok(self.kick_user(user_id, CloseReason::Banned, now))
    }

    /// Lifts a ban in this room; false if there was none.
    pub fn unban(&mut self, user_id: &str) -> bool {
        self.moderation.unban(user_id)
    }

    /// Removes every connection of `user_id` with [`Output::Close`]; returns how many.
    /// For a global ban, call it on every room.
    pub fn kick_user(&mut self, user_id: &str, reason: CloseReason, now: Millis) -> usize {
        let conns: Vec<ConnId> = self
            .members
            .iter()
            .filter(|(_, identity)| identity.user_id() == Some(user_id))
            .map(|(&conn, _)| conn)
            .collect();
        for &conn in &conns {
            self.remove_member(conn);
            self.outputs.push_back(Output::Close { conn, reason });
        }
        if !conns.is_empty() {
            self.update_idle(now);
            self.flush(now);
        }
        conns.len()
    }

    /// The room's mute and ban lists.
    pub fn moderation(&self) -> &Moderation {
        &self.moderation
    }

    /// The room's mute and ban lists, to change them without the per-entry log lines of
    /// [`mute`](Room::mute) and [`ban`](Room::ban) (restoring saved lists into a new
    /// room). Nothing is kicked.
    pub fn moderation_mut(&mut self) -> &mut Moderation {
        &mut self.moderation
    }

    /// Turns slow mode on (`period_ms` > 0) or off (0).
    pub fn set_slow_mode(&mut self, period_ms: u64) {
        tracing::info!(room = %self.key, period_ms, "room slow mode");
        self.slow_mode.set_period_ms(period_ms);
    }

    /// Slow mode period; 0 is off.
    pub fn slow_mode_ms(&self) -> u64 {
        self.slow_mode.period_ms()
    }

    /// Aggregates `events` in this room on top of what its app declares in the config
    /// (a name declared in both follows `events`); an empty list leaves the app's.
    /// Totals and pending taps of names still declared are kept.
    pub fn declare_aggregated_events(&mut self, events: Vec<AggregatedEvent>) -> Result<(), Error> {
        let app = app_of(&self.key);
        let configured = &self.settings.aggregated_events;
        check_room_declarations(configured, app, &events)?;
        self.aggregates
            .redeclare(room_declarations(configured, app, &events));
        tracing::info!(room = %self.key, events = events.len(), "room aggregated events declared");
        self.own_aggregated_events = events;
        Ok(())
    }

    /// The aggregated events declared for this room alone.
    pub fn own_aggregated_events(&self) -> &[AggregatedEvent] {
        &self.own_aggregated_events
    }

    /// Every custom event this room aggregates, with the values it counts one by one.
    pub fn aggregated_events(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.aggregates.declared()
    }

    // ----- history -------------------------------------------------------------------

    /// The newest seq.
    pub fn last_seq(&self) -> Seq {
        self.history.last_seq()
    }

    /// What a client that has everything up to `since` missed (see [`History`]).
    pub fn since(&mut self, since: Seq, now: Millis) -> Resume {
        self.history.since(since, now)
    }

    /// What a connection that fell behind the room after `after` gets back (see
    /// [`History::catch_up`]).
    pub fn catch_up(&mut self, after: Seq, now: Millis) -> CatchUp {
        self.history.catch_up(after, now)
    }

    /// The room's history.
    pub fn history(&self) -> &History {
        &self.history
    }

    // ----- driving -------------------------------------------------------------------

    /// The next thing to do, until `None`.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When to call [`handle_timeout`](Room::handle_timeout) next (pending likes, a
    /// changed viewer count); `None`: only after new input.
    pub fn poll_timeout(&self) -> Option<Millis> {
        [
            self.likes.poll_timeout(),
            self.viewer_throttle.poll_timeout(self.viewers()),
            self.aggregates.poll_timeout(),
            self.gift_summary.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Sends what is due (`like`, `viewers`, `aggregate`) and forgets expired state.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.flush(now);
        self.history.expire(now);
        self.combos.expire(now);
        self.moderation.expire(now);
    }

    fn flush(&mut self, now: Millis) {
        if let Some(like) = self.likes.poll(now) {
            self.outputs
                .push_back(Output::Broadcast(Envelope::shared(Event::Like(like))));
        }
        if let Some(viewers) = self.viewer_throttle.poll(self.viewers(), now) {
            self.outputs
                .push_back(Output::Broadcast(Envelope::shared(Event::Viewers(viewers))));
        }
        let mut aggregated = Vec::new();
        self.aggregates.poll(now, &mut aggregated);
        for event in aggregated {
            self.outputs
                .push_back(Output::Broadcast(Envelope::shared(Event::Aggregate(event))));
        }
        if let Some(gifts) = self.gift_summary.poll(now) {
            self.outputs
                .push_back(Output::Broadcast(Envelope::shared(Event::Gifts(gifts))));
        }
    }

    fn update_idle(&mut self, now: Millis) {
        let empty = self.members.is_empty()
            && self.media_viewers == 0
            && self.stream == StreamState::Offline;
        if !empty {
            self.empty_since = None;
        } else if self.empty_since.is_none() {
            self.empty_since = Some(now);
        }
    }

    /// When the room becomes idle if nothing happens: no members, no media viewers and
    /// no live stream for `room_idle_ms`. `None` while it is in use.
    pub fn idle_deadline(&self) -> Option<Millis> {
        self.empty_since
            .map(|t| t.add_ms(self.settings.room_idle_ms))
    }

    /// Idle at `now`: the registry may drop it (and its history).
    pub fn is_idle(&self, now: Millis) -> bool {
        self.idle_deadline().is_some_and(|t| now >= t)
    }

    /// The room's name.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The settings the room runs with.
    pub fn settings(&self) -> &Arc<RoomSettings> {
        &self.settings
    }

    /// How the room sequences events.
    pub fn sequencing(&self) -> Sequencing {
        self.sequencing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorCode, Role};
    use serde_json::json;

    const T0: Millis = Millis(1_700_000_000_000);

    fn at(ms: u64) -> Millis {
        T0.add_ms(ms)
    }

    fn settings() -> Arc<RoomSettings> {
        Arc::new(RoomSettings::default())
    }

    fn room() -> Room {
        Room::new("live/demo", settings(), T0)
    }

    fn user(id: &str, role: Role) -> Identity {
        User::new(id, id.to_uppercase(), role).into()
    }

    fn drain(room: &mut Room) -> Vec<Output> {
        std::iter::from_fn(|| room.poll_output()).collect()
    }

    fn broadcasts(room: &mut Room) -> Vec<Arc<Envelope>> {
        drain(room)
            .into_iter()
            .filter_map(|o| match o {
                Output::Broadcast(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    fn kinds(envelopes: &[Arc<Envelope>]) -> Vec<EventKind> {
        envelopes.iter().map(|e| e.kind()).collect()
    }

    fn chat(text: &str) -> String {
        json!({"type": "chat", "text": text}).to_string()
    }

    #[test]
    fn join_gets_a_welcome_snapshot() {
        let mut r = room();
        r.set_stream_state(StreamState::Live, at(0));
        r.set_media_viewers(10, at(0));
        let joined = r
            .join(ConnId(1), user("alice", Role::Viewer), None, at(5))
            .unwrap();
        assert_eq!(
            joined.welcome.json().as_ref(),
            br#"{"type":"welcome","ts":1700000000005,"room":"live/demo","last_seq":1,"viewers":10,"likes":0,"stream":"live","slow_mode_ms":0,"user":{"id":"alice","name":"ALICE","role":"viewer"},"can_send":true}"#
        );
        assert!(joined.backlog.is_empty());
        assert_eq!(joined.sampler.last_seq(), Seq(1));
        let anon = r.join(ConnId(2), Identity::Anonymous, None, at(5)).unwrap();
        let Event::Welcome(w) = anon.welcome.event() else {
            panic!("not a welcome")
        };
        assert_eq!((w.user.clone(), w.can_send), (None, false));
    }

    #[test]
    fn chat_round_trip_between_two_members() {
        let mut r = room();
        let mut a = r
            .join(ConnId(1), user("alice", Role::Viewer), None, at(0))
            .unwrap();
        let mut b = r
            .join(ConnId(2), user("bob", Role::Viewer), None, at(0))
            .unwrap();
        drain(&mut r);
        r.handle_text(ConnId(1), &chat("  hi bob "), at(10))
            .unwrap();
        let out = broadcasts(&mut r);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].json().as_ref(),
            br#"{"type":"chat","seq":1,"ts":1700000000010,"id":1,"user":{"id":"alice","name":"ALICE","role":"viewer"},"text":"hi bob"}"#
        );
        assert!(a.sampler.admit(&out[0], at(10)));
        assert!(b.sampler.admit(&out[0], at(10)));
        assert_eq!(r.last_seq(), Seq(1));
    }

    #[test]
    fn a_chat_flood_reaches_each_viewer_sampled_with_priorities() {
        // The room offers everything here: this is the viewer's sampling alone.
        let unbudgeted = RoomSettings {
            broadcast_chat_rate_window_ms: 0,
            ..RoomSettings::default()
        };
        let mut r = Room::new("live/demo", Arc::new(unbudgeted), T0);
        let mut viewer = r
            .join(ConnId(0), user("me", Role::Viewer), None, at(0))
            .unwrap();
        for i in 1..=50 {
            r.join(ConnId(i), user(&format!("u{i}"), Role::Viewer), None, at(0))
                .unwrap();
        }
        r.join(ConnId(99), user("host", Role::Streamer), None, at(0))
            .unwrap();
        drain(&mut r);
        // 50 users send 20 messages each within one second (1000 chat/s), the streamer
        // and the viewer itself one each at the end.
        let mut delivered = Vec::new();
        let mut notices = Vec::new();
        for k in 0..20u64 {
            for i in 1..=50 {
                let now = at(k * 50);
                r.handle_text(ConnId(i), &chat("spam"), now).unwrap();
                for e in broadcasts(&mut r) {
                    if viewer.sampler.admit(&e, now) {
                        delivered.push(e);
                    }
                }
                notices.extend(viewer.sampler.poll_skipped(now));
            }
        }
        r.handle_text(ConnId(99), &chat("host here"), at(999))
            .unwrap();
        r.handle_text(ConnId(0), &chat("me too"), at(999)).unwrap();
        for e in broadcasts(&mut r) {
            if viewer.sampler.admit(&e, at(999)) {
                delivered.push(e);
            }
        }
        notices.extend(viewer.sampler.poll_skipped(at(1000)));
        // 30 to start with plus one per 33.3 ms over 950 ms, plus the two priority ones.
        let from = |id: &str| {
            delivered
                .iter()
                .filter(|e| e.event().sender().is_some_and(|u| &*u.id == id))
                .count()
        };
        assert_eq!(from("host"), 1);
        assert_eq!(from("me"), 1);
        assert_eq!(delivered.len(), 30 + 28 + 2);
        let skipped: u64 = notices
            .iter()
            .map(|n| match n.event() {
                Event::Skipped(s) => s.count,
                _ => 0,
            })
            .sum();
        assert_eq!(skipped, 1000 - 58);
        assert_eq!(viewer.sampler.skipped_total(), 1000 - 58);
        assert_eq!(r.last_seq(), Seq(1002));
    }

    #[test]
    fn errors_go_to_the_sender_and_it_stays_a_member() {
        let mut r = room();
        r.join(ConnId(1), user("alice", Role::Viewer), None, at(0))
            .unwrap();
        drain(&mut r);
        let err = r.handle_text(ConnId(1), "{nope", at(1)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidJson);
        assert_eq!(
            r.handle_text(ConnId(9), &chat("x"), at(1)),
            Err(Error::NotMember { conn: ConnId(9) })
        );
        assert!(r.identity(ConnId(1)).is_some());
        assert!(drain(&mut r).is_empty());
    }

    #[test]
    fn anonymous_may_read_and_sends_only_when_allowed() {
        let mut r = room();
        r.join(ConnId(1), Identity::Anonymous, None, at(0)).unwrap();
        assert_eq!(
            r.handle_text(ConnId(1), &chat("hi"), at(0)),
            Err(Error::LoginRequired)
        );
        let open = Arc::new(RoomSettings {
            anonymous_can_send: true,
            ..RoomSettings::default()
        });
        let mut r = Room::new("live/demo", open, T0);
        let mut joined = r.join(ConnId(7), Identity::Anonymous, None, at(0)).unwrap();
        drain(&mut r);
        r.handle_text(ConnId(7), &chat("hi"), at(1)).unwrap();
        let out = broadcasts(&mut r);
        assert_eq!(
            out[0].event().sender(),
            Some(&User::new("anon:7", "anonymous", Role::Viewer))
        );
        // Its own (anonymous) messages count as its own for sampling.
        for _ in 0..40 {
            joined.sampler.admit(
                &Envelope::new(Event::Viewers(crate::event::ViewersEvent {
                    ts: at(1),
                    count: 1,
                })),
                at(1),
            );
        }
        assert!(joined.sampler.admit(&out[0], at(1)));
    }

    #[test]
    fn chat_rate_limit_twenty_per_thirty_seconds() {
        let mut r = room();
        r.join(ConnId(1), user("alice", Role::Viewer), None, at(0))
            .unwrap();
        for i in 0..20 {
            r.handle_text(ConnId(1), &chat(&format!("m{i}")), at(0))
                .unwrap();
        }
        let err = r
            .handle_text(ConnId(1), &chat("one too many"), at(0))
            .unwrap_err();
        assert_eq!(
            err,
            Error::RateLimited {
                action: Action::Chat,
                retry_after_ms: 1500
            }
        );
        let event = err.to_envelope(at(0));
        assert!(std::str::from_utf8(event.json())
            .unwrap()
            .contains(r#""code":"rate_limited""#));
        // Refill: one message per 1.5 s.
        assert!(r.handle_text(ConnId(1), &chat("later"), at(1499)).is_err());
        r.handle_text(ConnId(1), &chat("later"), at(1500)).unwrap();
        // Other users have their own bucket.
        r.join(ConnId(2), user("bob", Role::Viewer), None, at(0))
            .unwrap();
        r.handle_text(ConnId(2), &chat("hi"), at(1500)).unwrap();
    }

    #[test]
    fn slow_mode_spares_moderators_and_does_not_spend_rate() {
        let mut r = room();
        r.join(ConnId(1), user("alice", Role::Viewer), None, at(0))
            .unwrap();
        r.join(ConnId(2), user("mod", Role::Moderator), None, at(0))
            .unwrap();
        r.join(ConnId(3), user("host", Role::Streamer), None, at(0))
            .unwrap();
        r.set_slow_mode(10_000);
        r.handle_text(ConnId(1), &chat("1"), at(0)).unwrap();
        for i in 1..10 {
            assert_eq!(
                r.handle_text(ConnId(1), &chat("again"), at(i * 100)),
                Err(Error::SlowMode {
                    period_ms: 10_000,
                    retry_after_ms: 10_000 - i * 100
                })
            );
        }
        // The refused attempts did not use up rate-limit tokens.
        r.handle_text(ConnId(1), &chat("2"), at(10_000)).unwrap();
        for i in 0..5 {
            r.handle_text(ConnId(2), &chat(&format!("mod {i}")), at(10_000))
                .unwrap();
            r.handle_text(ConnId(3), &chat(&format!("host {i}")), at(10_000))
                .unwrap();
        }
        r.set_slow_mode(0);
        r.handle_text(ConnId(1), &chat("3"), at(10_001)).unwrap();
        let joined = r
            .join(ConnId(4), Identity::Anonymous, None, at(10_001))
            .unwrap();
        let Event::Welcome(w) = joined.welcome.event() else {
            panic!("not a welcome")
        };
        assert_eq!(w.slow_mode_ms, 0);
    }

    #[test]
    fn muted_users_read_but_cannot_send_until_the_mute_ends() {
        let mut r = room();
        r.join(ConnId(1), user("alice", Role::Viewer), None, at(0))
            .unwrap();
        r.mute("alice", Some(at(60_000)), at(0)).unwrap();
        for msg in [
            chat("hi"),
            r#"{"type":"like"}"#.to_owned(),
            r#"{"type":"gift","gift":"rose"}"#.to_owned(),
            r#"{"type":"custom","name":"x"}"#.to_owned(),
        ] {
            assert_eq!(
                r.handle_text(ConnId(1), &msg, at(1)),
                Err(Error::Muted {
                    until: Some(at(60_000))
                })
            );
        }
        assert_eq!(r.member_count(), 1);
        let again = r
            .join(ConnId(2), user("alice", Role::Viewer), None, at(2))
            .unwrap();
        let Event::Welcome(w) = again.welcome.event() else {
            panic!("not a welcome")
        };
        assert!(!w.can_send);
        r.handle_text(ConnId(1), &chat("free"), at(60_000)).unwrap();
        r.mute("alice", None, at(60_000)).unwrap();
        assert!(r.handle_text(ConnId(1), &chat("x"), at(61_000)).is_err());
        assert!(r.unmute("alice"));
        r.handle_text(ConnId(1), &chat("x"), at(61_000)).unwrap();
    }

    #[test]
    fn ban_closes_connections_and_refuses_joins() {
        let mut r = room();
        r.join(ConnId(1), user("troll", Role::Viewer), None, at(0))
            .unwrap();
        r.join(ConnId(2), user("troll", Role::Viewer), None, at(0))
            .unwrap();
        r.join(ConnId(3), user("alice", Role::Viewer), None, at(0))
            .unwrap();
        drain(&mut r);
        assert_eq!(r.ban("troll", Some(at(3_600_000)), at(2000)).unwrap(), 2);
        let out = drain(&mut r);
        let closed: Vec<ConnId> = out
            .iter()
            .filter_map(|o| match o {
                Output::Close {
                    conn,
                    reason: CloseReason::Banned,
                } => Some(*conn),
                _ => None,
            })
            .collect();
        assert_eq!(closed.len(), 2);
        assert!(closed.contains(&ConnId(1)) && closed.contains(&ConnId(2)));
        assert_eq!(r.member_count(), 1);
        assert_eq!(
            r.join(ConnId(4), user("troll", Role::Viewer), None, at(2001))
                .unwrap_err()
                .code(),
            ErrorCode::Banned
        );
        // Ban over: back in.
        r.join(ConnId(4), user("troll", Role::Viewer), None, at(3_602_000))
            .unwrap();
        assert!(r.unban("troll"));
    }

    #[test]
    fn delete_reaches_clients_and_history_stops_replaying_the_message() {
        let mut r = room();
        r.join(ConnId(1), user("alice", Role::Viewer), None, at(0))
            .unwrap();
        r.handle_text(ConnId(1), &chat("fine"), at(0)).unwrap();
        r.handle_text(ConnId(1), &chat("rude"), at(1)).unwrap();
        r.handle_message(
            ConnId(1),
            ClientMessage::Gift {
                gift: "rose".into(),
                count: 1,
            },
            at(2),
        )
        .unwrap();
        drain(&mut r);
        assert_eq!(r.delete_message(Seq(2), at(3)), Ok(Some(Seq(4))));
        let out = broadcasts(&mut r);
        assert_eq!(
            out[0].json().as_ref(),
            br#"{"type":"delete","seq":4,"ts":1700000000003,"id":2}"#
        );
        let resume = r.since(Seq(0), at(4));
        let seqs: Vec<u64> = resume
            .events
            .iter()
            .filter_map(|e| e.seq())
            .map(|s| s.0)
            .collect();
        assert_eq!(seqs, vec![1, 3, 4]);
        // Twice, never existed, a gift, seq 0: not found.
        for id in [2, 99, 3, 0] {
            assert_eq!(
                r.delete_message(Seq(id), at(5)),
                Err(Error::MessageNotFound { id: Seq(id) })
            );
        }
    }

    #[test]
    fn a_message_already_out_of_history_can_still_be_deleted() {
        let s = Arc::new(RoomSettings {
            history_max_events: 2,
            ..RoomSettings::default()
        });
        let mut r = Room::new("live/demo", s, T0);
        for i in 0..3 {
            r.post_system(&format!("s{i}"), at(0)).unwrap();
        }
        assert_eq!(r.delete_message(Seq(1), at(1)), Ok(Some(Seq(4))));
    }

    #[test]
    fn likes_from_many_users_become_one_event_per_interval() {
        let mut r = room();
        for i in 0..100 {
            r.join(ConnId(i), user(&format!("u{i}"), Role::Viewer), None, at(0))
                .unwrap();
        }
        r.handle_timeout(at(0));
        drain(&mut r);
        let mut likes = Vec::new();
        // Every user taps 10 times a second (one tap per 100 ms each, staggered) for 1 s.
        for ms in 0..1000u64 {
            let conn = ConnId(ms % 100);
            r.handle_text(conn, r#"{"type":"like"}"#, at(ms)).unwrap();
            if r.poll_timeout().is_some_and(|t| t <= at(ms)) {
                r.handle_timeout(at(ms));
            }
            likes.extend(broadcasts(&mut r));
        }
        while let Some(t) = r.poll_timeout() {
            r.handle_timeout(t);
            likes.extend(broadcasts(&mut r));
        }
        let likes: Vec<_> = likes
            .iter()
            .filter_map(|e| match e.event() {
                Event::Like(l) => Some(l.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(likes.iter().map(|l| l.count).sum::<u64>(), 1000);
        assert_eq!(likes.last().unwrap().total, 1000);
        assert_eq!(r.like_total(), 1000);
        assert!(
            likes.len() <= 5,
            "{} like events in one second",
            likes.len()
        );
        for pair in likes.windows(2) {
            assert!(pair[1].ts.ms_since(pair[0].ts) >= 250);
        }
        // Likes are not kept in history.
        assert_eq!(r.last_seq(), Seq(0));
    }

    #[test]
    fn like_taps_count_up_to_the_per_user_cap() {
        let mut r = room();
        r.join(ConnId(1), user("alice", Role::Viewer), None, at(0))
            .unwrap();
        // A batch of 50 taps: 20 fit the default 20 per second.
        r.handle_text(ConnId(1), r#"{"type":"like","count":50}"#, at(0))
            .unwrap();
        assert_eq!(r.like_total(), 20);
        let err = r
            .handle_text(ConnId(1), r#"{"type":"like"}"#, at(0))
            .unwrap_err();
        assert_eq!(
            err,
            Error::RateLimited {
                action: Action::Like,
                retry_after_ms: 50
            }
        );
        // Ten taps a second, every one counted.
        for i in 1..=10 {
            r.handle_text(ConnId(1), r#"{"type":"like"}"#, at(1000 + i * 100))
                .unwrap();
        }
        assert_eq!(r.like_total(), 30);
    }

    #[test]
    fn over_its_broadcast_budget_a_room_keeps_messages_for_their_senders_and_sums_gifts() {
        let settings = RoomSettings {
            broadcast_chat_rate_count: 10,
            broadcast_gift_rate_count: 5,
            chat_rate_count: 1_000,
            gift_rate_count: 1_000,
            ..RoomSettings::default()
        };
        let mut r = Room::new("live/demo", Arc::new(settings), T0);
        r.join(ConnId(1), user("fan", Role::Viewer), None, at(0))
            .unwrap();
        r.join(ConnId(2), user("host", Role::Streamer), None, at(0))
            .unwrap();
        drain(&mut r);
        let mut shed = Vec::new();
        for _ in 0..100 {
            match r.handle_message_sent(
                ConnId(1),
                ClientMessage::parse(&chat("hi"), r.settings()).unwrap(),
                at(0),
            ) {
                Ok(Sent::Shed(envelope)) => shed.push(envelope),
                Ok(Sent::Broadcast(_)) => {}
                other => panic!("{other:?}"),
            }
        }
        // The streamer is never shed.
        let host = ClientMessage::parse(&chat("host here"), r.settings()).unwrap();
        assert!(matches!(
            r.handle_message_sent(ConnId(2), host, at(0)),
            Ok(Sent::Broadcast(_))
        ));
        let gift = r#"{"type":"gift","gift":"rose","count":3}"#;
        for _ in 0..50 {
            r.handle_text(ConnId(1), gift, at(0)).unwrap();
        }
        let out = broadcasts(&mut r);
        let count = |kind| out.iter().filter(|e| e.kind() == kind).count();
        assert_eq!(count(EventKind::Chat), 10 + 1);
        assert_eq!(count(EventKind::Gift), 5);
        // Every accepted message is kept, with its seq; the shed ones for their sender.
        assert_eq!(shed.len(), 90);
        assert_eq!(r.last_seq(), Seq(151));
        assert!(shed.windows(2).all(|w| w[0].seq() < w[1].seq()));
        // Gifts past the budget leave summed, at most once per interval, with the
        // exact count: the first at once, the rest when the interval is over.
        let gifts = |events: &[Arc<Envelope>]| -> Vec<crate::GiftsEvent> {
            events
                .iter()
                .filter_map(|e| match e.event() {
                    Event::Gifts(g) => Some(g.clone()),
                    _ => None,
                })
                .collect()
        };
        let mut summed = gifts(&out);
        assert_eq!(summed.len(), 1);
        assert_eq!(r.poll_timeout(), Some(at(250)));
        r.handle_timeout(at(250));
        summed.extend(gifts(&broadcasts(&mut r)));
        assert_eq!(summed.len(), 2);
        let messages: u64 = summed.iter().map(|g| g.messages).sum();
        let roses: u64 = summed.iter().map(|g| g.gifts["rose"]).sum();
        assert_eq!((messages, roses), (45, 135));
        // The budget refills: a tenth of a second later one more chat goes to everyone.
        let later = ClientMessage::parse(&chat("later"), r.settings()).unwrap();
        assert!(matches!(
            r.handle_message_sent(ConnId(1), later, at(350)),
            Ok(Sent::Broadcast(_))
        ));
    }

    #[test]
    fn gifts_are_kept_with_their_combo() {
        let mut r = room();
        r.join(ConnId(1), user("alice", Role::Viewer), None, at(0))
            .unwrap();
        drain(&mut r);
        let gift = r#"{"type":"gift","gift":"rose","count":5}"#;
        r.handle_text(ConnId(1), gift, at(0)).unwrap();
        r.handle_text(ConnId(1), gift, at(2000)).unwrap();
        r.handle_text(ConnId(1), gift, at(4000)).unwrap();
        r.handle_text(ConnId(1), gift, at(8000)).unwrap();
        let combos: Vec<(u32, u64)> = broadcasts(&mut r)
            .iter()
            .filter_map(|e| match e.event() {
                Event::Gift(g) => Some((g.combo, g.combo_total)),
                _ => None,
            })
            .collect();
        assert_eq!(combos, vec![(1, 5), (2, 10), (3, 15), (1, 5)]);
        assert_eq!(r.last_seq(), Seq(4));
        // Ten gift messages a second per user, then rate_limited.
        for _ in 0..10 {
            r.handle_text(ConnId(1), gift, at(20_000)).unwrap();
        }
        assert_eq!(
            r.handle_text(ConnId(1), gift, at(20_000))
                .unwrap_err()
                .code(),
            ErrorCode::RateLimited
        );
    }

    #[test]
    fn custom_events_from_clients_and_the_platform() {
        let mut r = room();
        r.join(ConnId(1), user("alice", Role::Viewer), None, at(0))
            .unwrap();
        drain(&mut r);
        r.handle_text(
            ConnId(1),
            r#"{"type":"custom","name":"poll.vote","data":{"choice":2}}"#,
            at(1),
        )
        .unwrap();
        r.post_custom("poll.close", json!({"winner": 2}), None, at(2))
            .unwrap();
        let out = broadcasts(&mut r);
        assert_eq!(
            out[0].json().as_ref(),
            br#"{"type":"custom","seq":1,"ts":1700000000001,"name":"poll.vote","data":{"choice":2},"user":{"id":"alice","name":"ALICE","role":"viewer"}}"#
        );
        assert_eq!(
            out[1].json().as_ref(),
            br#"{"type":"custom","seq":2,"ts":1700000000002,"name":"poll.close","data":{"winner":2}}"#
        );
        assert_eq!(
            r.post_custom("bad name", Value::Null, None, at(3)),
            Err(Error::InvalidName)
        );
    }

    #[test]
    fn system_messages_are_validated() {
        let mut r = room();
        assert_eq!(r.post_system("  Welcome!  ", at(0)), Ok(Some(Seq(1))));
        assert_eq!(r.post_system(" ", at(0)), Err(Error::EmptyText));
        assert_eq!(
            r.post_system("a\u{7}", at(0)).unwrap_err().code(),
            ErrorCode::ControlCharacter
        );
        let Some(Output::Broadcast(e)) = r.poll_output() else {
            panic!("no broadcast")
        };
        assert_eq!(
            e.json().as_ref(),
            br#"{"type":"system","seq":1,"ts":1700000000000,"text":"Welcome!"}"#
        );
    }

    #[test]
    fn a_ban_closes_connections_in_conn_id_order_which_is_join_order() {
        let mut r = room();
        for conn in [9, 3, 7, 1] {
            r.join(ConnId(conn), user("troll", Role::Viewer), None, at(0))
                .unwrap();
        }
        r.ban("troll", None, at(0)).unwrap();
        let closed: Vec<u64> = std::iter::from_fn(|| r.poll_output())
            .filter_map(|out| match out {
                Output::Close { conn, .. } => Some(conn.0),
                _ => None,
            })
            .collect();
        assert_eq!(closed, [1, 3, 7, 9]);
    }

    #[test]
    fn a_person_watching_and_chatting_is_one_viewer() {
        let mut r = room();
        // The watch page: one media playback and one room connection.
        r.set_media_viewers(1, at(0));
        r.join(ConnId(1), Identity::Anonymous, None, at(0)).unwrap();
        assert_eq!(r.viewers(), 1);
        // The admin page and the platform's connections are in the room, not watching.
        r.join(ConnId(2), user("mod", Role::Moderator), None, at(0))
            .unwrap();
        r.join(ConnId(3), user("host", Role::Streamer), None, at(0))
            .unwrap();
        assert_eq!(
            (r.member_count(), r.audience_members(), r.viewers()),
            (3, 1, 1)
        );
        // Chat readers without video (a CDN plays it): the members are the count.
        r.join(ConnId(4), user("alice", Role::Viewer), None, at(0))
            .unwrap();
        r.join(ConnId(5), Identity::Anonymous, None, at(0)).unwrap();
        assert_eq!(r.viewers(), 3);
        // A rejoin with another identity replaces the old one.
        r.join(ConnId(5), user("mod2", Role::Moderator), None, at(0))
            .unwrap();
        assert_eq!(r.audience_members(), 2);
        r.leave(ConnId(4), at(0));
        r.leave(ConnId(2), at(0));
        assert_eq!((r.audience_members(), r.viewers()), (1, 1));
        r.set_media_viewers(0, at(0));
        r.leave(ConnId(1), at(0));
        assert_eq!(r.viewers(), 0);
        // A ban takes the user's connections out of the count too.
        r.join(ConnId(6), user("troll", Role::Viewer), None, at(0))
            .unwrap();
        r.join(ConnId(7), user("troll", Role::Viewer), None, at(0))
            .unwrap();
        assert_eq!(r.viewers(), 2);
        assert_eq!(r.ban("troll", None, at(0)).unwrap(), 2);
        assert_eq!((r.member_count(), r.audience_members()), (2, 0));
    }

    #[test]
    fn viewers_follow_members_and_media_at_most_once_a_second() {
        let mut r = room();
        r.join(ConnId(1), Identity::Anonymous, None, at(0)).unwrap();
        let first = broadcasts(&mut r);
        assert_eq!(
            first[0].json().as_ref(),
            br#"{"type":"viewers","ts":1700000000000,"count":1}"#
        );
        // More joins and media viewers within the second: held back.
        r.join(ConnId(2), Identity::Anonymous, None, at(100))
            .unwrap();
        r.set_media_viewers(40, at(200));
        assert!(broadcasts(&mut r).is_empty());
        assert_eq!(r.poll_timeout(), Some(at(1000)));
        r.handle_timeout(at(1000));
        let out = broadcasts(&mut r);
        assert_eq!(kinds(&out), vec![EventKind::Viewers]);
        assert_eq!(
            out[0].event(),
            &Event::Viewers(crate::event::ViewersEvent {
                ts: at(1000),
                count: 40
            })
        );
        // A leave and a join inside the next second: no change, no event.
        r.leave(ConnId(2), at(1100));
        r.join(ConnId(3), Identity::Anonymous, None, at(1200))
            .unwrap();
        assert_eq!(r.poll_timeout(), None);
        r.handle_timeout(at(5000));
        assert!(broadcasts(&mut r).is_empty());
    }

    #[test]
    fn stream_state_is_kept_in_history_and_only_on_change() {
        let mut r = room();
        assert!(r.set_stream_state(StreamState::Live, at(0)));
        assert!(!r.set_stream_state(StreamState::Live, at(1)));
        assert!(r.set_stream_state(StreamState::Offline, at(2)));
        let out = broadcasts(&mut r);
        assert_eq!(
            out[0].json().as_ref(),
            br#"{"type":"stream","seq":1,"ts":1700000000000,"state":"live"}"#
        );
        assert_eq!(
            out[1].json().as_ref(),
            br#"{"type":"stream","seq":2,"ts":1700000000002,"state":"offline"}"#
        );
    }

    #[test]
    fn resume_through_join() {
        let mut r = room();
        for i in 0..5 {
            r.post_system(&format!("s{i}"), at(i)).unwrap();
        }
        drain(&mut r);
        let joined = r
            .join(ConnId(1), Identity::Anonymous, Some(Seq(3)), at(10))
            .unwrap();
        let seqs: Vec<_> = joined.backlog.iter().filter_map(|e| e.seq()).collect();
        assert_eq!(seqs, vec![Seq(4), Seq(5)]);
        let joined = r
            .join(ConnId(2), Identity::Anonymous, Some(Seq(50)), at(10))
            .unwrap();
        assert_eq!(joined.backlog[0].kind(), EventKind::Reset);
        assert_eq!(joined.backlog.len(), 6);
    }

    #[test]
    fn idle_only_when_empty_offline_and_quiet_long_enough() {
        let mut r = room();
        assert_eq!(r.idle_deadline(), Some(at(60_000)));
        r.join(ConnId(1), Identity::Anonymous, None, at(10))
            .unwrap();
        assert!(!r.is_idle(at(1_000_000)));
        r.leave(ConnId(1), at(20));
        assert!(!r.is_idle(at(60_019)));
        assert!(r.is_idle(at(60_020)));
        r.set_stream_state(StreamState::Live, at(70_000));
        assert!(!r.is_idle(at(1_000_000)));
        r.set_stream_state(StreamState::Offline, at(80_000));
        r.set_media_viewers(3, at(80_000));
        assert!(!r.is_idle(at(1_000_000)));
        r.set_media_viewers(0, at(90_000));
        assert!(r.is_idle(at(150_000)));
    }

    #[test]
    fn room_full() {
        let s = Arc::new(RoomSettings {
            max_members_per_room: 2,
            ..RoomSettings::default()
        });
        let mut r = Room::new("live/demo", s, T0);
        r.join(ConnId(1), Identity::Anonymous, None, at(0)).unwrap();
        r.join(ConnId(2), Identity::Anonymous, None, at(0)).unwrap();
        assert_eq!(
            r.join(ConnId(3), Identity::Anonymous, None, at(0))
                .unwrap_err(),
            Error::RoomFull { max: 2 }
        );
        // Re-joining an existing connection is not a new member.
        r.join(ConnId(2), user("alice", Role::Viewer), None, at(0))
            .unwrap();
        assert_eq!(r.member_count(), 2);
    }

    #[test]
    fn external_sequencing_goes_through_the_shared_log() {
        let mut node_a = Room::with_sequencing("live/demo", settings(), Sequencing::External, T0);
        let mut node_b = Room::with_sequencing("live/demo", settings(), Sequencing::External, T0);
        node_a
            .join(ConnId(1), user("alice", Role::Viewer), None, at(0))
            .unwrap();
        drain(&mut node_a);
        node_a
            .handle_text(ConnId(1), &chat("hello"), at(1))
            .unwrap();
        let Some(Output::Append(draft)) = node_a.poll_output() else {
            panic!("expected a draft")
        };
        assert_eq!(node_a.last_seq(), Seq(0));
        // The log assigns seq 17 and both nodes receive the event (as JSON, say).
        let wire = serde_json::to_string(&draft.into_event(Seq(17))).unwrap();
        for node in [&mut node_a, &mut node_b] {
            let event: Event = serde_json::from_str(&wire).unwrap();
            node.handle_sequenced(event, at(2)).unwrap();
            let out = broadcasts(node);
            assert_eq!(out[0].seq(), Some(Seq(17)));
            assert_eq!(node.last_seq(), Seq(17));
        }
        // A delete goes through the log too and tombstones on every node.
        assert_eq!(node_b.delete_message(Seq(17), at(3)), Ok(None));
        let Some(Output::Append(delete)) = node_b.poll_output() else {
            panic!("expected a draft")
        };
        let event = delete.into_event(Seq(18));
        node_a.handle_sequenced(event.clone(), at(4)).unwrap();
        node_b.handle_sequenced(event, at(4)).unwrap();
        assert_eq!(node_a.since(Seq(0), at(5)).events.len(), 1);
        drain(&mut node_a);
        // Stream state arrives from the log as well.
        node_a.set_stream_state(StreamState::Live, at(6));
        let Some(Output::Append(live)) = node_a.poll_output() else {
            panic!("expected a draft")
        };
        node_b
            .handle_sequenced(live.into_event(Seq(19)), at(7))
            .unwrap();
        assert_eq!(node_b.stream_state(), StreamState::Live);
    }

    #[test]
    fn two_thousand_members_waving_make_one_aggregate_event_per_interval() {
        let settings = Arc::new(RoomSettings {
            aggregated_events: vec![crate::AggregatedEvent {
                name: "gesture.wave".into(),
                values: vec!["hi".into(), "bye".into()],
                apps: vec![],
            }],
            ..RoomSettings::default()
        });
        let mut r = Room::new("live/stadium", settings, T0);
        for i in 0..2_000 {
            r.join(ConnId(i), user(&format!("u{i}"), Role::Viewer), None, at(0))
                .unwrap();
        }
        drain(&mut r);
        let wave = |value: &str| {
            json!({"type": "custom", "name": "gesture.wave", "data": {"value": value}}).to_string()
        };
        // Every member waves once within one second, in 10 ms steps of 20 members.
        let mut events = Vec::new();
        for i in 0..2_000u64 {
            let now = at(i / 20 * 10);
            let value = if i % 5 == 0 { "bye" } else { "hi" };
            r.handle_text(ConnId(i), &wave(value), now).unwrap();
            events.extend(broadcasts(&mut r));
        }
        r.handle_timeout(at(2_000));
        events.extend(broadcasts(&mut r));
        assert!(
            events.iter().all(|e| e.kind() != EventKind::Custom),
            "no wave sent one by one"
        );
        let aggregates: Vec<crate::AggregateEvent> = events
            .iter()
            .filter_map(|e| match e.event() {
                Event::Aggregate(a) => Some(a.clone()),
                _ => None,
            })
            .collect();
        // At most one per 250 ms: the first at once, then one per interval.
        for pair in aggregates.windows(2) {
            assert!(pair[1].ts.ms_since(pair[0].ts) >= 250, "{pair:?}");
        }
        assert!(
            aggregates.len() <= 1 + 1_000 / 250 + 1,
            "{}",
            aggregates.len()
        );
        assert_eq!(aggregates.iter().map(|a| a.count).sum::<u64>(), 2_000);
        assert_eq!(aggregates.last().unwrap().total, 2_000);
        let bye: u64 = aggregates.iter().map(|a| a.values["bye"]).sum();
        let hi: u64 = aggregates.iter().map(|a| a.values["hi"]).sum();
        assert_eq!((bye, hi), (400, 1_600));
        // The wire form.
        let first = events
            .iter()
            .find(|e| e.kind() == EventKind::Aggregate)
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(first.json()).unwrap();
        assert_eq!(json["type"], "aggregate");
        assert_eq!(json["name"], "gesture.wave");
        assert!(json["values"]["hi"].is_u64());
        // Undeclared custom events still go out one by one, kept in history.
        r.handle_text(
            ConnId(1),
            &json!({"type": "custom", "name": "poll.vote", "data": {}}).to_string(),
            at(3_000),
        )
        .unwrap();
        let sent = broadcasts(&mut r);
        assert_eq!(kinds(&sent), [EventKind::Custom]);
        assert!(sent[0].seq().is_some());
    }
}
