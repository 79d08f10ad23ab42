//! Signed playback URLs: `?expires=<unix seconds>&sig=<hex HMAC-SHA256>` over
//! `"{app}/{name}\n{expires}"` (docs/security.md has the recipe for backends).
//!
//! The signature covers the stream path, not the file URL, so one query string opens
//! a stream over every playback protocol: RTMP, HTTP-FLV, HLS (playlist and segments)
//! and the room over WebSocket or SSE. Two secrets may verify at once (rotation); the
//! first one signs.
//!
//! Deliberately absent: any knowledge of the protocols. Callers hand in the query
//! string (or its two values) and map [`SignError`] to their own refusal.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use onair_media::StreamPath;
use sha2::Sha256;

use crate::settings::PlaybackSettings;

/// The file in the data dir that holds the generated secret when none is configured.
pub const PLAYBACK_SECRET_FILE: &str = "playback-secret";

/// Longest `expires` value accepted, in characters (`u64::MAX` has 20 digits).
const MAX_EXPIRES_LEN: usize = 20;
/// Length of a signature in hex.
const SIG_HEX_LEN: usize = 64;

type HmacSha256 = Hmac<Sha256>;

/// Why a playback request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    #[error("this stream needs a signed URL (expires and sig query parameters)")]
    Required,
    #[error("the URL's signature is malformed or does not match the stream")]
    Invalid,
    #[error("the signed URL has expired")]
    Expired,
}

impl SignError {
    /// The error code clients see (HTTP JSON body, RTMP status description).
    pub fn code(self) -> &'static str {
        match self {
            SignError::Required => "signature_required",
            SignError::Invalid => "signature_invalid",
            SignError::Expired => "signature_expired",
        }
    }
}

/// Signs and checks playback URLs with the configured secrets.
#[derive(Clone)]
pub struct PlaybackSigner {
    /// Keyed MACs, first one signs; cloned per use instead of re-keying.
    keys: Vec<HmacSha256>,
    signed: bool,
    apps: BTreeMap<String, bool>,
}

impl std::fmt::Debug for PlaybackSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaybackSigner")
            .field("keys", &self.keys.len())
            .field("signed", &self.signed)
            .field("apps", &self.apps)
            .finish()
    }
}

impl PlaybackSigner {
    /// A signer with the configured secrets, or, when none is configured, the one in
    /// `data_dir/playback-secret` (created, mode 0600, at first use).
    pub fn load(settings: &PlaybackSettings, data_dir: &Path) -> io::Result<Self> {
        let secrets: Vec<Vec<u8>> = if settings.secrets.is_empty() {
            std::fs::create_dir_all(data_dir)?;
            // Not logged: `onair sign` prints its answer on stdout, where logs go too.
            let (secret, _created) =
                crate::secrets::read_or_create(&data_dir.join(PLAYBACK_SECRET_FILE))?;
            vec![secret.into_bytes()]
        } else {
            settings
                .secrets
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect()
        };
        Ok(Self::new(&secrets, settings))
    }

    /// A signer with these secrets (the first signs, all verify).
    pub fn new(secrets: &[Vec<u8>], settings: &PlaybackSettings) -> Self {
        let keys = secrets
            .iter()
            // HMAC takes keys of any length; this cannot fail.
            .filter_map(|secret| HmacSha256::new_from_slice(secret).ok())
            .collect();
        Self {
            keys,
            signed: settings.signed,
            apps: settings
                .apps
                .iter()
                .map(|(app, over)| (app.clone(), over.signed))
                .collect(),
        }
    }

    /// Whether playback in `app` needs a signed URL: the app's override, else the global switch.
    pub fn required_for(&self, app: &str) -> bool {
        self.apps.get(app).copied().unwrap_or(self.signed)
    }

    /// The query string `expires=…&sig=…` that opens `path` until `expires` (Unix seconds).
    pub fn sign(&self, path: &StreamPath, expires: u64) -> String {
        let expires = expires.to_string();
        let sig = self
            .keys
            .first()
            .map(|key| hex(&mac(key, path, &expires)))
            .unwrap_or_default();
        format!("expires={expires}&sig={sig}")
    }

