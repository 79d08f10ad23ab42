//! The cluster: N onair nodes that share state through Redis. This crate holds the
//! link to Redis (one multiplexed RESP3 connection that reconnects by itself), this
//! node's entry among the nodes (renewed while it lives, expiring when it dies), and
//! the key layout every shared thing follows (`keys`). One node without
//! `cluster.redis_url` never builds any of it.

mod directory;
mod keys;
mod link;
mod node;
mod settings;

pub use directory::Claim;
pub use keys::{node_key, stream_owner_key, NODES_KEY};
pub use link::{AliveNode, Cluster, ClusterError, LocalState, RedisHealth};
pub use node::{NodeEntry, NodeLoad};
pub use settings::ClusterSettings;
