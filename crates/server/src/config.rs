//! Settings: every knob the server reads, with the defaults a fresh `cargo run` gets.
//!
//! The binary layers them (defaults, TOML file, `ONAIR_*` environment, flags); this
//! module only assembles the subsystems' sections (each with its defaults and its
//! `validate`, next to the subsystem that reads it) into one document.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where the server keeps its state (admin token, database, recordings).
    pub data_dir: PathBuf,
    pub rtmp: RtmpSettings,
    pub http: HttpSettings,
    pub limits: ConnectionLimits,
    pub hub: HubSettings,
    pub auth: AuthSettings,
    /// Signed playback URLs (see docs/security.md).
    pub playback: PlaybackSettings,
    /// The interaction rooms: history, rates, aggregation (see docs/rooms.md).
    pub rooms: onair_rooms::RoomSettings,
    /// The database in the data dir: stream keys, saved moderation.
    pub store: StoreSettings,
    /// Longest a graceful shutdown waits for connections to finish, in milliseconds.
    pub shutdown_drain_ms: u64,
    /// Log filter (`info`, `onair_server=debug,info`, …) when `RUST_LOG` is not set;
    /// reloadable with SIGHUP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    /// Notifications to the platform and the publish decision call (docs/webhooks.md).
    pub webhooks: crate::webhooks::WebhookSettings,
    /// HTTPS/WSS on the HTTP listener and an RTMPS listener (docs/security.md).
    pub tls: TlsSettings,
    /// Prometheus metrics at `GET /metrics` (docs/operations.md).
    pub metrics: MetricsSettings,
    /// HLS and Low-Latency HLS playback (docs/hls.md).
    pub hls: crate::hls::HlsSettings,
    /// Recording live streams to disk (docs/recording.md).
    pub record: crate::record::RecordSettings,
    /// The web pages: stream list, watch page, admin dashboard (docs/pages.md).
    pub pages: PagesSettings,
    /// Many nodes as one service, through a shared Redis (docs/cluster.md).
    pub cluster: ClusterSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./onair-data"),
            rtmp: RtmpSettings::default(),
            http: HttpSettings::default(),
            limits: ConnectionLimits::default(),
            hub: HubSettings::default(),
            auth: AuthSettings::default(),
            playback: PlaybackSettings::default(),
            rooms: onair_rooms::RoomSettings::default(),
            store: StoreSettings::default(),
            shutdown_drain_ms: 5_000,
            log_level: None,
            webhooks: crate::webhooks::WebhookSettings::default(),
            tls: TlsSettings::default(),
            metrics: MetricsSettings::default(),
            hls: crate::hls::HlsSettings::default(),
            record: crate::record::RecordSettings::default(),
            pages: PagesSettings::default(),
            cluster: ClusterSettings::default(),
        }
    }
}

pub use onair_cluster::ClusterSettings;
pub use onair_control::{
    AppPlayback, AuthSettings, PlaybackSettings, PublishAuth, StoreSettings, MAX_PLAYBACK_SECRETS,
    MIN_PLAYBACK_SECRET_LEN,
};
pub use onair_edge::{
    ConnectionLimits, HttpSettings, MetricsSettings, PagesSettings, RtmpSettings, TlsSettings,
};
pub use onair_media::SettingsError;
pub use onair_relay::HubSettings;

