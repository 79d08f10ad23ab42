//! The control plane's settings: `[auth]` (who may publish, the admin token, chat
//! token secret, browser origins), `[playback]` (signed playback URLs) and `[store]`
//! (how much the database keeps), each with its own `validate`.

use std::collections::BTreeMap;

use onair_media::SettingsError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Bearer token for the admin API (`ONAIR_ADMIN_TOKEN`); generated into the data
    /// dir at first start when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    /// HMAC key for chat tokens; generated into the data dir at first start when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_secret: Option<String>,
    /// Origins allowed to use the API, HTTP media, SSE and room WebSockets from a
    /// browser (`--allowed-origins`); `*` allows any.
    /// Empty: same origin only (the Origin's host must equal the Host header).
    pub allowed_origins: Vec<String>,
    /// Who may publish (`--publish-auth`): anyone, holders of a stream key, or whoever
    /// the publish webhook allows.
    pub publish: PublishAuth,
    /// The URL that decides publishes in `webhook` mode (`--publish-webhook`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_webhook: Option<String>,
}

/// How a publish is authorized.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishAuth {
    /// Anyone who reaches the RTMP port may publish. For development.
    #[default]
    Open,
    /// A stream key from the API must ride on the stream name (`name?key=K`).
    Key,
    /// `auth.publish_webhook` decides each publish; no answer means no.
    Webhook,
}

impl PublishAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            PublishAuth::Open => "open",
            PublishAuth::Key => "key",
            PublishAuth::Webhook => "webhook",
        }
    }
}

impl std::str::FromStr for PublishAuth {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "open" => Ok(PublishAuth::Open),
            "key" => Ok(PublishAuth::Key),
            "webhook" => Ok(PublishAuth::Webhook),
            other => Err(format!(
                "unknown publish auth mode {other:?}: open, key or webhook"
            )),
        }
    }
}

impl AuthSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.publish == PublishAuth::Webhook && self.publish_webhook.is_none() {
            return Err(SettingsError::new(
                "auth.publish_webhook",
                "publish auth mode webhook needs a URL (--publish-webhook)",
            ));
        }
        if let Some(url) = &self.publish_webhook {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(SettingsError::new(
                    "auth.publish_webhook",
                    "must be an http:// or https:// URL",
                ));
            }
        }
        Ok(())
    }
}

/// Signed playback: which apps need `?expires=…&sig=…` on play URLs, and the secrets.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlaybackSettings {
    /// Require signed URLs to play (RTMP, HTTP-FLV, HLS) and to open rooms (WS, SSE)
    /// in every app without an override (`--signed-playback`).
    pub signed: bool,
    /// HMAC keys: the first signs, each verifies (rotation: new first, old second).
    /// Empty: one is generated into the data dir (`playback-secret`).
    pub secrets: Vec<String>,
    /// Per-app overrides of `signed`, e.g. `apps.paid = { signed = true }`.
    pub apps: BTreeMap<String, AppPlayback>,
}

/// Most secrets accepted at once: the current one and the one being retired.
pub const MAX_PLAYBACK_SECRETS: usize = 2;
/// Shortest playback secret accepted, in bytes.
pub const MIN_PLAYBACK_SECRET_LEN: usize = 16;

impl std::fmt::Debug for PlaybackSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaybackSettings")
            .field("signed", &self.signed)
            .field(
                "secrets",
                &format_args!("<{} redacted>", self.secrets.len()),
            )
            .field("apps", &self.apps)
            .finish()
    }
}

/// One app's playback override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppPlayback {
    pub signed: bool,
}

impl PlaybackSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        let fail = |key, reason: String| Err(SettingsError { key, reason });
        if self.secrets.len() > MAX_PLAYBACK_SECRETS {
            return fail(
                "playback.secrets",
                format!("at most {MAX_PLAYBACK_SECRETS} (the new one first, the old one second)"),
            );
        }
        if self
            .secrets
            .iter()
            .any(|s| s.len() < MIN_PLAYBACK_SECRET_LEN)
        {
            return fail(
                "playback.secrets",
                format!("each secret needs at least {MIN_PLAYBACK_SECRET_LEN} bytes"),
            );
        }
        if let Some(app) = self
            .apps
            .keys()
            .find(|app| onair_media::StreamPath::new(app, "x").is_err())
        {
            return fail(
                "playback.apps",
                format!("{app:?} is not a valid app name ([A-Za-z0-9_-]{{1,64}}, not reserved)"),
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// Stream keys the server holds in all; creating more fails with `too_many_keys`.
    pub max_keys: usize,
    /// Stream keys one stream may have.
    pub max_keys_per_stream: usize,
    /// Mutes, bans and per-room slow modes kept across restarts, over all rooms (all
    /// of them are held in memory); more fail with `list_full`.
    pub max_moderation_entries: usize,
    /// Streams whose title, description or last-live time are kept. Past it, the
    /// streams with only a last-live time are forgotten oldest first; setting a title
    /// when every kept stream has one fails with `too_many_streams`.
    pub max_stream_infos: usize,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            max_keys: 100_000,
            max_keys_per_stream: 16,
            max_moderation_entries: 100_000,
            max_stream_infos: 100_000,
        }
    }
}

impl StoreSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.max_keys == 0 || self.max_keys_per_stream == 0 {
            return Err(SettingsError::new(
                "store.max_keys",
                "key limits must be at least 1",
            ));
        }
        if self.max_stream_infos == 0 {
            return Err(SettingsError::new(
                "store.max_stream_infos",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
