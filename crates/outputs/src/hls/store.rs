//! One stream's HLS state: the playlist, the bytes it refers to, and the wake-up that
//! blocked playlist and preload-hint requests wait on.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use onair_fmp4::Part;
use onair_hls::ts::TsSegment;
use onair_hls::{
    Directives, PartId, PartInfo, Playlist, PlaylistSettings, Readiness, RenderRequest, Resource,
    SegmentFormat,
};
use tokio::sync::watch;

use super::sessions::{SessionId, Sessions};
use super::settings::HlsSettings;

/// Init segments kept: the one in force and a few before it that old segments still
/// in the window may need.
const MAX_INITS: usize = 4;

/// Segments whose parts stay downloadable: LL-HLS lists parts only near the live edge.
const SEGMENTS_WITH_PARTS: u64 = 4;

#[derive(Debug)]
pub struct HlsStream {
    state: Mutex<State>,
    /// Bumped whenever a part lands or the stream ends; blocked requests wait on it.
    changed: watch::Sender<u64>,
    sessions: Mutex<Sessions>,
}

#[derive(Debug)]
struct State {
    playlist: Playlist,
    inits: BTreeMap<u32, Bytes>,
    current_init: Option<u32>,
    parts: BTreeMap<PartId, Bytes>,
    /// Complete segments, their parts joined once.
    segments: BTreeMap<u64, Bytes>,
    /// The open segment and the parts it has so far.
    open: Option<(u64, BytesMut)>,
    bytes: usize,
    max_bytes: usize,
    /// Wall clock and media time of the first part of the current publish, to stamp
    /// EXT-X-PROGRAM-DATE-TIME.
    clock: Option<(u64, u64)>,
    /// A publisher is feeding this playlist now.
    live: bool,
    /// When the last publisher left, while nobody publishes.
    left_at: Option<Instant>,
    /// The CODECS attribute of the multivariant playlist.
    codecs: Option<String>,
    /// The legacy MPEG-TS rendition, when `hls.legacy_ts` is on.
    ts: Option<TsRendition>,
    /// The media playlist as rendered since the last change, without and with
    /// `_HLS_skip`; every player's request copies it with its own query.
    rendered: [Option<Arc<str>>; 2],
}

#[derive(Debug)]
struct TsRendition {
    playlist: Playlist,
    segments: BTreeMap<u64, Bytes>,
}

/// What a request for a media resource gets.
#[derive(Debug)]
pub enum Fetch {
    Ready(Bytes),
    /// Not there yet, but it is the next one: worth waiting for.
    Soon,
    Gone,
}

impl HlsStream {
    pub fn new(settings: &HlsSettings) -> Self {
        // Numbered from the clock: a playlist made afresh for the same path never
        // reuses a segment URI, so its media can be cached as immutable.
        let first_msn = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let playlist_settings = PlaylistSettings {
            part_target: settings.part_target(),
            segment_target: settings.segment_target(),
            window_segments: settings.window_segments,
            low_latency: settings.low_latency,
        };
        let ts = settings.legacy_ts.then(|| TsRendition {
            playlist: Playlist::with_format(playlist_settings.clone(), SegmentFormat::MpegTs)
                .starting_at(first_msn),
            segments: BTreeMap::new(),
        });
        let playlist = Playlist::new(playlist_settings).starting_at(first_msn);
        Self {
            state: Mutex::new(State {
                playlist,
                inits: BTreeMap::new(),
                current_init: None,
                parts: BTreeMap::new(),
                segments: BTreeMap::new(),
                open: None,
                bytes: 0,
                max_bytes: settings.max_bytes_per_stream,
                clock: None,
                live: true,
                left_at: None,
                codecs: None,
                ts,
                rendered: [None, None],
            }),
            changed: watch::channel(0).0,
            sessions: Mutex::new(Sessions::new(settings.max_sessions_per_stream)),
        }
    }