    /// Checks a request's query string (`a=1&expires=…&sig=…`, no leading `?`) for `path`
    /// when `path`'s app requires signing; `now` is Unix seconds.
    pub fn authorize(&self, path: &StreamPath, query: &str, now: u64) -> Result<(), SignError> {
        if !self.required_for(path.app()) {
            return Ok(());
        }
        self.check(path, query, now)
    }

    /// Checks a query string's signature for `path`, whatever the app's setting.
    pub fn check(&self, path: &StreamPath, query: &str, now: u64) -> Result<(), SignError> {
        self.check_values(
            path,
            query_value(query, "expires"),
            query_value(query, "sig"),
            now,
        )
    }

    /// [`authorize`](Self::authorize) with the two values already taken out of the query.
    pub fn authorize_values(
        &self,
        path: &StreamPath,
        expires: Option<&str>,
        sig: Option<&str>,
        now: u64,
    ) -> Result<(), SignError> {
        if !self.required_for(path.app()) {
            return Ok(());
        }
        self.check_values(path, expires, sig, now)
    }

    fn check_values(
        &self,
        path: &StreamPath,
        expires: Option<&str>,
        sig: Option<&str>,
        now: u64,
    ) -> Result<(), SignError> {
        let (Some(expires_text), Some(sig)) = (expires, sig) else {
            return Err(SignError::Required);
        };
        if expires_text.is_empty()
            || expires_text.len() > MAX_EXPIRES_LEN
            || !expires_text.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(SignError::Invalid);
        }
        let expires: u64 = expires_text.parse().map_err(|_| SignError::Invalid)?;
        let sig = unhex(sig).ok_or(SignError::Invalid)?;
        let verified = self.keys.iter().any(|key| {
            let mut key = key.clone();
            update(&mut key, path, expires_text);
            // Constant-time comparison.
            key.verify_slice(&sig).is_ok()
        });
        if !verified {
            return Err(SignError::Invalid);
        }
        if now > expires {
            return Err(SignError::Expired);
        }
        Ok(())
    }
}

/// The `expires=…&sig=…` part of a request's query, to append to the URLs a response
/// lists (HLS segment and part URIs), so that one signed playlist URL opens them all.
/// `None` when the query carries no signature.
pub fn signature_params(query: &str) -> Option<String> {
    let expires = query_value(query, "expires")?;
    let sig = query_value(query, "sig")?;
    let expires_ok = !expires.is_empty() && expires.bytes().all(|b| b.is_ascii_digit());
    let sig_ok = sig.len() == SIG_HEX_LEN && sig.bytes().all(|b| b.is_ascii_hexdigit());
    (expires_ok && sig_ok).then(|| format!("expires={expires}&sig={sig}"))
}

/// `uri` with `params` added to its query (`?` or `&` as fits).
pub fn with_params(uri: &str, params: &str) -> String {
    if params.is_empty() {
        return uri.to_owned();
    }
    let separator = match uri.find('?') {
        None => '?',
        Some(at) if at + 1 == uri.len() || uri.ends_with('&') => {
            return format!("{uri}{params}");
        }
        Some(_) => '&',
    };
    format!("{uri}{separator}{params}")
}

/// Whether a query string carries a `sig` parameter (to pick which of several
/// candidate queries a client meant to sign with).
pub fn has_signature(query: &str) -> bool {
    query_value(query, "sig").is_some()
}

/// Seconds since the Unix epoch by the system clock.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The first value of `name` in a query string. Values here are digits and hex, so no
/// percent-decoding is needed; an encoded one simply fails to verify.
fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .trim_start_matches('?')
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn mac(key: &HmacSha256, path: &StreamPath, expires: &str) -> Vec<u8> {
    let mut key = key.clone();
    update(&mut key, path, expires);
    key.finalize().into_bytes().to_vec()
}

