//! A low-latency HLS viewer, as hls.js in low-latency mode drives onair: the
//! multivariant playlist, the media playlist, then for every part the blocking reload
//! for it and the part itself at once, on two keep-alive connections.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{sleep, Instant};
use tokio_util::sync::CancellationToken;

use super::context::{Context, State, ViewerStats};
use super::fetch::{count_in_window, fetch};
use super::http::HttpConn;
use super::media_time::{part_span, video_track, VideoTrack};
use super::playlist::{blocking_reload, first_variant, parse_media, part_position, resolve};

/// A viewer gives up after this many failed rounds in a row.
const MAX_FAILURES_IN_ROW: u32 = 10;
/// Pause after a failed round.
const RETRY: Duration = Duration::from_millis(200);

pub(super) async fn ll_viewer(
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
    let mut playlists = HttpConn::new(ctx.addr);
    let mut parts = HttpConn::new(ctx.addr);
    let variant = match fetch(ctx, &mut playlists, &ctx.path).await {
        Some(index) => std::str::from_utf8(&index.body)
            .ok()
            .and_then(first_variant)
            .map(|uri| resolve(&ctx.path, uri)),
        None => None,
    };
    let Some(variant) = variant else {
        ctx.error(
            &ctx.counts.other_errors,
            "no variant in index.m3u8".to_owned(),
        );
        stats.set(State::Failed);
        return;
    };
    let mut init: Option<(String, VideoTrack)> = None;
    let mut hint: Option<(u64, u64)> = None;
    let mut failures_in_row = 0;
    loop {
        if failures_in_row >= MAX_FAILURES_IN_ROW {
            stats.set(State::Failed);
            return;
        }
        let Some(position) = hint else {
            // (Re)start from the live edge: the media playlist as it is.
            hint = match fetch(ctx, &mut playlists, &variant).await {
                Some(r) => next_hint(ctx, &mut playlists, &variant, &r.body, &mut init).await,
                None => None,
            };
            if hint.is_none() {
                failures_in_row += 1;
                sleep(RETRY).await;
            }
            continue;
        };
        let part_path = resolve(&variant, &part_uri(&variant, position));
        let reload = blocking_reload(&variant, position);
        let asked = Instant::now();
        let (playlist, part) = tokio::join!(
            fetch(ctx, &mut playlists, &reload),
            fetch(ctx, &mut parts, &part_path)
        );
        let part_ok = part.is_some();
        if let Some(part) = part {
            stats
                .bytes
                .fetch_add(part.body.len() as u64, Ordering::Relaxed);
            count_in_window(ctx, &ctx.counts.downloads, 1);
            if stats.state() == State::Starting {
                stats.set(State::Playing);
            }
            if let Some((_, track)) = &init {
                account_part(ctx, &part.body, *track, asked, part.done);
            }
        }
        hint = match playlist {
            Some(r) => next_hint(ctx, &mut playlists, &variant, &r.body, &mut init).await,
            None => None,
        };
        match hint {
            Some(next) if part_ok => {
                failures_in_row = 0;
                let (msn, index) = position;
                let expected = [(msn, index + 1), (msn + 1, 0)];
                if !expected.contains(&next) && next > (msn, index) {
                    ctx.error(&ctx.counts.gaps, "gap in the part sequence".to_owned());
                }
            }
            _ => {
                failures_in_row += 1;
                sleep(RETRY).await;
            }
        }
    }
}

/// The part URI of `position`, as the server names it, with the playlist's query.
fn part_uri(variant: &str, (msn, index): (u64, u64)) -> String {
    match variant.split_once('?') {
        Some((_, query)) => format!("part{msn}.{index}.m4s?{query}"),
        None => format!("part{msn}.{index}.m4s"),
    }
}

/// The preload hint of a media playlist; fetches the init segment when the map changed.
async fn next_hint(
    ctx: &Context,
    conn: &mut HttpConn,
    variant: &str,
    body: &[u8],
    init: &mut Option<(String, VideoTrack)>,
) -> Option<(u64, u64)> {
    let playlist = std::str::from_utf8(body).ok().and_then(parse_media);
    let Some(playlist) = playlist else {
        ctx.error(
            &ctx.counts.other_errors,
            "unreadable media playlist".to_owned(),
        );
        return None;
    };
    if let Some(map) = &playlist.map_uri {
        if init.as_ref().map(|(uri, _)| uri) != Some(map) {
            let response = fetch(ctx, conn, &resolve(variant, map)).await?;
            let Some(track) = video_track(&response.body) else {
                ctx.error(
                    &ctx.counts.other_errors,
                    "init segment without video".to_owned(),
                );
                return None;
            };
            *init = Some((map.clone(), track));
        }
    }
    let hint = playlist.preload_hint.as_deref().and_then(part_position);
    if hint.is_none() {
        ctx.error(&ctx.counts.other_errors, "no part preload hint".to_owned());
    }
    hint
}

/// The latency of one part: from the publisher's write of the frame that closed it to
/// the part downloaded, when the request was waiting for it.
fn account_part(ctx: &Context, body: &[u8], track: VideoTrack, asked: Instant, done: Instant) {
    let Some(span) = part_span(body, track) else {
        ctx.error(
            &ctx.counts.other_errors,
            "part without video samples".to_owned(),
        );
        return;
    };
    if span.starts_with_keyframe {
        ctx.observe_keyframe(span.start_ms);
    }
    if !ctx.measuring() {
        return;
    }
    match ctx.sent_at(span.end_ms, 0) {
        None => count_in_window(ctx, &ctx.counts.unmatched, 1),
        Some(sent) if sent >= asked => {
            count_in_window(ctx, &ctx.counts.blocked, 1);
            ctx.record_latency(done.saturating_duration_since(sent));
        }
        Some(_) => count_in_window(ctx, &ctx.counts.late_requests, 1),
    }
}
