//! One room connection of the bench: connects and joins, counts the chat it receives
//! (and, during the window, the latency of each one), answers socket.io pings, and,
//! for a sender, sends chat on a fixed schedule.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::super::histogram::Histogram;
use super::mix::{Kind, Mix};
use super::protocol::{Incoming, Protocol};
use super::stamped::Stamped;

/// Longest a client may take to connect and join.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Each connection's read buffer (tungstenite allocates it up front; 10,000 clients).
const READ_BUF: usize = 8 << 10;
/// Latency samples a connection keeps before adding them to the shared histogram.
const LOCAL_SAMPLES: usize = 256;
/// A send this much behind its schedule counts as late (the bench falling behind).
const LATE_SEND: Duration = Duration::from_millis(50);
/// Distinct failure messages kept; the rest are counted under "other".
const MAX_FAILURE_KINDS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Connecting = 0,
    Joined = 1,
    ConnectFailed = 2,
    Closed = 3,
}

/// One connection's counters, written by its task only, read by the orchestration.
#[derive(Debug)]
pub(super) struct ConnStats {
    /// Chat messages received.
    pub(super) delivered: AtomicU64,
    /// onair: chat messages sampled away for this connection (from `skipped` events).
    pub(super) skipped: AtomicU64,
    /// Chat messages sent.
    pub(super) sent: AtomicU64,
    /// Sends more than [`LATE_SEND`] behind schedule.
    pub(super) late_sends: AtomicU64,
    state: AtomicU8,
}

impl Default for ConnStats {
    fn default() -> Self {
        Self {
            delivered: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            late_sends: AtomicU64::new(0),
            state: AtomicU8::new(State::Connecting as u8),
        }
    }
}

impl ConnStats {
    pub(super) fn state(&self) -> State {
        match self.state.load(Ordering::Relaxed) {
            1 => State::Joined,
            2 => State::ConnectFailed,
            3 => State::Closed,
            _ => State::Connecting,
        }
    }

    fn set_state(&self, state: State) {
        self.state.store(state as u8, Ordering::Relaxed);
    }
}

/// What every connection shares.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) protocol: Protocol,
    /// What senders send, and the frame of each kind that carries no stamp.
    mix: Mix,
    like_frame: String,
    gift_frame: String,
    wave_frame: String,
    /// True during the measuring window: latency samples are taken only then.
    pub(super) measuring: AtomicBool,
    /// Send-to-receipt latency of every chat received in the window, µs.
    pub(super) latency: Mutex<Histogram>,
    /// Why connections failed or ended, and how many of each.
    pub(super) failures: Mutex<BTreeMap<String, usize>>,
    /// onair `error` events by code (a refused chat: rate limit, slow mode, …).
    pub(super) refusals: Mutex<BTreeMap<String, usize>>,
}

impl Shared {
    pub(super) fn new(protocol: Protocol, mix: Mix, wave_name: &str) -> Self {
        let wave =
            serde_json::json!({"type": "custom", "name": wave_name, "data": {"value": "hi"}});
        Self {
            protocol,
            mix,
            like_frame: r#"{"type":"like","count":1}"#.to_owned(),
            gift_frame: r#"{"type":"gift","gift":"rose","count":1}"#.to_owned(),
            wave_frame: wave.to_string(),
            measuring: AtomicBool::new(false),
            latency: Mutex::new(Histogram::default()),
            failures: Mutex::new(BTreeMap::new()),
            refusals: Mutex::new(BTreeMap::new()),
        }
    }

    fn count_failure(&self, failure: String) {
        count(&self.failures, failure);
    }

    fn count_refusal(&self, code: &str) {
        count(&self.refusals, code.to_owned());
    }

    fn add_samples(&self, samples: &mut Vec<u64>) {
        if let Ok(mut latency) = self.latency.lock() {
            latency.extend(samples.drain(..));
        }
    }
}

fn count(map: &Mutex<BTreeMap<String, usize>>, key: String) {
    let Ok(mut map) = map.lock() else {
        return;
    };
    let key = if map.contains_key(&key) || map.len() < MAX_FAILURE_KINDS {
        key
    } else {
        "other".to_owned()
    };
    *map.entry(key).or_default() += 1;
}

