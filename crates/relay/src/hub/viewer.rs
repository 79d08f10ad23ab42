use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use onair_media::FrameKind;
use tokio::sync::watch;

use super::frame::HubFrame;
use super::observer::{HubEvent, HubEventKind, Watch};
use super::ring::Read;
use super::seat::{BoxedWriter, SeatHandle, ViewerFeed, WireFormat};
use super::stream::Stream;
use super::totals;
use crate::HubSettings;

/// How a viewer watches, for counts and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Rtmp,
    HttpFlv,
    /// A reader inside the server (the HLS muxer, the recorder): not a viewer, not
    /// counted among them nor reported to the observer.
    Internal,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Rtmp => "rtmp",
            Protocol::HttpFlv => "http-flv",
            Protocol::Internal => "internal",
        }
    }
}

/// Why a viewer stops receiving frames.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewerEnd {
    #[error("the publisher stopped")]
    StreamEnded,
    #[error("viewer too slow: skipped to a keyframe {skips} times within a minute")]
    TooSlow { skips: usize },
}

#[derive(Debug, Default)]
pub(super) struct ViewerCounts {
    rtmp: AtomicU64,
    flv: AtomicU64,
    internal: AtomicU64,
}

impl ViewerCounts {
    fn slot(&self, protocol: Protocol) -> &AtomicU64 {
        match protocol {
            Protocol::Rtmp => &self.rtmp,
            Protocol::HttpFlv => &self.flv,
            Protocol::Internal => &self.internal,
        }
    }

    /// (RTMP, HTTP-FLV)
    pub(super) fn counts(&self) -> (u64, u64) {
        (
            self.rtmp.load(Ordering::Relaxed),
            self.flv.load(Ordering::Relaxed),
        )
    }
}

const SKIP_WINDOW: Duration = Duration::from_secs(60);

/// One viewer's read position in a stream. It starts with the stream's headers and
/// cached GOP, then follows the live ring.
#[derive(Debug)]
pub struct Viewer {
    stream: Arc<Stream>,
    protocol: Protocol,
    cursor: u64,
    wake: watch::Receiver<u64>,
    pending: VecDeque<Arc<HubFrame>>,
    waiting_for_keyframe: bool,
    recent_skips: VecDeque<Instant>,
    max_skips_per_minute: usize,
    skipped_frames: u64,
    started: Instant,
    /// Set when someone observes the hub: the play's end is reported on drop.
    watch: Option<Watch>,
}

impl Viewer {
    pub(super) fn new(
        stream: Arc<Stream>,
        protocol: Protocol,
        (cursor, wake): (u64, watch::Receiver<u64>),
        initial: Vec<Arc<HubFrame>>,
        settings: &HubSettings,
    ) -> Self {
        stream
            .viewers
            .slot(protocol)
            .fetch_add(1, Ordering::Relaxed);
        Self {
            stream,
            protocol,
            cursor,
            wake,
            pending: initial.into(),
            waiting_for_keyframe: false,
            recent_skips: VecDeque::new(),
            max_skips_per_minute: settings.viewer_max_skips_per_minute as usize,
            skipped_frames: 0,
            started: Instant::now(),
            watch: None,
        }
    }

