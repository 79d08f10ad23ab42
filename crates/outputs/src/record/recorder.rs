//! One live stream being recorded: a hub tap turned into a sequence of files.
//!
//! The recorder decides where files begin and end: a file begins at a video keyframe
//! (any audio frame in a stream without video), with the latest metadata and codec
//! headers first, so each file plays on its own; it is cut at the first keyframe past
//! `record.max_duration_s` / `record.max_bytes`, after a codec header changes, and
//! after the tap had to skip frames. Timestamps start at 0 in every file.
//!
//! It never slows the stream: it is a reader of the hub's ring like any viewer, so a
//! slow disk makes it skip to a keyframe (and start a new file), never the publisher
//! wait. A file that cannot be created or written is logged once, counted, and closed;
//! the next file is tried at the first keyframe `record.retry_interval_ms` later.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use onair_media::{FrameKind, MediaFrame, StreamPath};
use tokio_util::sync::CancellationToken;

use super::file::RecordingFile;
use super::format::{writer_for, FileStart, RecordingFormat};
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

/// The stream's latest metadata and codec headers: what each new file starts with.
#[derive(Debug, Default)]
struct Headers {
    metadata: Option<MediaFrame>,
    video: Option<MediaFrame>,
    audio: Option<MediaFrame>,
    /// The metadata announces video (a width or a video codec).
    metadata_says_video: bool,
}

impl Headers {
    fn has_video(&self) -> bool {
        self.video.is_some() || self.metadata_says_video
    }
}

struct OpenFile {
    file: RecordingFile,
    writer: Box<dyn RecordingFormat>,
    /// The stream timestamp the file's 0 is: its first frame's decode time.
    base: u32,
    /// Audio before this stream timestamp (the first picture's presentation time) is
    /// left out: it has no picture, and ffmpeg would start the file's clock at it, off
    /// the video's frame grid.
    audio_from: u32,
    /// Greatest timestamp written, from the file's 0.
    media_ms: u32,
    started: SystemTime,
    /// Whether close has already failed once: the error is logged and counted once.
    failed: bool,
}

struct Recorder {
    recordings: Arc<Recordings>,
    path: StreamPath,
    headers: Headers,
    open: Option<OpenFile>,
    /// A codec header changed or frames were skipped: the next keyframe starts a file.
    cut_pending: bool,
    /// No file is tried before then, after one failed.
    retry_at: Option<Instant>,
    out: Vec<u8>,
}

impl Recorder {
    fn new(recordings: Arc<Recordings>, path: StreamPath) -> Self {
        Self {
            recordings,
            path,
            headers: Headers::default(),
            open: None,
            cut_pending: false,
            retry_at: None,
            out: Vec::new(),
        }
    }

    async fn handle(&mut self, frame: &MediaFrame) {
        match frame.kind {
            FrameKind::Script => {
                self.headers.metadata_says_video = onair_flv::parse_metadata(&frame.payload)
                    .is_ok_and(|m| m.width.is_some() || m.video_codec_id.is_some());
                self.headers.metadata = Some(frame.clone());
                return;
            }
            kind if frame.sequence_header => {
                let slot = match kind {
                    FrameKind::Video => &mut self.headers.video,
                    _ => &mut self.headers.audio,
                };
                if slot.as_ref().map(|h| &h.payload) != Some(&frame.payload) {
                    *slot = Some(frame.clone());
                    // Encoders resend identical headers; only a new one needs a new file.
                    self.cut_pending |= self.open.is_some();
                }
                return;
            }
            _ => {}
        }
        let video_keyframe = frame.kind == FrameKind::Video && frame.keyframe;
        let starts_file =
            video_keyframe || (frame.kind == FrameKind::Audio && !self.headers.has_video());
        if starts_file {
            if self
                .open
                .as_ref()
                .is_some_and(|open| self.cut_due(open, frame))
            {
                self.close_file().await;
            }
            if self.open.is_none() {
                self.open_file(frame).await;
            }
        }
        if video_keyframe {
            self.flush().await;
        }
        let Some(open) = &mut self.open else {
            return;
        };
        if frame.kind == FrameKind::Audio && frame.timestamp < open.audio_from {
            return;
        }
        let timestamp = frame.timestamp.saturating_sub(open.base);
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

    fn cut_due(&self, open: &OpenFile, frame: &MediaFrame) -> bool {
        let settings = &self.recordings.settings;
        let media_ms = u64::from(frame.timestamp.saturating_sub(open.base));
        self.cut_pending
            || (settings.max_duration_s > 0 && media_ms >= settings.max_duration_s * 1000)
            || (settings.max_bytes > 0 && open.file.bytes() >= settings.max_bytes)
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
        self.close_file().await;
    }

    /// Starts a file with `first`, a video keyframe (or audio frame, without video).
    async fn open_file(&mut self, first: &MediaFrame) {
        if self.retry_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        self.retry_at = None;
        let settings = &self.recordings.settings;
        let format = settings.format;
        let mut writer = writer_for(format);
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
        let has_video = self.headers.has_video();
        let start = FileStart {
            metadata: self.headers.metadata.as_ref(),
            video_header: self.headers.video.as_ref(),
            audio_header: self.headers.audio.as_ref(),
            has_video,
            has_audio: self.headers.audio.is_some(),
        };
        writer.begin(&start, &mut self.out);
        self.recordings.started(file.name().clone());
        tracing::info!(stream = %self.path, file = %file.path().display(), "recording file started");
        self.cut_pending = false;
        let composition = match first.kind {
            FrameKind::Video => onair_flv::parse_video_tag(&first.payload)
                .map_or(0, |tag| u32::try_from(tag.composition_time).unwrap_or(0)),
            _ => 0,
        };
        self.open = Some(OpenFile {
            file,
            writer,
            base: first.timestamp,
            audio_from: first.timestamp.saturating_add(composition),
            media_ms: 0,
            started,
            failed: false,
        });
        self.write_out().await;
    }

    /// Writes what the writer produced; a failure closes the file.
    async fn write_out(&mut self) {
        let Some(open) = &mut self.open else {
            self.out.clear();
            return;
        };
        if self.out.is_empty() {
            return;
        }
        let written = open.file.write(&self.out).await;
        let len = self.out.len();
        self.out.clear();
        match written {
            Ok(()) => self.recordings.stats.written(len),
            Err(error) => self.write_failed(&error).await,
        }
    }

    async fn flush_if_due(&mut self, interval: Duration) {
        if self
            .open
            .as_ref()
            .is_some_and(|o| o.file.since_flush() >= interval)
        {
            self.flush().await;
        }
    }

    async fn flush(&mut self) {
        let Some(open) = &mut self.open else {
            return;
        };
        if let Err(error) = open.file.flush().await {
            self.write_failed(&error).await;
        }
    }

    async fn write_failed(&mut self, error: &std::io::Error) {
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
        self.close_file().await;
    }

    fn failed(&mut self, failure: RecordFailure) {
        self.recordings.stats.failed(failure);
        let retry = Duration::from_millis(self.recordings.settings.retry_interval_ms);
        self.retry_at = Some(Instant::now() + retry);
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
