//! The ring of recent frames every viewer of a stream reads from, each at its own
//! cursor, and the signal that wakes them.
//!
//! Unlike a broadcast channel that wakes every receiver on every send, the ring wakes
//! viewers once per video frame: audio in between rides along in the same write. That
//! halves the wake-ups and system calls per viewer and keeps audio and video interleaved
//! as an encoder would. Audio-only streams wake on every frame, and audio never waits
//! longer than [`MAX_QUIET_MS`] of media time.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use onair_media::FrameKind;
use tokio::sync::watch;

use super::frame::HubFrame;
use super::seat::ViewerFeed;
use crate::fanout::Fanout;

/// Media time audio may wait for the next video frame before viewers are woken anyway.
const MAX_QUIET_MS: u32 = 50;

#[derive(Debug)]
pub(super) struct FrameRing {
    inner: Mutex<Inner>,
    /// The sequence number after the last frame viewers were told about.
    wake: watch::Sender<u64>,
    /// The delivery groups, woken with `wake`.
    fanout: Fanout<ViewerFeed>,
}

#[derive(Debug)]
struct Inner {
    frames: VecDeque<Arc<HubFrame>>,
    /// Sequence number of `frames[0]`.
    first_seq: u64,
    capacity: usize,
    closed: bool,
    last_wake_ts: u32,
}

/// What a read found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Read {
    /// Frames were appended to the output (possibly none: nothing new yet).
    Frames,
    /// The cursor fell off the end of the ring; `skipped` frames are gone.
    Lagged { skipped: u64 },
    /// The stream ended and every frame has been read.
    Closed,
}

impl FrameRing {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                frames: VecDeque::with_capacity(capacity.min(1024)),
                first_seq: 0,
                capacity,
                closed: false,
                last_wake_ts: 0,
            }),
            wake: watch::Sender::new(0),
            fanout: Fanout::default(),
        }
    }

    /// Appends a frame; wakes viewers for video, script and (when `audio_only`, or
    /// after a quiet spell) audio frames.
    pub fn push(&self, frame: Arc<HubFrame>, audio_only: bool) {
        let mut inner = self.lock();
        let ts = frame.frame.timestamp;
        let wake = match frame.frame.kind {
            FrameKind::Audio => audio_only || ts.wrapping_sub(inner.last_wake_ts) >= MAX_QUIET_MS,
            _ => true,
        };
        if inner.frames.len() >= inner.capacity {
            inner.frames.pop_front();
            inner.first_seq += 1;
        }
        inner.frames.push_back(frame);
        let head = inner.first_seq + inner.frames.len() as u64;
        if wake {
            inner.last_wake_ts = ts;
        }
        drop(inner);
        if wake {
            self.wake.send_replace(head);
            self.fanout.wake();
        }
    }

    /// Marks the end of the stream and wakes everyone to read what is left.
    pub fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        let head = inner.first_seq + inner.frames.len() as u64;
        drop(inner);
        self.wake.send_replace(head);
        self.fanout.wake();
    }

    pub fn fanout(&self) -> &Fanout<ViewerFeed> {
        &self.fanout
    }

    /// A cursor at the head (only frames pushed from now on) and its wake signal.
    pub fn subscribe(&self) -> (u64, watch::Receiver<u64>) {
        let inner = self.lock();
        let head = inner.first_seq + inner.frames.len() as u64;
        (head, self.wake.subscribe())
    }

    /// Appends up to `max` frames from `cursor` to `out`, advancing the cursor.
    pub fn read(&self, cursor: &mut u64, out: &mut Vec<Arc<HubFrame>>, max: usize) -> Read {
        let inner = self.lock();
        if *cursor < inner.first_seq {
            let skipped = inner.first_seq - *cursor;
            *cursor = inner.first_seq;
            return Read::Lagged { skipped };
        }
        let start = (*cursor - inner.first_seq) as usize;
        let available = inner.frames.len().saturating_sub(start);
        if available == 0 && inner.closed {
            return Read::Closed;
        }
        let take = available.min(max.saturating_sub(out.len()));
        out.extend(inner.frames.range(start..start + take).cloned());
        *cursor += take as u64;
        Read::Frames
    }

    /// The position of the newest video keyframe at or after `cursor`, if any.
    pub fn last_keyframe_from(&self, cursor: u64) -> Option<u64> {
        let inner = self.lock();
        let start = cursor.saturating_sub(inner.first_seq) as usize;
        inner
            .frames
            .iter()
            .enumerate()
            .skip(start)
            .rev()
            .find(|(_, f)| f.is_video_keyframe())
            .map(|(i, _)| inner.first_seq + i as u64)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use onair_media::MediaFrame;

    fn frame(kind: FrameKind, timestamp: u32, keyframe: bool) -> Arc<HubFrame> {
        Arc::new(HubFrame::new(MediaFrame {
            kind,
            timestamp,
            keyframe,
            sequence_header: false,
            payload: Bytes::from_static(b"x"),
        }))
    }

    #[test]
    fn wakes_on_video_and_carries_audio_along() {
        let ring = FrameRing::new(16);
        let (mut cursor, mut wake) = ring.subscribe();
        wake.borrow_and_update();
        ring.push(frame(FrameKind::Audio, 0, false), false);
        ring.push(frame(FrameKind::Audio, 21, false), false);
        assert!(!wake.has_changed().unwrap());
        ring.push(frame(FrameKind::Video, 33, true), false);
        assert!(wake.has_changed().unwrap());
        let mut out = Vec::new();
        assert_eq!(ring.read(&mut cursor, &mut out, 64), Read::Frames);
        assert_eq!(out.len(), 3);
        // Audio alone for longer than the quiet limit wakes viewers too.
        wake.borrow_and_update();
        ring.push(frame(FrameKind::Audio, 90, false), false);
        assert!(wake.has_changed().unwrap());
    }

    #[test]
    fn audio_only_streams_wake_on_every_frame() {
        let ring = FrameRing::new(16);
        let (_, mut wake) = ring.subscribe();
        wake.borrow_and_update();
        ring.push(frame(FrameKind::Audio, 0, false), true);
        assert!(wake.has_changed().unwrap());
    }

    #[test]
    fn lag_is_reported_and_the_cursor_moves_to_the_oldest_frame() {
        let ring = FrameRing::new(4);
        let (mut cursor, _) = ring.subscribe();
        for ts in 0..10 {
            ring.push(frame(FrameKind::Video, ts * 33, ts == 7), false);
        }
        let mut out = Vec::new();
        assert_eq!(
            ring.read(&mut cursor, &mut out, 64),
            Read::Lagged { skipped: 6 }
        );
        assert_eq!(ring.last_keyframe_from(cursor), Some(7));
        assert_eq!(ring.read(&mut cursor, &mut out, 2), Read::Frames);
        assert_eq!(out.len(), 2);
        assert_eq!(cursor, 8);
    }

    #[test]
    fn closed_after_the_last_frame_is_read() {
        let ring = FrameRing::new(4);
        let (mut cursor, _) = ring.subscribe();
        ring.push(frame(FrameKind::Video, 0, true), false);
        ring.close();
        let mut out = Vec::new();
        assert_eq!(ring.read(&mut cursor, &mut out, 64), Read::Frames);
        assert_eq!(out.len(), 1);
        assert_eq!(ring.read(&mut cursor, &mut out, 64), Read::Closed);
    }
}
