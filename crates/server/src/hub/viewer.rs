use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use super::frame::HubFrame;
use super::stream::Stream;
use crate::config::HubSettings;

/// How a viewer watches, for counts and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Rtmp,
    HttpFlv,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Rtmp => "rtmp",
            Protocol::HttpFlv => "http-flv",
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
}

impl ViewerCounts {
    fn slot(&self, protocol: Protocol) -> &AtomicU64 {
        match protocol {
            Protocol::Rtmp => &self.rtmp,
            Protocol::HttpFlv => &self.flv,
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
    receiver: broadcast::Receiver<Arc<HubFrame>>,
    pending: VecDeque<Arc<HubFrame>>,
    waiting_for_keyframe: bool,
    recent_skips: VecDeque<Instant>,
    max_skips_per_minute: usize,
    skipped_frames: u64,
}

impl Viewer {
    pub(super) fn new(
        stream: Arc<Stream>,
        protocol: Protocol,
        receiver: broadcast::Receiver<Arc<HubFrame>>,
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
            receiver,
            pending: initial.into(),
            waiting_for_keyframe: false,
            recent_skips: VecDeque::new(),
            max_skips_per_minute: settings.viewer_max_skips_per_minute as usize,
            skipped_frames: 0,
        }
    }

    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    /// Frames this viewer has skipped because it fell behind.
    pub fn skipped_frames(&self) -> u64 {
        self.skipped_frames
    }

    /// The next frame to send, waiting for one if needed.
    pub async fn next(&mut self) -> Result<Arc<HubFrame>, ViewerEnd> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Ok(frame);
            }
            let received = self.receiver.recv().await;
            if let Some(frame) = self.accept(received)? {
                return Ok(frame);
            }
        }
    }

    /// The next frame if one is ready now; lets a writer batch what has piled up.
    pub fn try_next(&mut self) -> Option<Result<Arc<HubFrame>, ViewerEnd>> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Some(Ok(frame));
            }
            let received = match self.receiver.try_recv() {
                Ok(frame) => Ok(frame),
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Closed) => Err(RecvError::Closed),
                Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
            };
            match self.accept(received) {
                Ok(Some(frame)) => return Some(Ok(frame)),
                Ok(None) => continue,
                Err(end) => return Some(Err(end)),
            }
        }
    }

    fn accept(
        &mut self,
        received: Result<Arc<HubFrame>, RecvError>,
    ) -> Result<Option<Arc<HubFrame>>, ViewerEnd> {
        let frame = match received {
            Ok(frame) => frame,
            Err(RecvError::Closed) => return Err(ViewerEnd::StreamEnded),
            Err(RecvError::Lagged(skipped)) => {
                self.fell_behind(skipped)?;
                return Ok(None);
            }
        };
        if !self.waiting_for_keyframe {
            return Ok(Some(frame));
        }
        if frame.is_video_keyframe() {
            self.waiting_for_keyframe = false;
            // A header may have been among the frames skipped; resend the current ones.
            let headers = self.stream.headers();
            self.pending.extend(
                headers
                    .frames
                    .into_iter()
                    .filter(|h| h.frame.sequence_header),
            );
            self.pending.push_back(frame);
            return Ok(None);
        }
        // Headers and metadata still pass; media waits for the keyframe, audio
        // included, so that picture and sound restart together.
        let passes =
            frame.frame.sequence_header || frame.frame.kind == onair_media::FrameKind::Script;
        Ok(passes.then_some(frame))
    }

    fn fell_behind(&mut self, skipped: u64) -> Result<(), ViewerEnd> {
        self.skipped_frames += skipped;
        self.stream.viewer_skips.fetch_add(1, Ordering::Relaxed);
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
            return Err(ViewerEnd::TooSlow {
                skips: self.recent_skips.len(),
            });
        }
        tracing::debug!(
            stream = %self.stream.path(),
            proto = self.protocol.as_str(),
            skipped,
            "viewer fell behind, skipping to the next keyframe"
        );
        self.pending.clear();
        self.waiting_for_keyframe = self.stream.headers().has_video;
        Ok(())
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.stream
            .viewers
            .slot(self.protocol)
            .fetch_sub(1, Ordering::Relaxed);
    }
}
