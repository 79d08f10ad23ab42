//! Who may publish: the `auth.publish` mode applied to one RTMP publish request.
//! Every mode fails closed: a missing key, a store error, a webhook that says no or
//! does not answer all refuse.

use onair_media::StreamPath;

use onair_relay::hub::ClientInfo;

use crate::settings::{AuthSettings, PublishAuth};
use crate::store::Store;
use crate::webhooks::{PublishRequest, Webhooks};

/// Why a publish was refused, as the encoder is told (`NetStream.Publish.Unauthorized`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishRefusal {
    #[error("a stream key is required: publish to {0}?key=YOUR_KEY")]
    KeyMissing(StreamPath),
    #[error("the stream key is not valid for {0}")]
    KeyInvalid(StreamPath),
    #[error("stream keys cannot be checked right now")]
    StoreUnavailable,
    #[error("{0}")]
    Webhook(String),
}

/// Decides whether `client` may publish `path`; `client.query` is the query that came
/// with the stream name (`key=…` in key mode).
pub async fn authorize(
    (auth, store, webhooks): (&AuthSettings, &Store, &Webhooks),
    path: &StreamPath,
    client: &ClientInfo,
) -> Result<(), PublishRefusal> {
    match auth.publish {
        PublishAuth::Open => Ok(()),
        PublishAuth::Key => {
            let key = query_value(&client.query, "key")
                .ok_or_else(|| PublishRefusal::KeyMissing(path.clone()))?;
            match store.verify_key(path, &key).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(PublishRefusal::KeyInvalid(path.clone())),
                Err(error) => {
                    tracing::error!(%error, "checking a stream key failed; refusing the publish");
                    Err(PublishRefusal::StoreUnavailable)
                }
            }
        }
        PublishAuth::Webhook => {
            let Some(url) = auth.publish_webhook.as_deref() else {
                return Err(PublishRefusal::Webhook(
                    "no publish webhook is configured".to_owned(),
                ));
            };
            let request = PublishRequest {
                path: path.clone(),
                client: client.clone(),
            };
            webhooks
                .decide(url, &request)
                .await
                .map_err(|refusal| PublishRefusal::Webhook(refusal.to_string()))
        }
    }
}

/// The first value of `name` in a URL query, decoded.
fn query_value(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_key_among_other_parameters() {
        assert_eq!(
            query_value("a=1&key=abc&b=2", "key").as_deref(),
            Some("abc")
        );
        assert_eq!(query_value("key=a%2Bb", "key").as_deref(), Some("a+b"));
        assert_eq!(query_value("key=", "key"), None);
        assert_eq!(query_value("", "key"), None);
        assert_eq!(query_value("keys=x", "key"), None);
    }
}
