//! The OpenAPI document of the REST API, generated from the handlers' annotations and
//! served at `/api/v1/openapi.json`.

use axum::Json;
use onair_media::{PathError, StreamPath};
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use super::{server_api, streams_api, ApiError};

/// Every error response: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable snake_case code.
    #[schema(example = "not_found")]
    code: String,
    /// What went wrong, for people.
    message: String,
}

/// `{app}/{name}` in a route.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Only described: handlers extract the pair with `ApiPath`.
pub struct StreamPathParams {
    /// The application, e.g. `live`.
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$", example = "live")]
    app: String,
    /// The stream's name within the application.
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$", example = "demo")]
    name: String,
}

/// The stream path of a route. A reserved app name (`api`, `ws`, …) is valid syntax
/// that can never name a stream or a room, so it is not found rather than malformed.
pub fn stream_path(app: &str, name: &str) -> Result<StreamPath, ApiError> {
    match StreamPath::new(app, name) {
        Ok(path) => Ok(path),
        Err(error @ PathError::ReservedApp(_)) => Err(ApiError::not_found(error.to_string())),
        Err(error) => Err(ApiError::bad_request("invalid_stream", error.to_string())),
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "onair REST API",
        description = "Control plane of the onair live-streaming server. Every endpoint \
            except /api/v1/openapi.json needs `Authorization: Bearer <admin token>`."
    ),
    paths(
        server_api::info,
        streams_api::list,
        streams_api::get,
        streams_api::kick,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&AdminToken),
    tags(
        (name = "server", description = "The server itself"),
        (name = "streams", description = "Live streams"),
    )
)]
pub struct ApiDoc;

struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub(super) async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