/// When a sender sends: from the start instant (once the orchestration gives it) plus
/// `offset`, every `period`, until `stop`.
#[derive(Debug)]
pub(super) struct SendPlan {
    pub(super) token: Option<String>,
    pub(super) start: watch::Receiver<Option<Instant>>,
    pub(super) offset: Duration,
    pub(super) period: Duration,
    /// Messages written together, every `burst` periods.
    pub(super) burst: u32,
    /// Where in the mix this sender starts: its index among the senders.
    pub(super) first: u64,
    pub(super) stop: CancellationToken,
}

/// Why a connection ended before it was cancelled.
#[derive(Debug, thiserror::Error)]
enum ClientError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("ws: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("connect timed out")]
    Timeout,
    #[error("closed by the server: {0}")]
    Closed(String),
    #[error("refused by the server: {0}")]
    Refused(String),
}

type Ws = WebSocketStream<Stamped>;

/// One connection, until cancelled.
pub(super) async fn client(
    addr: SocketAddr,
    base_url: String,
    stats: Arc<ConnStats>,
    shared: Arc<Shared>,
    plan: Option<SendPlan>,
    cancel: CancellationToken,
) {
    let mut conn = Conn {
        stats: stats.clone(),
        shared: shared.clone(),
        samples: Vec::new(),
    };
    let url = shared
        .protocol
        .url(&base_url, plan.as_ref().and_then(|p| p.token.as_deref()));
    let result = tokio::select! {
        _ = cancel.cancelled() => Ok(()),
        result = conn.run(addr, &url, plan) => result,
    };
    if let Err(error) = result {
        let state = if stats.state() == State::Joined {
            State::Closed
        } else {
            State::ConnectFailed
        };
        // Ends after the window (the bench closing everything) are not counted.
        if !cancel.is_cancelled() {
            shared.count_failure(error.to_string());
            stats.set_state(state);
        }
    }
    shared.add_samples(&mut conn.samples);
}

struct Conn {
    stats: Arc<ConnStats>,
    shared: Arc<Shared>,
    samples: Vec<u64>,
}

impl Conn {
    async fn run(
        &mut self,
        addr: SocketAddr,
        url: &str,
        plan: Option<SendPlan>,
    ) -> Result<(), ClientError> {
        let mut ws = timeout(CONNECT_TIMEOUT, self.join(addr, url))
            .await
            .map_err(|_| ClientError::Timeout)??;
        self.stats.set_state(State::Joined);
        match plan {
            Some(plan) => self.send_and_receive(&mut ws, plan).await,
            None => loop {
                let frame = ws.next().await;
                self.handle(&mut ws, frame).await?;
            },
        }
    }

    async fn join(&mut self, addr: SocketAddr, url: &str) -> Result<Ws, ClientError> {
        let socket = TcpStream::connect(addr).await?;
        socket.set_nodelay(true)?;
        let socket = Stamped::new(socket)?;
        let config = WebSocketConfig::default().read_buffer_size(READ_BUF);
        let (mut ws, _) =
            tokio_tungstenite::client_async_with_config(url, socket, Some(config)).await?;
        let protocol = self.shared.protocol;
        loop {
            let Some(frame) = ws.next().await else {
                return Err(ClientError::Closed("before joining".into()));
            };
            match frame? {
                Message::Text(text) => match protocol.classify(text.as_str()) {
                    Incoming::Joined => return Ok(ws),
                    Incoming::Open => {
                        if let Some(connect) = protocol.connect_frame() {
                            ws.send(Message::text(connect)).await?;
                        }
                    }
                    Incoming::Refused => return Err(ClientError::Refused(text.to_string())),
                    _ => {}
                },
                Message::Close(frame) => return Err(ClientError::Closed(close_reason(frame))),
                _ => {}
            }
        }
    }

