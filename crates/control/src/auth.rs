//! Who is asking: chat tokens (JWT, HS256, signed with the server's token secret) for
//! room members, and the admin bearer token for the API.

use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use onair_rooms::{Role, User};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// The claims of a chat token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatClaims {
    /// The user's stable id.
    pub sub: String,
    /// Display name.
    pub name: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// `viewer` (default), `moderator` or `streamer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// Why a chat token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token malformed: {0}")]
    Malformed(String),
    #[error("unknown role {0:?}")]
    UnknownRole(String),
}

/// Mints and verifies chat tokens with one secret.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys { .. }")
    }
}

impl TokenKeys {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// A token for `user` valid for `ttl_seconds`.
    pub fn mint(&self, user: &User, ttl_seconds: u64) -> String {
        let claims = ChatClaims {
            sub: user.id.to_string(),
            name: user.name.to_string(),
            exp: unix_now() + ttl_seconds,
            role: Some(role_name(user.role).to_owned()),
        };
        // Encoding HS256 claims made of strings and numbers cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .unwrap_or_default()
    }

    pub fn verify(&self, token: &str) -> Result<User, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<ChatClaims>(token, &self.decoding, &validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadSignature,
                _ => TokenError::Malformed(e.to_string()),
            },
        )?;
        let claims = data.claims;
        let role = match claims.role.as_deref() {
            None | Some("viewer") => Role::Viewer,
            Some("moderator") => Role::Moderator,
            Some("streamer") => Role::Streamer,
            Some(other) => return Err(TokenError::UnknownRole(other.to_owned())),
        };
        Ok(User::new(claims.sub, claims.name, role))
    }
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Moderator => "moderator",
        Role::Streamer => "streamer",
        _ => "viewer",
    }
}

/// The bearer token of an `Authorization` header, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn secrets_match(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mint_then_verify_round_trips() {
        let keys = TokenKeys::new(b"secret");
        let user = User::new("u1", "Alice", Role::Moderator);
        let token = keys.mint(&user, 60);
        assert_eq!(keys.verify(&token).unwrap(), user);
    }

    #[test]
    fn refuses_other_secrets_expiry_and_garbage() {
        let keys = TokenKeys::new(b"secret");
        let token = TokenKeys::new(b"other").mint(&User::new("u", "U", Role::Viewer), 60);
        assert!(matches!(keys.verify(&token), Err(TokenError::BadSignature)));
        let claims = ChatClaims {
            sub: "u".into(),
            name: "U".into(),
            exp: unix_now() - 3600,
            role: None,
        };
        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert!(matches!(keys.verify(&expired), Err(TokenError::Expired)));
        assert!(matches!(keys.verify("nope"), Err(TokenError::Malformed(_))));
    }

    #[test]
    fn compares_secrets() {
        assert!(secrets_match("abc", "abc"));
        assert!(!secrets_match("abd", "abc"));
        assert!(!secrets_match("ab", "abc"));
    }
}
