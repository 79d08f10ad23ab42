//! Build facts for `GET /api/v1/server`: the git commit (or `ONAIR_GIT_COMMIT` when
//! building outside a checkout), the compiler and the profile. Anything unknown is
//! "unknown"; a build never fails for want of git.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=ONAIR_GIT_COMMIT");
    let commit = std::env::var("ONAIR_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=ONAIR_GIT_COMMIT={commit}");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let version = output(&rustc, &["-V"]).unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=ONAIR_RUSTC_VERSION={version}");
    let profile = std::env::var("PROFILE").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=ONAIR_BUILD_PROFILE={profile}");
}

/// HEAD's commit, and the files to watch so a new commit rebuilds.
fn git_commit() -> Option<String> {
    if let Some(path) = output("git", &["rev-parse", "--git-path", "HEAD"]) {
        println!("cargo:rerun-if-changed={path}");
    }
    if let Some(reference) = output("git", &["symbolic-ref", "-q", "HEAD"]) {
        if let Some(path) = output("git", &["rev-parse", "--git-path", &reference]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    output("git", &["rev-parse", "HEAD"])
}

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}
