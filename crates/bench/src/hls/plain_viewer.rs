//! A plain HLS viewer (nginx-rtmp's MPEG-TS HLS): polls the media playlist every half
//! target duration and downloads each new segment once, starting at the live edge.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use super::context::{Context, State, ViewerStats};
use super::fetch::{count_in_window, fetch};
use super::http::HttpConn;
use super::media_time::ts_first_video_ms;
use super::playlist::{parse_media, resolve};

/// A viewer gives up after this many failed polls in a row.
const MAX_FAILURES_IN_ROW: u32 = 10;
/// A segment's end, from its first DTS plus its `EXTINF`, matches the closing frame
/// within this (EXTINF is rounded to the millisecond; frames are 33 ms apart).
const END_TOLERANCE_MS: u64 = 20;
const MIN_POLL: Duration = Duration::from_millis(100);

pub(super) async fn plain_viewer(
    ctx: Arc<Context>,
    stats: Arc<ViewerStats>,
    cancel: CancellationToken,
) {
    tokio::select! {
        () = cancel.cancelled() => {}
        () = run(&ctx, &stats) => {}
    }
}

async fn run(ctx: &Context, stats: &ViewerStats) {
    let mut conn = HttpConn::new(ctx.addr);
    let mut last: Option<u64> = None;
    let mut failures_in_row = 0;
    let mut poll = Duration::from_millis(500);
    loop {
        if failures_in_row >= MAX_FAILURES_IN_ROW {
            stats.set(State::Failed);
            return;
        }
        let polled = Instant::now();
        let playlist = fetch(ctx, &mut conn, &ctx.path)
            .await
            .and_then(|r| std::str::from_utf8(&r.body).ok().and_then(parse_media));
        let Some(playlist) = playlist else {
            failures_in_row += 1;
            sleep_until(polled + poll).await;
            continue;
        };
        poll = Duration::from_secs_f64(playlist.target_duration_secs / 2.0).max(MIN_POLL);
        let from = match last {
            Some(last) => last + 1,
            None => playlist.segments.last().map_or(u64::MAX, |s| s.msn),
        };
        let mut ok = true;
        for segment in playlist.segments.iter().filter(|s| s.msn >= from) {
            if let Some(last) = last {
                if segment.msn > last + 1 {
                    ctx.error(&ctx.counts.gaps, "gap in the segment sequence".to_owned());
                }
            }
            let Some(response) = fetch(ctx, &mut conn, &resolve(&ctx.path, &segment.uri)).await
            else {
                ok = false;
                break;
            };
            stats
                .bytes
                .fetch_add(response.body.len() as u64, Ordering::Relaxed);
            count_in_window(ctx, &ctx.counts.downloads, 1);
            let first = last.is_none();
            last = Some(segment.msn);
            stats.set(State::Playing);
            let Some(start_ms) = ts_first_video_ms(&response.body) else {
                ctx.error(&ctx.counts.other_errors, "segment without video".to_owned());
                continue;
            };
            ctx.observe_keyframe(start_ms);
            // The first one was on the playlist before this viewer came: not a new one.
            if first || !ctx.measuring() {
                continue;
            }
            let end_ms = start_ms + segment.duration_secs * 1000.0;
            match ctx.sent_at(end_ms, END_TOLERANCE_MS) {
                Some(sent) => ctx.record_latency(response.done.saturating_duration_since(sent)),
                None => count_in_window(ctx, &ctx.counts.unmatched, 1),
            }
        }
        failures_in_row = if ok { 0 } else { failures_in_row + 1 };
        sleep_until(polled + poll).await;
    }
}
