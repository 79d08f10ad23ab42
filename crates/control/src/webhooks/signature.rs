//! The `Onair-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
//! "<t>.<raw body>")>`. The timestamp is signed with the body so a captured request
//! cannot be replayed once it is older than the receiver's tolerance.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header value for `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex(&digest))
}

/// Whether `header_value` is a valid signature of `body` by `secret`, made no more
/// than `tolerance` away from `now` (Unix seconds). Several `v1=` entries may be
/// present (while a secret is being rotated); one matching is enough.
pub fn verify_signature(
    secret: &[u8],
    header_value: &str,
    body: &[u8],
    now: u64,
    tolerance: Duration,
) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header_value.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<u64>().ok(),
            Some(("v1", value)) => signatures.extend(unhex(value)),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return false;
    };
    if now.abs_diff(timestamp) > tolerance.as_secs() {
        return false;
    }
    signatures
        .iter()
        .any(|signature| mac(secret, timestamp, body).verify_slice(signature).is_ok())
}

fn mac(secret: &[u8], timestamp: u64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    text.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [high, low] => Some(nibble(*high)? << 4 | nibble(*low)?),
            _ => None,
        })
        .collect()
}

fn nibble(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).map(|n| n as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn known_vector() {
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"whsec", b"1700000000.{\"a\":1}", hashlib.sha256).hexdigest())'
        assert_eq!(
            sign(b"whsec", 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=8ad37ba156048ae0e0a5533c75cdf26fee88b07f93cb57ee4c80adb053012032"
        );
    }

    #[test]
    fn round_trip_and_what_breaks_it() {
        let body = br#"{"event":"on_play"}"#;
        let header = sign(b"secret", 1_000, body);
        let tolerance = Duration::from_secs(300);
        assert!(verify_signature(b"secret", &header, body, 1_000, tolerance));
        assert!(verify_signature(b"secret", &header, body, 1_300, tolerance));
        assert!(!verify_signature(
            b"secret", &header, body, 1_301, tolerance
        ));
        assert!(!verify_signature(b"other", &header, body, 1_000, tolerance));
        assert!(!verify_signature(
            b"secret", &header, b"{}", 1_000, tolerance
        ));
        let moved = header.replace("t=1000", "t=1001");
        assert!(!verify_signature(b"secret", &moved, body, 1_000, tolerance));
    }

    #[test]
    fn any_of_several_signatures_may_match() {
        let body = b"x";
        let good = sign(b"new", 5, body);
        let old = sign(b"old", 5, body);
        let v1_old = old.split_once(',').unwrap().1;
        let both = format!("{good},{v1_old}");
        assert!(verify_signature(b"old", &both, body, 5, DAY));
        assert!(verify_signature(b"new", &both, body, 5, DAY));
    }

    #[test]
    fn garbage_headers_never_verify() {
        for header in [
            "",
            "t=5",
            "v1=00",
            "t=x,v1=00",
            "t=5,v1=zz",
            "t=5,v1=0",
            "t=5,v1=é0",
        ] {
            assert!(!verify_signature(b"k", header, b"x", 5, DAY), "{header}");
        }
    }
}
