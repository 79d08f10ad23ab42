//! What every viewer shares whatever its protocol: the play URL, its state and
//! counters, the receive path that takes latency samples, and the task that runs it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::bail;
use onair_relay::client::{ClientError, RtmpUrl};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::super::require_loopback;
use super::flv_viewer::play_http;
use super::frame_log::FrameLog;
use super::rtmp_viewer::play_rtmp;
use super::video_tag::is_keyframe;

/// Latency samples kept per viewer (the first ones of the window).
pub(super) const MAX_SAMPLES_PER_VIEWER: usize = 16_384;
/// Distinct error messages kept; the rest are counted under "other".
pub(super) const MAX_ERROR_KINDS: usize = 32;

#[derive(Debug)]
pub(super) struct Shared {
    /// True during the measuring window: latency samples are taken only then.
    pub(super) measuring: AtomicBool,
    pub(super) log: Option<Arc<FrameLog>>,
    pub(super) errors: Mutex<BTreeMap<String, usize>>,
}

impl Shared {
    fn count_error(&self, error: String) {
        let Ok(mut errors) = self.errors.lock() else {
            return;
        };
        let key = if errors.contains_key(&error) || errors.len() < MAX_ERROR_KINDS {
            error
        } else {
            "other".to_owned()
        };
        *errors.entry(key).or_default() += 1;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Connecting = 0,
    Playing = 1,
    ConnectFailed = 2,
    Disconnected = 3,
}

#[derive(Debug)]
pub(super) struct ViewerStats {
    /// Media payload bytes received (audio, video, data), as on the FLV tag bodies.
    pub(super) bytes: AtomicU64,
    /// Microseconds from connect start to the first video keyframe; `u64::MAX` = none yet.
    pub(super) first_keyframe_us: AtomicU64,
    pub(super) state: AtomicU8,
}

impl Default for ViewerStats {
    fn default() -> Self {
        Self {
            bytes: AtomicU64::new(0),
            first_keyframe_us: AtomicU64::new(u64::MAX),
            state: AtomicU8::new(State::Connecting as u8),
        }
    }
}

impl ViewerStats {
    pub(super) fn state(&self) -> State {
        match self.state.load(Ordering::Relaxed) {
            1 => State::Playing,
            2 => State::ConnectFailed,
            3 => State::Disconnected,
            _ => State::Connecting,
        }
    }

    pub(super) fn set_state(&self, state: State) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    pub(super) fn first_keyframe(&self) -> Option<Duration> {
        match self.first_keyframe_us.load(Ordering::Relaxed) {
            u64::MAX => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// Warm (has a keyframe) or out of the game.
    pub(super) fn settled(&self) -> bool {
        self.first_keyframe().is_some()
            || matches!(self.state(), State::ConnectFailed | State::Disconnected)
    }
}

/// What a viewer plays, parsed once.
#[derive(Debug, Clone)]
pub(super) enum PlayUrl {
    Rtmp(RtmpUrl),
    Http { addr: SocketAddr, path: String },
}

impl PlayUrl {
    pub(super) fn parse(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("rtmp://") {
            let url = RtmpUrl::parse(url)?;
            require_loopback(&url.host_port)?;
            return Ok(Self::Rtmp(url));
        }
        let Some(rest) = url.strip_prefix("http://") else {
            bail!("--play must start with rtmp:// or http://");
        };
        let (host, path) = match rest.split_once('/') {
            Some((host, path)) => (host, format!("/{path}")),
            None => (rest, "/".to_owned()),
        };
        let host_port = if host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            host.to_owned()
        } else {
            format!("{host}:80")
        };
        let addr = require_loopback(&host_port)?;
        Ok(Self::Http { addr, path })
    }

    pub(super) fn protocol(&self) -> &'static str {
        match self {
            Self::Rtmp(_) => "rtmp",
            Self::Http { .. } => "http-flv",
        }
    }
}

/// Why a viewer stopped before it was cancelled.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ViewerError {
    #[error("rtmp: {0}")]
    Rtmp(#[from] ClientError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("http: {0}")]
    Http(String),
    #[error("flv: {0}")]
    Flv(#[from] onair_flv::Error),
    #[error("connect timed out")]
    Timeout,
    #[error("stream ended")]
    Ended,
}

/// Per-viewer receive state: counts bytes, spots the first keyframe, takes latency samples.
pub(super) struct Receiver {
    pub(super) connect_start: Instant,
    pub(super) stats: Arc<ViewerStats>,
    pub(super) shared: Arc<Shared>,
    pub(super) samples: Vec<u32>,
    /// When the data being parsed reached the socket (kernel stamp), if known.
    pub(super) arrived: Option<Instant>,
}

impl Receiver {
    pub(super) fn on_frame(&mut self, video: bool, payload: &[u8]) {
        let now = Instant::now();
        self.stats
            .bytes
            .fetch_add(payload.len() as u64, Ordering::Relaxed);
        if !video {
            return;
        }
        if is_keyframe(payload) && self.stats.first_keyframe().is_none() {
            let us = now
                .saturating_duration_since(self.connect_start)
                .as_micros();
            self.stats
                .first_keyframe_us
                .store(u64::try_from(us).unwrap_or(u64::MAX - 1), Ordering::Relaxed);
        }
        if self.samples.len() >= MAX_SAMPLES_PER_VIEWER
            || !self.shared.measuring.load(Ordering::Relaxed)
        {
            return;
        }
        if let Some(written) = self.shared.log.as_ref().and_then(|l| l.written(payload)) {
            let received = self.arrived.unwrap_or(now);
            let us = received.saturating_duration_since(written).as_micros();
            self.samples.push(u32::try_from(us).unwrap_or(u32::MAX));
        }
    }
}

/// One viewer: connects, plays until cancelled, returns its latency samples (µs).
pub(super) async fn viewer(
    url: PlayUrl,
    stats: Arc<ViewerStats>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) -> Vec<u32> {
    let mut rx = Receiver {
        connect_start: Instant::now(),
        stats: stats.clone(),
        shared: shared.clone(),
        samples: Vec::new(),
        arrived: None,
    };
    let result = tokio::select! {
        _ = cancel.cancelled() => Ok(()),
        result = play(&url, &mut rx) => result,
    };
    if let Err(error) = result {
        let state = if stats.state() == State::Playing {
            State::Disconnected
        } else {
            State::ConnectFailed
        };
        // Failures after the window (the publisher going away) are not counted.
        if !cancel.is_cancelled() {
            shared.count_error(error.to_string());
            stats.set_state(state);
        }
    }
    rx.samples
}

pub(super) async fn play(url: &PlayUrl, rx: &mut Receiver) -> Result<(), ViewerError> {
    match url {
        PlayUrl::Rtmp(url) => play_rtmp(url, rx).await,
        PlayUrl::Http { addr, path } => play_http(*addr, path, rx).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls() {
        assert!(PlayUrl::parse("rtmp://127.0.0.1:1935/live/x").is_ok());
        assert!(PlayUrl::parse("http://127.0.0.1:8080/live/x.flv").is_ok());
        assert!(PlayUrl::parse("http://10.0.0.1:8080/live/x.flv").is_err());
        assert!(PlayUrl::parse("rtmp://example.com/live/x").is_err());
        assert!(PlayUrl::parse("ftp://127.0.0.1/x").is_err());
    }
}
