#![allow(clippy::unwrap_used, clippy::expect_used)]

//! `onair sign` prints a query string that a server with the same data dir accepts, and
//! the signed-playback flag, environment variable and secrets reach the settings.

use std::path::Path;
use std::process::{Command, Output};

use onair_media::StreamPath;
use onair_server::config::PlaybackSettings;
use onair_server::signing::{unix_now, PlaybackSigner, SignError};

fn onair(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_onair"));
    command.args(args).arg("--data-dir").arg(data_dir);
    for var in [
        "ONAIR_CONFIG",
        "ONAIR_SIGNED_PLAYBACK",
        "ONAIR_PLAYBACK__SECRETS",
    ] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    command.output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn sign_output_verifies_with_the_data_dir_secret() {
    let dir = tempfile::tempdir().unwrap();
    let before = unix_now();
    let printed = stdout(&onair(dir.path(), &["sign", "live/a", "--ttl", "60"], &[]));
    let query = printed.trim();
    // One line, nothing else on stdout (scripts take it as is).
    assert_eq!(printed.lines().count(), 1, "{printed}");

    let expires: u64 = query
        .strip_prefix("expires=")
        .and_then(|rest| rest.split('&').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (before + 60..=unix_now() + 60).contains(&expires),
        "{query}"
    );

    // What `serve` would load from the same data dir.
    let signer = PlaybackSigner::load(&PlaybackSettings::default(), dir.path()).unwrap();
    let path = StreamPath::parse("live/a").unwrap();
    assert_eq!(signer.check(&path, query, unix_now()), Ok(()));
    assert_eq!(
        signer.check(&StreamPath::parse("live/b").unwrap(), query, unix_now()),
        Err(SignError::Invalid)
    );
    assert_eq!(
        signer.check(&path, query, expires + 1),
        Err(SignError::Expired)
    );
}

#[test]
fn sign_uses_the_first_configured_secret_and_refuses_bad_paths() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = r#"["new-secret-new-secret", "old-secret-old-secret"]"#;
    let printed = stdout(&onair(
        dir.path(),
        &["sign", "paid/show"],
        &[("ONAIR_PLAYBACK__SECRETS", secrets)],
    ));
    let new_only = PlaybackSigner::new(
        &[b"new-secret-new-secret".to_vec()],
        &PlaybackSettings::default(),
    );
    let path = StreamPath::parse("paid/show").unwrap();
    assert_eq!(new_only.check(&path, printed.trim(), unix_now()), Ok(()));
    assert!(!dir.path().join("playback-secret").exists());

    for bad in ["live", "live/a/b", "api/x"] {
        let output = onair(dir.path(), &["sign", bad], &[]);
        assert!(!output.status.success(), "{bad}");
    }
}

#[test]
fn signed_playback_flag_and_environment_reach_the_settings_and_config_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let signed = |args: &[&str], env: &[(&str, &str)]| {
        let text = stdout(&onair(dir.path(), args, env));
        let value: toml::Value = toml::from_str(&text).unwrap();
        value["playback"]["signed"].as_bool().unwrap()
    };
    assert!(!signed(&["config"], &[]));
    assert!(signed(&["config", "--signed-playback"], &[]));
    assert!(signed(&["--signed-playback", "config"], &[]));
    assert!(!signed(&["config", "--signed-playback=false"], &[]));
    assert!(signed(&["config"], &[("ONAIR_SIGNED_PLAYBACK", "true")]));
    assert!(!signed(
        &["config", "--signed-playback=false"],
        &[("ONAIR_SIGNED_PLAYBACK", "true")]
    ));

    let secrets = r#"["new-secret-new-secret", "old-secret-old-secret"]"#;
    let shown = stdout(&onair(
        dir.path(),
        &["config"],
        &[("ONAIR_PLAYBACK__SECRETS", secrets)],
    ));
    assert!(!shown.contains("secret-new"), "{shown}");
    assert!(!shown.contains("secret-old"), "{shown}");
    assert_eq!(shown.matches("<redacted>").count(), 2, "{shown}");

    let too_many = r#"["aaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbb", "cccccccccccccccccccc"]"#;
    let output = onair(
        dir.path(),
        &["config"],
        &[("ONAIR_PLAYBACK__SECRETS", too_many)],
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("playback.secrets"));
}