/// Feeds the signed message, `"{app}/{name}\n{expires}"`.
fn update(key: &mut HmacSha256, path: &StreamPath, expires: &str) {
    key.update(path.app().as_bytes());
    key.update(b"/");
    key.update(path.name().as_bytes());
    key.update(b"\n");
    key.update(expires.as_bytes());
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// A 32-byte signature from 64 hex digits (either case); `None` for anything else.
fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() != SIG_HEX_LEN {
        return None;
    }
    let digit = |b: u8| char::from(b).to_digit(16);
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| match pair {
            [high, low] => u8::try_from(digit(*high)? << 4 | digit(*low)?).ok(),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::AppPlayback;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    /// `printf 'live/alice\n1700000000' | openssl dgst -sha256 -hmac 0123456789abcdef0123456789abcdef`
    const OPENSSL_SIG: &str = "00090e2b32f2605b2b67ac075839b56408dfc57427be626b90a2da909d762329";

    fn path(text: &str) -> StreamPath {
        StreamPath::parse(text).unwrap()
    }

    fn signer(secrets: &[&[u8]]) -> PlaybackSigner {
        let settings = PlaybackSettings {
            signed: true,
            ..PlaybackSettings::default()
        };
        let secrets: Vec<Vec<u8>> = secrets.iter().map(|s| s.to_vec()).collect();
        PlaybackSigner::new(&secrets, &settings)
    }

    #[test]
    fn known_vector_matches_openssl() {
        let query = signer(&[SECRET]).sign(&path("live/alice"), 1_700_000_000);
        assert_eq!(query, format!("expires=1700000000&sig={OPENSSL_SIG}"));
    }

    #[test]
    fn valid_until_the_expiry_second_then_expired() {
        let signer = signer(&[SECRET]);
        let alice = path("live/alice");
        let query = signer.sign(&alice, 1000);
        assert_eq!(signer.check(&alice, &query, 999), Ok(()));
        assert_eq!(signer.check(&alice, &query, 1000), Ok(()));
        assert_eq!(signer.check(&alice, &query, 1001), Err(SignError::Expired));
    }

    #[test]
    fn tampered_or_for_another_path_is_invalid() {
        let signer = signer(&[SECRET]);
        let alice = path("live/alice");
        let query = signer.sign(&alice, 1000);
        // Another expiry with the same signature.
        let later = query.replace("expires=1000", "expires=2000");
        assert_eq!(signer.check(&alice, &later, 0), Err(SignError::Invalid));
        // One flipped digit.
        let sig = query_value(&query, "sig").unwrap();
        let flipped = format!(
            "{}{}",
            if sig.starts_with('0') { '1' } else { '0' },
            &sig[1..]
        );
        let tampered = format!("expires=1000&sig={flipped}");
        assert_eq!(signer.check(&alice, &tampered, 0), Err(SignError::Invalid));
        assert_eq!(
            signer.check(&path("live/bob"), &query, 0),
            Err(SignError::Invalid)
        );
        assert_eq!(
            signer.check(&path("other/alice"), &query, 0),
            Err(SignError::Invalid)
        );
        // A tampered URL is invalid even when also expired: expiry is only told for
        // signatures that verify.
        assert_eq!(
            signer.check(&alice, &tampered, 5000),
            Err(SignError::Invalid)
        );
    }

    #[test]
    fn second_secret_verifies_third_does_not() {
        let alice = path("live/alice");
        let old = signer(&[b"old-secret-old-secret"]).sign(&alice, 1000);
        let rotated = signer(&[b"new-secret-new-secret", b"old-secret-old-secret"]);
        assert_eq!(rotated.check(&alice, &old, 0), Ok(()));
        // The new secret signs.
        let new = rotated.sign(&alice, 1000);
        assert_eq!(
            signer(&[b"new-secret-new-secret"]).check(&alice, &new, 0),
            Ok(())
        );
        let oldest = signer(&[b"oldest-secret-oldest"]).sign(&alice, 1000);
        assert_eq!(rotated.check(&alice, &oldest, 0), Err(SignError::Invalid));
    }

    #[test]
    fn missing_and_malformed_values() {
        let signer = signer(&[SECRET]);
        let alice = path("live/alice");
        let good = signer.sign(&alice, 1000);
        let sig = query_value(&good, "sig").unwrap().to_owned();
        for query in ["", "expires=1000", &format!("sig={sig}"), "token=abc"] {
            assert_eq!(
                signer.check(&alice, query, 0),
                Err(SignError::Required),
                "{query}"
            );
        }
        for query in [
            format!("expires=&sig={sig}"),
            format!("expires=-1&sig={sig}"),
            format!("expires=+1000&sig={sig}"),
            format!("expires=1e3&sig={sig}"),
            format!("expires=99999999999999999999999&sig={sig}"),
            "expires=1000&sig=".to_owned(),
            "expires=1000&sig=zz".to_owned(),
            format!("expires=1000&sig={}", &sig[..62]),
            format!("expires=1000&sig={sig}00"),
            format!("expires=1000&sig={}", "é".repeat(32)),
            format!("expires=1000&sig=%{}", &sig[1..]),
        ] {
            assert_eq!(
                signer.check(&alice, &query, 0),
                Err(SignError::Invalid),
                "{query}"
            );
        }
        // Other parameters around it, a leading `?`, upper-case hex: all fine.
        let around = format!("token=t&expires=1000&since=3&sig={}", sig.to_uppercase());
        assert_eq!(signer.check(&alice, &around, 0), Ok(()));
        assert_eq!(signer.check(&alice, &format!("?{good}"), 0), Ok(()));
    }

    #[test]
    fn apps_override_the_global_switch() {
        let mut settings = PlaybackSettings::default();
        settings
            .apps
            .insert("paid".to_owned(), AppPlayback { signed: true });
        let signer = PlaybackSigner::new(&[SECRET.to_vec()], &settings);
        assert!(!signer.required_for("live"));
        assert!(signer.required_for("paid"));
        assert_eq!(signer.authorize(&path("live/a"), "", 0), Ok(()));
        assert_eq!(
            signer.authorize(&path("paid/a"), "", 0),
            Err(SignError::Required)
        );

        settings.signed = true;
        settings
            .apps
            .insert("free".to_owned(), AppPlayback { signed: false });
        let signer = PlaybackSigner::new(&[SECRET.to_vec()], &settings);
        assert!(signer.required_for("live"));
        assert_eq!(signer.authorize(&path("free/a"), "", 0), Ok(()));
        assert_eq!(
            signer.authorize_values(&path("live/a"), None, None, 0),
            Err(SignError::Required)
        );
    }

    #[test]
    fn generated_secret_is_shared_by_every_loader() {
        let dir = tempfile::tempdir().unwrap();
        let settings = PlaybackSettings::default();
        let first = PlaybackSigner::load(&settings, dir.path()).unwrap();
        let second = PlaybackSigner::load(&settings, dir.path()).unwrap();
        let alice = path("live/alice");
        assert_eq!(second.check(&alice, &first.sign(&alice, 1000), 0), Ok(()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(PLAYBACK_SECRET_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn signature_params_carry_to_listed_urls() {
        let sig = "ab".repeat(32);
        let query = format!("token=t&expires=1000&sig={sig}&_HLS_msn=3");
        let params = signature_params(&query).unwrap();
        assert_eq!(params, format!("expires=1000&sig={sig}"));
        assert_eq!(
            with_params("seg_12.m4s", &params),
            format!("seg_12.m4s?{params}")
        );
        assert_eq!(
            with_params("part.m4s?_HLS_part=2", &params),
            format!("part.m4s?_HLS_part=2&{params}")
        );
        assert_eq!(with_params("a.ts?", &params), format!("a.ts?{params}"));
        assert_eq!(with_params("a.ts", ""), "a.ts");
        assert_eq!(signature_params("token=t"), None);
        assert_eq!(signature_params("expires=1000"), None);
        // Nothing that could break out of a URI is carried.
        assert_eq!(signature_params(&format!("expires=1000\"&sig={sig}")), None);
        assert_eq!(signature_params("expires=1000&sig=ab\"cd"), None);
    }
}