    async fn send_and_receive(&mut self, ws: &mut Ws, plan: SendPlan) -> Result<(), ClientError> {
        let SendPlan {
            mut start,
            offset,
            period,
            burst,
            first,
            stop,
            ..
        } = plan;
        let start = async {
            let at = start
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|at| *at);
            match at {
                Some(at) => at,
                // The orchestration is gone: never start.
                None => std::future::pending().await,
            }
        };
        tokio::pin!(start);
        let mut started = false;
        let timer = sleep_until(Instant::now());
        tokio::pin!(timer);
        let mut next_send: Option<Instant> = None;
        // Senders start at different places of the mix, so together they follow it.
        let mut sent_n = first;
        loop {
            tokio::select! {
                at = &mut start, if !started => {
                    started = true;
                    next_send = Some(at + offset);
                    timer.as_mut().reset(at + offset);
                }
                () = &mut timer, if next_send.is_some() => {
                    if stop.is_cancelled() {
                        next_send = None;
                        continue;
                    }
                    let due = next_send.unwrap_or_else(Instant::now);
                    if Instant::now().saturating_duration_since(due) > LATE_SEND {
                        self.stats.late_sends.fetch_add(1, Ordering::Relaxed);
                    }
                    for _ in 0..burst {
                        let frame = match self.shared.mix.kind(sent_n) {
                            Kind::Chat => self.shared.protocol.chat_frame(unix_micros()),
                            Kind::Like => self.shared.like_frame.clone(),
                            Kind::Gift => self.shared.gift_frame.clone(),
                            Kind::Wave => self.shared.wave_frame.clone(),
                        };
                        sent_n += 1;
                        ws.feed(Message::text(frame)).await?;
                    }
                    ws.flush().await?;
                    self.stats.sent.fetch_add(u64::from(burst), Ordering::Relaxed);
                    let next = due + period * burst;
                    next_send = Some(next);
                    timer.as_mut().reset(next);
                }
                frame = ws.next() => self.handle(ws, frame).await?,
            }
        }
    }

    /// One received frame. Cheap for chat: no JSON parsing, no clock read.
    async fn handle(
        &mut self,
        ws: &mut Ws,
        frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> Result<(), ClientError> {
        let text = match frame {
            None => return Err(ClientError::Closed("connection ended".into())),
            Some(Err(error)) => return Err(error.into()),
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                return Err(ClientError::Closed(close_reason(frame)))
            }
            Some(Ok(_)) => return Ok(()),
        };
        let protocol = self.shared.protocol;
        match protocol.classify(text.as_str()) {
            Incoming::Chat(stamp) => {
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                if let Some(sent) = stamp {
                    if self.shared.measuring.load(Ordering::Relaxed) {
                        // Latency ends when the data reached the socket: the stamp of
                        // tungstenite's latest read. It reads only when its buffer holds
                        // no whole frame, so that read brought this message's last bytes
                        // (perhaps with more messages after them). Its stamp is the
                        // newest segment it took, so a message that came in an earlier
                        // segment of the same read is charged a little more, never less.
                        let arrived = ws.get_ref().last_arrival_micros();
                        self.samples.push(arrived.saturating_sub(sent));
                        if self.samples.len() >= LOCAL_SAMPLES {
                            self.shared.add_samples(&mut self.samples);
                        }
                    }
                }
            }
            Incoming::Skipped(n) => {
                self.stats.skipped.fetch_add(n, Ordering::Relaxed);
            }
            Incoming::Error(code) => self.shared.count_refusal(code),
            Incoming::Ping => {
                if let Some(pong) = protocol.pong_frame() {
                    ws.send(Message::text(pong)).await?;
                }
            }
            Incoming::Refused => return Err(ClientError::Refused(text.to_string())),
            Incoming::Joined | Incoming::Open | Incoming::Other => {}
        }
        Ok(())
    }
}

fn close_reason(frame: Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> String {
    match frame {
        Some(frame) => format!("{} {}", u16::from(frame.code), frame.reason),
        None => "no close code".to_owned(),
    }
}

/// Wall-clock microseconds: the send stamp, compared with the receipt time in the same
/// process (or another bench process on the same machine).
pub(super) fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
