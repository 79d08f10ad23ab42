//! Gauges that connections hold: a [`Tracked`] counts one open connection, publisher,
//! viewer or room member for as long as it lives, and counts the start in the matching
//! `_total` counter.

use std::sync::Arc;

use super::{bump, Metrics, PerProto, Proto};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Connection,
    Publisher,
    Viewer,
    Member,
}

/// One of something, counted while it lives.
#[derive(Debug)]
pub(crate) struct Tracked {
    metrics: Arc<Metrics>,
    role: Role,
    proto: Proto,
}

impl Tracked {
    pub(crate) fn connection(metrics: &Arc<Metrics>, proto: Proto) -> Self {
        Self::new(metrics, Role::Connection, proto)
    }

    pub(crate) fn publisher(metrics: &Arc<Metrics>, proto: Proto) -> Self {
        Self::new(metrics, Role::Publisher, proto)
    }

    pub(crate) fn viewer(metrics: &Arc<Metrics>, proto: Proto) -> Self {
        Self::new(metrics, Role::Viewer, proto)
    }

    pub(crate) fn member(metrics: &Arc<Metrics>, proto: Proto) -> Self {
        Self::new(metrics, Role::Member, proto)
    }

    fn new(metrics: &Arc<Metrics>, role: Role, proto: Proto) -> Self {
        let (gauge, started) = slots(metrics, role);
        bump(&gauge[proto.index()], 1);
        bump(&started[proto.index()], 1);
        Self {
            metrics: Arc::clone(metrics),
            role,
            proto,
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let (gauge, _) = slots(&self.metrics, self.role);
        // Always after the matching increment, so the gauge never goes below zero.
        gauge[self.proto.index()].fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The gauge and the started-total counter of `role`.
fn slots(metrics: &Metrics, role: Role) -> (&PerProto, &PerProto) {
    match role {
        Role::Connection => (&metrics.connections_open, &metrics.connections_accepted),
        Role::Publisher => (&metrics.publishers, &metrics.publishes),
        Role::Viewer => (&metrics.viewers, &metrics.plays),
        Role::Member => (&metrics.members, &metrics.member_joins),
    }
}
