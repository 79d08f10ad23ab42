//! Live rates of a stream (bitrate in and out, video frames per second), measured
//! over whole windows on the publisher's push path so that reading them costs nothing.

use std::time::{Duration, Instant};

/// Length of one measuring window.
const WINDOW: Duration = Duration::from_secs(2);

/// Rates over the last completed window.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Rates {
    pub bitrate_in_kbps: f64,
    pub bitrate_out_kbps: f64,
    pub video_fps: f64,
}

#[derive(Debug)]
pub(super) struct RateWindow {
    started: Instant,
    bytes_in: u64,
    video_frames: u64,
    /// The stream's bytes-out total when this window started.
    bytes_out_at_start: u64,
    last: Rates,
    last_completed: Instant,
}

impl RateWindow {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            started: now,
            bytes_in: 0,
            video_frames: 0,
            bytes_out_at_start: 0,
            last: Rates::default(),
            last_completed: now,
        }
    }

    /// Counts one frame in; `bytes_out_total` is the stream's running total of bytes
    /// written to viewers, sampled when a window closes.
    pub(super) fn record(&mut self, now: Instant, bytes: usize, video: bool, bytes_out_total: u64) {
        let elapsed = now.saturating_duration_since(self.started);
        if elapsed >= WINDOW {
            let seconds = elapsed.as_secs_f64();
            let out = bytes_out_total.saturating_sub(self.bytes_out_at_start);
            self.last = Rates {
                bitrate_in_kbps: self.bytes_in as f64 * 8.0 / 1000.0 / seconds,
                bitrate_out_kbps: out as f64 * 8.0 / 1000.0 / seconds,
                video_fps: self.video_frames as f64 / seconds,
            };
            self.last_completed = now;
            self.started = now;
            self.bytes_in = 0;
            self.video_frames = 0;
            self.bytes_out_at_start = bytes_out_total;
        }
        self.bytes_in += bytes as u64;
        self.video_frames += u64::from(video);
    }

    /// The last window's rates; zero when the publisher has sent nothing for two windows.
    pub(super) fn rates(&self, now: Instant) -> Rates {
        if now.saturating_duration_since(self.last_completed) > WINDOW * 2 {
            return Rates::default();
        }
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_steady_stream_over_whole_windows() {
        let start = Instant::now();
        let mut window = RateWindow::new(start);
        let mut out_total = 0;
        // 30 video frames of 1000 bytes a second, each sent to two viewers.
        for i in 0..=60 {
            let at = start + Duration::from_millis(i * 1000 / 30);
            window.record(at, 1000, true, out_total);
            out_total += 2000;
        }
        let rates = window.rates(start + WINDOW);
        assert!((rates.video_fps - 30.0).abs() < 0.6, "{rates:?}");
        assert!((rates.bitrate_in_kbps - 240.0).abs() < 5.0, "{rates:?}");
        assert!((rates.bitrate_out_kbps - 480.0).abs() < 10.0, "{rates:?}");
        assert_eq!(window.rates(start + WINDOW * 5), Rates::default());
    }
}
