//! The OpenAPI document of the REST API, generated from the handlers' annotations and
//! served at `/api/v1/openapi.json`.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use onair_media::{PathError, StreamPath};
use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{HeaderBuilder, ObjectBuilder, RefOr, ResponseBuilder, Schema, Type};
use utoipa::{IntoParams, Modify, Number, OpenApi, ToSchema};

use super::{
    aggregated_events_api, cluster_api, keys_api, live_api, moderation_api, recordings_api,
    rooms_api, server_api, streams_api, tokens_api, ApiError,
};
use crate::rooms::RoomHub;
use onair_rooms::RoomSettings;

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
            except /api/v1/openapi.json and the public stream list /api/v1/live (and \
            /api/v1/live/{app}/{name}) needs `Authorization: Bearer <admin token>`: \
            without one the answer is 401, with a wrong one 403. Every error is \
            `{\"error\": {\"code\", \"message\"}}`; docs/api.md lists the codes."
    ),
    paths(
        server_api::info,
        cluster_api::show,
        streams_api::list,
        streams_api::get,
        streams_api::update,
        streams_api::kick,
        live_api::list,
        live_api::show,
        tokens_api::create,
        keys_api::create,
        keys_api::list,
        keys_api::revoke,
        recordings_api::list,
        recordings_api::download,
        recordings_api::delete,
        rooms_api::show,
        rooms_api::post_message,
        rooms_api::delete_message,
        moderation_api::mute,
        moderation_api::unmute,
        moderation_api::ban,
        moderation_api::unban,
        moderation_api::slow_mode,
        aggregated_events_api::set,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&AdminToken, &SharedResponses),
    tags(
        (name = "server", description = "The server itself"),
        (name = "streams", description = "Live streams"),
        (name = "keys", description = "Stream keys for `--publish-auth key`"),
        (name = "tokens", description = "Chat tokens for room connections"),
        (name = "recordings", description = "Recorded streams on disk (`[record]` settings)"),
        (name = "rooms", description = "Rooms: system messages and moderation"),
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

/// Answers that do not depend on the handler, added to every operation they can
/// happen to: 429 from the per-address rate limit (every request), and 413/415 from
/// the body extractor (every operation with a JSON body).
struct SharedResponses;

impl Modify for SharedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_shared_responses(operation);
            }
        }
    }
}

fn add_shared_responses(operation: &mut Operation) {
    let responses = &mut operation.responses.responses;
    if operation.request_body.is_some() {
        responses.insert(
            "413".into(),
            error_response("The body is larger than http.max_body_bytes"),
        );
        responses.insert(
            "415".into(),
            error_response("The body is not sent as Content-Type: application/json"),
        );
    }
    let retry_after = HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1)),
        )
        .description(Some("Seconds to wait before trying again"))
        .build();
    let limited = ResponseBuilder::new()
        .description("Too many requests from this address (limits.requests_per_second_per_ip)")
        .header("Retry-After", retry_after)
        .content("application/json", error_content())
        .build();
    responses.insert("429".into(), RefOr::T(limited));
}

fn error_content() -> utoipa::openapi::Content {
    utoipa::openapi::ContentBuilder::new()
        .schema(Some(RefOr::<Schema>::Ref(
            utoipa::openapi::Ref::from_schema_name("ErrorBody"),
        )))
        .build()
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content("application/json", error_content())
            .build(),
    )
}

/// The document as this server answers it: some limits are settings.
pub fn document(rooms: &RoomSettings) -> utoipa::openapi::OpenApi {
    let mut openapi = ApiDoc::openapi();
    rooms_api::apply_settings(&mut openapi, rooms);
    drop_wrong_int64_formats(&mut openapi);
    openapi
}

/// utoipa calls every `u64` `format: int64`, but the fields that take the whole `u64`
/// range (durations in seconds, message ids) go past `i64::MAX`: without the format,
/// their `minimum`/`maximum` say it all.
fn drop_wrong_int64_formats(openapi: &mut utoipa::openapi::OpenApi) {
    let past_i64 = |schema: &mut RefOr<Schema>| {
        if let RefOr::T(Schema::Object(object)) = schema {
            if matches!(object.maximum, Some(Number::UInt(max)) if max as u64 > i64::MAX as u64) {
                object.format = None;
            }
        }
    };
    let components = openapi.components.iter_mut();
    for schema in components.flat_map(|c| c.schemas.values_mut()) {
        if let RefOr::T(Schema::Object(object)) = schema {
            object.properties.values_mut().for_each(past_i64);
        }
    }
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            let parameters = operation.parameters.iter_mut().flatten();
            parameters
                .filter_map(|p| p.schema.as_mut())
                .for_each(past_i64);
        }
    }
}

