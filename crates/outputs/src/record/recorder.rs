//! One live stream being recorded: a hub tap turned into a sequence of files.
//!
//! Where files begin and end, and each frame's timestamp in its file, is decided by
//! `onair_policy::RecordCuts` (tested in virtual time there): a file begins at a video
//! keyframe (any audio frame in a stream without video), with the latest metadata and
//! codec headers first, so each file plays on its own; it is cut at the first keyframe
//! past `record.max_duration_s` / `record.max_bytes`, after a codec header changes, and
//! after the tap had to skip frames. This task does what it says: creates, writes,
//! flushes and closes files, and tells the machine how that went.
//!
//! It never slows the stream: it is a reader of the hub's ring like any viewer, so a
//! slow disk makes it skip to a keyframe (and start a new file), never the publisher
//! wait. A file that cannot be created or written is logged once, counted, and closed;
//! the next file is tried at the first keyframe `record.retry_interval_ms` later.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use onair_media::{MediaFrame, StreamPath};
use onair_policy::{CutRules, RecordAction, RecordCuts};
use tokio_util::sync::CancellationToken;

use super::file::RecordingFile;
use super::format::{writer_for, RecordingFormat};
use onair_relay::hub::{Viewer, ViewerEnd};

use super::stats::{RecordFailure, RecordingDone};
use super::Recordings;

/// Frames taken from the ring at once.
const BATCH_FRAMES: usize = 64;

/// Records `viewer`'s stream until it ends or `shutdown` fires, then closes the file.
pub(super) async fn record(
    recordings: Arc<Recordings>,
    mut viewer: Viewer,
    shutdown: CancellationToken,
) {
    let path = viewer.stream().path().clone();
    let flush_interval = Duration::from_millis(recordings.settings.flush_interval_ms);
    let mut recorder = Recorder::new(Arc::clone(&recordings), path.clone());
    tracing::info!(stream = %path, "recording");
    let mut batch = Vec::with_capacity(BATCH_FRAMES);
    let mut tick = tokio::time::interval(flush_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut skipped = viewer.skipped_frames();
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            end = viewer.next_batch(&mut batch, BATCH_FRAMES) => match end {
                Ok(()) => {
                    if viewer.skipped_frames() != skipped {
                        skipped = viewer.skipped_frames();
                        recorder.fell_behind().await;
                    }
                    for frame in batch.drain(..) {
                        recorder.handle(&frame.frame).await;
                    }
                }
                Err(ViewerEnd::StreamEnded) => break,
                Err(ViewerEnd::TooSlow { .. }) => {
                    recorder.fell_behind().await;
                    // A fresh tap of the same stream, starting from its cached GOP.
                    match recordings.hub.tap(&path) {
                        Some(next) if Arc::ptr_eq(next.stream(), viewer.stream()) => {
                            viewer = next;
                            skipped = viewer.skipped_frames();
                        }
                        _ => break,
                    }
                }
            },
            _ = tick.tick() => recorder.flush_if_due(flush_interval).await,
        }
    }
    recorder.close_file().await;
    tracing::info!(stream = %path, "recording stopped");
}

struct OpenFile {
    file: RecordingFile,
    writer: Box<dyn RecordingFormat>,
    /// Greatest timestamp written, from the file's 0.
    media_ms: u32,
    started: SystemTime,
    /// Whether writing has failed: the file is closed without its ending, and the
    /// error is logged and counted once.
    failed: bool,
}

struct Recorder {
    recordings: Arc<Recordings>,
    path: StreamPath,
    cuts: RecordCuts<Instant>,
    open: Option<OpenFile>,
    out: Vec<u8>,
}

impl Recorder {
    fn new(recordings: Arc<Recordings>, path: StreamPath) -> Self {
        let settings = &recordings.settings;
        let cuts = RecordCuts::new(CutRules {
            max_duration_s: settings.max_duration_s,
            max_bytes: settings.max_bytes,
            retry_interval: Duration::from_millis(settings.retry_interval_ms),
        });
        Self {
            recordings,
            path,
            cuts,
            open: None,
            out: Vec::new(),
        }
    }

    async fn handle(&mut self, frame: &MediaFrame) {
        let bytes = self.open.as_ref().map_or(0, |open| open.file.bytes());
        self.cuts.handle_frame(frame, bytes, Instant::now());
        self.drive(Some(frame)).await;
    }

    /// Does what the cuts ask for, until they ask for nothing more; `frame` is the one
    /// last handed to them, if any.
    async fn drive(&mut self, frame: Option<&MediaFrame>) {
        while let Some(action) = self.cuts.poll_action() {
            match action {
                RecordAction::Close => self.close_file().await,
                RecordAction::Open => self.open_file().await,
                RecordAction::Flush => self.flush().await,
                RecordAction::Write { timestamp } => {
                    if let Some(frame) = frame {
                        self.write_frame(frame, timestamp).await;
                    }
                }
            }
        }
    }