impl Settings {
    /// A copy that is safe to print or serve: every secret replaced by `<redacted>`.
    pub fn redacted(&self) -> Settings {
        const REDACTED: &str = "<redacted>";
        let mut shown = self.clone();
        for secret in [
            &mut shown.auth.admin_token,
            &mut shown.auth.token_secret,
            &mut shown.webhooks.secret,
        ] {
            if secret.is_some() {
                *secret = Some(REDACTED.to_owned());
            }
        }
        if let Some(url) = &mut shown.cluster.redis_url {
            // redis://user:password@host:port/db: the credentials go.
            if let (Some(scheme), Some(at)) = (url.find("://"), url.rfind('@')) {
                url.replace_range(scheme + 3..at, REDACTED);
            }
        }
        for secret in &mut shown.playback.secrets {
            *secret = REDACTED.to_owned();
        }
        shown
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        self.rtmp.validate()?;
        self.hub.validate()?;
        self.limits.validate()?;
        self.auth.validate()?;
        self.http.validate()?;
        self.playback.validate()?;
        self.webhooks.validate()?;
        self.tls.validate()?;
        self.pages.validate()?;
        self.hls.validate()?;
        self.metrics.validate()?;
        self.store.validate()?;
        self.record.validate()?;
        if let Err(reason) = self.cluster.validate() {
            return Err(SettingsError {
                key: "cluster",
                reason,
            });
        }
        if let Err(error) = self.rooms.validate() {
            return Err(SettingsError {
                key: "rooms",
                reason: error.to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip_through_toml() {
        let settings = Settings::default();
        settings.validate().unwrap();
        let text = toml::to_string(&settings).unwrap();
        let back: Settings = toml::from_str(&text).unwrap();
        assert_eq!(back, settings);
    }

    #[test]
    fn redacted_settings_show_no_secret() {
        let mut settings = Settings::default();
        settings.auth.admin_token = Some("admin-secret-1".into());
        settings.auth.token_secret = Some("token-secret-2".into());
        settings.webhooks.secret = Some("webhook-secret-3".into());
        settings.playback.secrets = vec!["playback-secret-4-long-enough".into()];
        settings.cluster.redis_url = Some("redis://onair:redis-secret-5@10.0.0.9:6379/0".into());
        let redacted = settings.redacted();
        let text = toml::to_string(&redacted).unwrap();
        assert_eq!(
            redacted.cluster.redis_url.as_deref(),
            Some("redis://<redacted>@10.0.0.9:6379/0")
        );
        for secret in [
            "admin-secret-1",
            "token-secret-2",
            "webhook-secret-3",
            "playback-secret-4",
            "redis-secret-5",
        ] {
            assert!(!text.contains(secret), "{secret} shown:\n{text}");
        }
        assert!(text.contains("<redacted>"));
    }

    #[test]
    fn partial_toml_keeps_defaults() {
        let settings: Settings = toml::from_str("[rtmp]\nlisten = \"127.0.0.1:1936\"\n").unwrap();
        assert_eq!(settings.rtmp.listen.port(), 1936);
        assert_eq!(settings.http, HttpSettings::default());
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<Settings>("[rtmp]\nlisten_on = 1\n").is_err());
    }

    #[test]
    fn playback_settings_are_checked() {
        let settings: Settings = toml::from_str(
            "[playback]\nsigned = true\nsecrets = [\"new-secret-0123456\", \"old-secret-0123456\"]\n\
             [playback.apps]\nfree = { signed = false }\n",
        )
        .unwrap();
        settings.validate().unwrap();
        assert!(!settings.playback.apps["free"].signed);
        assert!(!format!("{settings:?}").contains("new-secret"));
        for bad in [
            "secrets = [\"a-long-enough-secret-1\", \"a-long-enough-secret-2\", \"a-long-enough-secret-3\"]",
            "secrets = [\"short\"]",
            "apps.api = { signed = true }",
            "apps.\"a b\" = { signed = true }",
        ] {
            let settings: Settings = toml::from_str(&format!("[playback]\n{bad}\n")).unwrap();
            assert!(settings.validate().is_err(), "{bad}");
        }
        assert!(toml::from_str::<Settings>("[playback.apps]\nx = { sign = true }\n").is_err());
    }

    #[test]
    fn tls_settings_are_checked() {
        let settings: Settings = toml::from_str(
            "[tls]\ncert_path = \"c.pem\"\nkey_path = \"k.pem\"\nrtmps_listen = \"0.0.0.0:1936\"\n",
        )
        .unwrap();
        settings.validate().unwrap();
        assert!(settings.tls.enabled() && settings.tls.http);
        for bad in [
            "cert_path = \"c.pem\"",
            "key_path = \"k.pem\"",
            "rtmps_listen = \"0.0.0.0:1936\"",
            "cert_path = \"c.pem\"\nkey_path = \"k.pem\"\nhandshake_timeout_ms = 0",
        ] {
            let settings: Settings = toml::from_str(&format!("[tls]\n{bad}\n")).unwrap();
            assert!(settings.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn frame_ancestors_cannot_break_the_header() {
        for bad in ["", "'self'; script-src *", "a b", "x,y"] {
            let mut settings = Settings::default();
            settings.pages.frame_ancestors = vec![bad.to_owned()];
            assert!(settings.validate().is_err(), "{bad:?}");
        }
        let mut settings = Settings::default();
        settings.pages.frame_ancestors = vec!["https://platform.example".into(), "'self'".into()];
        settings.validate().unwrap();
    }

    #[test]
    fn zero_chunk_size_is_refused() {
        let mut settings = Settings::default();
        settings.rtmp.out_chunk_size = 0;
        assert!(settings.validate().is_err());
    }
}

#[cfg(test)]
mod docs_tests {
    use super::*;

    /// docs/configuration.md lists every key with its default value; the `[rooms]`
    /// keys are listed in docs/rooms.md.
    #[test]
    fn configuration_reference_matches_the_code() {
        let doc = include_str!("../../../docs/configuration.md");
        let rooms_doc = include_str!("../../../docs/rooms.md");
        let value = toml::Value::try_from(Settings::default()).unwrap();
        let mut missing = Vec::new();
        for (key, value) in value.as_table().unwrap() {
            match value {
                toml::Value::Table(section) if key == "rooms" => {
                    for name in section.keys() {
                        if !rooms_doc.contains(&format!("`{name}`")) {
                            missing.push(format!("docs/rooms.md: {name}"));
                        }
                    }
                }
                toml::Value::Table(section) => {
                    for (name, value) in section {
                        let row = format!("| `{key}.{name}` | `{value}` |");
                        if !doc.contains(&row) {
                            missing.push(row);
                        }
                    }
                }
                value => {
                    let row = format!("| `{key}` | `{value}` |");
                    if !doc.contains(&row) {
                        missing.push(row);
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "docs/configuration.md lacks rows: {missing:#?}"
        );
    }
}
