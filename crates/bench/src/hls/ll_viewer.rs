//! A low-latency HLS viewer: the multivariant playlist, the media playlist, then for
//! every part the blocking reload for it and the hinted part itself at once, on two
//! keep-alive connections; parts the reloaded playlist lists that it has not got
//! (after a hint that did not come true) are fetched from the list.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{sleep, Instant};
use tokio_util::sync::CancellationToken;

use super::context::{Context, State, ViewerStats};
use super::fetch::{count_in_window, fetch, fetch_hinted};
use super::http::{HttpConn, Response};
use super::media_time::{part_span, video_track, VideoTrack};
use super::playlist::{
    blocking_reload, first_variant, parse_media, part_position, resolve, MediaPlaylist,
};

/// A viewer gives up after this many failed rounds in a row.
const MAX_FAILURES_IN_ROW: u32 = 10;
/// Pause after a failed round.
const RETRY: Duration = Duration::from_millis(200);

/// (media sequence number, part index)
type Position = (u64, u64);

pub(super) async fn ll_viewer(
    ctx: Arc<Context>,
    stats: Arc<ViewerStats>,
    cancel: CancellationToken,
) {
    tokio::select! {
        () = cancel.cancelled() => {}
        () = Viewer::start(&ctx, &stats).run() => {}
    }
}

struct Viewer<'a> {
    ctx: &'a Context,
    stats: &'a ViewerStats,
    playlists: HttpConn,
    parts: HttpConn,
    variant: String,
    init: Option<(String, VideoTrack)>,
    /// The last part downloaded.
    last: Option<Position>,
}

impl<'a> Viewer<'a> {
    fn start(ctx: &'a Context, stats: &'a ViewerStats) -> Self {
        Self {
            ctx,
            stats,
            playlists: HttpConn::new(ctx.addr),
            parts: HttpConn::new(ctx.addr),
            variant: String::new(),
            init: None,
            last: None,
        }
    }

    async fn run(mut self) {
        let ctx = self.ctx;
        let variant = match fetch(ctx, &mut self.playlists, &ctx.path).await {
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
            self.stats.set(State::Failed);
            return;
        };
        self.variant = variant;
        let mut hint: Option<Position> = None;
        let mut failures_in_row = 0;
        loop {
            if failures_in_row >= MAX_FAILURES_IN_ROW {
                self.stats.set(State::Failed);
                return;
            }
            let Some(position) = hint else {
                // (Re)start from the live edge: the media playlist as it is.
                let variant = self.variant.clone();
                hint = match fetch(ctx, &mut self.playlists, &variant).await {
                    Some(r) => self.read_playlist(&r).await.and_then(|p| hint_of(ctx, &p)),
                    None => None,
                };
                if hint.is_none() {
                    failures_in_row += 1;
                    sleep(RETRY).await;
                }
                continue;
            };
            let part_path = resolve(&self.variant, &part_uri(&self.variant, position));
            let reload = blocking_reload(&self.variant, position);
            let asked = Instant::now();
            let (playlist, part) = tokio::join!(
                fetch(ctx, &mut self.playlists, &reload),
                fetch_hinted(ctx, &mut self.parts, &part_path, true)
            );
            if let Ok(Some(part)) = &part {
                self.got_part(position, part, asked, part.done);
            }
            // A hint that did not come true: the reload came back when the next
            // segment's first part was listed, so that is when it became available.
            let listed_at = match (&part, &playlist) {
                (Ok(None), Some(r)) => Some((asked, r.done)),
                _ => None,
            };
            let playlist = match playlist {
                Some(r) => self.read_playlist(&r).await,
                None => None,
            };
            hint = playlist.as_ref().and_then(|p| hint_of(ctx, p));
            match (&playlist, part) {
                (Some(playlist), Ok(_)) if hint.is_some() => {
                    failures_in_row = 0;
                    self.catch_up(playlist, listed_at).await;
                }
                _ => {
                    failures_in_row += 1;
                    sleep(RETRY).await;
                }
            }
        }
    }

