use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use onair_media::{FrameKind, MediaFrame, StreamPath};
use tokio_util::sync::CancellationToken;

use super::frame::HubFrame;
use super::gop::GopCache;
use super::observer::{ClientInfo, PublishStats};
use super::rates::{RateWindow, Rates};
use super::ring::FrameRing;
use super::timestamps::TimestampRebaser;
use super::totals::{self, HubTotals};
use super::viewer::{Protocol, Viewer, ViewerCounts};
use super::Hub;
use crate::trace_context::TraceContext;
use crate::HubSettings;

/// What the codec headers and metadata say about a stream.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CodecInfo {
    pub video_codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub frame_rate: Option<f64>,
    pub audio_codec: Option<String>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u8>,
    pub encoder: Option<String>,
}

/// A point-in-time view of a stream for the API and logs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StreamSnapshot {
    pub path: String,
    pub codecs: CodecInfo,
    pub bytes_in: u64,
    pub frames_in: u64,
    /// Bytes written to viewers of every protocol.
    pub bytes_out: u64,
    pub rates: Rates,
    pub viewers: u64,
    pub viewers_rtmp: u64,
    pub viewers_flv: u64,
    /// HLS sessions (a player polling playlists), counted by the HLS module.
    pub viewers_hls: u64,
    pub uptime_seconds: u64,
    pub started_at_unix: u64,
    pub viewer_skips: u64,
    /// Frames viewers skipped because they fell behind, summed over viewers.
    pub frames_dropped: u64,
    pub viewers_dropped_slow: u64,
    pub timestamp_discontinuities: u64,
}

/// One live stream: its headers, GOP cache and the ring its viewers read.
#[derive(Debug)]
pub struct Stream {
    path: StreamPath,
    inner: Mutex<Inner>,
    ring: FrameRing,
    started: Instant,
    started_at: SystemTime,
    pub(super) viewers: ViewerCounts,
    hls_viewers: AtomicU64,
    bytes_in: AtomicU64,
    frames_in: AtomicU64,
    bytes_out: AtomicU64,
    pub(super) viewer_skips: AtomicU64,
    pub(super) frames_dropped: AtomicU64,
    pub(super) viewers_dropped_slow: AtomicU64,
    /// The hub's server-wide totals, bumped alongside this stream's counters.
    pub(super) totals: Arc<HubTotals>,
}

#[derive(Debug)]
struct Inner {
    ended: bool,
    publisher_id: u64,
    /// Cancelled to disconnect the current publisher (kick or takeover).
    publisher_cancel: CancellationToken,
    /// The trace of the request that kicked the current publisher: its unpublish
    /// notification carries it.
    kicked_by: Option<TraceContext>,
    metadata: Option<Arc<HubFrame>>,
    video_header: Option<Arc<HubFrame>>,
    audio_header: Option<Arc<HubFrame>>,
    gop: GopCache,
    rebaser: TimestampRebaser,
    codecs: CodecInfo,
    rates: RateWindow,
}

/// What a new or lagging viewer needs before live frames: metadata, codec headers.
#[derive(Debug, Default)]
pub(super) struct Headers {
    pub frames: Vec<Arc<HubFrame>>,
    pub has_video: bool,
}

