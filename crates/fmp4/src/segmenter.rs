//! The segmenter state machine: waits for the codec headers, then cuts the frame
//! stream into parts (and parts into segments) and encodes them.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use onair_media::{AudioCodec, FrameKind, MediaFrame, VideoCodec};

use crate::config::{AudioConfig, VideoConfig};
use crate::fragment::{encode_fragment, Run, Sample};
use crate::init::{encode_init, AUDIO_TRACK_ID, VIDEO_TIMESCALE, VIDEO_TRACK_ID};
use crate::track::Track;
use crate::Error;

/// A part never holds more samples than this (all tracks together) ...
pub const MAX_PART_SAMPLES: usize = 1000;
/// ... nor more media bytes than this; a part is cut early instead.
pub const MAX_PART_BYTES: usize = 8 * 1024 * 1024;
/// How long (in stream time) to wait for a missing track's header once the other
/// track's header is known, when `onMetaData` did not say which tracks exist.
pub const HEADER_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmenterSettings {
    /// Parts are cut when they reach this duration (LL-HLS `PART-TARGET`).
    pub part_target: Duration,
    /// A new segment starts at the first keyframe at or after this duration.
    pub segment_target: Duration,
}

impl Default for SegmenterSettings {
    fn default() -> Self {
        Self {
            part_target: Duration::from_millis(333),
            segment_target: Duration::from_secs(2),
        }
    }
}

/// What [`Segmenter::push`] and [`Segmenter::finish`] produce, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A new init segment (`ftyp` + `moov`); the parts after it need it.
    Init(Bytes),
    Part(Part),
}

/// One CMAF chunk: a `moof` + `mdat` with every track's samples for its time span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub bytes: Bytes,
    /// Decode time of its first sample (of the video track when there is one), in ms
    /// rounded to the nearest.
    pub start_ms: u64,
    /// From the first sample to the next part's first sample (the sum of the sample
    /// durations of the video track, or of the audio track in an audio-only stream).
    pub duration: Duration,
    /// Starts with a video keyframe (always true in an audio-only stream).
    pub independent: bool,
    /// The first part of a new segment (and then always independent).
    pub starts_segment: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No init segment yet: waiting for the codec headers of the tracks there are.
    Probing,
    /// An init segment is out and has video: the next part starts a segment at the
    /// next keyframe. Audio frames wait in `pending` meanwhile.
    WaitKeyframe,
    Running,
}

/// A coded frame, parsed.
#[derive(Debug, Clone)]
enum Coded {
    Video {
        timestamp: u32,
        keyframe: bool,
        cts_ms: i32,
        data: Bytes,
    },
    Audio {
        timestamp: u32,
        data: Bytes,
    },
}

impl Coded {
    fn len(&self) -> usize {
        match self {
            Coded::Video { data, .. } | Coded::Audio { data, .. } => data.len(),
        }
    }
}

#[derive(Debug, Default)]
struct PartState {
    /// Decode time of the first timeline-track sample.
    start: Option<u64>,
    starts_segment: bool,
    independent: bool,
}

/// Turns [`MediaFrame`]s into a CMAF init segment and parts. Sans-IO: the caller
/// pushes frames and forwards what comes out.
///
/// Track decision: with `onMetaData` naming `videocodecid`/`audiocodecid`, exactly
/// those tracks are waited for. Without it, both are. Either way, once one track's
/// header is known and [`HEADER_WAIT`] of stream time has passed without the other,
/// the stream starts with the tracks it has (so an audio-only stream starts 1 s in,
/// losing nothing: its frames are held meanwhile, within the part bounds). A header
/// arriving later adds the track with a new init segment.
///
/// A stream with a video track emits its first part at its first keyframe; until
/// then audio is held (the newest [`MAX_PART_SAMPLES`] frames at most), so a stream
/// whose video header is never followed by a picture emits nothing.
#[derive(Debug)]
pub struct Segmenter {
    settings: SegmenterSettings,
    phase: Phase,
    video_config: Option<VideoConfig>,
    audio_config: Option<AudioConfig>,
    /// The configs the current init segment describes.
    init_video: Option<VideoConfig>,
    init_audio: Option<AudioConfig>,
    init: Option<Bytes>,
    expect_video: Option<bool>,
    expect_audio: Option<bool>,
    /// First and latest coded-frame timestamp seen while probing.
    probe_span: Option<(u32, u32)>,
    pending: VecDeque<Coded>,
    pending_bytes: usize,
    video: Track,
    audio: Track,
    part: PartState,
    segment_start: u64,
    sequence_number: u32,
}

