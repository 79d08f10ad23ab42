//! Which settings change without a restart (SIGHUP): connection and request limits,
//! the admin token, the chat token and playback secrets, signed playback, the CORS
//! allowlist, the log level. The control plane's share of them is swapped whole in its
//! `onair_control::live::Live`; the edge's limiter takes the new limits. Everything
//! else needs a restart, and a reload says which changed keys those are.

use std::collections::BTreeMap;

use crate::config::Settings;

/// `in_force` with the reloadable values of `new`: exactly the keys of [`RELOADABLE`].
pub fn with_reloadable(in_force: &Settings, new: &Settings) -> Settings {
    let mut next = in_force.clone();
    next.limits = new.limits.clone();
    next.auth.admin_token = new.auth.admin_token.clone();
    next.auth.token_secret = new.auth.token_secret.clone();
    next.auth.allowed_origins = new.auth.allowed_origins.clone();
    next.playback = new.playback.clone();
    next.log_level = new.log_level.clone();
    next
}

/// Setting keys (or key prefixes, ending in `.`) a reload applies; keep in step with
/// [`with_reloadable`] (a test checks the two agree).
const RELOADABLE: &[&str] = &[
    "limits.",
    "auth.admin_token",
    "auth.token_secret",
    "auth.allowed_origins",
    "playback.",
    "log_level",
];

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Changed keys now in force.
    pub applied: Vec<String>,
    /// Changed keys that keep their old value until a restart.
    pub needs_restart: Vec<String>,
}

/// The keys whose values differ between `old` and `new`, split into those a reload
/// applies and those that need a restart.
pub fn classify_changes(old: &Settings, new: &Settings) -> ReloadReport {
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    flatten(
        "",
        &toml::Value::try_from(old).unwrap_or(toml::Value::Boolean(false)),
        &mut a,
    );
    flatten(
        "",
        &toml::Value::try_from(new).unwrap_or(toml::Value::Boolean(false)),
        &mut b,
    );
    let mut report = ReloadReport::default();
    let keys: std::collections::BTreeSet<_> = a.keys().chain(b.keys()).cloned().collect();
    for key in keys {
        if a.get(&key) == b.get(&key) {
            continue;
        }
        let reloadable = RELOADABLE.iter().any(|r| {
            if r.ends_with('.') {
                key.starts_with(r)
            } else {
                key == *r
            }
        });
        if reloadable {
            report.applied.push(key);
        } else {
            report.needs_restart.push(key);
        }
    }
    report
}

/// Leaf values by dotted key; arrays count as one value.
fn flatten(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, toml::Value>) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&path, value, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), other.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_split_into_applied_and_needing_a_restart() {
        let old = Settings::default();
        let mut new = old.clone();
        new.limits.max_connections = 7;
        new.auth.allowed_origins = vec!["https://a.example".into()];
        new.playback.signed = true;
        new.log_level = Some("debug".into());
        new.auth.token_secret = Some("another-secret".into());
        new.rtmp.listen = "127.0.0.1:1936".parse().unwrap();
        new.hub.gop_cache_max_frames = 10;
        let report = classify_changes(&old, &new);
        assert_eq!(
            report.applied,
            [
                "auth.allowed_origins",
                "auth.token_secret",
                "limits.max_connections",
                "log_level",
                "playback.signed"
            ]
        );
        assert_eq!(
            report.needs_restart,
            ["hub.gop_cache_max_frames", "rtmp.listen"]
        );
        assert_eq!(classify_changes(&old, &old), ReloadReport::default());
        // What a reload takes over is exactly what it reports as applied.
        let taken = with_reloadable(&old, &new);
        let after = classify_changes(&taken, &new);
        assert!(after.applied.is_empty(), "{after:?}");
        assert_eq!(after.needs_restart, report.needs_restart);
    }
}
