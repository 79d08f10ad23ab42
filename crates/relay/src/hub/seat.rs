//! A viewer seated in its stream's delivery groups ([`crate::fanout`]): the group asks
//! the viewer for the frames that are ready and writes them, in the viewer's wire
//! format, straight to its socket.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use super::frame::HubFrame;
use super::viewer::{Viewer, ViewerEnd};
use crate::fanout::{self, Feed};

pub use crate::fanout::BoxedWriter;

/// The connection's side of a seated viewer.
pub type SeatHandle = fanout::SeatHandle<ViewerFeed>;
/// What a connection gets back when its viewer's seat ends.
pub type SeatEnd = fanout::SeatEnd<ViewerFeed>;
/// Why a seated viewer's delivery stopped.
pub type SeatEndReason = fanout::SeatEndReason<ViewerEnd>;

/// Frames gathered into one write.
const MAX_BATCH: usize = 128;

/// How frames are put on a seat's wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    /// RTMP chunks on message stream `stream_id`.
    Rtmp { stream_id: u32, chunk_size: u32 },
    /// FLV tags, each one chunk of a chunked HTTP/1.1 response.
    HttpFlv,
}

impl WireFormat {
    /// Appends `frame`'s wire form to `out`; returns its length.
    fn push(self, frame: &HubFrame, out: &mut VecDeque<Bytes>) -> usize {
        match self {
            WireFormat::Rtmp {
                stream_id,
                chunk_size,
            } => frame.push_rtmp_chunks(stream_id, chunk_size, out),
            WireFormat::HttpFlv => frame.push_flv_chunk(out),
        }
    }
}

/// A viewer and the wire format its connection speaks.
pub struct ViewerFeed {
    pub viewer: Viewer,
    format: WireFormat,
}

impl ViewerFeed {
    pub(super) fn new(viewer: Viewer, format: WireFormat) -> Self {
        Self { viewer, format }
    }
}

impl Feed for ViewerFeed {
    type End = ViewerEnd;
    type Scratch = Vec<Arc<HubFrame>>;

    fn fill(
        &mut self,
        batch: &mut Vec<Arc<HubFrame>>,
        out: &mut VecDeque<Bytes>,
        _now: Instant,
    ) -> Result<usize, ViewerEnd> {
        batch.clear();
        if !self.viewer.read_ready(batch, MAX_BATCH)? {
            return Ok(0);
        }
        Ok(batch
            .drain(..)
            .map(|frame| self.format.push(&frame, out))
            .sum())
    }

    /// Bytes out, counted once per round of a group: the stream's counters are shared.
    fn count(&self, bytes: usize) {
        self.viewer.stream().add_bytes_out(bytes);
    }
}

#[cfg(test)]
mod tests {
    use crate::fanout::GROUP_SIZE;
    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use onair_media::{FrameKind, MediaFrame, StreamPath};
    use tokio::io::{AsyncReadExt, DuplexStream};

    use crate::fanout::MAX_QUEUED_CONTROL;
    use crate::hub::{Hub, Protocol, Publisher, SeatEndReason, SeatHandle, ViewerEnd, WireFormat};
    use crate::HubSettings;

    fn frame(kind: FrameKind, timestamp: u32, keyframe: bool, fill: u8) -> MediaFrame {
        MediaFrame {
            kind,
            timestamp,
            keyframe,
            sequence_header: false,
            payload: Bytes::from(vec![fill; 100]),
        }
    }

    fn publish(hub: &Arc<Hub>) -> (Publisher, StreamPath) {
        let path = StreamPath::new("live", "fanout").unwrap();
        (hub.publish(path.clone()).unwrap(), path)
    }

    /// A seated HTTP-FLV viewer whose socket's far end the test reads.
    fn seat(hub: &Hub, path: &StreamPath, timeout: Duration) -> (SeatHandle, DuplexStream) {
        let (near, far) = tokio::io::duplex(64 * 1024);
        let viewer = hub.subscribe(path, Protocol::HttpFlv).unwrap();
        let initial = VecDeque::from([Bytes::from_static(b"head;")]);
        let seat = viewer.seat(Box::new(near), initial, WireFormat::HttpFlv, timeout);
        (seat, far)
    }

