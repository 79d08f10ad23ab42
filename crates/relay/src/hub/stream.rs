use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use onair_media::{FrameKind, MediaFrame, StreamPath};
use tokio_util::sync::CancellationToken;

use onair_policy::{CodecInfo, GopCache, TimestampRebaser};

use super::frame::HubFrame;
use super::observer::{ClientInfo, PublishStats};
use super::rates::{RateWindow, Rates};
use super::ring::FrameRing;
use super::totals::{self, HubTotals};
use super::viewer::{Protocol, Viewer, ViewerCounts};
use super::Hub;
use crate::trace_context::TraceContext;
use crate::HubSettings;

/// A point-in-time view of a stream for the API and logs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StreamSnapshot {
    pub path: String,
    #[serde(serialize_with = "serialize_codecs")]
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
    gop: GopCache<HubFrame>,
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

/// `CodecInfo`'s public fields, as the snapshot has always serialised them.
fn serialize_codecs<S: serde::Serializer>(
    codecs: &CodecInfo,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(serde::Serialize)]
    struct Fields<'a> {
        video_codec: &'a Option<String>,
        width: Option<u32>,
        height: Option<u32>,
        frame_rate: Option<f64>,
        audio_codec: &'a Option<String>,
        sample_rate: Option<u32>,
        channels: Option<u8>,
        encoder: &'a Option<String>,
    }
    serde::Serialize::serialize(
        &Fields {
            video_codec: &codecs.video_codec,
            width: codecs.width,
            height: codecs.height,
            frame_rate: codecs.frame_rate,
            audio_codec: &codecs.audio_codec,
            sample_rate: codecs.sample_rate,
            channels: codecs.channels,
            encoder: &codecs.encoder,
        },
        serializer,
    )
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use onair_media::{FrameKind, MediaFrame, StreamPath};

    use crate::hub::Hub;
    use crate::HubSettings;

    fn header(kind: FrameKind, payload: &'static [u8]) -> MediaFrame {
        MediaFrame {
            kind,
            timestamp: 0,
            keyframe: false,
            sequence_header: true,
            payload: Bytes::from_static(payload),
        }
    }

    #[test]
    fn the_snapshot_says_what_the_headers_say() {
        let hub = Hub::new(HubSettings::default(), 4096);
        let publisher = hub
            .publish(StreamPath::new("live", "codecs").unwrap())
            .unwrap();
        let codecs = publisher.stream().snapshot().codecs;
        assert_eq!((codecs.video_codec, codecs.audio_codec), (None, None));
        // An AVC record cut short after its profile: the codec is still named.
        publisher.push(header(
            FrameKind::Video,
            &[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f],
        ));
        publisher.push(header(FrameKind::Audio, &[0xaf, 0, 0x12, 0x10]));
        let codecs = publisher.stream().snapshot().codecs;
        assert_eq!(codecs.video_codec.as_deref(), Some("h264"));
        assert_eq!(codecs.width, None);
        assert_eq!(codecs.audio_codec.as_deref(), Some("aac"));
        assert_eq!(
            (codecs.sample_rate, codecs.channels),
            (Some(44100), Some(2))
        );
        assert_eq!(
            codecs.rfc6381_codecs().as_deref(),
            Some("avc1.64001f,mp4a.40.2")
        );
    }
}
