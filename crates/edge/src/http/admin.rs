//! The admin bearer token as an extractor: handlers that take [`Admin`] answer 401
//! without a token and 403 with a wrong one.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::StatusCode;

use super::ApiError;
use crate::auth::{bearer, secrets_match};
use onair_control::live::Live;

/// Proof that the request carried the admin token.
pub struct Admin;

impl<S> FromRequestParts<S> for Admin
where
    Arc<Live>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let live = Arc::<Live>::from_ref(state);
        match bearer(&parts.headers) {
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this endpoint needs Authorization: Bearer <admin token>",
            )),
            Some(token) if secrets_match(token, &live.get().admin_token) => Ok(Admin),
            Some(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "the token is not the admin token",
            )),
        }
    }
}
