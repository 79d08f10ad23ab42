//! The `[webhooks]` settings (docs/configuration.md and docs/webhooks.md describe them).

use std::fmt;
use std::time::Duration;

use onair_rooms::EventKind;
use serde::{Deserialize, Serialize};

use onair_media::SettingsError;

/// The notifications there are, as named in payloads, headers and `webhooks.events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventName {
    OnPublish,
    OnUnpublish,
    OnPlay,
    OnPlayStop,
    OnRecordDone,
    OnRoomEvent,
}

impl EventName {
    pub const ALL: [EventName; 6] = [
        EventName::OnPublish,
        EventName::OnUnpublish,
        EventName::OnPlay,
        EventName::OnPlayStop,
        EventName::OnRecordDone,
        EventName::OnRoomEvent,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventName::OnPublish => "on_publish",
            EventName::OnUnpublish => "on_unpublish",
            EventName::OnPlay => "on_play",
            EventName::OnPlayStop => "on_play_stop",
            EventName::OnRecordDone => "on_record_done",
            EventName::OnRoomEvent => "on_room_event",
        }
    }

    pub(super) const fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Where notifications are POSTed. Unset: no notifications (the publish decision
    /// has its own URL, `auth.publish_webhook`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// HMAC key of the `Onair-Signature` header; generated into the data dir as
    /// `webhook-secret` when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Notifications to send. `on_room_event` also needs `room_event_types`.
    pub events: Vec<EventName>,
    /// Room event types (`chat`, `gift`, …) sent as `on_room_event`; empty: none.
    pub room_event_types: Vec<String>,
    /// Notifications waiting to be sent; when full, new ones are dropped and counted.
    pub queue_capacity: usize,
    /// Longest one notification POST may take.
    pub timeout_ms: u64,
    /// Tries per notification (the first one included) before it is given up.
    pub max_attempts: u32,
    /// Wait before the first retry; it doubles per retry, with jitter.
    pub backoff_initial_ms: u64,
    /// Longest wait between two tries.
    pub backoff_max_ms: u64,
    /// Longest the publish decision call may take before the publish is refused.
    pub publish_timeout_ms: u64,
    /// Let a publish through when the decision call times out or cannot connect.
    pub publish_fail_open: bool,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            url: None,
            secret: None,
            events: EventName::ALL.to_vec(),
            room_event_types: Vec::new(),
            queue_capacity: 1024,
            timeout_ms: 5_000,
            max_attempts: 5,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 30_000,
            publish_timeout_ms: 3_000,
            publish_fail_open: false,
        }
    }
}

impl fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a token in its query and the secret is one: neither is shown.
        f.debug_struct("WebhookSettings")
            .field("url", &self.url.as_ref().map(|_| ".."))
            .field("secret", &self.secret.as_ref().map(|_| ".."))
            .field("events", &self.events)
            .field("room_event_types", &self.room_event_types)
            .field("queue_capacity", &self.queue_capacity)
            .field("timeout_ms", &self.timeout_ms)
            .field("max_attempts", &self.max_attempts)
            .field("backoff_initial_ms", &self.backoff_initial_ms)
            .field("backoff_max_ms", &self.backoff_max_ms)
            .field("publish_timeout_ms", &self.publish_timeout_ms)
            .field("publish_fail_open", &self.publish_fail_open)
            .finish()
    }
}

impl WebhookSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        let fail = |key, reason: String| Err(SettingsError { key, reason });
        if let Some(url) = &self.url {
            if let Err(reason) = check_url(url) {
                return fail("webhooks.url", reason);
            }
        }
        if self.secret.as_deref().is_some_and(str::is_empty) {
            return fail("webhooks.secret", "must not be empty".to_owned());
        }
        if let Err(unknown) = self.room_kinds() {
            return fail(
                "webhooks.room_event_types",
                format!("{unknown:?} is not a room event type that is broadcast"),
            );
        }
        if self.queue_capacity == 0 {
            return fail("webhooks.queue_capacity", "must be at least 1".to_owned());
        }
        if self.max_attempts == 0 {
            return fail("webhooks.max_attempts", "must be at least 1".to_owned());
        }
        if self.timeout_ms == 0 || self.publish_timeout_ms == 0 {
            return fail(
                "webhooks.timeout_ms",
                "timeouts must be at least 1 ms".to_owned(),
            );
        }
        if self.backoff_initial_ms == 0 || self.backoff_initial_ms > self.backoff_max_ms {
            return fail(
                "webhooks.backoff_initial_ms",
                "must be at least 1 and at most backoff_max_ms".to_owned(),
            );
        }
        Ok(())
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn publish_timeout(&self) -> Duration {
        Duration::from_millis(self.publish_timeout_ms)
    }

    /// The room event kinds of `room_event_types`, or the first name that is not one.
    pub(super) fn room_kinds(&self) -> Result<Vec<EventKind>, String> {
        self.room_event_types
            .iter()
            .map(|name| {
                EventKind::ALL
                    .iter()
                    .copied()
                    .find(|kind| kind.as_str() == name && !kind.is_per_connection())
                    .ok_or_else(|| name.clone())
            })
            .collect()
    }

    /// `events` as a bit set of [`EventName::bit`].
    pub(super) fn event_bits(&self) -> u8 {
        self.events.iter().fold(0, |bits, name| bits | name.bit())
    }
}

/// An absolute `http` or `https` URL.
pub(super) fn check_url(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(()),
        Ok(_) => Err("must be an http or https URL".to_owned()),
        Err(error) => Err(format!("not a URL: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_send_every_notification_but_no_room_events() {
        let settings = WebhookSettings::default();
        settings.validate().unwrap();
        assert_eq!(settings.events.len(), EventName::ALL.len());
        assert!(settings.room_kinds().unwrap().is_empty());
    }

    #[test]
    fn bad_values_are_refused() {
        let bad = |tweak: fn(&mut WebhookSettings)| {
            let mut settings = WebhookSettings::default();
            tweak(&mut settings);
            settings.validate().unwrap_err().key
        };
        assert_eq!(bad(|s| s.url = Some("ftp://x/".into())), "webhooks.url");
        assert_eq!(bad(|s| s.url = Some("hooks".into())), "webhooks.url");
        assert_eq!(
            bad(|s| s.room_event_types = vec!["welcome".into()]),
            "webhooks.room_event_types"
        );
        assert_eq!(bad(|s| s.queue_capacity = 0), "webhooks.queue_capacity");
        assert_eq!(bad(|s| s.max_attempts = 0), "webhooks.max_attempts");
        assert_eq!(
            bad(|s| s.backoff_initial_ms = s.backoff_max_ms + 1),
            "webhooks.backoff_initial_ms"
        );
    }

    #[test]
    fn event_names_read_from_toml_and_debug_hides_secrets() {
        let settings: WebhookSettings = toml::from_str(
            "url = \"http://h/x?token=t\"\nsecret = \"s3cr3t\"\nevents = [\"on_play\"]\nroom_event_types = [\"chat\"]\n",
        )
        .unwrap();
        settings.validate().unwrap();
        assert_eq!(settings.events, vec![EventName::OnPlay]);
        assert_eq!(settings.event_bits(), EventName::OnPlay.bit());
        assert_eq!(settings.room_kinds().unwrap(), vec![EventKind::Chat]);
        let debug = format!("{settings:?}");
        assert!(
            !debug.contains("s3cr3t") && !debug.contains("token=t"),
            "{debug}"
        );
    }
}