impl Segmenter {
    pub fn new(settings: SegmenterSettings) -> Self {
        Self {
            settings,
            phase: Phase::Probing,
            video_config: None,
            audio_config: None,
            init_video: None,
            init_audio: None,
            init: None,
            expect_video: None,
            expect_audio: None,
            probe_span: None,
            pending: VecDeque::new(),
            pending_bytes: 0,
            video: Track::video(VIDEO_TIMESCALE),
            audio: Track::audio(44_100, 1024),
            part: PartState::default(),
            segment_start: 0,
            sequence_number: 0,
        }
    }

    /// The current init segment, once the codec headers are known.
    pub fn init_segment(&self) -> Option<&Bytes> {
        self.init.as_ref()
    }

    /// Feeds one frame (timestamps in ms, the hub's rebased, monotonic-per-track
    /// timeline). Appends what became ready to `out`. An `Err` is about this frame
    /// only (unsupported codec, malformed header); the segmenter stays usable.
    pub fn push(&mut self, frame: &MediaFrame, out: &mut Vec<Output>) -> Result<(), Error> {
        match frame.kind {
            FrameKind::Script => {
                self.handle_script(&frame.payload);
                Ok(())
            }
            FrameKind::Video => self.handle_video(frame, out),
            FrameKind::Audio => self.handle_audio(frame, out),
        }
    }

    /// End of stream: emits the last part (its last samples get the previous
    /// sample's duration). Frames pushed afterwards start a new segment.
    pub fn finish(&mut self, out: &mut Vec<Output>) {
        if self.phase == Phase::Probing {
            if self.video_config.is_none() && self.audio_config.is_none() {
                return;
            }
            self.start(out);
        }
        self.flush(out);
        self.clear_pending();
        self.restart_segment();
    }

    fn handle_script(&mut self, payload: &[u8]) {
        if self.phase != Phase::Probing {
            return;
        }
        // Other script data (cue points, text) and broken metadata are not ours to judge.
        if let Ok(meta) = onair_flv::parse_metadata(payload) {
            self.expect_video = Some(meta.video_codec_id.is_some());
            self.expect_audio = Some(meta.audio_codec_id.is_some());
        }
    }

    fn handle_video(&mut self, frame: &MediaFrame, out: &mut Vec<Output>) -> Result<(), Error> {
        let info = onair_flv::parse_video_tag(&frame.payload)?;
        if info.sequence_header {
            let config = VideoConfig::parse(info.codec, &frame.payload)?;
            if self.video_config.as_ref() != Some(&config) {
                self.video_config = Some(config);
                self.config_changed(out);
            }
            return Ok(());
        }
        let body = frame
            .payload
            .slice(info.header_len.min(frame.payload.len())..);
        if !info.coded_frame || body.is_empty() {
            return Ok(());
        }
        if !matches!(info.codec, VideoCodec::H264 | VideoCodec::Hevc) {
            return Err(Error::UnsupportedVideoCodec { codec: info.codec });
        }
        if self.video_config.as_ref().map(|c| c.codec) != Some(info.codec) {
            // No decoder configuration for these pictures: undecodable, dropped.
            return Ok(());
        }
        if body.len() > MAX_PART_BYTES {
            return Err(Error::FrameTooLarge {
                media: "video",
                timestamp: frame.timestamp,
                size: body.len(),
                max: MAX_PART_BYTES,
            });
        }
        self.handle_coded(
            Coded::Video {
                timestamp: frame.timestamp,
                keyframe: info.keyframe,
                cts_ms: info.composition_time,
                data: body,
            },
            out,
        );
        Ok(())
    }

    fn handle_audio(&mut self, frame: &MediaFrame, out: &mut Vec<Output>) -> Result<(), Error> {
        let info = onair_flv::parse_audio_tag(&frame.payload)?;
        if info.codec != AudioCodec::Aac {
            return Err(Error::UnsupportedAudioCodec { codec: info.codec });
        }
        if info.sequence_header {
            let config = AudioConfig::parse(info.codec, &frame.payload)?;
            if self.audio_config.as_ref() != Some(&config) {
                self.audio_config = Some(config);
                self.config_changed(out);
            }
            return Ok(());
        }
        let body = frame
            .payload
            .slice(info.header_len.min(frame.payload.len())..);
        if !info.coded_frame || body.is_empty() || self.audio_config.is_none() {
            return Ok(());
        }
        if body.len() > MAX_PART_BYTES {
            return Err(Error::FrameTooLarge {
                media: "audio",
                timestamp: frame.timestamp,
                size: body.len(),
                max: MAX_PART_BYTES,
            });
        }
        self.handle_coded(
            Coded::Audio {
                timestamp: frame.timestamp,
                data: body,
            },
            out,
        );
        Ok(())
    }

