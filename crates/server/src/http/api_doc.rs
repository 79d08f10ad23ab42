//! The OpenAPI document of the REST API, generated from the handlers' annotations and
//! served at `/api/v1/openapi.json`.

use axum::Json;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::{server_api, streams_api};

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