    /// A publisher (re)starts feeding this playlist. After the first, players see a
    /// discontinuity: the encoder, its timestamps and maybe its codecs are new.
    pub fn publisher_started(&self, first: bool) {
        let mut state = self.lock();
        state.rendered = [None, None];
        if !first {
            state.playlist.discontinuity();
            if let Some(ts) = &mut state.ts {
                ts.playlist.discontinuity();
            }
        }
        state.clock = None;
        state.live = true;
        state.left_at = None;
    }

    /// The publisher left: the open segment is closed and waiting requests woken.
    pub fn publisher_left(&self, now: Instant) {
        let mut state = self.lock();
        state.rendered = [None, None];
        state.playlist.end_segment();
        state.close_open_segment();
        state.live = false;
        state.left_at = Some(now);
        drop(state);
        self.wake();
    }

    /// When nobody has published since `left_at`.
    pub fn idle_since(&self) -> Option<Instant> {
        let state = self.lock();
        if state.live {
            None
        } else {
            state.left_at
        }
    }

    pub fn set_codecs(&self, codecs: Option<String>) {
        self.lock().codecs = codecs;
    }

    pub fn codecs(&self) -> Option<String> {
        self.lock().codecs.clone()
    }

    pub fn add_init(&self, init: Bytes) {
        let mut state = self.lock();
        state.rendered = [None, None];
        let version = state.playlist.new_init();
        state.inits.insert(version, init);
        state.current_init = Some(version);
        while state.inits.len() > MAX_INITS {
            state.inits.pop_first();
        }
    }

    pub fn add_part(&self, part: Part) {
        let mut state = self.lock();
        state.rendered = [None, None];
        let wall = state.wall_clock(part.start_ms, part.duration);
        let pushed = state.playlist.push_part(
            PartInfo {
                duration: part.duration,
                independent: part.independent,
                starts_segment: part.starts_segment,
            },
            wall,
        );
        state.store_part(pushed.id, part.bytes);
        for msn in pushed.evicted_segments {
            state.drop_segment(msn);
        }
        state.enforce_byte_limit();
        drop(state);
        self.wake();
    }

    /// A segment of the MPEG-TS rendition (ignored when it is off).
    pub fn add_ts_segment(&self, segment: TsSegment) {
        let mut state = self.lock();
        let wall = state.wall_clock(segment.start_ms, segment.duration);
        let Some(ts) = &mut state.ts else {
            return;
        };
        let pushed = ts.playlist.push_segment(segment.duration, wall);
        let added = segment.bytes.len();
        ts.segments.insert(pushed.id.msn, segment.bytes);
        let mut freed = 0;
        for msn in pushed.evicted_segments {
            freed += ts.segments.remove(&msn).map_or(0, |b| b.len());
        }
        state.bytes = (state.bytes + added).saturating_sub(freed);
        drop(state);
        self.wake();
    }

    /// The MPEG-TS rendition's playlist, if it is on.
    pub fn render_ts(&self, query: &str) -> Option<String> {
        let state = self.lock();
        let ts = state.ts.as_ref()?;
        Some(ts.playlist.render(&RenderRequest { skip: false, query }))
    }

    pub fn ts_segment(&self, msn: u64) -> Option<Bytes> {
        self.lock().ts.as_ref()?.segments.get(&msn).cloned()
    }

    /// The media playlist with `query` on every URI. Rendered once per change, not
    /// once per player: a new part wakes every blocked player at once.
    pub fn render(&self, skip: bool, query: &str) -> String {
        let rendered = {
            let mut state = self.lock();
            let state = &mut *state;
            let slot = &mut state.rendered[usize::from(skip)];
            Arc::clone(slot.get_or_insert_with(|| {
                state
                    .playlist
                    .render(&RenderRequest { skip, query: "" })
                    .into()
            }))
        };
        onair_hls::with_query(&rendered, query)
    }

    pub fn readiness(&self, directives: &Directives) -> Readiness {
        self.lock().playlist.readiness_for(directives)
    }

    pub fn target_duration(&self) -> std::time::Duration {
        self.lock().playlist.target_duration()
    }

    pub fn is_live(&self) -> bool {
        self.lock().live
    }