    /// `asked`: when the part was asked for; `available`: when it was seen to exist.
    fn got_part(
        &mut self,
        position: Position,
        part: &Response,
        asked: Instant,
        available: Instant,
    ) {
        self.stats
            .bytes
            .fetch_add(part.body.len() as u64, Ordering::Relaxed);
        count_in_window(self.ctx, &self.ctx.counts.downloads, 1);
        if self.stats.state() == State::Starting {
            self.stats.set(State::Playing);
        }
        if let Some((_, track)) = &self.init {
            account_part(self.ctx, &part.body, *track, asked, available, part.done);
        }
        self.last = Some(position);
    }

    /// Downloads the parts `playlist` lists after the last one this viewer has; the
    /// first one was listed at `listed_at.1` by a reload sent at `listed_at.0`.
    async fn catch_up(
        &mut self,
        playlist: &MediaPlaylist,
        mut listed_at: Option<(Instant, Instant)>,
    ) {
        let Some(last) = self.last else {
            return;
        };
        let listed: Vec<(Position, &String)> = playlist
            .parts
            .iter()
            .filter_map(|uri| Some((part_position(uri)?, uri)))
            .collect();
        let missing: Vec<(Position, String)> = match listed.iter().position(|(p, _)| *p == last) {
            Some(i) => listed
                .get(i + 1..)
                .unwrap_or_default()
                .iter()
                .map(|(p, uri)| (*p, resolve(&self.variant, uri)))
                .collect(),
            None => {
                if listed.first().is_some_and(|(first, _)| *first > last) {
                    // Behind the playlist's parts: resume at the hint.
                    self.ctx
                        .error(&self.ctx.counts.gaps, "gap in the part sequence".to_owned());
                }
                Vec::new()
            }
        };
        for (position, path) in missing {
            let now = Instant::now();
            let (asked, available) = listed_at.take().map_or((now, None), |(a, b)| (a, Some(b)));
            match fetch(self.ctx, &mut self.parts, &path).await {
                Some(part) => self.got_part(position, &part, asked, available.unwrap_or(part.done)),
                None => return,
            }
        }
    }

    /// Parses a media playlist, fetching the init segment when the map changed.
    async fn read_playlist(&mut self, response: &Response) -> Option<MediaPlaylist> {
        let ctx = self.ctx;
        let playlist = std::str::from_utf8(&response.body)
            .ok()
            .and_then(parse_media);
        let Some(playlist) = playlist else {
            ctx.error(
                &ctx.counts.other_errors,
                "unreadable media playlist".to_owned(),
            );
            return None;
        };
        if let Some(map) = &playlist.map_uri {
            if self.init.as_ref().map(|(uri, _)| uri) != Some(map) {
                let path = resolve(&self.variant, map);
                let init = fetch(ctx, &mut self.playlists, &path).await?;
                let Some(track) = video_track(&init.body) else {
                    ctx.error(
                        &ctx.counts.other_errors,
                        "init segment without video".to_owned(),
                    );
                    return None;
                };
                self.init = Some((map.clone(), track));
            }
        }
        Some(playlist)
    }
}

fn hint_of(ctx: &Context, playlist: &MediaPlaylist) -> Option<Position> {
    let hint = playlist.preload_hint.as_deref().and_then(part_position);
    if hint.is_none() {
        ctx.error(&ctx.counts.other_errors, "no part preload hint".to_owned());
    }
    hint
}

/// The part URI of `position`, as the server names it, with the playlist's query.
fn part_uri(variant: &str, (msn, index): Position) -> String {
    match variant.split_once('?') {
        Some((_, query)) => format!("part{msn}.{index}.m4s?{query}"),
        None => format!("part{msn}.{index}.m4s"),
    }
}

/// The latency of one part: from the publisher's write of the frame that closed it to
/// the part downloaded, when the request was waiting for it.
fn account_part(
    ctx: &Context,
    body: &[u8],
    track: VideoTrack,
    asked: Instant,
    done: Instant,
    downloaded: Instant,
) {
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
    let sent = ctx.sent_at(span.end_ms, 0);
    if let Some(sent) = sent {
        ctx.record_delivery(downloaded.saturating_duration_since(sent));
    }
    match sent {
        None => count_in_window(ctx, &ctx.counts.unmatched, 1),
        Some(sent) if sent >= asked => {
            count_in_window(ctx, &ctx.counts.blocked, 1);
            ctx.record_latency(done.saturating_duration_since(sent));
        }
        Some(_) => count_in_window(ctx, &ctx.counts.late_requests, 1),
    }
}
