//! The publisher: an FLV file sent in a loop at real-time pace, each video frame's
//! write time recorded in the frame log.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use onair_media::FrameKind;
use onair_relay::client::{paced, read_flv_tags, refusal, ClientError, RtmpUrl, Tag};
use onair_rtmp::MediaKind;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_util::sync::CancellationToken;

use super::super::report::PublishReport;
use super::super::require_loopback;
use super::frame_log::FrameLog;
use super::rtmp_conn::RtmpConn;
use super::video_tag::{is_keyframe, is_sequence_header};
use super::{CONNECT_TIMEOUT, MAX_TAG_SIZE};

/// Read buffer of the publisher (it only reads acknowledgements and status).
const PUBLISH_READ_BUF: usize = 4 << 10;

/// A publisher running in its own task.
pub(crate) struct Publisher {
    task: JoinHandle<Result<(), ClientError>>,
    stats: Arc<PublishStats>,
    /// The file's audio+video rate, kbit/s.
    pub(crate) source_kbps: f64,
}

/// Connects to `url` (loopback only), publishes, and starts sending `file` in a loop
/// until `cancel`.
pub(crate) async fn start_publisher(
    file: &Path,
    url: &str,
    log: Arc<FrameLog>,
    cancel: CancellationToken,
) -> anyhow::Result<Publisher> {
    let tags = read_tags(file)?;
    let source_kbps = file_kbps(&tags);
    let url = RtmpUrl::parse(url)?;
    require_loopback(&url.host_port)?;
    let mut client = timeout(CONNECT_TIMEOUT, RtmpConn::connect(&url, PUBLISH_READ_BUF))
        .await
        .context("connecting the publisher: timed out")?
        .with_context(|| format!("connecting the publisher to {}", url.tc_url()))?;
    timeout(CONNECT_TIMEOUT, client.publish(&url.name))
        .await
        .context("publishing: timed out")?
        .context("publishing")?;
    let stats = Arc::new(PublishStats::default());
    let task = tokio::spawn(publish_loop(client, tags, log, stats.clone(), cancel));
    Ok(Publisher {
        task,
        stats,
        source_kbps,
    })
}

impl Publisher {
    /// Waits (5 s at most) for the task, cancelled by the caller, and reports.
    pub(crate) async fn finish(self) -> PublishReport {
        let error = match timeout(Duration::from_secs(5), self.task).await {
            Ok(Ok(Ok(()))) => None,
            Ok(Ok(Err(e))) => Some(e.to_string()),
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("did not stop in time".to_owned()),
        };
        PublishReport {
            video_frames: self.stats.video_frames.load(Ordering::Relaxed),
            late_writes: self.stats.late_writes.load(Ordering::Relaxed),
            max_lag_ms: self.stats.max_lag_us.load(Ordering::Relaxed) as f64 / 1000.0,
            error,
        }
    }
}

/// A publisher write this much behind its schedule counts as late.
pub(super) const LATE_WRITE: Duration = Duration::from_millis(50);

#[derive(Debug, Default)]
pub(crate) struct PublishStats {
    pub(super) video_frames: AtomicU64,
    pub(super) late_writes: AtomicU64,
    pub(super) max_lag_us: AtomicU64,
}

/// Publishes `tags` in a loop at real-time pace until cancelled, recording when each
/// video frame was written.
pub(crate) async fn publish_loop(
    mut client: RtmpConn,
    tags: Vec<Tag>,
    log: Arc<FrameLog>,
    stats: Arc<PublishStats>,
    cancel: CancellationToken,
) -> Result<(), ClientError> {
    let start = Instant::now();
    for (tag, offset) in paced(&tags, true) {
        let due = start + Duration::from_millis(offset);
        while Instant::now() < due {
            tokio::select! {
                _ = cancel.cancelled() => {
                    let _ = timeout(Duration::from_secs(1), client.close()).await;
                    return Ok(());
                }
                _ = sleep_until(due) => {}
                read = client.read_events() => read?,
            }
            client.flush().await?;
            while let Some(event) = client.poll_event() {
                if let Some(refused) = refusal(event) {
                    return Err(refused);
                }
            }
        }
        let lag = Instant::now().saturating_duration_since(due);
        if lag > LATE_WRITE {
            stats.late_writes.fetch_add(1, Ordering::Relaxed);
        }
        let lag_us = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX);
        stats.max_lag_us.fetch_max(lag_us, Ordering::Relaxed);
        let timestamp = (offset & 0xffff_ffff) as u32;
        match tag.kind {
            FrameKind::Script => client.send_metadata(&tag.payload),
            FrameKind::Audio => client.send_media(MediaKind::Audio, timestamp, &tag.payload),
            FrameKind::Video => {
                if !is_sequence_header(&tag.payload) {
                    let keyframe = is_keyframe(&tag.payload);
                    log.record(&tag.payload, offset, keyframe, Instant::now());
                    stats.video_frames.fetch_add(1, Ordering::Relaxed);
                }
                client.send_media(MediaKind::Video, timestamp, &tag.payload);
            }
        }
        client.flush().await?;
    }
    Ok(())
}

pub(crate) fn read_tags(file: &Path) -> anyhow::Result<Vec<Tag>> {
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let tags = read_flv_tags(&data, MAX_TAG_SIZE)
        .with_context(|| format!("parsing {}", file.display()))?;
    if tags.is_empty() {
        bail!("{} holds no FLV tags", file.display());
    }
    Ok(tags)
}

/// The file's audio+video payload rate in kbit/s.
pub(super) fn file_kbps(tags: &[Tag]) -> f64 {
    let bytes: usize = tags
        .iter()
        .filter(|t| t.kind != FrameKind::Script)
        .map(|t| t.payload.len())
        .sum();
    let first = tags.first().map_or(0, |t| t.timestamp);
    let last = tags.last().map_or(0, |t| t.timestamp);
    let secs = f64::from(last.saturating_sub(first)).max(1.0) / 1000.0;
    bytes as f64 * 8.0 / secs / 1000.0
}
