//! `GET /healthz` (the process answers) and `GET /readyz` (it can do its work: the
//! listeners are bound, the store answers, and in a cluster Redis answers). No auth:
//! load balancers and orchestrators probe them.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;

use onair_cluster::{Cluster, RedisHealth};

use crate::store::Store;
use crate::Edge;

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
    /// In a cluster: whether Redis answered this node's latest heartbeat.
    #[serde(skip_serializing_if = "Option::is_none")]
    redis: Option<String>,
}

impl Checks {
    fn all_ok(&self) -> bool {
        [
            Some(&self.listeners),
            Some(&self.store),
            self.redis.as_ref(),
        ]
        .into_iter()
        .flatten()
        .all(|c| c == "ok")
    }
}

/// What `/readyz` looks at.
#[derive(Clone)]
pub(super) struct Readiness {
    store: Store,
    cluster: Option<Arc<Cluster>>,
}

impl FromRef<Edge> for Readiness {
    fn from_ref(edge: &Edge) -> Self {
        Self {
            store: edge.store.clone(),
            cluster: edge.cluster.clone(),
        }
    }
}

pub(super) async fn readyz(State(readiness): State<Readiness>) -> Response {
    let checks = Checks {
        listeners: "ok".to_owned(),
        store: check_store(&readiness.store).await,
        redis: readiness.cluster.as_deref().map(check_redis),
    };
    if checks.all_ok() {
        return Json(json!({ "status": "ready", "checks": checks })).into_response();
    }
    tracing::warn!(store = %checks.store, redis = checks.redis.as_deref(), "not ready");
    let body = json!({ "status": "not_ready", "checks": checks });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// Read from the heartbeat's last answer: a probe costs Redis nothing.
fn check_redis(cluster: &Cluster) -> String {
    match cluster.health() {
        RedisHealth::Up { .. } => "ok".to_owned(),
        RedisHealth::Connecting => "failed: not connected yet".to_owned(),
        RedisHealth::Down { error } => format!("failed: {error}"),
    }
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
