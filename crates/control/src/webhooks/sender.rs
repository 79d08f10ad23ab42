//! The one task that POSTs notifications, in order: each is tried until it gets a 2xx
//! or `max_attempts` are spent, waiting with exponential backoff and jitter between
//! tries. The next notification waits for the one before it (head-of-line), which
//! keeps the order a receiver sees the order things happened in.

use std::error::Error as _;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::event::WebhookEvent;
use super::signature::sign;
use super::{unix_secs, Inner, ATTEMPT_HEADER, DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER};
use onair_relay::trace_context::{TraceContext, TRACEPARENT};

/// At shutdown the sender keeps sending until the queue has been empty this long
/// (connections closing at shutdown report their end a moment later), or the drain
/// time is up.
const FLUSH_QUIET: Duration = Duration::from_millis(500);

pub(super) async fn run(
    inner: &Inner,
    url: &str,
    mut queue: mpsc::Receiver<WebhookEvent>,
    shutdown: CancellationToken,
    drain: Duration,
) {
    loop {
        let event = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            event = queue.recv() => event,
        };
        let Some(event) = event else {
            return;
        };
        deliver(inner, url, &event, Some(&shutdown)).await;
    }
    // Shutting down: what is queued gets one try each, within the drain time.
    let deadline = Instant::now() + drain;
    loop {
        let quiet = (Instant::now() + FLUSH_QUIET).min(deadline);
        let Ok(Some(event)) = tokio::time::timeout_at(quiet, queue.recv()).await else {
            break;
        };
        if tokio::time::timeout_at(deadline, deliver(inner, url, &event, None))
            .await
            .is_err()
        {
            inner.counters.count_failed();
            break;
        }
    }
    queue.close();
    let mut left = 0;
    while queue.try_recv().is_ok() {
        left += 1;
    }
    if left > 0 {
        inner.counters.count_dropped(left);
        tracing::warn!(
            dropped = left,
            "webhook notifications not sent before shutdown"
        );
    }
}

/// Sends one notification, retrying while `shutdown` (live operation) has not fired;
/// without it (the shutdown flush) there is a single try.
async fn deliver(
    inner: &Inner,
    url: &str,
    event: &WebhookEvent,
    shutdown: Option<&CancellationToken>,
) {
    let body = Bytes::from(event.to_json());
    let name = event.name().as_str();
    // Room events have no connection behind them: each starts a trace of its own.
    let root;
    let trace = match event.client.as_ref().and_then(|c| c.trace.as_ref()) {
        Some(trace) => trace,
        None => {
            root = TraceContext::new_root();
            &root
        }
    };
    let settings = &inner.settings;
    let mut max_attempts = if shutdown.is_some() {
        settings.max_attempts
    } else {
        1
    };
    let mut attempt = 1;
    loop {
        let headers = RequestHeaders {
            event: name,
            delivery: &event.id,
            attempt,
            trace,
        };
        let sent = post(inner, url, &headers, body.clone(), settings.timeout()).await;
        let reason = match sent {
            Ok(response) if response.status().is_success() => {
                inner.counters.count_delivered();
                tracing::debug!(event = name, delivery = %event.id, attempt, "webhook delivered");
                return;
            }
            Ok(response) => format!("answered {}", response.status().as_u16()),
            Err(error) => describe(error),
        };
        if attempt >= max_attempts {
            inner.counters.count_failed();
            tracing::warn!(
                event = name,
                delivery = %event.id,
                stream = %event.stream,
                attempts = attempt,
                %reason,
                "webhook not delivered; giving up"
            );
            return;
        }
        inner.counters.count_retry();
        let delay = backoff_delay(
            attempt,
            Duration::from_millis(settings.backoff_initial_ms),
            Duration::from_millis(settings.backoff_max_ms),
            rand::random::<f64>(),
        );
        tracing::info!(
            event = name,
            delivery = %event.id,
            attempt,
            %reason,
            retry_in_ms = delay.as_millis() as u64,
            "webhook attempt failed; will retry"
        );
        if let Some(shutdown) = shutdown {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                // One last try now rather than a wait the drain would cut short.
                _ = shutdown.cancelled() => max_attempts = attempt + 1,
            }
        }
        attempt += 1;
    }
}

/// The wait before retry number `retry` (1 = after the first failure): `initial`
/// doubled per retry, capped at `max`, less up to half of it at random (`jitter` in
/// 0..1), so that servers restarting together do not retry in step.
pub(super) fn backoff_delay(retry: u32, initial: Duration, max: Duration, jitter: f64) -> Duration {
    let doublings = retry.saturating_sub(1).min(31);
    let base = initial.saturating_mul(1 << doublings).min(max);
    base.mul_f64(1.0 - jitter.clamp(0.0, 1.0) / 2.0)
}

/// What a webhook request says about itself in its headers.
pub(super) struct RequestHeaders<'a> {
    pub event: &'a str,
    pub delivery: &'a str,
    pub attempt: u32,
    /// The trace that caused the request; it goes out as `traceparent` with the same
    /// trace id and a new parent id.
    pub trace: &'a TraceContext,
}

/// One signed POST of `body`. Used for notifications and the publish decision.
pub(super) async fn post(
    inner: &Inner,
    url: &str,
    headers: &RequestHeaders<'_>,
    body: Bytes,
    timeout: Duration,
) -> Result<reqwest::Response, reqwest::Error> {
    let signature = sign(&inner.secret, unix_secs(), &body);
    inner
        .http
        .post(url)
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature)
        .header(EVENT_HEADER, headers.event)
        .header(DELIVERY_HEADER, headers.delivery)
        .header(ATTEMPT_HEADER, headers.attempt.to_string())
        .header(TRACEPARENT, headers.trace.child().header_value())
        .body(body)
        .send()
        .await
}

/// What went wrong, for a log line: never the URL, which may carry a token.
pub(super) fn describe(error: reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".to_owned();
    }
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let schedule: Vec<_> = (1..=8)
            .map(|retry| backoff_delay(retry, 500 * MS, 10_000 * MS, 0.0).as_millis())
            .collect();
        assert_eq!(
            schedule,
            [500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000]
        );
        assert_eq!(
            backoff_delay(u32::MAX, 500 * MS, 10_000 * MS, 0.0),
            10_000 * MS
        );
    }

    #[test]
    fn jitter_takes_off_at_most_half() {
        for retry in 1..=6 {
            let full = backoff_delay(retry, 100 * MS, 5_000 * MS, 0.0);
            for jitter in [0.25, 0.5, 0.999, 7.0, -1.0] {
                let delay = backoff_delay(retry, 100 * MS, 5_000 * MS, jitter);
                assert!(delay <= full && delay >= full / 2, "{retry} {jitter}");
            }
        }
        assert_eq!(backoff_delay(1, 100 * MS, 5_000 * MS, 0.5), 75 * MS);
    }
}