    /// A codec header that differs from the last one of its kind.
    fn config_changed(&mut self, out: &mut Vec<Output>) {
        if self.phase == Phase::Probing {
            // Headers seen before any media count towards the probe too.
            self.maybe_start(out);
            return;
        }
        if self.video_config == self.init_video && self.audio_config == self.init_audio {
            return;
        }
        self.flush(out);
        self.emit_init(out);
        self.restart_segment();
    }

    fn handle_coded(&mut self, coded: Coded, out: &mut Vec<Output>) {
        match self.phase {
            Phase::Probing => {
                let timestamp = match &coded {
                    Coded::Video { timestamp, .. } | Coded::Audio { timestamp, .. } => *timestamp,
                };
                self.probe_span = Some(match self.probe_span {
                    None => (timestamp, timestamp),
                    Some((first, _)) => (first, timestamp),
                });
                self.hold(coded);
                self.maybe_start(out);
            }
            Phase::WaitKeyframe => match coded {
                Coded::Video {
                    timestamp,
                    keyframe: true,
                    ..
                } => {
                    self.phase = Phase::Running;
                    self.part.starts_segment = true;
                    self.add_video(coded, out);
                    // Audio from before the keyframe would start the segment early.
                    let held = std::mem::take(&mut self.pending);
                    self.pending_bytes = 0;
                    for c in held {
                        if let Coded::Audio { timestamp: t, .. } = &c {
                            if (t.wrapping_sub(timestamp) as i32) >= 0 {
                                self.handle_coded(c, out);
                            }
                        }
                    }
                }
                Coded::Video { .. } => {}
                Coded::Audio { .. } => self.hold(coded),
            },
            Phase::Running => match coded {
                Coded::Video { .. } if self.init_video.is_some() => self.add_video(coded, out),
                Coded::Audio { .. } if self.init_audio.is_some() => self.add_audio(coded, out),
                // A track the init segment does not describe (yet).
                _ => {}
            },
        }
    }

    /// Keeps a frame for later, dropping the oldest beyond the part bounds.
    fn hold(&mut self, coded: Coded) {
        self.pending_bytes += coded.len();
        self.pending.push_back(coded);
        while self.pending.len() > MAX_PART_SAMPLES || self.pending_bytes > MAX_PART_BYTES {
            match self.pending.pop_front() {
                Some(old) => self.pending_bytes -= old.len(),
                None => break,
            }
        }
    }

    fn clear_pending(&mut self) {
        self.pending.clear();
        self.pending_bytes = 0;
    }

    fn maybe_start(&mut self, out: &mut Vec<Output>) {
        let has_video = self.video_config.is_some();
        let has_audio = self.audio_config.is_some();
        if !has_video && !has_audio {
            // Nothing is decodable yet; frames without a header are worthless.
            self.clear_pending();
            return;
        }
        let missing = (!has_video && self.expect_video != Some(false))
            || (!has_audio && self.expect_audio != Some(false));
        let waited = self.probe_span.is_some_and(|(first, last)| {
            i64::from(last.wrapping_sub(first) as i32) >= HEADER_WAIT.as_millis() as i64
        });
        let full = self.pending.len() >= MAX_PART_SAMPLES || self.pending_bytes >= MAX_PART_BYTES;
        if !missing || waited || full {
            self.start(out);
        }
    }

    /// Emits the first init segment and replays what was held.
    fn start(&mut self, out: &mut Vec<Output>) {
        self.emit_init(out);
        self.restart_segment();
        let held = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        for coded in held {
            self.handle_coded(coded, out);
        }
    }

    fn emit_init(&mut self, out: &mut Vec<Output>) {
        if self
            .audio_config
            .as_ref()
            .map(|c| (c.sample_rate, c.frame_samples))
            != self
                .init_audio
                .as_ref()
                .map(|c| (c.sample_rate, c.frame_samples))
        {
            if let Some(c) = &self.audio_config {
                self.audio = Track::audio(c.sample_rate, c.frame_samples);
            }
        }
        self.init_video = self.video_config.clone();
        self.init_audio = self.audio_config.clone();
        let init = encode_init(self.init_video.as_ref(), self.init_audio.as_ref());
        self.init = Some(init.clone());
        out.push(Output::Init(init));
    }

