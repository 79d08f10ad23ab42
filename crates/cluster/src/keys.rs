//! Every key onair keeps in Redis starts with `onair:`. What belongs to one room or
//! one stream sits under one hash tag, `{room:app/name}` or `{stream:app/name}`, so a
//! Redis Cluster keeps it in one slot and a script may touch all of it; what belongs
//! to one node sits under `{node:id}`. docs/cluster.md lists every key and its bound.

/// The sorted set of nodes, scored by when each one's entry expires (Unix ms): the
/// index `GET /api/v1/cluster` reads; members past their score are dropped on every
/// renewal, so it holds at most the nodes alive in the last `cluster.node_ttl_ms`.
pub const NODES_KEY: &str = "onair:nodes";

/// One node's entry: its [`NodeEntry`](crate::NodeEntry) as JSON, with a TTL of
/// `cluster.node_ttl_ms`.
pub fn node_key(node_id: &str) -> String {
    format!("onair:{{node:{node_id}}}")
}

/// Which node holds the publisher of `path` (`app/name`): its node id, as a lease
/// of `cluster.stream_lease_ms`.
pub fn stream_owner_key(path: &str) -> String {
    format!("onair:{{stream:{path}}}:owner")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nodes_key_is_its_own_hash_tag() {
        assert_eq!(node_key("a-1"), "onair:{node:a-1}");
        assert_eq!(
            stream_owner_key("live/demo"),
            "onair:{stream:live/demo}:owner"
        );
    }
}