    /// The HTTP chunks (FLV tags) `far` received until it has `count` of them, after the head.
    async fn read_tags(far: &mut DuplexStream, count: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut tags = Vec::new();
        let mut buf = [0u8; 4096];
        while tags.len() < count {
            let n = tokio::time::timeout(Duration::from_secs(5), far.read(&mut buf))
                .await
                .expect("frames arrive")
                .unwrap();
            assert!(n > 0, "socket closed early");
            got.extend_from_slice(&buf[..n]);
            tags.clear();
            let mut rest = got.strip_prefix(b"head;").expect("the head goes first");
            // Each chunk: hex size CRLF, an FLV tag (11-byte header, body, 4-byte size) CRLF.
            while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
                let size =
                    usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16)
                        .unwrap();
                let Some(tag) = rest.get(line_end + 2..line_end + 2 + size) else {
                    break;
                };
                tags.push(tag[11]);
                rest = &rest[line_end + 4 + size..];
            }
        }
        tags
    }

    #[tokio::test]
    async fn every_seat_gets_every_frame_in_order_across_groups() {
        let hub = Hub::new(HubSettings::default(), 4096);
        let (publisher, path) = publish(&hub);
        let mut seats: Vec<_> = (0..GROUP_SIZE + 3)
            .map(|_| seat(&hub, &path, Duration::from_secs(5)))
            .collect();
        assert_eq!(hub.stream(&path).unwrap().ring().fanout().open_groups(), 2);
        for i in 0..10u8 {
            publisher.push(frame(FrameKind::Video, u32::from(i) * 33, i == 0, i));
        }
        for (_, far) in &mut seats {
            assert_eq!(read_tags(far, 10).await, (0..10).collect::<Vec<u8>>());
        }
    }

    #[tokio::test]
    async fn a_stalled_socket_times_out_and_the_others_keep_going() {
        let settings = HubSettings {
            viewer_queue_frames: 4096,
            ..HubSettings::default()
        };
        let hub = Hub::new(settings, 4096);
        let (publisher, path) = publish(&hub);
        let (mut stalled, _far_never_read) = seat(&hub, &path, Duration::from_millis(300));
        let (_quick, mut far) = seat(&hub, &path, Duration::from_secs(5));
        let quick = tokio::spawn(async move { read_tags(&mut far, 41).await });
        for i in 0..40u32 {
            let mut media = frame(FrameKind::Video, i * 33, i % 10 == 0, 1);
            media.payload = Bytes::from(vec![1u8; 16 * 1024]);
            publisher.push(media);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let end = tokio::time::timeout(Duration::from_secs(5), stalled.ended())
            .await
            .expect("the stalled seat ends")
            .expect("the socket comes back");
        assert!(
            matches!(end.reason, SeatEndReason::WriteTimeout(_)),
            "{}",
            end.reason
        );
        assert!(!end.unwritten.is_empty(), "what did not fit comes back");
        publisher.push(frame(FrameKind::Video, 40 * 33, true, 9));
        let tags = quick.await.unwrap();
        assert_eq!(tags.len(), 41);
        assert_eq!(tags.last(), Some(&9), "the quick viewer kept receiving");
    }

    #[tokio::test]
    async fn control_bytes_follow_queued_frames_and_stop_returns_the_socket() {
        let hub = Hub::new(HubSettings::default(), 4096);
        let (publisher, path) = publish(&hub);
        let (seat, mut far) = seat(&hub, &path, Duration::from_secs(5));
        publisher.push(frame(FrameKind::Video, 0, true, 1));
        assert_eq!(read_tags(&mut far, 1).await, vec![1]);
        assert!(seat.send(Bytes::from_static(b"CONTROL")));
        let mut buf = [0u8; 64];
        let n = far.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"CONTROL");
        let end = seat.stop_and_wait().await.expect("the socket comes back");
        assert!(matches!(end.reason, SeatEndReason::Stopped));
        assert!(end.unwritten.is_empty());
        // The group had only this seat: it is gone.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(hub.stream(&path).unwrap().ring().fanout().open_groups(), 0);
    }

    #[tokio::test]
    async fn control_for_a_peer_that_never_reads_is_bounded() {
        let hub = Hub::new(HubSettings::default(), 4096);
        let (_publisher, path) = publish(&hub);
        let (seat, _far_never_read) = seat(&hub, &path, Duration::from_secs(5));
        let tries = MAX_QUEUED_CONTROL * 4;
        let mut sent = 0;
        for _ in 0..tries {
            if seat.send(Bytes::from(vec![0u8; 32 * 1024])) {
                sent += 1;
            }
            tokio::task::yield_now().await;
        }
        assert!(sent < tries, "sends beyond the bound are refused");
    }

    #[tokio::test]
    async fn a_seat_ends_with_the_stream() {
        let hub = Hub::new(HubSettings::default(), 4096);
        let (publisher, path) = publish(&hub);
        let (mut seat, mut far) = seat(&hub, &path, Duration::from_secs(5));
        publisher.push(frame(FrameKind::Video, 0, true, 1));
        assert_eq!(read_tags(&mut far, 1).await, vec![1]);
        drop(publisher);
        let end = tokio::time::timeout(Duration::from_secs(5), seat.ended())
            .await
            .expect("the seat ends")
            .expect("the socket comes back");
        assert!(
            matches!(end.reason, SeatEndReason::Feed(ViewerEnd::StreamEnded)),
            "{}",
            end.reason
        );
    }
}