impl Stream {
    pub(super) fn new(
        path: StreamPath,
        settings: &HubSettings,
        publisher_id: u64,
        totals: Arc<HubTotals>,
    ) -> Self {
        Self {
            path,
            ring: FrameRing::new(settings.viewer_queue_frames),
            hls_viewers: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                ended: false,
                publisher_id,
                publisher_cancel: CancellationToken::new(),
                kicked_by: None,
                metadata: None,
                video_header: None,
                audio_header: None,
                gop: GopCache::new(settings.gop_cache_max_frames, settings.gop_cache_max_bytes),
                rebaser: TimestampRebaser::default(),
                codecs: CodecInfo::default(),
                rates: RateWindow::new(Instant::now()),
            }),
            started: Instant::now(),
            started_at: SystemTime::now(),
            viewers: ViewerCounts::default(),
            bytes_in: AtomicU64::new(0),
            frames_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            viewer_skips: AtomicU64::new(0),
            frames_dropped: AtomicU64::new(0),
            viewers_dropped_slow: AtomicU64::new(0),
            totals,
        }
    }

    pub fn path(&self) -> &StreamPath {
        &self.path
    }

    /// Disconnects the current publisher; the stream ends when it has left. `by` is
    /// the trace of the request that asked, for the unpublish notification.
    pub fn kick_publisher(&self, by: Option<TraceContext>) {
        let mut inner = self.lock();
        inner.kicked_by = by;
        inner.publisher_cancel.cancel();
    }

    /// The trace that kicked publisher `publisher_id`, if one did.
    pub(super) fn take_kick_trace(&self, publisher_id: u64) -> Option<TraceContext> {
        let mut inner = self.lock();
        if inner.publisher_id != publisher_id {
            return None;
        }
        inner.kicked_by.take()
    }

    /// Counts bytes a viewer's connection wrote.
    pub fn add_bytes_out(&self, bytes: usize) {
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
        totals::add(&self.totals.bytes_out, bytes as u64);
    }

    pub fn snapshot(&self) -> StreamSnapshot {
        let (codecs, discontinuities, rates) = {
            let inner = self.lock();
            (
                inner.codecs.clone(),
                inner.rebaser.discontinuities,
                inner.rates.rates(Instant::now()),
            )
        };
        let (rtmp, flv) = self.viewers.counts();
        let hls = self.hls_viewers.load(Ordering::Relaxed);
        StreamSnapshot {
            path: self.path.to_string(),
            codecs,
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            frames_in: self.frames_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            rates,
            viewers: rtmp + flv + hls,
            viewers_rtmp: rtmp,
            viewers_flv: flv,
            viewers_hls: hls,
            uptime_seconds: self.started.elapsed().as_secs(),
            started_at_unix: self
                .started_at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            viewer_skips: self.viewer_skips.load(Ordering::Relaxed),
            frames_dropped: self.frames_dropped.load(Ordering::Relaxed),
            viewers_dropped_slow: self.viewers_dropped_slow.load(Ordering::Relaxed),
            timestamp_discontinuities: discontinuities,
        }
    }

    /// Media viewers of every protocol now (the snapshot's `viewers`, without the rest).
    pub fn media_viewers(&self) -> u64 {
        let (rtmp, flv) = self.viewers.counts();
        rtmp + flv + self.hls_viewers.load(Ordering::Relaxed)
    }

    /// The HLS sessions watching now; HLS viewers are sessions, not connections.
    pub fn set_hls_viewers(&self, sessions: u64) {
        self.hls_viewers.store(sessions, Ordering::Relaxed);
    }

    pub(super) fn take_over(&self, publisher_id: u64) {
        let mut inner = self.lock();
        inner.publisher_cancel.cancel();
        inner.publisher_cancel = CancellationToken::new();
        inner.kicked_by = None;
        inner.publisher_id = publisher_id;
        // The new encoder starts a new GOP; old frames would not decode with its headers.
        inner.gop.clear();
    }

    /// Ends the stream if `publisher_id` still owns it. Returns whether it ended.
    pub(super) fn end_if_published_by(&self, publisher_id: u64) -> bool {
        let mut inner = self.lock();
        if inner.publisher_id != publisher_id {
            return false;
        }
        inner.ended = true;
        inner.gop.clear();
        self.ring.close();
        true
    }

    pub(super) fn subscribe(
        self: &Arc<Self>,
        protocol: Protocol,
        settings: &HubSettings,
    ) -> Option<Viewer> {
        let inner = self.lock();
        // Subscribing and copying the cache under one lock: no frame is lost or doubled.
        if inner.ended {
            return None;
        }
        let position = self.ring.subscribe();
        let gop = inner.gop.frames();
        let mut initial = match gop.first() {
            // Codec headers stamped at the GOP's start, so the player's clock starts
            // there instead of at the header's original time (a few tiny frames per
            // join). Metadata keeps timestamp 0: ffmpeg reads a timed onMetaData as a
            // subtitle stream.
            Some(first) => inner
                .headers()
                .frames
                .iter()
                .map(|h| match h.frame.kind {
                    FrameKind::Script => Arc::clone(h),
                    _ => Arc::new(h.restamped(first.frame.timestamp)),
                })
                .collect(),
            None => inner.headers().frames,
        };
        initial.extend(gop.iter().cloned());
        drop(inner);
        Some(Viewer::new(
            Arc::clone(self),
            protocol,
            position,
            initial,
            settings,
        ))
    }

    pub(super) fn ring(&self) -> &FrameRing {
        &self.ring
    }

    pub(super) fn headers(&self) -> Headers {
        self.lock().headers()
    }

    fn push(&self, publisher_id: u64, mut frame: MediaFrame) {
        self.bytes_in
            .fetch_add(frame.payload.len() as u64, Ordering::Relaxed);
        self.frames_in.fetch_add(1, Ordering::Relaxed);
        totals::add(&self.totals.bytes_in, frame.payload.len() as u64);
        totals::add(&self.totals.frames_in, 1);
        let mut inner = self.lock();
        if inner.publisher_id != publisher_id {
            return;
        }
        let bytes_out = self.bytes_out.load(Ordering::Relaxed);
        let video = frame.kind == FrameKind::Video && !frame.sequence_header;
        inner
            .rates
            .record(Instant::now(), frame.payload.len(), video, bytes_out);
        if frame.kind != FrameKind::Script {
            frame.timestamp = inner.rebaser.rebase(frame.kind, frame.timestamp);
        }
        let frame = Arc::new(HubFrame::new(frame));
        let media = &frame.frame;
        match media.kind {
            FrameKind::Script => {
                inner.codecs.apply_metadata(&media.payload);
                inner.metadata = Some(Arc::clone(&frame));
            }
            FrameKind::Video if media.sequence_header => {
                inner.codecs.apply_video_header(&media.payload);
                inner.video_header = Some(Arc::clone(&frame));
            }
            FrameKind::Audio if media.sequence_header => {
                inner.codecs.apply_audio_header(&media.payload);
                inner.audio_header = Some(Arc::clone(&frame));
            }
            _ => inner.gop.push(&frame),
        }
        if !inner.ended {
            let audio_only = inner.video_header.is_none();
            self.ring.push(frame, audio_only);
        }
    }

    fn publisher_cancel(&self) -> CancellationToken {
        self.lock().publisher_cancel.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    fn headers(&self) -> Headers {
        let frames = [&self.metadata, &self.video_header, &self.audio_header]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        Headers {
            frames,
            has_video: self.video_header.is_some(),
        }
    }
}

