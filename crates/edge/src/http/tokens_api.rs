//! `POST /api/v1/tokens` (admin token): a chat token for a user, signed with the
//! server's token secret, for a platform without a JWT library (or the admin page,
//! whose room connection must be a moderator's, not a viewer's). The same token
//! `onair token` prints.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use onair_rooms::{Role, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::admin::Admin;
use super::api_doc::ErrorBody;
use super::extract::ApiJson;
use super::text_field::TextField;
use super::whole_number;
use super::ApiError;
use onair_control::live::Live;

/// Longest user id and display name, in characters.
const MAX_USER_CHARS: usize = 128;
/// Longest lifetime of a token made here: 30 days.
const MAX_TTL_SECONDS: u64 = 30 * 24 * 3600;
const DEFAULT_TTL_SECONDS: u64 = 3600;

/// `POST /api/v1/tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateToken {
    /// The user's stable id (the token's `sub`): 1 to 128 characters, no control
    /// characters.
    #[schema(
        example = "alice",
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]+$"
    )]
    user: String,
    /// Display name: 1 to 128 characters, no control characters [default: the user id].
    #[serde(default)]
    #[schema(
        example = "Alice",
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]+$"
    )]
    name: Option<String>,
    /// [default: viewer]
    #[serde(default)]
    role: TokenRole,
    /// Seconds until the token expires, 1 to 2592000 (30 days) [default: 3600].
    #[serde(default, deserialize_with = "whole_number::option_u64")]
    #[schema(minimum = 1, maximum = 2_592_000, example = 3600)]
    ttl: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum TokenRole {
    #[default]
    Viewer,
    Moderator,
    Streamer,
}

impl From<TokenRole> for Role {
    fn from(role: TokenRole) -> Role {
        match role {
            TokenRole::Viewer => Role::Viewer,
            TokenRole::Moderator => Role::Moderator,
            TokenRole::Streamer => Role::Streamer,
        }
    }
}

/// The answer to `POST /api/v1/tokens`.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct CreatedToken {
    /// The chat token, for `?token=` on `/ws/…` and `/sse/…` or the watch page.
    token: String,
    #[schema(example = "alice")]
    user: String,
    role: TokenRole,
    /// Unix seconds.
    #[schema(example = 1_700_003_600)]
    expires_at: u64,
}

fn check_user_text(name: &'static str, text: &str) -> Result<(), ApiError> {
    TextField {
        name,
        code: "invalid_user",
        min_chars: 1,
        max_chars: MAX_USER_CHARS,
        line_breaks: false,
    }
    .check(text)
}

/// Makes a chat token signed with the server's token secret.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens",
    operation_id = "create_token",
    request_body = CreateToken,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "The token", body = CreatedToken),
        (status = 400, description = "`invalid_json`, `invalid_body`, `invalid_user` or \
            `invalid_ttl`", body = ErrorBody),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
    ))]
pub(super) async fn create(
    _: Admin,
    State(live): State<Arc<Live>>,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    check_user_text("user", &body.user)?;
    let name = body.name.unwrap_or_else(|| body.user.clone());
    check_user_text("name", &name)?;
    let ttl = body.ttl.unwrap_or(DEFAULT_TTL_SECONDS);
    if !(1..=MAX_TTL_SECONDS).contains(&ttl) {
        return Err(ApiError::bad_request(
            "invalid_ttl",
            format!("ttl must be 1 to {MAX_TTL_SECONDS} seconds"),
        ));
    }
    let user = User::new(body.user, name, body.role.into());
    let token = live.get().tokens.mint(&user, ttl);
    tracing::debug!(user_id = %user.id, role = ?body.role, "chat token made through the API");
    let created = CreatedToken {
        token,
        user: user.id.to_string(),
        role: body.role,
        expires_at: crate::signing::unix_now().saturating_add(ttl),
    };
    Ok((StatusCode::CREATED, Json(created)))
}
