#![allow(clippy::unwrap_used, clippy::expect_used)]

//! What a newcomer meets on the command line: each helper command's `--help` lists
//! only what it uses, a helper that makes a new secret instead of reading the
//! server's says so, and `onair push` names its whole target with the key hidden.

use std::path::Path;
use std::process::{Command, Output};

fn onair(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_onair"))
        .args(args)
        .current_dir(dir)
        .env_remove("ONAIR_CONFIG")
        .env_remove("ONAIR_DATA_DIR")
        .output()
        .unwrap()
}

fn help(command: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = onair(&[command, "--help"], dir.path());
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

const SERVER_ONLY: [&str; 7] = [
    "--rtmp-listen",
    "--http-listen",
    "--log-format",
    "--allowed-origins",
    "--signed-playback",
    "--publish-auth",
    "--publish-webhook",
];

#[test]
fn helper_commands_list_only_their_own_options() {
    let push = help("push");
    for flag in SERVER_ONLY
        .iter()
        .chain(&["--data-dir", "--config", "--set"])
    {
        assert!(!push.contains(flag), "push --help lists {flag}:\n{push}");
    }
    assert!(push.contains("--loop"), "{push}");
    for command in ["token", "sign"] {
        let text = help(command);
        for flag in SERVER_ONLY {
            assert!(
                !text.contains(flag),
                "{command} --help lists {flag}:\n{text}"
            );
        }
        // They read the server's secrets, so they take where its settings are.
        for flag in ["--data-dir", "--config", "--set", "--ttl"] {
            assert!(
                text.contains(flag),
                "{command} --help lacks {flag}:\n{text}"
            );
        }
    }
    let serve = help("serve");
    for flag in SERVER_ONLY {
        assert!(serve.contains(flag), "serve --help lacks {flag}:\n{serve}");
    }
    let origins = serve
        .split("--allowed-origins")
        .nth(1)
        .unwrap()
        .split("\n  -")
        .next()
        .unwrap()
        .replace(char::is_whitespace, " ");
    for covered in ["REST API", "HTTP-FLV", "HLS", "SSE", "WebSocket"] {
        assert!(origins.contains(covered), "--allowed-origins: {origins}");
    }
}

#[test]
fn flags_may_come_before_the_command_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("state");
    let data = data.to_str().unwrap();
    let out = onair(&["--data-dir", data, "config"], dir.path());
    assert!(out.status.success(), "{out:?}");
    let config = String::from_utf8(out.stdout).unwrap();
    assert!(config.contains(data), "{config}");
    let out = onair(&["--data-dir", data, "token", "--user", "a"], dir.path());
    assert!(out.status.success(), "{out:?}");
    assert!(Path::new(data).join("token-secret").exists());
}

#[test]
fn token_and_sign_warn_when_they_make_a_new_secret() {
    let dir = tempfile::tempdir().unwrap();
    // No --data-dir: ./onair-data does not exist yet.
    let out = onair(&["token", "--user", "alice"], dir.path());
    assert!(out.status.success(), "{out:?}");
    let warning = String::from_utf8(out.stderr).unwrap();
    assert!(
        warning.contains("onair-data did not exist") && warning.contains("--data-dir"),
        "{warning}"
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 1);
    // The second time it reads what the first made: nothing to say.
    let out = onair(&["token", "--user", "alice"], dir.path());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // sign makes its own secret in the same dir: it says so, naming the secret.
    let out = onair(&["sign", "live/a"], dir.path());
    assert!(out.status.success(), "{out:?}");
    let warning = String::from_utf8(out.stderr).unwrap();
    assert!(warning.contains("made a new playback secret"), "{warning}");
    let out = onair(&["sign", "live/a"], dir.path());
    let quiet = String::from_utf8(out.stderr).unwrap();
    assert!(!quiet.contains("warning"), "{quiet}");
    // A configured secret is the server's own: no warning, no file.
    let other = tempfile::tempdir().unwrap();
    let out = onair(
        &["token", "--user", "a", "--set", "auth.token_secret=s3cret"],
        other.path(),
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn push_names_its_whole_target_with_the_key_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../server/tests/fixtures/ffmpeg_testsrc2_640x360_30fps_6s.flv"
    );
    // Nothing listens on port 9 of loopback: the connection is refused.
    let out = onair(
        &["push", fixture, "rtmp://127.0.0.1:9/live/demo?key=hunter2"],
        dir.path(),
    );
    assert!(!out.status.success());
    let error = String::from_utf8(out.stderr).unwrap();
    assert!(
        error.contains("rtmp://127.0.0.1:9/live/demo?key=***"),
        "{error}"
    );
    assert!(!error.contains("hunter2"), "{error}");
}