impl CodecInfo {
    fn apply_metadata(&mut self, payload: &[u8]) {
        let Ok(meta) = onair_flv::parse_metadata(payload) else {
            return;
        };
        self.encoder = meta.encoder.or(self.encoder.take());
        if self.frame_rate.is_none() {
            self.frame_rate = meta.frame_rate;
        }
        if self.width.is_none() {
            self.width = meta.width.map(|w| w as u32);
            self.height = meta.height.map(|h| h as u32);
        }
    }

    fn apply_video_header(&mut self, payload: &[u8]) {
        let Ok(tag) = onair_flv::parse_video_tag(payload) else {
            return;
        };
        self.video_codec = Some(format!("{:?}", tag.codec).to_lowercase());
        let record = payload.get(tag.header_len..).unwrap_or_default();
        match tag.codec {
            onair_media::VideoCodec::H264 => {
                if let Ok(avc) = onair_flv::parse_avc_config(record) {
                    self.width = Some(avc.width);
                    self.height = Some(avc.height);
                    self.frame_rate = avc.frame_rate.or(self.frame_rate);
                }
            }
            onair_media::VideoCodec::Hevc => {
                if let Ok(hevc) = onair_flv::parse_hevc_config(record) {
                    self.width = Some(hevc.width);
                    self.height = Some(hevc.height);
                }
            }
            _ => {}
        }
    }

    fn apply_audio_header(&mut self, payload: &[u8]) {
        let Ok(tag) = onair_flv::parse_audio_tag(payload) else {
            return;
        };
        self.audio_codec = Some(format!("{:?}", tag.codec).to_lowercase());
        if tag.codec == onair_media::AudioCodec::Aac {
            let asc = payload.get(tag.header_len..).unwrap_or_default();
            if let Ok(aac) = onair_flv::parse_aac_config(asc) {
                self.sample_rate = Some(aac.sample_rate);
                self.channels = Some(aac.channels);
            }
        }
    }
}

/// The right to publish one stream. Dropping it ends the stream (unless it was taken over).
#[derive(Debug)]
pub struct Publisher {
    hub: Arc<Hub>,
    stream: Arc<Stream>,
    id: u64,
    cancel: CancellationToken,
    client: ClientInfo,
    started: Instant,
    /// The stream's input counters when this publisher took over, so its own figures
    /// can be told apart from a predecessor's.
    bytes_in_before: u64,
    frames_in_before: u64,
}

impl Publisher {
    pub(super) fn new(hub: Arc<Hub>, stream: Arc<Stream>, id: u64, client: ClientInfo) -> Self {
        let cancel = stream.publisher_cancel();
        let bytes_in_before = stream.bytes_in.load(Ordering::Relaxed);
        let frames_in_before = stream.frames_in.load(Ordering::Relaxed);
        Self {
            hub,
            stream,
            id,
            cancel,
            client,
            started: Instant::now(),
            bytes_in_before,
            frames_in_before,
        }
    }

    /// What this publisher has sent so far.
    pub fn stats(&self) -> PublishStats {
        PublishStats {
            duration: self.started.elapsed(),
            bytes_in: self
                .stream
                .bytes_in
                .load(Ordering::Relaxed)
                .saturating_sub(self.bytes_in_before),
            frames_in: self
                .stream
                .frames_in
                .load(Ordering::Relaxed)
                .saturating_sub(self.frames_in_before),
        }
    }

    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    /// Hands one frame to every viewer. Never waits.
    pub fn push(&self, frame: MediaFrame) {
        self.stream.push(self.id, frame);
    }

    /// Resolves when this publisher is kicked or taken over.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let stats = self.stats();
        self.hub
            .unpublish(&self.stream, self.id, &self.client, stats);
    }
}
