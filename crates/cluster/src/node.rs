//! This node's entry among the nodes: what other nodes (and `GET /api/v1/cluster`)
//! learn about it, renewed every heartbeat under a TTL so a node that dies drops out.

use serde::{Deserialize, Serialize};

/// What a node says about itself, as JSON under [`node_key`](crate::node_key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    pub id: String,
    /// Its HTTP base URL, where other nodes reach it.
    pub url: String,
    /// The onair version it runs.
    pub version: String,
    /// When it started, Unix ms.
    pub started_at: u64,
}
