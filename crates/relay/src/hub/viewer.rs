use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use onair_policy::{KeyframeWait, Lag, SkipPolicy};
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

/// One viewer's read position in a stream. It starts with the stream's headers and
/// cached GOP, then follows the live ring.
#[derive(Debug)]
pub struct Viewer {
    stream: Arc<Stream>,
    protocol: Protocol,
    cursor: u64,
    wake: watch::Receiver<u64>,
    pending: VecDeque<Arc<HubFrame>>,
    /// Whether to jump, wait for a keyframe or give up when the viewer falls behind.
    skips: SkipPolicy<Instant>,
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
            skips: SkipPolicy::new(settings.viewer_max_skips_per_minute as usize),
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
            self.drop_until_keyframe(out);
            return Ok(!out.is_empty());
        }
    }

    /// While the skip policy waits for a keyframe: keeps headers and metadata, drops
    /// media until a video keyframe (audio too, so that picture and sound restart
    /// together), then resends the codec headers.
    fn drop_until_keyframe(&mut self, out: &mut Vec<Arc<HubFrame>>) {
        match self.skips.drop_until_keyframe(out) {
            KeyframeWait::NotWaiting => {}
            KeyframeWait::Waiting { dropped } => self.count_skipped(dropped),
            KeyframeWait::Resumed { dropped } => {
                self.count_skipped(dropped);
                let mut kept: Vec<_> = self.stream.headers().frames;
                kept.retain(|h| h.frame.sequence_header);
                kept.append(out);
                *out = kept;
            }
        }
    }

    fn fell_behind(&mut self, skipped: u64) -> Result<(), ViewerEnd> {
        self.count_skipped(skipped);
        self.stream.viewer_skips.fetch_add(1, Ordering::Relaxed);
        totals::add(&self.stream.totals.viewer_skips, 1);
        // Where it could jump to: the newest keyframe still in the ring.
        let headers = self.stream.headers();
        let newest_keyframe = self.stream.ring().last_keyframe_from(self.cursor);
        let lag = self
            .skips
            .handle_lag(Instant::now(), newest_keyframe, headers.has_video);
        if let Lag::TooSlow { skips } = lag {
            self.stream
                .viewers_dropped_slow
                .fetch_add(1, Ordering::Relaxed);
            totals::add(&self.stream.totals.viewers_dropped_slow, 1);
            return Err(ViewerEnd::TooSlow { skips });
        }
        tracing::debug!(
            stream = %self.stream.path(),
            proto = self.protocol.as_str(),
            skipped,
            "viewer fell behind, skipping to a keyframe"
        );
        self.pending.clear();
        if let Lag::JumpTo(keyframe) = lag {
            // With the codec headers again: one may have been among the frames skipped.
            self.count_skipped(keyframe - self.cursor);
            self.cursor = keyframe;
            self.pending.extend(
                headers
                    .frames
                    .into_iter()
                    .filter(|h| h.frame.sequence_header),
            );
        }
        // Else (WaitForKeyframe, ReadOn) the next reads go through drop_until_keyframe.
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use onair_media::{FrameKind, MediaFrame, StreamPath};

    use super::*;
    use crate::hub::{Hub, Publisher};

    fn frame(kind: FrameKind, timestamp: u32, keyframe: bool) -> MediaFrame {
        MediaFrame {
            kind,
            timestamp,
            keyframe,
            sequence_header: false,
            payload: Bytes::from_static(&[0; 16]),
        }
    }

    fn header(kind: FrameKind) -> MediaFrame {
        let payload: &'static [u8] = match kind {
            FrameKind::Video => &[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f],
            _ => &[0xaf, 0, 0x12, 0x10],
        };
        MediaFrame {
            sequence_header: true,
            payload: Bytes::from_static(payload),
            ..frame(kind, 0, false)
        }
    }

    /// A stream with a 16-frame ring, its codec headers pushed, and a tap that has
    /// read them.
    fn lagging_setup(max_skips: u32, video: bool) -> (Arc<Hub>, Publisher, Viewer) {
        let settings = HubSettings {
            viewer_queue_frames: 16,
            viewer_max_skips_per_minute: max_skips,
            ..HubSettings::default()
        };
        let hub = Hub::new(settings, 4096);
        let path = StreamPath::new("live", "lag").unwrap();
        let publisher = hub.publish(path.clone()).unwrap();
        if video {
            publisher.push(header(FrameKind::Video));
        }
        publisher.push(header(FrameKind::Audio));
        let mut viewer = hub.tap(&path).unwrap();
        let mut out = Vec::new();
        assert!(viewer.read_ready(&mut out, 64).unwrap());
        assert_eq!(out.len(), 1 + usize::from(video), "the headers first");
        (hub, publisher, viewer)
    }

    fn read(viewer: &mut Viewer) -> Result<Vec<(FrameKind, u32, bool)>, ViewerEnd> {
        let mut out = Vec::new();
        viewer.read_ready(&mut out, 64)?;
        Ok(out
            .iter()
            .map(|f| (f.frame.kind, f.frame.timestamp, f.frame.sequence_header))
            .collect())
    }

    #[test]
    fn a_lagging_viewer_jumps_to_the_newest_keyframe_with_the_headers() {
        let (_hub, publisher, mut viewer) = lagging_setup(6, true);
        publisher.push(frame(FrameKind::Video, 0, true));
        for i in 1..20 {
            publisher.push(frame(FrameKind::Video, i * 40, false));
        }
        publisher.push(frame(FrameKind::Video, 800, true));
        for i in 1..6 {
            publisher.push(frame(FrameKind::Video, 800 + i * 40, false));
        }
        assert_eq!(
            read(&mut viewer).unwrap(),
            [(FrameKind::Video, 0, true), (FrameKind::Audio, 0, true)]
        );
        let frames = read(&mut viewer).unwrap();
        assert_eq!(frames.len(), 6);
        assert_eq!(frames[0], (FrameKind::Video, 800, false));
        // 10 fell off the ring, 10 more were jumped over.
        assert_eq!(viewer.skipped_frames(), 20);
    }

    #[test]
    fn with_no_keyframe_in_the_ring_media_is_dropped_until_the_next() {
        let (_hub, publisher, mut viewer) = lagging_setup(6, true);
        publisher.push(frame(FrameKind::Video, 0, true));
        for i in 1..30 {
            publisher.push(frame(FrameKind::Video, i * 40, false));
        }
        assert_eq!(read(&mut viewer).unwrap(), []);
        assert_eq!(viewer.skipped_frames(), 30);
        publisher.push(frame(FrameKind::Audio, 1_190, false));
        publisher.push(frame(FrameKind::Video, 1_200, true));
        publisher.push(frame(FrameKind::Video, 1_240, false));
        assert_eq!(
            read(&mut viewer).unwrap(),
            [
                (FrameKind::Video, 0, true),
                (FrameKind::Audio, 0, true),
                (FrameKind::Video, 1_200, false),
                (FrameKind::Video, 1_240, false)
            ]
        );
        assert_eq!(viewer.skipped_frames(), 31);
        publisher.push(frame(FrameKind::Audio, 1_250, false));
        publisher.push(frame(FrameKind::Video, 1_280, false));
        assert_eq!(read(&mut viewer).unwrap().len(), 2, "then everything again");
    }

    #[test]
    fn an_audio_only_viewer_reads_on_after_a_lag() {
        let (_hub, publisher, mut viewer) = lagging_setup(6, false);
        for i in 0..40 {
            publisher.push(frame(FrameKind::Audio, i * 23, false));
        }
        let frames = read(&mut viewer).unwrap();
        assert_eq!(frames.len(), 16);
        assert_eq!(frames[0], (FrameKind::Audio, 24 * 23, false));
        assert_eq!(viewer.skipped_frames(), 24);
    }

    #[test]
    fn a_viewer_that_keeps_lagging_is_too_slow() {
        let (_hub, publisher, mut viewer) = lagging_setup(1, true);
        for round in 0..2u32 {
            for i in 0..20 {
                publisher.push(frame(FrameKind::Video, round * 1_000 + i * 40, i == 0));
            }
            if round == 0 {
                assert!(read(&mut viewer).is_ok());
            }
        }
        assert_eq!(read(&mut viewer), Err(ViewerEnd::TooSlow { skips: 2 }));
        assert_eq!(
            viewer.stream().snapshot().viewers_dropped_slow,
            1,
            "counted"
        );
    }
}
