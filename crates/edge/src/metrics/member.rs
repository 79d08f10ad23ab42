//! One room connection's part in the metrics: it counts as a member while it lives,
//! and reports what it delivered and what its sampler left out.

use std::sync::Arc;

use super::{Metrics, Proto, Tracked};
use crate::rooms::{Member, MemberEnd, MemberStats};

#[derive(Debug)]
pub(crate) struct MemberMetrics {
    /// Counts the connection in `onair_room_members` while it lives.
    _gauge: Tracked,
    metrics: Arc<Metrics>,
    proto: Proto,
    /// The sampler's skipped-chat total already counted.
    skipped_seen: u64,
    /// The member's lost-events total already counted.
    lost_seen: u64,
}

impl MemberMetrics {
    pub(crate) fn new(metrics: &Arc<Metrics>, proto: Proto) -> Self {
        Self {
            _gauge: Tracked::member(metrics, proto),
            metrics: Arc::clone(metrics),
            proto,
            skipped_seen: 0,
            lost_seen: 0,
        }
    }
}

impl MemberStats for MemberMetrics {
    fn delivered(&mut self, events: usize, member: &Member) {
        self.metrics.room_delivered(self.proto, events);
        self.count_skipped(member);
    }

    fn ended(&mut self, member: &Member, _: &MemberEnd) {
        self.count_skipped(member);
    }

    fn stalled(&mut self, member: &Member) {
        self.metrics.member_stalled();
        self.count_skipped(member);
    }

    fn delivered_events(&self, events: usize) {
        self.metrics.room_delivered(self.proto, events);
    }

    fn count_skipped(&mut self, member: &Member) {
        let total = member.skipped_chat();
        self.metrics
            .room_chat_skipped(total.saturating_sub(self.skipped_seen));
        self.skipped_seen = total;
        let lost = member.lost_events();
        self.metrics
            .room_events_lost(lost.saturating_sub(self.lost_seen));
        self.lost_seen = lost;
    }
}