    pub(super) fn watch(&mut self, watch: Watch) {
        self.watch = Some(watch);
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    /// Frames this viewer has skipped because it fell behind.
    pub fn skipped_frames(&self) -> u64 {
        self.skipped_frames
    }

    /// Hands this viewer's delivery to its stream's delivery group, which writes
    /// `initial` and then the frames to `writer` until the seat ends.
    pub fn seat(
        self,
        writer: BoxedWriter,
        initial: VecDeque<Bytes>,
        format: WireFormat,
        write_timeout: Duration,
    ) -> SeatHandle {
        let stream = Arc::clone(&self.stream);
        stream.ring().fanout().join(
            ViewerFeed::new(self, format),
            writer,
            initial,
            write_timeout,
        )
    }

    /// Waits until there is something to send, then appends up to `max` frames to
    /// `out`: everything that is ready, so one write carries it all. Cancel-safe.
    pub async fn next_batch(
        &mut self,
        out: &mut Vec<Arc<HubFrame>>,
        max: usize,
    ) -> Result<(), ViewerEnd> {
        loop {
            // Seen before reading: a frame pushed after the read wakes us below.
            self.wake.borrow_and_update();
            if self.read_ready(out, max)? {
                return Ok(());
            }
            if self.wake.changed().await.is_err() {
                return Err(ViewerEnd::StreamEnded);
            }
        }
    }

    /// Appends up to `max` frames that are ready to `out`, without waiting; true if
    /// `out` holds any.
    pub(super) fn read_ready(
        &mut self,
        out: &mut Vec<Arc<HubFrame>>,
        max: usize,
    ) -> Result<bool, ViewerEnd> {
        loop {
            while out.len() < max {
                match self.pending.pop_front() {
                    Some(frame) => out.push(frame),
                    None => break,
                }
            }
            if self.pending.is_empty() && self.pending.capacity() > 0 {
                // The initial burst is over; don't keep its room for the viewer's life.
                self.pending = VecDeque::new();
            }
            if !out.is_empty() {
                return Ok(true);
            }
            match self.stream.ring().read(&mut self.cursor, out, max) {
                Read::Lagged { skipped } => {
                    self.fell_behind(skipped)?;
                    continue;
                }
                Read::Closed => return Err(ViewerEnd::StreamEnded),
                Read::Frames => {}
            }
            if self.waiting_for_keyframe {
                self.drop_until_keyframe(out);
            }
            return Ok(!out.is_empty());
        }
    }

    /// Keeps headers and metadata, drops media until a video keyframe (audio too, so
    /// that picture and sound restart together), then resends the codec headers.
    fn drop_until_keyframe(&mut self, out: &mut Vec<Arc<HubFrame>>) {
        let before = out.len();
        let Some(at) = out.iter().position(|f| f.is_video_keyframe()) else {
            out.retain(|f| f.frame.sequence_header || f.frame.kind == FrameKind::Script);
            self.count_skipped((before - out.len()) as u64);
            return;
        };
        self.waiting_for_keyframe = false;
        self.count_skipped(at as u64);
        let mut kept: Vec<_> = self.stream.headers().frames;
        kept.retain(|h| h.frame.sequence_header);
        kept.extend(out.drain(at..));
        *out = kept;
    }

    fn fell_behind(&mut self, skipped: u64) -> Result<(), ViewerEnd> {
        self.count_skipped(skipped);
        self.stream.viewer_skips.fetch_add(1, Ordering::Relaxed);
        totals::add(&self.stream.totals.viewer_skips, 1);
        let now = Instant::now();
        while self
            .recent_skips
            .front()
            .is_some_and(|&at| now.duration_since(at) > SKIP_WINDOW)
        {
            self.recent_skips.pop_front();
        }
        self.recent_skips.push_back(now);
        if self.recent_skips.len() > self.max_skips_per_minute {
            self.stream
                .viewers_dropped_slow
                .fetch_add(1, Ordering::Relaxed);
            totals::add(&self.stream.totals.viewers_dropped_slow, 1);
            return Err(ViewerEnd::TooSlow {
                skips: self.recent_skips.len(),
            });
        }
        tracing::debug!(
            stream = %self.stream.path(),
            proto = self.protocol.as_str(),
            skipped,
            "viewer fell behind, skipping to a keyframe"
        );
        self.pending.clear();
        // Jump to the newest keyframe still in the ring, with the codec headers again
        // (one may have been among the frames skipped); else wait for the next one.
        let headers = self.stream.headers();
        match self.stream.ring().last_keyframe_from(self.cursor) {
            Some(keyframe) => {
                self.count_skipped(keyframe - self.cursor);
                self.cursor = keyframe;
                self.pending.extend(
                    headers
                        .frames
                        .into_iter()
                        .filter(|h| h.frame.sequence_header),
                );
            }
            None => self.waiting_for_keyframe = headers.has_video,
        }
        Ok(())
    }
}

impl Viewer {
    fn count_skipped(&mut self, frames: u64) {
        self.skipped_frames += frames;
        self.stream
            .frames_dropped
            .fetch_add(frames, Ordering::Relaxed);
        totals::add(&self.stream.totals.frames_dropped, frames);
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.stream
            .viewers
            .slot(self.protocol)
            .fetch_sub(1, Ordering::Relaxed);
        if let Some(watch) = self.watch.take() {
            (watch.observer)(&HubEvent {
                path: self.stream.path().clone(),
                protocol: self.protocol,
                client: watch.client,
                kind: HubEventKind::PlayStopped {
                    duration: self.started.elapsed(),
                },
            });
        }
    }
}
