//! A GET bounded by the run's request timeout, with every way it can fail counted.

use std::sync::atomic::Ordering;

use tokio::time::timeout;

use super::context::Context;
use super::http::{HttpConn, Response};

/// The 2xx response to `GET path`, or `None` with the failure counted.
pub(super) async fn fetch(ctx: &Context, conn: &mut HttpConn, path: &str) -> Option<Response> {
    fetch_hinted(ctx, conn, path, false).await.ok().flatten()
}

/// As [`fetch`]; with `hinted`, a 404 is a preload hint that did not come true (the
/// segment ended before that part): `Ok(None)`, not counted as a failure.
pub(super) async fn fetch_hinted(
    ctx: &Context,
    conn: &mut HttpConn,
    path: &str,
    hinted: bool,
) -> Result<Option<Response>, ()> {
    let response = match timeout(ctx.request_timeout, conn.get(path)).await {
        Err(_) => {
            ctx.error(&ctx.counts.timeouts, format!("timeout: {}", kind(path)));
            // The response may still come on this connection: start a new one.
            *conn = HttpConn::new(ctx.addr);
            return Err(());
        }
        Ok(Err(e)) => {
            ctx.error(&ctx.counts.other_errors, e);
            return Err(());
        }
        Ok(Ok(response)) => response,
    };
    count_in_window(ctx, &ctx.counts.requests, 1);
    match response.status {
        200..=299 => Ok(Some(response)),
        404 if hinted => {
            count_in_window(ctx, &ctx.counts.hint_misses, 1);
            Ok(None)
        }
        status => {
            let counter = &ctx.counts.non_2xx;
            ctx.error(counter, format!("HTTP {status}: {}", kind(path)));
            Err(())
        }
    }
}

/// What was asked for, for error messages that group well.
fn kind(path: &str) -> &'static str {
    let path = path.split('?').next().unwrap_or(path);
    if path.ends_with(".m3u8") {
        "playlist"
    } else if path.ends_with(".mp4") {
        "init segment"
    } else if path
        .rsplit('/')
        .next()
        .is_some_and(|n| n.starts_with("part"))
    {
        "part"
    } else {
        "segment"
    }
}

/// Counts `n` events into `counter` (a window-only figure) while measuring.
pub(super) fn count_in_window(ctx: &Context, counter: &std::sync::atomic::AtomicU64, n: u64) {
    if ctx.measuring() {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
