//! Delivery groups: a few tasks per stream that write frames straight to the sockets
//! of its RTMP and HTTP-FLV viewers.
//!
//! A task per viewer, woken for every frame, costs a wake-up, a poll through the
//! connection's `select!` and a ring read for each frame and viewer, more than the
//! write itself. A group holds up to [`GROUP_SIZE`] viewers' sockets ([`Seat`]s): the
//! ring wakes the group once per frame and the group writes to each of its sockets in
//! turn, without waiting for any. A socket that takes nothing registers the group's
//! waker and keeps its unwritten bytes; it gets no new frames until those are out, so
//! a slow viewer falls behind in the ring (and skips to a keyframe) exactly as it did
//! with a task of its own, and the others never wait for it.
//!
//! Groups are tasks of their own, so a stream's viewers spread over the runtime's
//! worker threads. A group ends when its last seat does.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

use super::frame::HubFrame;
use super::seat::{BoxedWriter, Inbox, Seat, SeatHandle, WireFormat};
use super::viewer::Viewer;

/// Viewers one group serves at most.
const GROUP_SIZE: usize = 64;

/// How often a group with a blocked socket looks at its write timeout.
const TIMEOUT_TICK: Duration = Duration::from_millis(500);

/// The delivery groups of one stream.
#[derive(Debug, Default)]
pub(super) struct Fanout {
    groups: Mutex<Vec<Arc<Group>>>,
}

impl Fanout {
    /// Wakes every group: there are frames to send.
    pub fn wake(&self) {
        for group in self.lock().iter() {
            group.wake();
        }
    }

    /// Seats `viewer` in a group with room, or a new one.
    pub fn join(
        &self,
        viewer: Viewer,
        writer: BoxedWriter,
        initial: VecDeque<Bytes>,
        format: WireFormat,
        write_timeout: Duration,
    ) -> SeatHandle {
        let (done, ended) = oneshot::channel();
        let mut groups = self.lock();
        let group = match groups.iter().find(|g| g.reserve()) {
            Some(group) => Arc::clone(group),
            None => {
                let group = Arc::new(Group::default());
                group.reserve();
                groups.push(Arc::clone(&group));
                let stream = Arc::clone(viewer.stream());
                tokio::spawn(tokio::task::unconstrained(run(Arc::clone(&group), stream)));
                group
            }
        };
        let inbox = Arc::new(Inbox::new(Arc::clone(&group)));
        let seat = Seat::new(
            viewer,
            writer,
            initial,
            format,
            write_timeout,
            Arc::clone(&inbox),
            done,
        );
        group.add(seat);
        SeatHandle::new(inbox, ended)
    }

    fn remove(&self, group: &Arc<Group>) {
        self.lock().retain(|g| !Arc::ptr_eq(g, group));
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Arc<Group>>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One delivery group: its task's waker and the seats on their way in.
#[derive(Default)]
pub(super) struct Group {
    waker: AtomicWaker,
    state: Mutex<GroupState>,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct GroupState {
    joining: Vec<Seat>,
    /// Seats held or joining.
    members: usize,
    /// Set as the task ends: no seat may join any more.
    closed: bool,
}

impl Group {
    pub(super) fn wake(&self) {
        self.waker.wake();
    }

    /// Takes a place for a seat, if the group has one; the group does not end while
    /// a place is taken.
    fn reserve(&self) -> bool {
        let mut state = self.lock();
        let room = !state.closed && state.members < GROUP_SIZE;
        if room {
            state.members += 1;
        }
        room
    }

    /// Seats `seat` in the place [`reserve`](Self::reserve) took.
    fn add(&self, seat: Seat) {
        let mut state = self.lock();
        state.joining.push(seat);
        drop(state);
        self.wake();
    }

    fn lock(&self) -> MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The group's task: services its seats whenever frames arrive, a blocked socket
/// takes bytes again, a connection has something to say, or a write may time out.
async fn run(group: Arc<Group>, stream: Arc<super::Stream>) {
    let mut seats: Vec<Seat> = Vec::with_capacity(GROUP_SIZE);
    let mut batch: Vec<Arc<HubFrame>> = Vec::new();
    let mut tick: Option<Pin<Box<Sleep>>> = None;
    poll_fn(|cx| poll_group(cx, &group, &stream, &mut seats, &mut batch, &mut tick)).await;
    stream.ring().fanout().remove(&group);
}

fn poll_group(
    cx: &mut Context<'_>,
    group: &Group,
    stream: &super::Stream,
    seats: &mut Vec<Seat>,
    batch: &mut Vec<Arc<HubFrame>>,
    tick: &mut Option<Pin<Box<Sleep>>>,
) -> Poll<()> {
    // Registered before looking at anything, so a wake-up after the look is not lost.
    group.waker.register(cx.waker());
    seats.append(&mut group.lock().joining);
    let now = std::time::Instant::now();
    let mut bytes_out = 0;
    let mut ended = 0;
    let mut blocked = false;
    let mut i = 0;
    while i < seats.len() {
        match seats[i].service(cx, batch, now, &mut bytes_out) {
            Some(reason) => {
                seats.swap_remove(i).end(reason);
                ended += 1;
            }
            None => {
                blocked |= seats[i].is_blocked();
                i += 1;
            }
        }
    }
    // Counted once per wake-up, not once per viewer: the counters are shared.
    if bytes_out > 0 {
        stream.add_bytes_out(bytes_out);
    }
    if ended > 0 {
        let mut state = group.lock();
        state.members -= ended;
        if state.members == 0 {
            state.closed = true;
            return Poll::Ready(());
        }
    }
    if !blocked {
        *tick = None;
        return Poll::Pending;
    }
    let sleep = tick.get_or_insert_with(|| Box::pin(tokio::time::sleep(TIMEOUT_TICK)));
    if sleep.as_mut().poll(cx).is_ready() {
        sleep.as_mut().reset(Instant::now() + TIMEOUT_TICK);
        cx.waker().wake_by_ref();
    }
    Poll::Pending
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use onair_media::{FrameKind, MediaFrame, StreamPath};
    use tokio::io::{AsyncReadExt, DuplexStream};

    use crate::config::HubSettings;
    use crate::hub::{Hub, Protocol, Publisher, SeatEndReason, SeatHandle, ViewerEnd, WireFormat};

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
        let mut seats: Vec<_> = (0..super::GROUP_SIZE + 3)
            .map(|_| seat(&hub, &path, Duration::from_secs(5)))
            .collect();
        assert_eq!(hub.stream(&path).unwrap().ring().fanout().lock().len(), 2);
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
        assert!(hub.stream(&path).unwrap().ring().fanout().lock().is_empty());
    }

    #[tokio::test]
    async fn control_for_a_peer_that_never_reads_is_bounded() {
        let hub = Hub::new(HubSettings::default(), 4096);
        let (_publisher, path) = publish(&hub);
        let (seat, _far_never_read) = seat(&hub, &path, Duration::from_secs(5));
        let tries = super::super::seat::MAX_QUEUED_CONTROL * 4;
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
            matches!(end.reason, SeatEndReason::Viewer(ViewerEnd::StreamEnded)),
            "{}",
            end.reason
        );
    }
}
