//! Prometheus metrics: `GET /metrics` in the OpenMetrics text format.
//!
//! Hot paths only bump plain atomics (once per batch where they are per frame);
//! everything that is state already (open connections, live streams, rooms, webhook
//! counts, process memory) is read when Prometheus scrapes. Label values come only
//! from the fixed enums in [`labels`]: never a stream name, user, address or key.
//! Per-stream figures belong to the REST API.

mod gauge;
mod http;
mod labels;
mod member;
mod process;
mod scrape;

#[cfg(test)]
mod text_check;

use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) use gauge::Tracked;
pub(crate) use http::{router as metrics_router, serve_metrics, track_requests};
pub(crate) use labels::{Proto, PublishRefusal, RefuseReason};
pub(crate) use member::MemberMetrics;
pub(crate) use scrape::render;

type PerProto = [AtomicU64; Proto::COUNT];

/// Server-wide counters and the gauges connections hold (see [`Tracked`]).
#[derive(Debug)]
pub(crate) struct Metrics {
    connections_accepted: PerProto,
    connections_refused: [PerProto; RefuseReason::ALL.len()],
    connections_open: PerProto,
    publishers: PerProto,
    publishes: PerProto,
    publishes_refused: [AtomicU64; PublishRefusal::ALL.len()],
    viewers: PerProto,
    plays: PerProto,
    viewers_write_timeout: AtomicU64,
    members: PerProto,
    member_joins: PerProto,
    /// Events written to room connections.
    room_deliveries: PerProto,
    /// Chat a connection's sampler left out.
    room_chat_skipped: AtomicU64,
    /// Room connections closed because their client stopped reading.
    members_stalled: AtomicU64,
    /// Kept events room connections skipped to keep up with their room (`gap` events).
    room_events_lost: AtomicU64,
    requests_rate_limited: AtomicU64,
    http: http::RequestDurations,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        Self {
            connections_accepted: Default::default(),
            connections_refused: Default::default(),
            connections_open: Default::default(),
            publishers: Default::default(),
            publishes: Default::default(),
            publishes_refused: Default::default(),
            viewers: Default::default(),
            plays: Default::default(),
            viewers_write_timeout: AtomicU64::new(0),
            members: Default::default(),
            member_joins: Default::default(),
            room_deliveries: Default::default(),
            room_chat_skipped: AtomicU64::new(0),
            members_stalled: AtomicU64::new(0),
            room_events_lost: AtomicU64::new(0),
            requests_rate_limited: AtomicU64::new(0),
            http: http::RequestDurations::new(),
        }
    }

    pub(crate) fn connection_refused(&self, proto: Proto, reason: impl Into<RefuseReason>) {
        let reason = reason.into();
        let row = RefuseReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or_default();
        bump(&self.connections_refused[row][proto.index()], 1);
    }

    pub(crate) fn publish_refused(&self, reason: PublishRefusal) {
        let slot = PublishRefusal::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or_default();
        bump(&self.publishes_refused[slot], 1);
    }

    /// A viewer was let go for not keeping up. Too-slow viewers are counted by the hub.
    pub(crate) fn viewer_write_timeout(&self) {
        bump(&self.viewers_write_timeout, 1);
    }

    /// `events` were written to a room connection of `proto`.
    pub(crate) fn room_delivered(&self, proto: Proto, events: usize) {
        bump(&self.room_deliveries[proto.index()], events as u64);
    }

    /// A connection's sampler left out `chat` more messages.
    pub(crate) fn room_chat_skipped(&self, chat: u64) {
        if chat > 0 {
            bump(&self.room_chat_skipped, chat);
        }
    }

    pub(crate) fn member_stalled(&self) {
        bump(&self.members_stalled, 1);
    }

    /// A connection skipped `events` kept events to keep up with its room.
    pub(crate) fn room_events_lost(&self, events: u64) {
        if events > 0 {
            bump(&self.room_events_lost, events);
        }
    }

    pub(crate) fn request_rate_limited(&self) {
        bump(&self.requests_rate_limited, 1);
    }
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}
