//! Aggregated custom events: taps of a declared custom event (`gesture.wave`) are
//! counted, and a room sends at most one `aggregate` event per name per interval,
//! like `like` events, instead of one event per tap.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::AggregateEvent;
use crate::Millis;

/// Most custom event names a server may declare aggregated.
pub const MAX_AGGREGATED_EVENTS: usize = 32;
/// Most values counted one by one per aggregated event.
pub const MAX_AGGREGATED_VALUES: usize = 16;
/// Longest value counted one by one, in bytes.
pub const MAX_VALUE_LEN: usize = 64;

/// A custom event counted instead of sent one by one (`[[rooms.aggregated_events]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregatedEvent {
    /// The custom event's `name`, e.g. `gesture.wave`.
    pub name: String,
    /// Values of the event's `data.value` counted one by one, e.g. which gesture; any
    /// other value counts only in the total.
    #[serde(default)]
    pub values: Vec<String>,
    /// Apps whose rooms aggregate it; empty: every app.
    #[serde(default)]
    pub apps: Vec<String>,
}

impl AggregatedEvent {
    /// Whether rooms of `app` aggregate this event.
    pub fn applies_to(&self, app: &str) -> bool {
        self.apps.is_empty() || self.apps.iter().any(|a| a == app)
    }
}

/// One room's aggregated custom events.
#[derive(Debug, Clone)]
pub struct Aggregates {
    interval_ms: u64,
    counters: Vec<Counter>,
}

#[derive(Debug, Clone)]
struct Counter {
    name: String,
    values: Vec<String>,
    pending: u64,
    pending_values: Vec<u64>,
    total: u64,
    last_emit: Option<Millis>,
}

impl Counter {
    fn due(&self, interval_ms: u64) -> Millis {
        self.last_emit
            .map_or(Millis::ZERO, |t| t.add_ms(interval_ms))
    }
}

impl Aggregates {
    /// The events `declared` that rooms of `app` aggregate, each sent at most once per
    /// `interval_ms`.
    pub fn new(declared: &[AggregatedEvent], app: &str, interval_ms: u64) -> Aggregates {
        let counters = declared
            .iter()
            .filter(|d| d.applies_to(app))
            .map(|d| Counter {
                name: d.name.clone(),
                values: d.values.clone(),
                pending: 0,
                pending_values: vec![0; d.values.len()],
                total: 0,
                last_emit: None,
            })
            .collect();
        Aggregates {
            interval_ms,
            counters,
        }
    }

    /// Counts one `name` event with `data` (its `value`, when declared, one by one).
    /// Returns whether `name` is aggregated here.
    pub fn add(&mut self, name: &str, data: &Value) -> bool {
        let Some(counter) = self.counters.iter_mut().find(|c| c.name == name) else {
            return false;
        };
        counter.pending = counter.pending.saturating_add(1);
        counter.total = counter.total.saturating_add(1);
        let value = data.get("value").and_then(Value::as_str);
        if let Some(i) = value.and_then(|v| counter.values.iter().position(|d| d == v)) {
            counter.pending_values[i] = counter.pending_values[i].saturating_add(1);
        }
        true
    }

    /// Every `aggregate` event due at `now`, one per name with pending taps.
    pub fn poll(&mut self, now: Millis, out: &mut Vec<AggregateEvent>) {
        for counter in &mut self.counters {
            if counter.pending == 0 || now < counter.due(self.interval_ms) {
                continue;
            }
            let values: BTreeMap<String, u64> = counter
                .values
                .iter()
                .zip(&mut counter.pending_values)
                .map(|(value, count)| (value.clone(), std::mem::take(count)))
                .collect();
            out.push(AggregateEvent {
                ts: now,
                name: counter.name.clone(),
                count: std::mem::take(&mut counter.pending),
                total: counter.total,
                values,
            });
            counter.last_emit = Some(now);
        }
    }

    /// When [`poll`](Aggregates::poll) will have an event, if taps are pending.
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.counters
            .iter()
            .filter(|c| c.pending > 0)
            .map(|c| c.due(self.interval_ms))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wave() -> Vec<AggregatedEvent> {
        vec![AggregatedEvent {
            name: "gesture.wave".into(),
            values: vec!["left".into(), "right".into()],
            apps: vec!["live".into()],
        }]
    }

    #[test]
    fn taps_leave_as_one_event_per_interval_with_exact_counts() {
        let mut a = Aggregates::new(&wave(), "live", 250);
        assert!(!a.add("gesture.clap", &json!({})));
        for i in 0..2_000 {
            let value = if i % 4 == 0 { "left" } else { "right" };
            assert!(a.add("gesture.wave", &json!({ "value": value })));
        }
        a.add("gesture.wave", &json!({ "value": "up" }));
        a.add("gesture.wave", &json!(null));
        let mut out = Vec::new();
        a.poll(Millis(0), &mut out);
        assert_eq!(out.len(), 1);
        let event = &out[0];
        assert_eq!((event.count, event.total), (2_002, 2_002));
        assert_eq!(event.values["left"], 500);
        assert_eq!(event.values["right"], 1_500);
        // Within the interval: held, then sent together.
        out.clear();
        a.add("gesture.wave", &json!({ "value": "left" }));
        a.poll(Millis(100), &mut out);
        assert!(out.is_empty());
        assert_eq!(a.poll_timeout(), Some(Millis(250)));
        a.poll(Millis(250), &mut out);
        assert_eq!((out[0].count, out[0].total), (1, 2_003));
        assert_eq!(out[0].values["right"], 0);
        assert_eq!(a.poll_timeout(), None);
    }

    #[test]
    fn only_the_declared_apps_aggregate() {
        assert!(Aggregates::new(&wave(), "live", 250).add("gesture.wave", &json!(null)));
        assert!(!Aggregates::new(&wave(), "games", 250).add("gesture.wave", &json!(null)));
        let everywhere = vec![AggregatedEvent {
            apps: vec![],
            ..wave()[0].clone()
        }];
        assert!(Aggregates::new(&everywhere, "games", 250).add("gesture.wave", &json!(null)));
    }
}
