#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The web pages: headers (CSP and friends), content types and caching of the embedded
//! assets, the public stream list and its setting, 404s, the vendored libraries being
//! the npm packages' files, and the pages themselves in a real browser
//! (`tests/browser/pages.mjs`: playwright-core with Debian's /usr/bin/chromium; skipped
//! like tests/browser.rs when node, chromium or node_modules is missing, unless
//! ONAIR_REQUIRE_INTEROP is set).

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{spawn_publisher, start_server, tool, TestServer, ADMIN_TOKEN};
use onair_server::rooms::Role;
use onair_server::signing::PlaybackSigner;
use reqwest::header;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const WAIT: Duration = Duration::from_secs(15);
const PLAYBACK_SECRET: &str = "pages-test-playback-secret";

fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn browser_dir() -> PathBuf {
    repo_dir().join("tests/browser")
}

/// Whether `npm ci --prefix tests/browser` has been run; same skip rule as `tool`.
fn browser_deps() -> bool {
    let modules = browser_dir().join("node_modules");
    let all = ["playwright-core", "mpegts.js", "hls.js", "uplot", "pngjs"];
    if all.iter().all(|m| modules.join(m).is_dir()) {
        return true;
    }
    if std::env::var_os("ONAIR_REQUIRE_INTEROP").is_some() {
        panic!(
            "{} is incomplete (ONAIR_REQUIRE_INTEROP is set): run `npm ci --prefix tests/browser`",
            modules.display()
        );
    }
    eprintln!(
        "skipping: tests/browser/node_modules is missing; run `npm ci --prefix tests/browser`"
    );
    false
}

async fn get(server: &TestServer, path: &str) -> reqwest::Response {
    reqwest::get(server.http_url(path)).await.unwrap()
}

