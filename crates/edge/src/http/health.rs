//! `GET /healthz` (the process answers) and `GET /readyz` (it can do its work: the
//! listeners are bound, the store answers). No auth: load balancers and orchestrators
//! probe them.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;

use crate::store::Store;

/// How long the store may take to answer before the server counts as not ready.
const STORE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// One dependency's state: `"ok"`, or why not.
#[derive(Debug, Serialize)]
struct Checks {
    /// The listeners are bound before the server runs; a request here came through one.
    listeners: String,
    store: String,
    // Redis goes here once rooms can share state through it: `redis` when configured.
}

impl Checks {
    fn all_ok(&self) -> bool {
        [&self.listeners, &self.store].iter().all(|c| *c == "ok")
    }
}

pub(super) async fn readyz(State(store): State<Store>) -> Response {
    let checks = Checks {
        listeners: "ok".to_owned(),
        store: check_store(&store).await,
    };
    if checks.all_ok() {
        return Json(json!({ "status": "ready", "checks": checks })).into_response();
    }
    tracing::warn!(store = %checks.store, "not ready");
    let body = json!({ "status": "not_ready", "checks": checks });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

async fn check_store(store: &Store) -> String {
    match tokio::time::timeout(STORE_CHECK_TIMEOUT, store.check()).await {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(error)) => format!("failed: {error}"),
        Err(_) => format!(
            "failed: no answer within {} ms",
            STORE_CHECK_TIMEOUT.as_millis()
        ),
    }
}