    pub fn fetch(&self, resource: &Resource) -> Fetch {
        let state = self.lock();
        match *resource {
            Resource::Init(version) => match state.inits.get(&version) {
                Some(bytes) => Fetch::Ready(bytes.clone()),
                None if state.current_init.is_none() && version == 0 && state.live => Fetch::Soon,
                None => Fetch::Gone,
            },
            Resource::Segment(msn) => match state.segments.get(&msn) {
                Some(bytes) => Fetch::Ready(bytes.clone()),
                None if state.live && state.open.as_ref().is_some_and(|(m, _)| *m == msn) => {
                    Fetch::Soon
                }
                None => Fetch::Gone,
            },
            Resource::Part(id) => match state.parts.get(&id) {
                Some(bytes) => Fetch::Ready(bytes.clone()),
                None if state.live && state.is_next_part(id) => Fetch::Soon,
                None => Fetch::Gone,
            },
        }
    }

    /// Something changed since `seen` was read: wait on this.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn start_session(&self, now: Instant) -> SessionId {
        self.sessions().start(now)
    }

    pub fn touch_session(&self, id: SessionId, now: Instant) {
        self.sessions().touch(id, now);
    }

    /// Drops idle sessions; returns the viewers left.
    pub fn expire_sessions(&self, now: Instant, timeout: std::time::Duration) -> usize {
        self.sessions().expire(now, timeout)
    }

    /// Bytes of media held now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn wake(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sessions(&self) -> MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// The wall clock (unix ms) of media time `start_ms`, for
    /// EXT-X-PROGRAM-DATE-TIME: anchored when the publish's first media arrives
    /// (it ended `duration` after it started), then following media time.
    fn wall_clock(&mut self, start_ms: u64, duration: std::time::Duration) -> u64 {
        let now_ms = unix_ms();
        let duration_ms = duration.as_millis() as u64;
        let (wall0, media0) = *self
            .clock
            .get_or_insert((now_ms.saturating_sub(duration_ms), start_ms));
        wall0 + start_ms.saturating_sub(media0)
    }

    fn store_part(&mut self, id: PartId, bytes: Bytes) {
        if self.open.as_ref().is_some_and(|(msn, _)| *msn != id.msn) {
            self.close_open_segment();
        }
        let (_, segment) = self.open.get_or_insert_with(|| (id.msn, BytesMut::new()));
        segment.extend_from_slice(&bytes);
        self.bytes += 2 * bytes.len();
        self.parts.insert(id, bytes);
    }

    fn close_open_segment(&mut self) {
        let Some((msn, segment)) = self.open.take() else {
            return;
        };
        self.segments.insert(msn, segment.freeze());
        // Parts far from the live edge are no longer listed; their bytes live on in
        // the segment.
        let old = msn.saturating_sub(SEGMENTS_WITH_PARTS);
        while let Some(entry) = self.parts.first_entry() {
            if entry.key().msn > old {
                break;
            }
            self.bytes = self.bytes.saturating_sub(entry.remove().len());
        }
    }

    fn drop_segment(&mut self, msn: u64) {
        if let Some(segment) = self.segments.remove(&msn) {
            self.bytes = self.bytes.saturating_sub(segment.len());
        }
        let parts: Vec<PartId> = self
            .parts
            .range(
                PartId { msn, part: 0 }..=PartId {
                    msn,
                    part: u32::MAX,
                },
            )
            .map(|(id, _)| *id)
            .collect();
        for id in parts {
            if let Some(bytes) = self.parts.remove(&id) {
                self.bytes = self.bytes.saturating_sub(bytes.len());
            }
        }
    }

    /// A stream whose segments are huge (no keyframes, a wild bitrate) loses its
    /// oldest complete segments first; the playlist still names them but they 404.
    fn enforce_byte_limit(&mut self) {
        while self.bytes > self.max_bytes {
            let Some((&msn, _)) = self.segments.first_key_value() else {
                break;
            };
            self.drop_segment(msn);
        }
    }

    /// `id` is the part the playlist's preload hint points at, or the first part of
    /// the next segment (the hinted part may turn out to start one).
    fn is_next_part(&self, id: PartId) -> bool {
        let next = self.playlist.next_part();
        id == next
            || id
                == PartId {
                    msn: next.msn + 1,
                    part: 0,
                }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
