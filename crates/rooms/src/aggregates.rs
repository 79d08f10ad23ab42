//! Aggregated custom events: taps of a declared custom event (`gesture.wave`) are
//! counted, and a room sends at most one `aggregate` event per name per interval,
//! like `like` events, instead of one event per tap.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client_message::is_valid_custom_name;
use crate::event::AggregateEvent;
use crate::{Error, Millis};

/// Most custom event names a server may declare aggregated.
pub const MAX_AGGREGATED_EVENTS: usize = 32;
/// Most values counted one by one per aggregated event.
pub const MAX_AGGREGATED_VALUES: usize = 16;
/// Longest value counted one by one, in characters.
pub const MAX_VALUE_CHARS: usize = 64;

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

/// Why a list of declarations is refused, or `Ok`: at most 32, valid custom event
/// names each declared once, at most 16 values each of 1 to 64 characters.
pub fn check_declarations(declared: &[AggregatedEvent]) -> Result<(), &'static str> {
    if declared.len() > MAX_AGGREGATED_EVENTS {
        return Err("at most 32 aggregated events");
    }
    for (i, event) in declared.iter().enumerate() {
        check_declaration(event)?;
        if declared[..i].iter().any(|e| e.name == event.name) {
            return Err("each name may be declared once");
        }
    }
    Ok(())
}

/// Why one declaration is refused, or `Ok`: a valid custom event name, at most 16
/// values of 1 to 64 characters.
pub fn check_declaration(event: &AggregatedEvent) -> Result<(), &'static str> {
    if !is_valid_custom_name(&event.name) {
        return Err("each name must be a valid custom event name");
    }
    if event.values.len() > MAX_AGGREGATED_VALUES
        || event
            .values
            .iter()
            .any(|v| v.is_empty() || v.chars().count() > MAX_VALUE_CHARS)
    {
        return Err("at most 16 values each, each 1 to 64 characters");
    }
    Ok(())
}

/// `Ok` when a room of `app` may aggregate `own` on top of what is `configured`.
pub fn check_room_declarations(
    configured: &[AggregatedEvent],
    app: &str,
    own: &[AggregatedEvent],
) -> Result<(), Error> {
    let refuse = |reason| Err(Error::InvalidDeclaration { reason });
    if own.iter().any(|e| !e.apps.is_empty()) {
        return refuse("a room's own declarations name no apps");
    }
    check_declarations(own).or_else(refuse)?;
    if room_declarations(configured, app, own).count() > MAX_AGGREGATED_EVENTS {
        return refuse("at most 32 aggregated events with the app's");
    }
    Ok(())
}

/// What a room of `app` aggregates: the configured declarations for its app and the
/// room's own (made through the API), the room's replacing a configured one of the
/// same name.
pub fn room_declarations<'a>(
    configured: &'a [AggregatedEvent],
    app: &'a str,
    own: &'a [AggregatedEvent],
) -> impl Iterator<Item = &'a AggregatedEvent> {
    configured
        .iter()
        .filter(move |c| c.applies_to(app) && !own.iter().any(|o| o.name == c.name))
        .chain(own)
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
    /// No longer declared: counts nothing more, and goes once its pending taps are sent.
    retired: bool,
}

impl Counter {
    fn new(declared: &AggregatedEvent) -> Counter {
        Counter {
            name: declared.name.clone(),
            values: declared.values.clone(),
            pending: 0,
            pending_values: vec![0; declared.values.len()],
            total: 0,
            last_emit: None,
            retired: false,
        }
    }

    /// This counter under a new declaration of its name: totals and pending taps
    /// kept, pending per-value counts kept for the values still declared.
    fn redeclared(mut self, declared: &AggregatedEvent) -> Counter {
        let pending_values = declared
            .values
            .iter()
            .map(|v| {
                let old = self.values.iter().position(|o| o == v);
                old.map_or(0, |i| self.pending_values[i])
            })
            .collect();
        self.values = declared.values.clone();
        self.pending_values = pending_values;
        self.retired = false;
        self
    }

    fn due(&self, interval_ms: u64) -> Millis {
        self.last_emit
            .map_or(Millis::ZERO, |t| t.add_ms(interval_ms))
    }
}

