//! The groups of one source and the task that runs each.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

use super::seat::{BoxedWriter, Inbox, Seat, SeatHandle};
use super::Feed;

/// Connections one group serves at most.
pub const GROUP_SIZE: usize = 64;

/// How often a group with a blocked socket looks at its write timeout.
const TIMEOUT_TICK: Duration = Duration::from_millis(500);

/// The delivery groups of one source (a stream, a room).
pub struct Fanout<F: Feed> {
    groups: Mutex<Vec<Arc<Group<F>>>>,
}

impl<F: Feed> Default for Fanout<F> {
    fn default() -> Self {
        Self {
            groups: Mutex::new(Vec::new()),
        }
    }
}

impl<F: Feed> std::fmt::Debug for Fanout<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout")
            .field("groups", &self.lock().len())
            .finish()
    }
}

impl<F: Feed> Fanout<F> {
    /// Wakes every group: the source has something new.
    pub fn wake(&self) {
        for group in self.lock().iter() {
            group.wake();
        }
    }

    /// Seats `feed` in a group with room, or a new one: the group writes `initial`,
    /// then what the feed has, to `writer` until the seat ends. A write that has taken
    /// nothing for `write_timeout` ends it.
    pub fn join(
        &self,
        feed: F,
        writer: BoxedWriter,
        initial: VecDeque<Bytes>,
        write_timeout: Duration,
    ) -> SeatHandle<F> {
        let (done, ended) = oneshot::channel();
        let mut groups = self.lock();
        groups.retain(|g| !g.lock().closed);
        let group = match groups.iter().find(|g| g.reserve()) {
            Some(group) => Arc::clone(group),
            None => {
                let group = Arc::new(Group::default());
                group.reserve();
                groups.push(Arc::clone(&group));
                // Unconstrained: a round over every seat is one unit of work, and
                // tokio's budget would cut it short and reschedule it mid-round.
                tokio::spawn(tokio::task::unconstrained(run(Arc::clone(&group))));
                group
            }
        };
        drop(groups);
        let inbox = Arc::new(Inbox::new(Arc::clone(&group)));
        let seat = Seat::new(
            feed,
            writer,
            initial,
            write_timeout,
            Arc::clone(&inbox),
            done,
        );
        group.add(seat);
        SeatHandle::new(inbox, ended)
    }

    /// Groups still running.
    pub fn open_groups(&self) -> usize {
        self.lock().iter().filter(|g| !g.lock().closed).count()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Arc<Group<F>>>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One delivery group: its task's waker and the seats on their way in.
pub(super) struct Group<F: Feed> {
    waker: AtomicWaker,
    state: Mutex<GroupState<F>>,
    /// Set when a connection queued a control message or asked to stop.
    control: AtomicBool,
}

impl<F: Feed> Default for Group<F> {
    fn default() -> Self {
        Self {
            waker: AtomicWaker::new(),
            control: AtomicBool::new(false),
            state: Mutex::new(GroupState {
                joining: Vec::new(),
                members: 0,
                closed: false,
            }),
        }
    }
}

struct GroupState<F: Feed> {
    joining: Vec<Seat<F>>,
    /// Seats held or joining.
    members: usize,
    /// Set as the task ends: no seat may join any more.
    closed: bool,
}

impl<F: Feed> Group<F> {
    pub(super) fn wake(&self) {
        self.waker.wake();
    }

    /// Wakes the group for a seat's connection (a control message, a stop).
    pub(super) fn wake_for_control(&self) {
        self.control.store(true, Ordering::SeqCst);
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
    fn add(&self, seat: Seat<F>) {
        self.lock().joining.push(seat);
        self.wake();
    }

    fn lock(&self) -> MutexGuard<'_, GroupState<F>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the group's task keeps between rounds.
struct Task<F: Feed> {
    seats: Vec<Seat<F>>,
    scratch: F::Scratch,
    timer: Option<Pin<Box<Sleep>>>,
    /// When a group with a blocked socket next looks at write timeouts.
    blocked_tick: Option<Instant>,
    /// Until when no seat's feed will add anything ([`Feed::quiet_until`]), as of
    /// the last round; `None` if one may at any time, or a socket is blocked.
    quiet_until: Option<Instant>,
}

/// The group's task: services its seats whenever the source has something, a blocked
/// socket takes bytes again, a connection has something to say, or a timer is due.
async fn run<F: Feed>(group: Arc<Group<F>>) {
    let mut task = Task {
        seats: Vec::with_capacity(GROUP_SIZE),
        scratch: F::Scratch::default(),
        timer: None,
        blocked_tick: None,
        quiet_until: None,
    };
    poll_fn(|cx| poll_group(cx, &group, &mut task)).await;
}

fn poll_group<F: Feed>(cx: &mut Context<'_>, group: &Group<F>, task: &mut Task<F>) -> Poll<()> {
    // Registered before looking at anything, so a wake-up after the look is not lost.
    group.waker.register(cx.waker());
    let joined = {
        let mut state = group.lock();
        let joined = !state.joining.is_empty();
        task.seats.append(&mut state.joining);
        joined
    };
    let control = group.control.swap(false, Ordering::SeqCst);
    let now = Instant::now();
    if !joined && !control && task.quiet_until.is_some_and(|until| now < until) {
        // The source woke the group, but every seat waits out its interval: the
        // timer set for the first of them wakes it again.
        if let Some(timer) = &mut task.timer {
            if timer.as_mut().poll(cx).is_ready() {
                cx.waker().wake_by_ref();
            }
        }
        return Poll::Pending;
    }
    // Narrowed by every seat; `None` as soon as one may add something at any time.
    let mut quiet_until = Some(now + Duration::from_secs(3600));
    let mut added = 0;
    let mut ended = 0;
    let mut blocked = false;
    let mut next: Option<Instant> = None;
    let mut i = 0;
    while i < task.seats.len() {
        let seat = &mut task.seats[i];
        match seat.service(cx, &mut task.scratch, now, &mut added) {
            Some(reason) => {
                task.seats.swap_remove(i).end(reason);
                ended += 1;
            }
            None => {
                blocked |= seat.is_blocked();
                next = earliest(next, seat.deadline());
                quiet_until = quiet_until.and_then(|q| seat.quiet_until().map(|s| q.min(s)));
                i += 1;
            }
        }
    }
    if added > 0 {
        if let Some(seat) = task.seats.first() {
            seat.count(added);
        }
    }
    if ended > 0 {
        let mut state = group.lock();
        state.members -= ended;
        if state.members == 0 {
            state.closed = true;
            return Poll::Ready(());
        }
    }
    task.quiet_until = quiet_until.filter(|_| !blocked);
    if blocked {
        if task.blocked_tick.is_none_or(|at| at <= now) {
            task.blocked_tick = Some(now + TIMEOUT_TICK);
        }
    } else {
        task.blocked_tick = None;
    }
    match earliest(next, task.blocked_tick) {
        None => task.timer = None,
        Some(at) => {
            // Never at or before this round: that would spin.
            let at = at.max(now + Duration::from_millis(1));
            let timer = task
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
            if timer.deadline() != at {
                timer.as_mut().reset(at);
            }
            if timer.as_mut().poll(cx).is_ready() {
                cx.waker().wake_by_ref();
            }
        }
    }
    Poll::Pending
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