fn header_of<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The versioned asset URLs a page links, e.g. `/assets/0a1b2c3d4e5f/js/watch.js`.
fn asset_links(html: &str) -> Vec<String> {
    let re = regex::Regex::new(r#"(?:src|href)="(/assets/[^"]+)""#).unwrap();
    re.captures_iter(html).map(|c| c[1].to_owned()).collect()
}

#[tokio::test]
async fn pages_are_html_with_security_headers() {
    let server = start_server(|_| {}).await;
    for path in ["/", "/watch/live/demo", "/admin"] {
        let response = get(&server, path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            header_of(&response, "content-type"),
            "text/html; charset=utf-8"
        );
        assert_eq!(header_of(&response, "x-content-type-options"), "nosniff");
        assert_eq!(header_of(&response, "referrer-policy"), "no-referrer");
        let csp = header_of(&response, "content-security-policy").to_owned();
        for directive in [
            "default-src 'self'",
            "script-src 'self';",
            "style-src 'self';",
            "media-src 'self' blob:",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "frame-ancestors 'self'",
        ] {
            assert!(
                csp.contains(directive),
                "{path}: {directive} missing in {csp}"
            );
        }
        let host = server.http.to_string();
        assert!(
            csp.contains(&format!("connect-src 'self' ws://{host} wss://{host};")),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        let html = response.text().await.unwrap();
        // Everything in files: no inline script or style for the CSP to block.
        assert!(!html.contains("<style"), "{path} has an inline style");
        assert!(!html.contains(" style="), "{path} has a style attribute");
        for script in html.split("<script").skip(1) {
            assert!(script.contains(" src="), "{path} has an inline script");
        }
        assert!(!asset_links(&html).is_empty(), "{path} links no assets");
    }
    server.stop().await;
}

#[tokio::test]
async fn frame_ancestors_follow_the_setting() {
    let server = start_server(|s| {
        s.pages.frame_ancestors = vec!["'self'".into(), "https://platform.example".into()];
    })
    .await;
    let response = get(&server, "/watch/live/demo").await;
    let csp = header_of(&response, "content-security-policy");
    assert!(
        csp.ends_with("frame-ancestors 'self' https://platform.example"),
        "{csp}"
    );
    server.stop().await;
}

#[tokio::test]
async fn assets_have_their_types_and_long_caching() {
    let server = start_server(|_| {}).await;
    let html = get(&server, "/watch/live/demo").await.text().await.unwrap();
    let links = asset_links(&html);
    let script = links.iter().find(|l| l.ends_with("/js/watch.js")).unwrap();
    let css = links.iter().find(|l| l.ends_with("/css/site.css")).unwrap();
    let version = script.split('/').nth(2).unwrap().to_owned();

    let response = get(&server, script).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header_of(&response, "content-type"),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        header_of(&response, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header_of(&response, "x-content-type-options"), "nosniff");
    let etag = header_of(&response, "etag").to_owned();
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");

    let again = reqwest::Client::new()
        .get(server.http_url(script))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    let response = get(&server, css).await;
    assert_eq!(
        header_of(&response, "content-type"),
        "text/css; charset=utf-8"
    );

    for (path, content_type) in [
        (
            format!("/assets/{version}/vendor/mpegts.js/mpegts.js"),
            "text/javascript; charset=utf-8",
        ),
        (
            format!("/assets/{version}/vendor/hls.js/hls.min.js"),
            "text/javascript; charset=utf-8",
        ),
        (
            format!("/assets/{version}/vendor/uplot/uPlot.esm.js"),
            "text/javascript; charset=utf-8",
        ),
        (
            format!("/assets/{version}/vendor/uplot/LICENSE"),
            "text/plain; charset=utf-8",
        ),
        (format!("/assets/{version}/favicon.svg"), "image/svg+xml"),
    ] {
        let response = get(&server, &path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header_of(&response, "content-type"), content_type, "{path}");
    }

    // Unversioned, or an old version: served, but revalidated each time.
    for path in ["/assets/js/watch.js", "/assets/0123456789ab/js/watch.js"] {
        let response = get(&server, path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header_of(&response, "cache-control"), "no-cache", "{path}");
        assert_eq!(
            header_of(&response, "content-type"),
            "text/javascript; charset=utf-8"
        );
    }

    // Templates are not files; nothing outside the assets folder is reachable.
    for path in [
        format!("/assets/{version}/pages/watch.html"),
        "/assets/nothing.js".to_owned(),
        "/assets/..%2F..%2FCargo.toml".to_owned(),
        "/assets/%2e%2e/%2e%2e/Cargo.toml".to_owned(),
    ] {
        let response = get(&server, &path).await;
        assert_eq!(response.status(), 404, "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn bad_watch_paths_get_the_404_page_and_unknown_streams_the_player() {
    let server = start_server(|_| {}).await;
    for path in [
        "/watch",
        "/watch/",
        "/watch/live",
        "/watch/live/demo/extra",
        "/watch/li%20ve/demo",
        "/watch/%ZZ/demo",
        "/watch/live/%FF%FE",
        "/watch/api/demo",
        &format!("/watch/live/{}", "x".repeat(65)),
    ] {
        let response = get(&server, path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(
            header_of(&response, "content-type"),
            "text/html; charset=utf-8",
            "{path}"
        );
        assert!(response.text().await.unwrap().contains("Not found"));
    }
    // Not live (yet): the page loads and waits.
    let response = get(&server, "/watch/live/nobody-here").await;
    assert_eq!(response.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn public_live_list_shows_only_public_fields() {
    let server = start_server(|s| {
        s.playback.apps.insert(
            "paid".into(),
            onair_server::config::AppPlayback { signed: true },
        );
    })
    .await;
    let public = spawn_publisher(&server, "live/public").await;
    let paid = spawn_publisher(&server, "paid/secret").await;
    server.wait_live("live/public", WAIT).await;
    server.wait_live("paid/secret", WAIT).await;

    // No token needed.
    let response = get(&server, "/api/v1/live").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    let streams = body["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1, "signed-playback apps stay out: {body}");
    let stream = &streams[0];
    assert_eq!(stream["stream"], "live/public");
    assert_eq!(stream["app"], "live");
    assert_eq!(stream["name"], "public");
    assert_eq!(stream["video"]["codec"], "h264");
    assert_eq!(stream["video"]["width"], 640);
    assert_eq!(stream["video"]["height"], 360);
    assert!(stream["viewers"].is_u64());
    assert!(stream["uptime_seconds"].is_u64());
    let mut keys: Vec<_> = stream.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "app",
            "audio",
            "description",
            "name",
            "started_at",
            "stream",
            "title",
            "uptime_seconds",
            "video",
            "viewers"
        ],
        "only public fields: {stream}"
    );
    let text = body.to_string();
    for private in ["bytes", "127.0.0.1", "encoder", "key", "peer"] {
        assert!(!text.contains(private), "{private} in {text}");
    }
    public.abort();
    paid.abort();
    server.stop().await;
}

#[tokio::test]
async fn public_stream_list_can_be_turned_off() {
    let server = start_server(|s| s.pages.public_stream_list = false).await;
    let response = get(&server, "/api/v1/live").await;
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    let response = get(&server, "/").await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        header_of(&response, "content-type"),
        "text/html; charset=utf-8"
    );
    // The watch and admin pages stay.
    assert_eq!(get(&server, "/watch/live/demo").await.status(), 200);
    assert_eq!(get(&server, "/admin").await.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn pages_can_be_turned_off() {
    let server = start_server(|s| s.pages.enabled = false).await;
    for path in ["/", "/watch/live/demo", "/admin", "/assets/js/watch.js"] {
        let response = get(&server, path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert!(
            header_of(&response, "content-type").starts_with("application/json"),
            "{path}"
        );
    }
    // The public list is its own setting.
    assert_eq!(get(&server, "/api/v1/live").await.status(), 200);
    server.stop().await;
}

/// Each vendored library file is the npm package's file, byte for byte, at the version
/// pinned in tests/browser/package.json.
#[test]
fn vendored_files_are_the_npm_packages_files() {
    if !browser_deps() {
        return;
    }
    let vendor = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../edge/assets/vendor");
    let modules = browser_dir().join("node_modules");
    let pairs = [
        ("mpegts.js/mpegts.js", "mpegts.js/dist/mpegts.js"),
        (
            "mpegts.js/mpegts.js.LICENSE.txt",
            "mpegts.js/dist/mpegts.js.LICENSE.txt",
        ),
        ("mpegts.js/LICENSE", "mpegts.js/LICENSE"),
        ("hls.js/hls.min.js", "hls.js/dist/hls.min.js"),
        ("hls.js/LICENSE", "hls.js/LICENSE"),
        ("uplot/uPlot.esm.js", "uplot/dist/uPlot.esm.js"),
        ("uplot/uPlot.min.css", "uplot/dist/uPlot.min.css"),
        ("uplot/LICENSE", "uplot/LICENSE"),
    ];
    for (ours, theirs) in pairs {
        let ours_bytes = std::fs::read(vendor.join(ours)).unwrap();
        let theirs_bytes = std::fs::read(modules.join(theirs)).unwrap();
        assert!(
            ours_bytes == theirs_bytes,
            "assets/vendor/{ours} differs from node_modules/{theirs}"
        );
    }
    // The README of each names the version package.json pins.
    let package: serde_json::Value =
        serde_json::from_slice(&std::fs::read(browser_dir().join("package.json")).unwrap())
            .unwrap();
    for (dir, package_name) in [
        ("mpegts.js", "mpegts.js"),
        ("hls.js", "hls.js"),
        ("uplot", "uplot"),
    ] {
        let version = package["dependencies"][package_name].as_str().unwrap();
        let readme = std::fs::read_to_string(vendor.join(dir).join("README.md")).unwrap();
        assert!(
            readme.contains(&format!("{package_name}@{version}")),
            "assets/vendor/{dir}/README.md does not name {package_name}@{version}"
        );
        let installed: serde_json::Value = serde_json::from_slice(
            &std::fs::read(modules.join(package_name).join("package.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(installed["version"], version, "{package_name} installed");
    }
}

/// Where screenshots go: $ONAIR_ARTIFACTS_DIR, else target/ci-artifacts.
fn artifacts_dir() -> PathBuf {
    std::env::var_os("ONAIR_ARTIFACTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_dir().join("target/ci-artifacts"))
}

/// The pages in Chromium: the list (titles, pictures), playback (and muted autoplay
/// with its unmute button), title and description, chat + danmaku across pages (times,
/// name colours, scrolling that pauses), likes, gifts, a refused chat token, the offline
/// card and back, escaping, and the admin dashboard (open-publishing notice, labelled
/// keys, kicking, deleting, muting).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_work_in_chromium() {
    if !tool("node") || !tool("chromium") || !browser_deps() {
        return;
    }
    let stream = "live/pages";
    let server = start_server(|s| {
        s.playback.secrets = vec![PLAYBACK_SECRET.into()];
        s.playback.apps.insert(
            "paid".into(),
            onair_server::config::AppPlayback { signed: true },
        );
    })
    .await;
    let mut publisher = Some(spawn_publisher(&server, stream).await);
    let paid = spawn_publisher(&server, "paid/show").await;
    server.wait_live(stream, WAIT).await;
    server.wait_live("paid/show", WAIT).await;
    let signer = PlaybackSigner::new(
        &[PLAYBACK_SECRET.as_bytes().to_vec()],
        &server.settings.playback,
    );
    let signed_query = signer.sign(
        &onair_media::StreamPath::parse("paid/show").unwrap(),
        onair_server::signing::unix_now() + 3600,
    );

    let artifacts = artifacts_dir();
    let config = serde_json::json!({
        "base": server.http_url(""),
        "stream": stream,
        "adminToken": ADMIN_TOKEN,
        "alice": server.token("alice", Role::Viewer),
        "bob": server.token("bob", Role::Viewer),
        // Signed with a secret the server does not have: refused with 4001.
        "wrongToken": onair_server::auth::TokenKeys::new(b"not-this-servers-secret").mint(
            &onair_server::rooms::User::new("mallory", "mallory", Role::Viewer),
            3600
        ),
        "artifacts": artifacts,
        "signed": {"stream": "paid/show", "query": signed_query},
    });
    let mut child = tokio::process::Command::new("node")
        .arg(browser_dir().join("pages.mjs"))
        .arg(config.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let stderr = child.stderr.take().unwrap();
    let stderr_task = tokio::spawn(async move {
        let mut text = String::new();
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("pages.mjs: {line}");
            text.push_str(&line);
            text.push('\n');
        }
        text
    });

    // The script bounds itself (360 s); this is a backstop.
    let result = tokio::time::timeout(Duration::from_secs(420), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let message: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not JSON from pages.mjs ({e}): {line}"));
            match message["cmd"].as_str() {
                Some("stop_publisher") => {
                    if let Some(task) = publisher.take() {
                        task.abort();
                    }
                    stdin.write_all(b"ok\n").await.unwrap();
                }
                Some("start_publisher") => {
                    publisher = Some(spawn_publisher(&server, stream).await);
                    stdin.write_all(b"ok\n").await.unwrap();
                }
                _ => return message,
            }
        }
        panic!("pages.mjs ended without a result");
    })
    .await
    .expect("pages.mjs did not finish");
    let _ = child.wait().await;
    let stderr = stderr_task.await.unwrap();
    eprintln!("pages: {result}");
    assert!(
        result["ok"] == true,
        "browser test failed at step {}: {}\n{result}\n{stderr}",
        result["step"],
        result["reason"]
    );

    let playback = &result["playback"];
    assert_eq!(playback["tech"], "flv", "{result}");
    assert_eq!(playback["videoWidth"], 640, "{result}");
    let hls = &result["hlsPlayback"];
    assert_eq!(hls["tech"], "hls", "{result}");
    assert_eq!(hls["videoWidth"], 640, "{result}");
    assert_eq!(hls["videoHeight"], 360, "{result}");
    assert_eq!(playback["videoHeight"], 360, "{result}");
    assert!(playback["currentTime"].as_f64().unwrap() > 1.5, "{result}");
    assert_eq!(result["tokenLeftUrl"], true, "{result}");
    assert_eq!(result["listLinksTo"], "/watch/live/pages", "{result}");
    assert!(
        result["listRow"].as_str().unwrap().contains("640×360"),
        "{result}"
    );
    let list_item = &result["listItem"];
    assert_eq!(list_item["title"], "Pages test: chat & gifts", "{result}");
    assert_eq!(list_item["path"], "live/pages", "{result}");
    assert_eq!(list_item["imgSrc"], "/live/pages/snapshot.jpg", "{result}");
    assert_eq!(list_item["brokenImage"], false, "{result}");
    assert_eq!(list_item["boxWidth"], 160, "{result}");
    assert_eq!(list_item["boxHeight"], 90, "{result}");

    assert_eq!(
        result["autoplayWithSound"],
        serde_json::json!({"muted": false, "unmuteShown": false}),
        "{result}"
    );
    let muted = &result["mutedAutoplay"];
    assert_eq!(muted["before"]["muted"], true, "{result}");
    assert!(
        muted["before"]["buttonText"]
            .as_str()
            .unwrap()
            .contains("unmute"),
        "{result}"
    );
    assert_eq!(
        muted["after"],
        serde_json::json!({"muted": false, "paused": false, "buttonShown": false}),
        "{result}"
    );

    let info = &result["streamInfo"];
    assert_eq!(info["title"], "Pages test: chat & gifts", "{result}");
    assert_eq!(
        info["description"], "A <b>description</b>, shown as text.",
        "{result}"
    );
    assert_eq!(info["descriptionShown"], true, "{result}");
    assert_eq!(info["descriptionElements"], 0, "{result}");
    assert_eq!(
        info["documentTitle"], "Pages test: chat & gifts — onair",
        "{result}"
    );

    for look in [&result["chatLookA"], &result["chatLookB"]] {
        assert_eq!(look["timesMatch"], true, "{result}");
        assert!(look["maxAgeMs"].as_f64().unwrap() < 600_000.0, "{result}");
        assert!(look["userLines"].as_u64().unwrap() >= 2, "{result}");
        assert_eq!(look["userClasses"].as_array().unwrap().len(), 1, "{result}");
        assert_eq!(look["userColors"].as_array().unwrap().len(), 1, "{result}");
        assert!(look["minContrast"].as_f64().unwrap() >= 4.5, "{result}");
    }
    assert_eq!(
        result["chatLookA"]["userColors"], result["chatLookB"]["userColors"],
        "one colour for alice on every page: {result}"
    );

    let scroll = &result["scroll"];
    assert_eq!(scroll["following"]["overflows"], true, "{result}");
    assert_eq!(scroll["following"]["atBottom"], true, "{result}");
    assert_eq!(scroll["following"]["moreShown"], false, "{result}");
    assert_eq!(scroll["paused"]["atBottom"], false, "{result}");
    assert_eq!(scroll["paused"]["moreShown"], true, "{result}");
    assert!(
        scroll["buttonText"]
            .as_str()
            .unwrap()
            .contains("New messages"),
        "{result}"
    );
    assert_eq!(scroll["resumed"]["atBottom"], true, "{result}");
    assert_eq!(scroll["resumed"]["moreShown"], false, "{result}");

    let gifts: Vec<&str> = result["giftLines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line.as_str().unwrap())
        .collect();
    assert!(gifts.contains(&"alice sent 2 roses"), "{result}");
    assert!(gifts.contains(&"alice sent a rose — combo ×2"), "{result}");
    let popup = &result["giftPopup"];
    assert!(
        popup["text"]
            .as_str()
            .unwrap()
            .contains("alice sent 2 roses"),
        "{result}"
    );
    assert_eq!(popup["animation"], "gift-pop", "{result}");
    assert_eq!(popup["overVideo"], true, "{result}");
    assert_eq!(result["giftPopupRemoved"], true, "{result}");

    let refused = &result["tokenRefused"];
    let reason = refused["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("Your chat token was refused: ") && reason.contains("signature"),
        "{result}"
    );
    assert!(
        refused["hint"].as_str().unwrap().contains("onair token"),
        "{result}"
    );
    assert_eq!(refused["canSend"], false, "{result}");
    assert!(refused["tokenKept"].is_null(), "{result}");
    assert_eq!(result["deleted"], true, "{result}");
    assert_eq!(result["signed"]["videoWidth"], 640, "{result}");
    assert_eq!(result["unsigned"]["badge"], "connecting", "{result}");
    assert_eq!(result["unsigned"]["videoWidth"], 0, "{result}");
    eprintln!(
        "chat from one page to another: list {} ms, danmaku {} ms",
        result["chat"]["listMs"], result["chat"]["danmakuMs"]
    );
    let resume = &result["resume"];
    assert_eq!(resume["counts"], serde_json::json!([1, 1, 1]), "{result}");
    assert_eq!(resume["duplicateIds"], 0, "{result}");
    assert_eq!(resume["inOrder"], true, "{result}");
    let escaped = &result["escaped"];
    assert_eq!(escaped["shownAsText"], true, "{result}");
    assert_eq!(escaped["elements"], 0, "{result}");
    assert!(escaped["pwned"].is_null() && escaped["pwnedSender"].is_null());
    let likes = &result["likes"];
    assert!(likes["after"].as_u64().unwrap() >= likes["before"].as_u64().unwrap() + 3);
    assert_eq!(result["danmakuToggle"]["pressed"], "false", "{result}");
    assert_eq!(result["danmakuToggle"]["layer"], "false", "{result}");
    let phone = &result["phone"];
    assert!(phone["overflowX"].as_i64().unwrap() <= 0, "{result}");
    assert_eq!(phone["chatBelowVideo"], true, "{result}");
    assert!(phone["videoWidth"].as_i64().unwrap() >= 300, "{result}");
    assert_eq!(result["offlineWaiting"], true, "{result}");
    for card in [&result["offlineCard"], &result["offlineCardReloaded"]] {
        assert_eq!(card["shown"], true, "{result}");
        assert_eq!(card["heading"], "Offline", "{result}");
        assert_eq!(card["title"], "Pages test: chat & gifts", "{result}");
        assert_eq!(card["titleShown"], true, "{result}");
        assert!(
            card["lastLive"].as_str().unwrap().starts_with("Last live "),
            "{result}"
        );
        let age = card["lastLiveAgeS"].as_f64().unwrap();
        assert!((-5.0..600.0).contains(&age), "{result}");
    }
    assert_eq!(result["resumed"]["videoWidth"], 640, "{result}");
    assert_eq!(
        result["titleAfterLive"], "Pages test, the second show",
        "{result}"
    );
    assert_eq!(result["keyShown"], true);
    let publish_open = &result["publishOpen"];
    assert_eq!(publish_open["shown"], true, "{result}");
    assert!(
        publish_open["text"]
            .as_str()
            .unwrap()
            .contains("Publishing is open: anyone can publish and keys are not checked."),
        "{result}"
    );
    assert_eq!(result["keyWarning"]["shown"], true, "{result}");
    assert!(
        !result["keyWarning"]["text"].as_str().unwrap().is_empty(),
        "{result}"
    );
    let keys = &result["keysTable"];
    assert_eq!(
        keys["head"],
        serde_json::json!(["Id", "Stream", "Label", "Created", "Last used", ""]),
        "{result}"
    );
    assert_eq!(keys["label"], "OBS at home", "{result}");
    assert!(keys["createdIso"].is_string(), "{result}");
    assert_eq!(keys["lastUsed"], "never", "{result}");
    assert_eq!(
        result["moderatorToken"],
        serde_json::json!({"sub": "admin", "role": "moderator"}),
        "{result}"
    );
    assert_eq!(result["muteShown"], true);
    assert!(
        result["muteMessage"].as_str().unwrap().contains("muted"),
        "{result}"
    );
    assert_eq!(result["kicked"], true);

    // The screenshots exist and show something: not one flat colour, video not black.
    let watch = &result["watchScreenshot"];
    assert!(watch["stddev"].as_f64().unwrap() > 10.0, "blank: {watch}");
    assert!(
        watch["videoMean"].as_f64().unwrap() > 30.0,
        "video black: {watch}"
    );
    assert!(
        watch["videoBrightShare"].as_f64().unwrap() > 0.3,
        "video mostly black: {watch}"
    );
    let admin = &result["adminScreenshot"];
    assert!(admin["stddev"].as_f64().unwrap() > 5.0, "blank: {admin}");
    for name in ["watch.png", "admin.png"] {
        let bytes = std::fs::read(artifacts.join(name)).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{name} is not a PNG"
        );
    }

    if let Some(task) = publisher {
        task.abort();
    }
    paid.abort();
    server.stop().await;
}
