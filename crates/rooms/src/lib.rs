//! The live room model: everything about a room's chat, likes, gifts, viewer count and
//! stream status that can be decided without a socket or a clock.
//!
//! Every stream path (`live/demo`) has a [`Room`]. Clients send [`ClientMessage`]s; the
//! room checks them (membership, mutes, slow mode, per-user token buckets), turns them
//! into [`Event`]s, numbers the ones it keeps in its bounded [`History`] with a per-room
//! [`Seq`], and hands each out once as an [`Envelope`] whose JSON bytes every connection
//! shares. Likes are aggregated into one event per interval ([`LikeAggregator`]), gifts
//! carry their combo ([`ComboTracker`]), the viewer count is pushed at most once a second
//! and only on change ([`ViewerThrottle`]), and each connection's [`Sampler`] keeps chat
//! within what one person can read while never dropping the priority events.
//! docs/rooms.md is the wire reference (every event, message, error code and setting).
//!
//! # Driving a room (what the server does)
//!
//! Sans-IO in the style of quinn-proto and str0m: inputs go in with the time
//! ([`Millis`], Unix milliseconds), outputs come out of
//! [`Room::poll_output`] until it returns `None`, and [`Room::poll_timeout`] says when to
//! call [`Room::handle_timeout`].
//!
//! ```
//! use std::sync::Arc;
//! use onair_rooms::{ConnId, Identity, Millis, Output, Registry, Role, RoomSettings, User};
//!
//! let mut rooms: Registry = Registry::new(Arc::new(RoomSettings::default()));
//! let now = Millis(1_700_000_000_000);
//!
//! // A WebSocket upgrade for /ws/live/demo?since=0 with a valid token:
//! let alice = Identity::User(User::new("u1", "Alice", Role::Viewer));
//! let mut joined = rooms.join("live/demo", ConnId(1), alice, Some(onair_rooms::Seq(0)), now)?;
//! // send joined.welcome, then joined.backlog, then the live feed through joined.sampler.
//!
//! // A text frame from that connection:
//! if let Err(err) = rooms.handle_text("live/demo", ConnId(1), r#"{"type":"chat","text":"hi"}"#, now) {
//!     let _frame = err.to_envelope(now); // to this connection only; it stays open
//! }
//!
//! // Drain what the room wants done.
//! let room = rooms.get_mut("live/demo").expect("joined above");
//! while let Some(output) = room.poll_output() {
//!     match output {
//!         Output::Broadcast(event) => {
//!             // for each member connection: if sampler.admit(&event, now) { send event.json() }
//!             if joined.sampler.admit(&event, now) {
//!                 let _text_frame: &[u8] = event.json();
//!             }
//!         }
//!         Output::Close { conn, reason } => { let _ = (conn, reason); /* close with the code for reason */ }
//!         Output::Append(_draft) => unreachable!("only with Sequencing::External"),
//!         _ => {}
//!     }
//! }
//! // Sleep until room.poll_timeout() (and each sampler's poll_timeout), then
//! // room.handle_timeout(now) and drain again; sweep idle rooms now and then.
//! rooms.sweep(now);
//! # Ok::<(), onair_rooms::Error>(())
//! ```
//!
//! What the transport adds around this:
//! - **Fan-out.** [`Output::Broadcast`] goes to every member through a bounded channel
//!   (e.g. a tokio `broadcast`); each connection runs its [`Sampler`] on what it
//!   receives and sends [`Envelope::json`] (WebSocket text) or [`Envelope::sse`] (SSE).
//!   Subscribe before [`Room::join`]: the sampler drops what the backlog already sent.
//!   When a connection's queue is full, drop [`EventKind::is_droppable`] events first.
//! - **Per-connection events.** `welcome` and the backlog from [`Joined`], `error` from
//!   [`Error::to_envelope`], `skipped` from [`Sampler::poll_skipped`].
//! - **Identity.** The server verifies tokens and passes an [`Identity`]; the crate
//!   never sees a token.
//! - **Server inputs.** [`Room::set_stream_state`] from the media hub,
//!   [`Room::set_media_viewers`] with the media viewer count, [`Room::post_system`],
//!   [`Room::post_custom`], [`Room::delete_message`], [`Room::mute`], [`Room::ban`],
//!   [`Room::set_slow_mode`] from the REST API, [`Registry::global_mut`] and
//!   [`Registry::ban_everywhere`] for the global lists.
//! - **Concurrency.** One room is one `&mut Room`: run each room in its own task or
//!   behind its own lock so a hot room never slows another. [`Registry`] is generic over
//!   what it holds ([`Idle`]) so it can hold handles to such tasks; the global lists are
//!   checked by the caller with [`Moderation::check_join`] / [`Moderation::check_send`]
//!   (the `Registry<Room>` helpers do it).
//! - **Storage.** With [`Sequencing::Local`] the room's own [`History`] assigns seqs
//!   (one node, in memory). With [`Sequencing::External`] the room emits
//!   [`Output::Append`] drafts for a shared log (Redis) that assigns the seq and fans the
//!   event out to every node, which feeds it back with [`Room::handle_sequenced`]; the
//!   room logic does not change. [`History::insert`] keeps a node's local mirror.
//!
//! # What it deliberately does not do
//!
//! No IO, no tokio, no clock, no randomness: time is passed in, so every test runs in
//! virtual time and the same inputs give the same outputs. No token verification, no
//! WebSocket/SSE framing beyond the shared bytes, no close codes (docs/rooms.md proposes
//! them), no persistence. Likes totals and viewer counts are per node; merging them
//! across nodes is the storage layer's job.

mod aggregates;
mod budget;
mod client_message;
mod envelope;
mod error;
mod event;
mod gifts;
mod history;
mod identity;
mod likes;
mod moderation;
mod rate_limit;
mod registry;
mod room;
mod sampler;
mod settings;
mod slow_mode;
mod time;
mod viewers;

pub use aggregates::{
    check_declaration, check_room_declarations, AggregatedEvent, Aggregates, MAX_AGGREGATED_EVENTS,
    MAX_VALUE_CHARS,
};
pub use budget::BroadcastBudget;
pub use client_message::{
    check_data_size, is_valid_custom_name, is_valid_gift_name, validate_text, ClientMessage,
};
pub use envelope::Envelope;
pub use error::{Action, Error, ErrorCode};
pub use event::{
    AggregateEvent, ChatEvent, CustomEvent, DeleteEvent, Draft, ErrorEvent, Event, EventKind,
    GapEvent, GiftEvent, GiftsEvent, LikeEvent, ResetEvent, Seq, SkippedEvent, StreamEvent,
    StreamState, SystemEvent, ViewersEvent, WelcomeEvent,
};
pub use gifts::{Combo, ComboTracker, GiftSummary, MAX_SUMMED_GIFT_KINDS};
pub use history::{is_priority, CatchUp, History, Lookup, Resume};
pub use identity::{ConnId, Identity, Role, User};
pub use likes::LikeAggregator;
pub use moderation::Moderation;
pub use rate_limit::{KeyedLimiter, TokenBucket};
pub use registry::{Idle, Registry};
pub use room::{CloseReason, Joined, Output, Room, Sent, Sequencing};
pub use sampler::Sampler;
pub use settings::{RateLimit, RoomSettings, ROOM_BACKENDS};
pub use slow_mode::SlowMode;
pub use time::Millis;
pub use viewers::ViewerThrottle;