    /// Frames were skipped: the file ends here, the next keyframe begins another.
    async fn fell_behind(&mut self) {
        self.recordings.stats.failed(RecordFailure::Behind);
        tracing::warn!(
            stream = %self.path,
            file = self.open.as_ref().map(|o| tracing::field::display(o.file.path().display())),
            "recorder fell behind the stream (is the disk slow?) and skipped frames; \
             a new file starts at the next keyframe"
        );
        self.cuts.handle_fell_behind();
        self.drive(None).await;
    }

    /// Creates a file and writes what it starts with.
    async fn open_file(&mut self) {
        let settings = &self.recordings.settings;
        let format = settings.format;
        let dir = self.recordings.dir.clone();
        let started = SystemTime::now();
        let file = match RecordingFile::create(&dir, &self.path, format, started).await {
            Ok(file) => file,
            Err(error) => {
                tracing::warn!(
                    stream = %self.path,
                    dir = %dir.display(),
                    %error,
                    retry_in_ms = settings.retry_interval_ms,
                    "cannot create a recording file; the stream goes on unrecorded"
                );
                self.failed(RecordFailure::Create);
                return;
            }
        };
        self.cuts.handle_opened();
        let mut writer = writer_for(format);
        writer.begin(&self.cuts.headers(), &mut self.out);
        self.recordings.started(file.name().clone());
        tracing::info!(stream = %self.path, file = %file.path().display(), "recording file started");
        self.open = Some(OpenFile {
            file,
            writer,
            media_ms: 0,
            started,
            failed: false,
        });
        self.write_out().await;
    }

    async fn write_frame(&mut self, frame: &MediaFrame, timestamp: u32) {
        let Some(open) = &mut self.open else {
            return;
        };
        open.media_ms = open.media_ms.max(timestamp);
        open.writer.frame(
            &MediaFrame {
                timestamp,
                ..frame.clone()
            },
            &mut self.out,
        );
        self.write_out().await;
    }

    /// Writes what the writer produced.
    async fn write_out(&mut self) {
        let Some(open) = &mut self.open else {
            self.out.clear();
            return;
        };
        if self.out.is_empty() || open.failed {
            self.out.clear();
            return;
        }
        let written = open.file.write(&self.out).await;
        let len = self.out.len();
        self.out.clear();
        match written {
            Ok(()) => self.recordings.stats.written(len),
            Err(error) => self.write_failed(&error),
        }
    }

    async fn flush_if_due(&mut self, interval: Duration) {
        if self
            .open
            .as_ref()
            .is_some_and(|o| o.file.since_flush() >= interval)
        {
            self.flush().await;
            // A flush that failed leaves the cuts a Close to hand out.
            self.drive(None).await;
        }
    }

    async fn flush(&mut self) {
        let Some(open) = &mut self.open else {
            return;
        };
        if open.failed {
            return;
        }
        if let Err(error) = open.file.flush().await {
            self.write_failed(&error);
        }
    }

    /// The open file cannot be written: it ends at the cuts' next `Close`.
    fn write_failed(&mut self, error: &std::io::Error) {
        let Some(open) = &mut self.open else {
            return;
        };
        open.failed = true;
        tracing::warn!(
            stream = %self.path,
            file = %open.file.path().display(),
            %error,
            retry_in_ms = self.recordings.settings.retry_interval_ms,
            "cannot write the recording file; it ends here and the stream goes on unrecorded"
        );
        self.failed(RecordFailure::Write);
    }

    fn failed(&mut self, failure: RecordFailure) {
        self.recordings.stats.failed(failure);
        self.cuts.handle_failed(Instant::now());
    }

    /// Finishes, flushes and syncs the open file, and tells the webhook.
    async fn close_file(&mut self) {
        let Some(open) = self.open.take() else {
            return;
        };
        let OpenFile {
            mut file,
            mut writer,
            media_ms,
            started,
            failed,
            ..
        } = open;
        let name = file.name().clone();
        let path = file.path().to_owned();
        let result = if failed {
            // Already logged and counted: whatever reached the disk is what there is.
            drop(file.close().await);
            Ok(())
        } else {
            writer.finish(&mut self.out);
            let mut result = file.write(&self.out).await;
            if result.is_ok() {
                self.recordings.stats.written(self.out.len());
            }
            if result.is_ok() {
                result = file.close().await;
            }
            result
        };
        self.out.clear();
        self.recordings.stopped(&name);
        if let Err(error) = result {
            tracing::warn!(
                stream = %self.path,
                file = %path.display(),
                %error,
                "cannot finish the recording file; it may lack its last second"
            );
            self.failed(RecordFailure::Write);
        }
        let bytes = tokio::fs::metadata(&path).await.map_or(0, |m| m.len());
        let duration = Duration::from_millis(u64::from(media_ms));
        self.recordings.stats.finished();
        tracing::info!(
            stream = %self.path,
            file = %path.display(),
            bytes,
            duration_ms = u64::from(media_ms),
            "recording file finished"
        );
        self.recordings.observer.finished(RecordingDone {
            stream: self.path.clone(),
            id: name.id(),
            path: path.display().to_string(),
            file: name.relative_path().display().to_string(),
            duration,
            bytes,
            started,
            ended: SystemTime::now(),
        });
    }
}
