//! `[cluster]`: whether this node shares its state with others through Redis, and how
//! it shows itself to them.

use serde::{Deserialize, Serialize};

/// Longest node id, in bytes.
pub const MAX_NODE_ID_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// `redis://[user:password@]host:port[/db]` of the Redis the nodes share; unset (the
    /// default): this node stands alone and needs no Redis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// This node's name among the nodes, `[A-Za-z0-9_.-]{1,64}`; empty: the host name
    /// and the HTTP port (`web-1-8080`).
    pub node_id: String,
    /// The HTTP base URL other nodes reach this one at (`http://10.0.0.5:8080`); empty:
    /// `http://` and the HTTP listener's address.
    pub advertise_url: String,
    /// How long a node's entry outlives its last renewal, in milliseconds: a node that
    /// died is gone from the cluster's view this long after.
    pub node_ttl_ms: u64,
    /// How often a node renews its entry, which also checks that Redis answers, in ms.
    pub heartbeat_interval_ms: u64,
    /// Longest one round trip to Redis may take before it counts as failed, in ms.
    pub redis_timeout_ms: u64,
    /// How long a node's hold on a published path outlives its last renewal, in ms:
    /// the path of a node that died can be published elsewhere this long after.
    pub stream_lease_ms: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            redis_url: None,
            node_id: String::new(),
            advertise_url: String::new(),
            node_ttl_ms: 5_000,
            heartbeat_interval_ms: 1_000,
            redis_timeout_ms: 1_000,
            stream_lease_ms: 5_000,
        }
    }
}

impl ClusterSettings {
    /// Why these settings cannot work, if they cannot.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(url) = &self.redis_url {
            if !url.starts_with("redis://") {
                // Not echoed: it may carry a password.
                return Err("cluster.redis_url must start with redis:// (TLS to Redis, \
                     rediss://, is not supported yet)"
                    .to_owned());
            }
            redis::Client::open(url.as_str()).map_err(|e| format!("cluster.redis_url: {e}"))?;
        }
        if !self.node_id.is_empty() && !is_valid_node_id(&self.node_id) {
            return Err("cluster.node_id must be 1 to 64 of A-Z a-z 0-9 _ . -".to_owned());
        }
        if self.heartbeat_interval_ms == 0 || self.redis_timeout_ms == 0 {
            return Err(
                "cluster.heartbeat_interval_ms and cluster.redis_timeout_ms must be at least 1"
                    .to_owned(),
            );
        }
        if self.node_ttl_ms < self.heartbeat_interval_ms.saturating_mul(2) {
            return Err(
                "cluster.node_ttl_ms must be at least twice cluster.heartbeat_interval_ms, or \
                 one late renewal would drop a live node"
                    .to_owned(),
            );
        }
        if self.stream_lease_ms < self.heartbeat_interval_ms.saturating_mul(2) {
            return Err(
                "cluster.stream_lease_ms must be at least twice cluster.heartbeat_interval_ms"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

/// `[A-Za-z0-9_.-]{1,64}`.
pub fn is_valid_node_id(id: &str) -> bool {
    (1..=MAX_NODE_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_stands_alone_and_is_valid() {
        let settings = ClusterSettings::default();
        assert!(settings.redis_url.is_none());
        settings.validate().unwrap();
    }

    #[test]
    fn refuses_what_cannot_work() {
        let with = |f: fn(&mut ClusterSettings)| {
            let mut s = ClusterSettings {
                redis_url: Some("redis://127.0.0.1:6379".to_owned()),
                ..ClusterSettings::default()
            };
            f(&mut s);
            s.validate()
        };
        assert!(with(|_| {}).is_ok());
        assert!(with(|s| s.redis_url = Some("http://x".to_owned())).is_err());
        assert!(with(|s| s.redis_url = Some("rediss://x".to_owned())).is_err());
        assert!(with(|s| s.node_id = "a b".to_owned()).is_err());
        assert!(with(|s| s.node_id = "n".repeat(65)).is_err());
        assert!(with(|s| s.node_id = "web-1.eu".to_owned()).is_ok());
        assert!(with(|s| s.node_ttl_ms = 1_500).is_err());
        assert!(with(|s| s.heartbeat_interval_ms = 0).is_err());
        assert!(with(|s| s.stream_lease_ms = 1_000).is_err());
    }
}
