//! Layered settings: built-in defaults, then a TOML file, then `ONAIR_*` environment
//! variables, then flags.
//!
//! The fixed flags of the product contract have their own names; every other key is
//! reachable as `ONAIR_SECTION__KEY=value` or `--set section.key=value`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use onair_server::Settings;

/// Environment variables with their own flag, not part of the generic `ONAIR_A__B` scheme.
const CONTRACT_VARS: &[&str] = &[
    "ONAIR_CONFIG",
    "ONAIR_RTMP_LISTEN",
    "ONAIR_HTTP_LISTEN",
    "ONAIR_DATA_DIR",
    "ONAIR_LOG_FORMAT",
    "ONAIR_ALLOWED_ORIGINS",
    "ONAIR_ADMIN_TOKEN",
    "ONAIR_SIGNED_PLAYBACK",
    "ONAIR_PUBLISH_AUTH",
    "ONAIR_PUBLISH_WEBHOOK",
];

/// Loads defaults, then `file`, then generic environment overrides, then `--set` pairs.
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    sets: &[String],
) -> anyhow::Result<Settings> {
    let mut value = toml::Value::try_from(Settings::default())?;
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading config file {}", file.display()))?;
        let from_file: toml::Value =
            toml::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
        merge(&mut value, from_file);
    }
    for (name, raw) in env {
        if CONTRACT_VARS.contains(&name.as_str()) {
            continue;
        }
        let Some(key) = name.strip_prefix("ONAIR_") else {
            continue;
        };
        if !key.contains("__") && !is_top_level_key(key) {
            continue;
        }
        let path = key.to_lowercase().replace("__", ".");
        set(&mut value, &path, &raw).with_context(|| format!("environment variable {name}"))?;
    }
    for pair in sets {
        let Some((path, raw)) = pair.split_once('=') else {
            bail!("--set expects key=value, got {pair:?}");
        };
        set(&mut value, path.trim(), raw.trim()).with_context(|| format!("--set {pair}"))?;
    }
    let settings: Settings = value.try_into().context("invalid settings")?;
    settings.validate()?;
    Ok(settings)
}

fn is_top_level_key(key: &str) -> bool {
    matches!(key, "SHUTDOWN_DRAIN_MS")
}

fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(base), toml::Value::Table(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

/// Sets `a.b.c` to `raw`, read as a TOML value when it parses as one, else as a string.
fn set(value: &mut toml::Value, path: &str, raw: &str) -> anyhow::Result<()> {
    let parsed = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
    let mut parts = path.split('.').peekable();
    let mut node = value;
    while let Some(part) = parts.next() {
        let table = node
            .as_table_mut()
            .with_context(|| format!("{path}: {part} is not a section"))?;
        if parts.peek().is_none() {
            // A key absent here may be an optional one left out of the defaults
            // (auth.token_secret); deserialising the result refuses unknown keys.
            table.insert(part.to_owned(), parsed);
            return Ok(());
        }
        node = table
            .get_mut(part)
            .with_context(|| format!("unknown setting {path}"))?;
    }
    bail!("empty setting name")
}

/// The file the settings came from, for logs.
pub fn describe(file: Option<&PathBuf>) -> String {
    file.map_or_else(
        || "built-in defaults".to_owned(),
        |f| f.display().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_file_env_and_set() {
        let dir = std::env::temp_dir().join(format!("onair-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("onair.toml");
        std::fs::write(
            &file,
            "[rtmp]\nout_chunk_size = 8192\nmax_chunk_streams = 10\n",
        )
        .unwrap();
        let env = vec![
            ("ONAIR_RTMP__MAX_CHUNK_STREAMS".to_owned(), "20".to_owned()),
            ("ONAIR_HTTP_LISTEN".to_owned(), "ignored".to_owned()),
            ("PATH".to_owned(), "/bin".to_owned()),
        ];
        let sets = vec![
            "hub.publish_takeover=true".to_owned(),
            "auth.token_secret=s3cret".to_owned(),
        ];
        let settings = load(Some(&file), env, &sets).unwrap();
        assert_eq!(settings.auth.token_secret.as_deref(), Some("s3cret"));
        assert_eq!(settings.rtmp.out_chunk_size, 8192);
        assert_eq!(settings.rtmp.max_chunk_streams, 20);
        assert!(settings.hub.publish_takeover);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unknown_or_bad_keys_fail() {
        assert!(load(None, vec![], &["rtmp.nope=1".to_owned()]).is_err());
        assert!(load(None, vec![], &["rtmp.out_chunk_size=abc".to_owned()]).is_err());
        assert!(load(None, vec![], &["rtmp.out_chunk_size=0".to_owned()]).is_err());
    }
}
