//! The stream directory: which node holds the publisher of each path, as a lease in
//! Redis (`onair:{stream:app/name}:owner`, the owner's node id, `PX
//! cluster.stream_lease_ms`). A node claims a path before it accepts a publisher,
//! renews the leases of its live streams with every heartbeat, and releases a path
//! when its stream ends; a node that dies stops renewing, and its paths are free again
//! when their leases run out. Each step is one small script, so a claim, a renewal
//! and a release never race another node's.

use redis::aio::ConnectionManager;

use crate::keys::stream_owner_key;

/// Takes the path when it is free or already this node's.
const CLAIM: &str = r"
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return owner end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if owner then return 1 end
return 0";

/// Extends this node's lease; takes the path again when it is free (Redis lost it);
/// says who holds it otherwise.
const RENEW: &str = r"
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return owner end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1";

/// Frees the path if this node holds it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0";

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The path was free: this node holds it now.
    Taken,
    /// This node held it already (its own publisher, or one that just left).
    Held,
    /// Another node's publisher has it.
    OwnedBy(String),
}

pub(crate) async fn claim(
    conn: &mut ConnectionManager,
    path: &str,
    node: &str,
    lease_ms: u64,
) -> redis::RedisResult<Claim> {
    let answer: redis::Value = redis::cmd("EVAL")
        .arg(CLAIM)
        .arg(1)
        .arg(stream_owner_key(path))
        .arg(node)
        .arg(lease_ms)
        .query_async(conn)
        .await?;
    Ok(match answer {
        redis::Value::Int(0) => Claim::Taken,
        redis::Value::Int(_) => Claim::Held,
        other => Claim::OwnedBy(redis::from_redis_value(other)?),
    })
}

/// Adds one renewal per path to `pipe`; its answers are, in order, `1` (held) or the
/// node id that holds the path instead.
pub(crate) fn renew_into(pipe: &mut redis::Pipeline, paths: &[String], node: &str, lease_ms: u64) {
    for path in paths {
        pipe.cmd("EVAL")
            .arg(RENEW)
            .arg(1)
            .arg(stream_owner_key(path))
            .arg(node)
            .arg(lease_ms);
    }
}

/// Adds a release of `path` to `pipe`, its answer ignored.
pub(crate) fn release_into(pipe: &mut redis::Pipeline, path: &str, node: &str) {
    pipe.cmd("EVAL")
        .arg(RELEASE)
        .arg(1)
        .arg(stream_owner_key(path))
        .arg(node)
        .ignore();
}

pub(crate) async fn release(
    conn: &mut ConnectionManager,
    path: &str,
    node: &str,
) -> redis::RedisResult<()> {
    redis::cmd("EVAL")
        .arg(RELEASE)
        .arg(1)
        .arg(stream_owner_key(path))
        .arg(node)
        .query_async::<()>(conn)
        .await
}
