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
    /// How busy it was at its latest renewal.
    #[serde(default)]
    pub load: NodeLoad,
    /// The paths published on it at its latest renewal, sorted (at most
    /// `hub.max_streams`).
    #[serde(default)]
    pub streams: Vec<String>,
}

/// What a node carries, as counted at its latest renewal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLoad {
    /// Open connections of every protocol.
    pub connections: u64,
    /// Live streams published on it.
    pub streams: u64,
    /// Rooms open on it.
    pub rooms: u64,
}