    /// The next part starts a segment: at the next keyframe when there is video.
    fn restart_segment(&mut self) {
        self.part = PartState {
            starts_segment: true,
            ..PartState::default()
        };
        self.phase = if self.init_video.is_some() {
            Phase::WaitKeyframe
        } else {
            Phase::Running
        };
    }

    fn over_bounds(&self, adding: usize) -> bool {
        self.video.samples.len() + self.audio.samples.len() + 1 > MAX_PART_SAMPLES
            || self.video.bytes + self.audio.bytes + adding > MAX_PART_BYTES
    }

    fn add_video(&mut self, coded: Coded, out: &mut Vec<Output>) {
        let Coded::Video {
            timestamp,
            keyframe,
            cts_ms,
            data,
        } = coded
        else {
            return;
        };
        let dts = self.video.place(timestamp);
        let has_samples = !self.video.samples.is_empty() || !self.audio.samples.is_empty();
        if has_samples {
            let since = |start: u64| dts.saturating_sub(start);
            let new_segment = keyframe
                && since(self.segment_start) >= self.video.ticks(self.settings.segment_target);
            let part_full = self
                .part
                .start
                .is_some_and(|start| since(start) >= self.video.ticks(self.settings.part_target));
            if new_segment || part_full || self.over_bounds(data.len()) {
                // The previous video sample was closed by this frame's timestamp.
                self.emit_part(out);
                self.part.starts_segment = new_segment;
            }
        }
        if self.part.start.is_none() {
            self.part.start = Some(dts);
            self.part.independent = keyframe;
            if self.part.starts_segment {
                self.segment_start = dts;
            }
        }
        let cts = i64::from(cts_ms) * i64::from(VIDEO_TIMESCALE) / 1000;
        let cts = i32::try_from(cts).unwrap_or(if cts < 0 { i32::MIN } else { i32::MAX });
        self.video.push(dts, keyframe, cts, data);
    }

    fn add_audio(&mut self, coded: Coded, out: &mut Vec<Output>) {
        let Coded::Audio { timestamp, data } = coded else {
            return;
        };
        if self.over_bounds(data.len()) {
            // A stalled video track cannot hold audio back without bound.
            self.flush(out);
        }
        let dts = self.audio.place(timestamp);
        self.audio.push(dts, true, 0, data);
        if self.init_video.is_some() {
            return;
        }
        // Audio only: audio is the timeline, and its durations are known at once.
        let start = *self.part.start.get_or_insert(dts);
        if self.part.starts_segment && start == dts {
            self.segment_start = dts;
        }
        self.part.independent = true;
        let end = dts
            + self
                .audio
                .samples
                .last()
                .map_or(0, |s| u64::from(s.duration));
        if end.saturating_sub(start) >= self.audio.ticks(self.settings.part_target) {
            self.emit_part(out);
            self.part.starts_segment = end.saturating_sub(self.segment_start)
                >= self.audio.ticks(self.settings.segment_target);
        }
    }

    /// Emits the open part now, closing an open video sample with an estimate.
    fn flush(&mut self, out: &mut Vec<Output>) {
        self.video.close();
        self.emit_part(out);
    }

    fn emit_part(&mut self, out: &mut Vec<Output>) {
        let video = self.video.take();
        let audio = self.audio.take();
        let part = std::mem::take(&mut self.part);
        if video.is_empty() && audio.is_empty() {
            self.part = part;
            return;
        }
        self.sequence_number = self.sequence_number.wrapping_add(1);
        let bytes = encode_fragment(
            self.sequence_number,
            &[
                Run {
                    track_id: VIDEO_TRACK_ID,
                    samples: &video,
                    with_cts: true,
                },
                Run {
                    track_id: AUDIO_TRACK_ID,
                    samples: &audio,
                    with_cts: false,
                },
            ],
        );
        let (timeline, timescale): (&[Sample], u32) = if video.is_empty() {
            (&audio, self.audio.timescale)
        } else {
            (&video, self.video.timescale)
        };
        let start = timeline.first().map_or(0, |s| s.dts);
        let ticks = Track::duration_sum(timeline);
        let independent = if video.is_empty() {
            self.init_video.is_none()
        } else {
            part.independent
        };
        out.push(Output::Part(Part {
            bytes,
            start_ms: u64::try_from(
                (u128::from(start) * 1000 + u128::from(timescale) / 2) / u128::from(timescale),
            )
            .unwrap_or(u64::MAX),
            duration: Duration::from_nanos(
                u64::try_from(u128::from(ticks) * 1_000_000_000 / u128::from(timescale))
                    .unwrap_or(u64::MAX),
            ),
            independent,
            starts_segment: part.starts_segment && independent,
        }));
    }
}
