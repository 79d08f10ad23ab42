//! Webhooks: notifications to the platform (`on_publish`, `on_unpublish`, `on_play`,
//! `on_play_stop`, `on_record_done`, `on_room_event`) and the publish decision call.
//!
//! Every request is a signed JSON POST (see [`sign`] and [`verify_signature`]). Notifications never
//! hold anyone up: [`Webhooks::notify`] puts the event into a bounded queue or, when
//! it is full, drops and counts it; one sender task delivers the queue in order, with
//! retries. docs/webhooks.md is the reference for receivers.
//!
//! Deliberately absent: more than one endpoint, and a persistent queue (what is queued
//! at exit and not sent within the drain time is lost, and counted).

mod decide;
mod event;
mod sender;
mod settings;
mod signature;

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use onair_rooms::EventKind;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use decide::{PublishRequest, Refusal, DECISION_EVENT};
pub use event::{EventDetail, WebhookEvent};
pub use settings::{EventName, WebhookSettings};
pub use signature::{sign, verify_signature};

use onair_outputs::record::{RecordingDone, RecordingObserver};
use onair_relay::hub::{HubEvent, HubEventKind, HubObserver};
use onair_rooms_rt::EventTap;

pub const SIGNATURE_HEADER: &str = "Onair-Signature";
pub const EVENT_HEADER: &str = "Onair-Event";
pub const DELIVERY_HEADER: &str = "Onair-Delivery";
pub const ATTEMPT_HEADER: &str = "Onair-Attempt";

/// The file in the data dir holding the generated secret.
const SECRET_FILE: &str = "webhook-secret";

/// The server's webhooks; cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    inner: Arc<Inner>,
}

struct Inner {
    settings: WebhookSettings,
    http: reqwest::Client,
    secret: Vec<u8>,
    /// `None` when no `webhooks.url` is set: notifications are off.
    queue: Option<mpsc::Sender<WebhookEvent>>,
    /// Taken by the sender task when it starts.
    receiver: Mutex<Option<mpsc::Receiver<WebhookEvent>>>,
    counters: Counters,
    /// [`EventName::bit`]s of the notifications to send.
    events: u8,
    room_kinds: Vec<EventKind>,
}

/// What happened to notifications so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookCounts {
    /// Answered with a 2xx.
    pub delivered: u64,
    /// Given up after `max_attempts` (or at shutdown).
    pub failed: u64,
    /// Never sent: the queue was full, or the server was shutting down.
    pub dropped: u64,
    /// Tries after the first one.
    pub retries: u64,
}

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    retries: AtomicU64,
    /// Unix second of the last "queue full" warning, so a flood logs once a second.
    last_drop_warning: AtomicU64,
}

impl Counters {
    fn count_delivered(&self) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
    }

    fn count_failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    fn count_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    fn count_dropped(&self, n: u64) -> u64 {
        self.dropped.fetch_add(n, Ordering::Relaxed) + n
    }
}

impl Webhooks {
    /// Webhooks signing with `secret`. Notifications are on when `settings.url` is set;
    /// call [`run`](Webhooks::run) to send them.
    pub fn new(settings: WebhookSettings, secret: Vec<u8>) -> io::Result<Self> {
        settings
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("onair/", env!("CARGO_PKG_VERSION")))
            // A redirect is not a 2xx: the receiver is expected at the configured URL.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(io::Error::other)?;
        let (queue, receiver) = match settings.url {
            Some(_) => {
                let (tx, rx) = mpsc::channel(settings.queue_capacity);
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        let room_kinds = settings.room_kinds().unwrap_or_default();
        Ok(Self {
            inner: Arc::new(Inner {
                events: settings.event_bits(),
                room_kinds,
                settings,
                http,
                secret,
                queue,
                receiver: Mutex::new(receiver),
                counters: Counters::default(),
            }),
        })
    }

    /// `configured` (`webhooks.secret`), else the one in `data_dir/webhook-secret`,
    /// created (mode 0600) at first start.
    pub fn load_secret(data_dir: &Path, configured: Option<&str>) -> io::Result<Vec<u8>> {
        match configured {
            Some(secret) => Ok(secret.as_bytes().to_vec()),
            None => {
                std::fs::create_dir_all(data_dir)?;
                let (secret, _) = crate::secrets::read_or_create(&data_dir.join(SECRET_FILE))?;
                Ok(secret.into_bytes())
            }
        }
    }

    pub fn settings(&self) -> &WebhookSettings {
        &self.inner.settings
    }

    /// Whether notifications named `name` are sent.
    pub fn wants(&self, name: EventName) -> bool {
        self.inner.queue.is_some() && self.inner.events & name.bit() != 0
    }

    /// Queues `event` for sending, without waiting: when the queue is full the event
    /// is dropped, counted and logged.
    pub fn notify(&self, event: WebhookEvent) {
        let Some(queue) = &self.inner.queue else {
            return;
        };
        if !self.wants(event.name()) {
            return;
        }
        match queue.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                let dropped = self.inner.counters.count_dropped(1);
                let now = unix_secs();
                let last = self
                    .inner
                    .counters
                    .last_drop_warning
                    .swap(now, Ordering::Relaxed);
                if last != now {
                    tracing::warn!(
                        event = event.name().as_str(),
                        stream = %event.stream,
                        dropped_total = dropped,
                        capacity = self.inner.settings.queue_capacity,
                        "webhook queue full; dropping notifications"
                    );
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                // The sender has finished: the server is shutting down.
                self.inner.counters.count_dropped(1);
            }
        }
    }

