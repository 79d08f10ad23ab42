//! The files the pages use, embedded in the binary (`crates/server/assets/`), served
//! under `/assets/`. Every page links them as `/assets/{version}/…`, where the version
//! is a hash of all of them: such a URL never changes content, so it is cached for a
//! year as immutable, and an ES module's relative imports stay inside the same version.
//! Without the version (or with an old one) a file is served with `no-cache` and an
//! ETag. The HTML templates under `pages/` are not served as files.

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// Where the HTML templates live inside the assets folder.
const TEMPLATES: &str = "pages/";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// The hash of every embedded file, names included: the `{version}` in asset URLs.
pub(super) fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut names: Vec<_> = Assets::iter().collect();
        names.sort();
        let mut hasher = Sha256::new();
        for name in names {
            if let Some(file) = Assets::get(&name) {
                hasher.update(name.as_bytes());
                hasher.update([0]);
                hasher.update(file.metadata.sha256_hash());
            }
        }
        hex(&hasher.finalize()[..6])
    })
}

fn looks_like_version(segment: &str) -> bool {
    segment.len() == 12
        && segment
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// An HTML template with `{{assets}}` replaced by the versioned asset prefix.
pub(super) fn template(name: &str) -> Option<String> {
    let file = Assets::get(&format!("{TEMPLATES}{name}"))?;
    let text = String::from_utf8_lossy(&file.data);
    Some(text.replace("{{assets}}", &format!("/assets/{}", version())))
}

/// `GET /assets/{*path}`.
pub(super) fn serve(path: &str, request: &HeaderMap) -> Response {
    let (path, cache) = match path.split_once('/') {
        Some((v, rest)) if v == version() => (rest, IMMUTABLE),
        // A page from before an upgrade still gets the files, just not for keeps.
        Some((v, rest)) if looks_like_version(v) => (rest, REVALIDATE),
        _ => (path, REVALIDATE),
    };
    if path.starts_with(TEMPLATES) {
        return super::not_found_page();
    }
    let Some(file) = Assets::get(path) else {
        return super::not_found_page();
    };
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (headers, file.data.into_owned()).into_response()
}

/// The Content-Type for a file name (the embedded set is known: no sniffing needed).
pub(super) fn content_type(path: &str) -> &'static str {
    let file = path.rsplit('/').next().unwrap_or(path);
    let extension = file.rsplit_once('.').map_or("", |(_, e)| e);
    match extension {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "map" => "application/json",
        "md" | "txt" => "text/plain; charset=utf-8",
        _ if !file.contains('.') => "text/plain; charset=utf-8", // LICENSE
        _ => "application/octet-stream",
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_fitting_content_type() {
        for name in Assets::iter() {
            assert_ne!(
                content_type(&name),
                "application/octet-stream",
                "{name} has no known content type"
            );
        }
        assert_eq!(
            content_type("js/watch.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            content_type("vendor/hls.js/LICENSE"),
            "text/plain; charset=utf-8"
        );
    }

    #[test]
    fn templates_link_versioned_assets_that_exist() {
        for page in ["index.html", "watch.html", "admin.html", "404.html"] {
            let html = template(page).unwrap_or_else(|| panic!("{page} is missing"));
            let prefix = format!("/assets/{}/", version());
            assert!(!html.contains("{{"), "{page} has an unfilled placeholder");
            for link in html.split(&prefix).skip(1) {
                let file = link.split('"').next().unwrap_or_default();
                assert!(
                    Assets::get(file).is_some(),
                    "{page} links {file}, which is missing"
                );
            }
        }
    }
}