impl Aggregates {
    /// The events `declared` that rooms of `app` aggregate, each sent at most once per
    /// `interval_ms`.
    pub fn new(declared: &[AggregatedEvent], app: &str, interval_ms: u64) -> Aggregates {
        let counters = room_declarations(declared, app, &[])
            .map(Counter::new)
            .collect();
        Aggregates {
            interval_ms,
            counters,
        }
    }

    /// Aggregates `declared` from now on. A name declared before keeps its total and
    /// its pending taps; one no longer declared sends what it holds, then goes.
    pub fn redeclare<'a>(&mut self, declared: impl IntoIterator<Item = &'a AggregatedEvent>) {
        let mut old = std::mem::take(&mut self.counters);
        for d in declared {
            let counter = match old.iter().position(|c| c.name == d.name) {
                Some(i) => old.swap_remove(i).redeclared(d),
                None => Counter::new(d),
            };
            self.counters.push(counter);
        }
        for mut counter in old.into_iter().filter(|c| c.pending > 0) {
            counter.retired = true;
            self.counters.push(counter);
        }
    }

    /// The names aggregated, with their values, in declaration order.
    pub fn declared(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.counters
            .iter()
            .filter(|c| !c.retired)
            .map(|c| (c.name.as_str(), c.values.as_slice()))
    }

    /// Counts one `name` event with `data` (its `value`, when declared, one by one).
    /// Returns whether `name` is aggregated here.
    pub fn add(&mut self, name: &str, data: &Value) -> bool {
        let counted = |c: &&mut Counter| c.name == name && !c.retired;
        let Some(counter) = self.counters.iter_mut().find(counted) else {
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
        self.counters.retain(|c| !c.retired || c.pending > 0);
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

    #[test]
    fn a_redeclared_name_keeps_its_counts_and_a_dropped_one_sends_what_it_holds() {
        let mut a = Aggregates::new(&wave(), "live", 250);
        a.add("gesture.wave", &json!({ "value": "left" }));
        a.add("gesture.wave", &json!({ "value": "right" }));
        let clap = AggregatedEvent {
            name: "gesture.clap".into(),
            values: vec![],
            apps: vec![],
        };
        let wave_up = AggregatedEvent {
            values: vec!["up".into(), "left".into()],
            ..wave()[0].clone()
        };
        a.redeclare([&wave_up, &clap]);
        assert!(a.add("gesture.clap", &json!(null)));
        a.add("gesture.wave", &json!({ "value": "up" }));
        let mut out = Vec::new();
        a.poll(Millis(0), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].count, out[0].total), (3, 3));
        let values: Vec<_> = out[0]
            .values
            .iter()
            .map(|(v, n)| (v.as_str(), *n))
            .collect();
        assert_eq!(values, [("left", 1), ("up", 1)]);
        assert_eq!((out[1].name.as_str(), out[1].count), ("gesture.clap", 1));

        // Dropped with taps pending: they still go out, then the name counts no more.
        a.add("gesture.wave", &json!(null));
        a.redeclare([&clap]);
        assert!(!a.add("gesture.wave", &json!(null)));
        let names: Vec<_> = a.declared().map(|(name, _)| name).collect();
        assert_eq!(names, ["gesture.clap"]);
        out.clear();
        a.poll(Millis(250), &mut out);
        assert_eq!(
            (out[0].name.as_str(), out[0].count, out[0].total),
            ("gesture.wave", 1, 4)
        );
        out.clear();
        a.add("gesture.clap", &json!(null));
        a.poll(Millis(500), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(a.poll_timeout(), None);
    }

    #[test]
    fn a_rooms_own_declaration_replaces_the_apps_of_the_same_name() {
        let own = vec![AggregatedEvent {
            name: "gesture.wave".into(),
            values: vec![],
            apps: vec![],
        }];
        let extra = AggregatedEvent {
            name: "poll.vote".into(),
            ..own[0].clone()
        };
        let configured = [wave(), vec![extra.clone()]].concat();
        let in_live: Vec<_> = room_declarations(&configured, "live", &own).collect();
        assert_eq!(in_live, [&extra, &own[0]]);
        let in_games: Vec<_> = room_declarations(&configured, "games", &[]).collect();
        assert_eq!(in_games, [&extra]);
        assert!(check_declarations(&[own[0].clone(), own[0].clone()]).is_err());
        assert!(check_declarations(&configured).is_ok());
    }
}
