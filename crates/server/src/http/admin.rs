//! The admin bearer token as an extractor: handlers that take [`Admin`] answer 401
//! without a token and 403 with a wrong one.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;

use super::ApiError;
use crate::auth::{bearer, secrets_match};
use crate::Shared;

/// Proof that the request carried the admin token.
pub struct Admin;

impl FromRequestParts<Arc<Shared>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        match bearer(&parts.headers) {
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this endpoint needs Authorization: Bearer <admin token>",
            )),
            Some(token) if secrets_match(token, &shared.live.get().admin_token) => Ok(Admin),
            Some(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "the token is not the admin token",
            )),
        }
    }
}
