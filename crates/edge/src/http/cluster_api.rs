//! `GET /api/v1/cluster`: the nodes that act as one service with this one (docs/cluster.md).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use onair_cluster::Cluster;
use serde::Serialize;
use utoipa::ToSchema;

use super::admin::Admin;
use super::api_doc::ErrorBody;
use super::ApiError;

/// The cluster as this node sees it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ClusterView {
    /// Whether this node is in a cluster (`cluster.redis_url` is set).
    enabled: bool,
    /// This node's id; `null` when it stands alone.
    #[schema(example = "web-1")]
    node: Option<String>,
    /// The nodes alive now (their entry not expired), by id, this one included.
    nodes: Vec<NodeView>,
}

/// One node, as its entry in Redis says.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct NodeView {
    #[schema(example = "web-1")]
    id: String,
    /// Where other nodes reach it.
    #[schema(example = "http://10.0.0.5:8080")]
    url: String,
    #[schema(example = "0.1.0")]
    version: String,
    /// When it started, Unix ms.
    started_at: u64,
    /// When its entry expires unless renewed, Unix ms.
    expires_at: u64,
    /// What it carried at its latest renewal (every `cluster.heartbeat_interval_ms`).
    load: LoadView,
    /// The paths published on it at its latest renewal, sorted.
    #[schema(example = json!(["live/demo"]))]
    streams: Vec<String>,
}

/// A node's load.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct LoadView {
    /// Open connections of every protocol.
    connections: u64,
    /// Live streams published on it.
    streams: u64,
    /// Rooms open on it.
    rooms: u64,
}

/// Nodes of the cluster this server belongs to, read from Redis.
#[utoipa::path(get, path = "/api/v1/cluster", tag = "server",
    operation_id = "cluster",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The cluster; `enabled: false` and no nodes when this \
            server stands alone", body = ClusterView),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 503, description = "`redis_unavailable`: Redis did not answer", body = ErrorBody),
    ))]
pub(super) async fn show(
    _: Admin,
    State(cluster): State<Option<Arc<Cluster>>>,
) -> Result<Json<ClusterView>, ApiError> {
    let Some(cluster) = cluster else {
        return Ok(Json(ClusterView {
            enabled: false,
            node: None,
            nodes: Vec::new(),
        }));
    };
    let nodes = cluster.nodes().await.map_err(|reason| {
        let message = format!("redis did not answer: {reason}");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "redis_unavailable",
            message,
        )
    })?;
    let nodes = nodes
        .into_iter()
        .map(|n| NodeView {
            id: n.entry.id,
            url: n.entry.url,
            version: n.entry.version,
            started_at: n.entry.started_at,
            expires_at: n.expires_at,
            load: LoadView {
                connections: n.entry.load.connections,
                streams: n.entry.load.streams,
                rooms: n.entry.load.rooms,
            },
            streams: n.entry.streams,
        })
        .collect();
    Ok(Json(ClusterView {
        enabled: true,
        node: Some(cluster.entry().id.clone()),
        nodes,
    }))
}