pub(super) async fn openapi_json(
    State(rooms): State<Arc<RoomHub>>,
) -> Json<utoipa::openapi::OpenApi> {
    Json(document(rooms.settings()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use onair_media::RESERVED_APPS;
    use regex::Regex;
    use serde_json::Value;

    use super::*;

    /// One segment of a stream path, `{app}` or `{name}`.
    const SEGMENT_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}$";

    /// A whole stream path `{app}/{name}` whose app is not reserved.
    const STREAM_PATH_PATTERN: &str =
        "^(?!(?:api|ws|sse|watch|admin|assets|metrics|healthz|readyz)/)\
         [A-Za-z0-9_-]{1,64}/[A-Za-z0-9_-]{1,64}$";

    /// Text without control characters (Unicode category Cc).
    const NO_CONTROL_PATTERN: &str = r"^[^\x00-\x1F\x7F-\x9F]*$";

    fn document() -> Value {
        serde_json::to_value(super::document(&RoomSettings::default())).unwrap()
    }

    fn parameters<'a>(doc: &'a Value, path: &str, method: &str) -> &'a [Value] {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .map_or(&[], Vec::as_slice)
    }

    #[test]
    fn the_stream_path_pattern_excludes_exactly_the_reserved_apps() {
        let built = format!(
            "^(?!(?:{})/)[A-Za-z0-9_-]{{1,64}}/[A-Za-z0-9_-]{{1,64}}$",
            RESERVED_APPS.join("|")
        );
        assert_eq!(STREAM_PATH_PATTERN, built);
    }

    #[test]
    fn the_segment_pattern_accepts_what_stream_paths_accept() {
        let pattern = Regex::new(SEGMENT_PATTERN).unwrap();
        let long = "a".repeat(64);
        let longer = "a".repeat(65);
        for segment in [
            "", "a", "A-z_09", &long, &longer, "a b", "a.b", "a/b", "é", "a\n", "%41",
        ] {
            assert_eq!(
                pattern.is_match(segment),
                StreamPath::new("live", segment).is_ok(),
                "{segment:?}"
            );
        }
    }

    #[test]
    fn the_no_control_pattern_accepts_what_labels_accept() {
        let pattern = Regex::new(NO_CONTROL_PATTERN).unwrap();
        for text in [
            "",
            "OBS at home",
            "é 世界",
            "a\tb",
            "\u{7F}",
            "\u{85}",
            "\u{9F}x",
            "\u{A0}",
        ] {
            assert_eq!(
                pattern.is_match(text),
                !text.chars().any(char::is_control),
                "{text:?}"
            );
        }
    }

    #[test]
    fn the_document_carries_the_patterns_the_handlers_check() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["CreateKey"]["properties"]["stream"]["pattern"],
            STREAM_PATH_PATTERN
        );
        let label = &schemas["CreateKey"]["properties"]["label"];
        assert_eq!(label["pattern"], NO_CONTROL_PATTERN);
        assert_eq!(label["maxLength"], 128);
        let filter = &parameters(&doc, "/api/v1/keys", "get")[0];
        assert_eq!(filter["schema"]["pattern"], STREAM_PATH_PATTERN, "{filter}");
        let mut segments = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, _) in item.as_object().unwrap() {
                for parameter in parameters(&doc, path, method).iter().flat_map(|p| {
                    let name = p["name"].as_str().unwrap();
                    (name == "app" || name == "name").then_some(p)
                }) {
                    assert_eq!(parameter["schema"]["pattern"], SEGMENT_PATTERN, "{path}");
                    segments += 1;
                }
            }
        }
        assert!(segments >= 20, "{segments} app/name parameters");
    }

    #[test]
    fn fields_that_take_every_u64_do_not_claim_int64() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        for seconds in [
            &schemas["UserAction"]["properties"]["seconds"],
            &schemas["SlowMode"]["properties"]["seconds"],
        ] {
            assert_eq!(seconds["maximum"], u64::MAX, "{seconds}");
            assert!(seconds.get("format").is_none(), "{seconds}");
        }
        let path = "/api/v1/rooms/{app}/{name}/messages/{id}";
        let id = &parameters(&doc, path, "delete")[2]["schema"];
        assert_eq!(id["maximum"], u64::MAX, "{id}");
        assert!(id.get("format").is_none(), "{id}");
        // Other u64s keep theirs.
        let created = &schemas["CreatedKey"]["properties"]["created_at"];
        assert_eq!(created["format"], "int64", "{created}");
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc = document();
        let mut ids: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .map(|operation| operation["operationId"].as_str().unwrap())
            .collect();
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count, "{ids:?}");
    }

    #[test]
    fn request_bodies_refuse_unknown_fields_and_answer_413_and_415() {
        let doc = document();
        for name in [
            "CreateKey",
            "PostMessage",
            "UserAction",
            "SlowMode",
            "PatchStream",
            "CreateToken",
        ] {
            let schema = &doc["components"]["schemas"][name];
            assert_eq!(schema["additionalProperties"], false, "{name}: {schema}");
        }
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let responses = &operation["responses"];
                assert!(responses["429"].is_object(), "{method} {path}");
                // Only the public stream views go without the admin token.
                let admin = operation.get("security").is_some();
                let public = ["/api/v1/live", "/api/v1/live/{app}/{name}"];
                assert_eq!(admin, !public.contains(&path.as_str()), "{method} {path}");
                assert_eq!(responses["401"].is_object(), admin, "{method} {path}");
                assert_eq!(responses["403"].is_object(), admin, "{method} {path}");
                let has_body = operation.get("requestBody").is_some();
                assert_eq!(responses["413"].is_object(), has_body, "{method} {path}");
                assert_eq!(responses["415"].is_object(), has_body, "{method} {path}");
            }
        }
    }
}

/// `?stream=app/name`: the list endpoints' filter.
#[derive(Debug, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct StreamFilter {
    /// Only what belongs to this stream.
    #[param(
        pattern = "^(?!(?:api|ws|sse|watch|admin|assets|metrics|healthz|readyz)/)[A-Za-z0-9_-]{1,64}/[A-Za-z0-9_-]{1,64}$",
        example = "live/demo"
    )]
    pub stream: Option<String>,
}
