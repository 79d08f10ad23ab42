//! The publish decision: one signed POST to the platform, whose answer decides whether
//! a publish may start. 2xx allows; any other status refuses, with the start of the
//! body as the reason; a timeout or a connection failure refuses too, unless
//! `webhooks.publish_fail_open` lets it through.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use onair_media::StreamPath;
use serde::Serialize;

use super::event::{new_id, unix_ms, Client, Params};
use super::sender::{describe, post, RequestHeaders};
use super::Webhooks;
use onair_relay::hub::ClientInfo;
use onair_relay::trace_context::TraceContext;

/// The `event` of a decision request (and its `Onair-Event` header).
pub const DECISION_EVENT: &str = "on_publish_request";
/// Characters of a refusing body kept as the reason.
const MAX_REASON_CHARS: usize = 200;
/// Bytes of a refusing body read at most.
const MAX_REASON_BYTES: usize = 1024;

/// What the platform is asked about. `client.query` (the publish name's query, with
/// the stream key) is sent as `params`: the key is what the platform checks. It goes
/// into the decision request only, never into a log line or a notification.
#[derive(Clone)]
pub struct PublishRequest {
    pub path: StreamPath,
    pub client: ClientInfo,
}

impl fmt::Debug for PublishRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishRequest")
            .field("path", &self.path)
            .field("client", &self.client)
            .finish()
    }
}

/// Why the decision call refused a publish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The platform answered with a status outside 2xx; `reason` is the start of its body.
    #[error("publish refused by the webhook ({status}): {reason}")]
    Denied { status: u16, reason: String },
    #[error("publish webhook did not answer within {0:?}")]
    Timeout(Duration),
    #[error("publish webhook unreachable: {0}")]
    Unreachable(String),
}

#[derive(Serialize)]
struct DecisionBody<'a> {
    event: &'static str,
    id: &'a str,
    time: u64,
    stream: String,
    app: &'a str,
    name: &'a str,
    client: Client<'a>,
    params: Params,
}

impl Webhooks {
    /// Asks the platform at `url` whether `request` may publish, within
    /// `webhooks.publish_timeout_ms`.
    pub async fn decide(&self, url: &str, request: &PublishRequest) -> Result<(), Refusal> {
        let settings = &self.inner.settings;
        let timeout = settings.publish_timeout();
        let id = new_id();
        let trace = request.client.trace.unwrap_or_else(TraceContext::new_root);
        let body = DecisionBody {
            event: DECISION_EVENT,
            id: &id,
            time: unix_ms(),
            stream: request.path.to_string(),
            app: request.path.app(),
            name: request.path.name(),
            client: Client(&request.client),
            params: Params::all(&request.client.query),
        };
        let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        let call = async {
            let headers = RequestHeaders {
                event: DECISION_EVENT,
                delivery: &id,
                attempt: 1,
                trace: &trace,
            };
            let response = post(&self.inner, url, &headers, body, timeout).await?;
            let status = response.status();
            if status.is_success() {
                return Ok::<_, reqwest::Error>(Ok(()));
            }
            Ok(Err(Refusal::Denied {
                status: status.as_u16(),
                reason: read_reason(response).await,
            }))
        };
        let decided = match tokio::time::timeout(timeout, call).await {
            Ok(Ok(decided)) => decided,
            Ok(Err(error)) if error.is_timeout() => Err(Refusal::Timeout(timeout)),
            Ok(Err(error)) => Err(Refusal::Unreachable(describe(error))),
            Err(_) => Err(Refusal::Timeout(timeout)),
        };
        let (stream, conn_id) = (&request.path, request.client.conn_id);
        match decided {
            Ok(()) => {
                tracing::info!(%stream, conn_id, delivery = %id, "publish webhook allowed the publish");
                Ok(())
            }
            Err(refusal @ Refusal::Denied { .. }) => {
                tracing::info!(%stream, conn_id, delivery = %id, %refusal, "publish webhook refused the publish");
                Err(refusal)
            }
            Err(failure) if settings.publish_fail_open => {
                tracing::error!(
                    %stream,
                    conn_id,
                    delivery = %id,
                    %failure,
                    "publish webhook failed; letting the publish through because webhooks.publish_fail_open is set"
                );
                Ok(())
            }
            Err(failure) => {
                tracing::warn!(%stream, conn_id, delivery = %id, %failure, "publish webhook failed; refusing the publish");
                Err(failure)
            }
        }
    }
}

/// The start of a refusing body, as one line of printable text.
async fn read_reason(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < MAX_REASON_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(MAX_REASON_BYTES);
    String::from_utf8_lossy(&bytes)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .chars()
        .take(MAX_REASON_CHARS)
        .collect()
}