    pub fn counts(&self) -> WebhookCounts {
        let c = &self.inner.counters;
        WebhookCounts {
            delivered: c.delivered.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
        }
    }

    /// What the media hub calls: publishes and plays, as notifications.
    pub fn hub_observer(&self) -> HubObserver {
        let webhooks = self.clone();
        Arc::new(move |event: &HubEvent| {
            let name = match event.kind {
                HubEventKind::Published => EventName::OnPublish,
                HubEventKind::Unpublished(_) => EventName::OnUnpublish,
                HubEventKind::PlayStarted => EventName::OnPlay,
                HubEventKind::PlayStopped { .. } => EventName::OnPlayStop,
            };
            if webhooks.wants(name) {
                webhooks.notify(WebhookEvent::from_hub(event));
            }
        })
    }

    /// Whom the recorders tell about finished files: `on_record_done`.
    pub fn recording_observer(&self) -> Arc<dyn RecordingObserver> {
        Arc::new(self.clone())
    }

    /// What the rooms call for each broadcast event, or `None` when no room event is
    /// to be sent (then the rooms need not call anything).
    pub fn room_tap(&self) -> Option<EventTap> {
        if !self.wants(EventName::OnRoomEvent) || self.inner.room_kinds.is_empty() {
            return None;
        }
        let webhooks = self.clone();
        Some(EventTap::new(move |room, envelope| {
            if webhooks.inner.room_kinds.contains(&envelope.kind()) {
                if let Some(event) = WebhookEvent::room(room, Arc::clone(envelope)) {
                    webhooks.notify(event);
                }
            }
        }))
    }

    /// Sends queued notifications until `shutdown`, then what is still queued for up to
    /// `drain`. Returns at once when notifications are off or another `run` has started.
    pub async fn run(self, shutdown: CancellationToken, drain: Duration) {
        let receiver = self
            .inner
            .receiver
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let (Some(receiver), Some(url)) = (receiver, self.inner.settings.url.as_deref()) else {
            return;
        };
        sender::run(&self.inner, url, receiver, shutdown, drain).await;
    }
}

impl RecordingObserver for Webhooks {
    fn finished(&self, done: RecordingDone) {
        self.notify(WebhookEvent::new(
            done.stream,
            None,
            EventDetail::RecordDone {
                id: done.id,
                path: done.path,
                file: done.file,
                duration: done.duration,
                bytes: done.bytes,
                started: done.started,
                ended: done.ended,
            },
        ));
    }
}

impl fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhooks")
            .field("settings", &self.inner.settings)
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_generated_once_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let first = Webhooks::load_secret(dir.path(), None).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(Webhooks::load_secret(dir.path(), None).unwrap(), first);
        assert_eq!(
            Webhooks::load_secret(dir.path(), Some("mine")).unwrap(),
            b"mine"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SECRET_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn without_a_url_nothing_is_wanted_or_queued() {
        let webhooks = Webhooks::new(WebhookSettings::default(), b"k".to_vec()).unwrap();
        assert!(!webhooks.wants(EventName::OnPublish));
        assert!(webhooks.room_tap().is_none());
    }

    #[test]
    fn room_tap_only_with_room_event_types() {
        let mut settings = WebhookSettings {
            url: Some("http://127.0.0.1:9/hooks".into()),
            ..WebhookSettings::default()
        };
        assert!(Webhooks::new(settings.clone(), vec![])
            .unwrap()
            .room_tap()
            .is_none());
        settings.room_event_types = vec!["chat".into()];
        assert!(Webhooks::new(settings.clone(), vec![])
            .unwrap()
            .room_tap()
            .is_some());
        settings.events = vec![EventName::OnPlay];
        let webhooks = Webhooks::new(settings, vec![]).unwrap();
        assert!(webhooks.room_tap().is_none());
        assert!(webhooks.wants(EventName::OnPlay));
        assert!(!webhooks.wants(EventName::OnPublish));
    }
}
