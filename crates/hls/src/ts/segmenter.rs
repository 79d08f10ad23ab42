//! Frames to MPEG-TS segments cut at keyframes.

use std::time::Duration;

use bytes::Bytes;
use onair_flv::{parse_audio_tag, parse_video_tag, SequenceHeader};
use onair_media::{AudioCodec, FrameKind, MediaFrame, VideoCodec};

use super::adts::{self, AdtsParams};
use super::avc::{self, AvcParams};
use super::packets::{Packetizer, Pes, AUDIO_PID, AUDIO_STREAM_ID, VIDEO_PID, VIDEO_STREAM_ID};
use crate::Error;

/// How segments are cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsSettings {
    /// A segment ends at the first keyframe at least this long after its start
    /// (audio-only streams: at the first audio frame).
    pub segment_target: Duration,
    /// A segment that reaches this size ends at the next frame even without a
    /// keyframe, so a publisher that never sends one cannot grow it without bound.
    pub max_segment_bytes: usize,
}

impl Default for TsSettings {
    fn default() -> Self {
        Self {
            segment_target: Duration::from_secs(2),
            max_segment_bytes: 16 * 1024 * 1024,
        }
    }
}

/// One finished MPEG-TS segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsSegment {
    pub bytes: Bytes,
    pub duration: Duration,
    /// Media time of its first frame, in milliseconds on the publisher's timeline.
    pub start_ms: u64,
}

/// PTS/DTS = media time + this, so B-frames' earlier presentation times and the PCR
/// that leads the DTS never go below zero (ffmpeg's mpegts muxer does the same).
const TIMESTAMP_OFFSET_90K: i64 = 126_000;
/// How far the PCR runs ahead of the DTS it goes with.
const PCR_LEAD_90K: i64 = 63_000;

/// Which elementary streams the PMT lists, fixed when the first segment starts (the
/// server's tap hands over the sequence headers before the first keyframe).
#[derive(Debug, Clone, Copy)]
struct Tracks {
    video: bool,
    audio: bool,
}

#[derive(Debug)]
struct OpenSegment {
    bytes: Vec<u8>,
    start_ms: i64,
}

/// H.264 + AAC frames (FLV bodies, as the hub carries them) to MPEG-TS segments.
///
/// A publisher's restart (timestamps start again) needs a new segmenter, and
/// `Playlist::discontinuity` on the playlist.
#[derive(Debug)]
pub struct TsSegmenter {
    settings: TsSettings,
    avc: Option<AvcParams>,
    aac: Option<AdtsParams>,
    tracks: Option<Tracks>,
    packetizer: Packetizer,
    open: Option<OpenSegment>,
    /// The publisher's 32-bit millisecond clock, unwrapped.
    last_timestamp: Option<(u32, i64)>,
    /// Gap between the last two frames of the clock track, for the last segment's
    /// duration.
    last_gap_ms: i64,
    last_clock_ms: Option<i64>,
    scratch: Vec<u8>,
}

impl TsSegmenter {
    pub fn new(settings: TsSettings) -> Self {
        Self {
            settings,
            avc: None,
            aac: None,
            tracks: None,
            packetizer: Packetizer::default(),
            open: None,
            last_timestamp: None,
            last_gap_ms: 0,
            last_clock_ms: None,
            scratch: Vec::new(),
        }
    }

    /// Takes one frame; a segment that it closes is appended to `out`. Frames before
    /// their codec configuration, video before the first keyframe and tracks that
    /// appear after the first segment started are dropped silently. An error leaves
    /// the segmenter usable.
    pub fn push(&mut self, frame: &MediaFrame, out: &mut Vec<TsSegment>) -> Result<(), Error> {
        match frame.kind {
            FrameKind::Video => self.push_video(frame, out),
            FrameKind::Audio => self.push_audio(frame, out),
            FrameKind::Script => Ok(()),
        }
    }

    /// Closes the segment in progress (the publisher left).
    pub fn finish(&mut self, out: &mut Vec<TsSegment>) {
        let Some(end) = self.last_clock_ms else {
            return;
        };
        self.close(end + self.last_gap_ms, out);
    }

    fn push_video(&mut self, frame: &MediaFrame, out: &mut Vec<TsSegment>) -> Result<(), Error> {
        let info = parse_video_tag(&frame.payload)?;
        if info.codec != VideoCodec::H264 {
            return Err(Error::UnsupportedVideoCodec(info.codec));
        }
        if info.sequence_header {
            let header = SequenceHeader::parse(FrameKind::Video, &frame.payload)?;
            self.avc = Some(avc::parse_record(header.record)?);
            return Ok(());
        }
        let body = frame.payload.get(info.header_len..).unwrap_or_default();
        let Some(params) = self.avc.as_ref().filter(|_| info.coded_frame) else {
            return Ok(());
        };
        let tracks = match self.tracks {
            Some(tracks) => tracks,
            None if info.keyframe => *self.tracks.insert(Tracks {
                video: true,
                audio: self.aac.is_some(),
            }),
            None => return Ok(()),
        };
        // A segment starts with a keyframe (also after `finish`).
        if !tracks.video || (self.open.is_none() && !info.keyframe) {
            return Ok(());
        }
        self.scratch.clear();
        avc::to_annex_b(
            params,
            body,
            info.keyframe,
            frame.timestamp,
            &mut self.scratch,
        )?;
        let dts_ms = self.unwrap_timestamp(frame.timestamp);
        self.clock_tick(dts_ms);
        let cut = info.keyframe && self.segment_is_due(dts_ms);
        self.start_segment_if(cut, dts_ms, tracks, out)?;
        let dts = to_90k(dts_ms);
        let pes = Pes {
            pid: VIDEO_PID,
            stream_id: VIDEO_STREAM_ID,
            pts: to_90k(dts_ms + i64::from(info.composition_time)),
            dts: Some(dts),
            pcr: Some(pcr(dts_ms)),
            random_access: info.keyframe,
            data: &self.scratch,
        };
        write(&mut self.packetizer, &mut self.open, &pes)
    }

    fn push_audio(&mut self, frame: &MediaFrame, out: &mut Vec<TsSegment>) -> Result<(), Error> {
        let info = parse_audio_tag(&frame.payload)?;
        if info.codec != AudioCodec::Aac {
            return Err(Error::UnsupportedAudioCodec(info.codec));
        }
        if info.sequence_header {
            let header = SequenceHeader::parse(FrameKind::Audio, &frame.payload)?;
            self.aac = Some(adts::parse_asc(header.record)?);
            return Ok(());
        }
        let body = frame.payload.get(info.header_len..).unwrap_or_default();
        let Some(params) = self.aac.filter(|_| info.coded_frame) else {
            return Ok(());
        };
        let tracks = match self.tracks {
            Some(tracks) => tracks,
            // With video configured, the first segment starts at a keyframe.
            None if self.avc.is_some() => return Ok(()),
            None => *self.tracks.insert(Tracks {
                video: false,
                audio: true,
            }),
        };
        if !tracks.audio {
            return Ok(());
        }
        self.scratch.clear();
        if !adts::to_adts(params, body, &mut self.scratch) {
            return Ok(());
        }
        let pts_ms = self.unwrap_timestamp(frame.timestamp);
        if !tracks.video {
            self.clock_tick(pts_ms);
            let cut = self.segment_is_due(pts_ms);
            self.start_segment_if(cut, pts_ms, tracks, out)?;
        } else if self.open.is_none() {
            return Ok(());
        } else {
            self.start_segment_if(false, pts_ms, tracks, out)?;
        }
        let pes = Pes {
            pid: AUDIO_PID,
            stream_id: AUDIO_STREAM_ID,
            pts: to_90k(pts_ms),
            dts: None,
            pcr: (!tracks.video).then(|| pcr(pts_ms)),
            random_access: !tracks.video,
            data: &self.scratch,
        };
        write(&mut self.packetizer, &mut self.open, &pes)
    }

    fn segment_is_due(&self, now_ms: i64) -> bool {
        self.open.as_ref().is_some_and(|open| {
            now_ms - open.start_ms >= self.settings.segment_target.as_millis() as i64
        })
    }

    /// Closes the open segment when `cut` (or when it outgrew its byte cap) and opens
    /// a new one, starting with PAT and PMT, when none is open.
    fn start_segment_if(
        &mut self,
        cut: bool,
        now_ms: i64,
        tracks: Tracks,
        out: &mut Vec<TsSegment>,
    ) -> Result<(), Error> {
        let oversized = self
            .open
            .as_ref()
            .is_some_and(|open| open.bytes.len() >= self.settings.max_segment_bytes);
        if cut || oversized {
            self.close(now_ms, out);
        }
        if self.open.is_none() {
            let mut bytes = Vec::with_capacity(64 * 1024);
            self.packetizer
                .write_tables(tracks.video, tracks.audio, &mut bytes)?;
            self.open = Some(OpenSegment {
                bytes,
                start_ms: now_ms,
            });
        }
        Ok(())
    }

    fn close(&mut self, end_ms: i64, out: &mut Vec<TsSegment>) {
        if let Some(open) = self.open.take() {
            out.push(TsSegment {
                bytes: Bytes::from(open.bytes),
                duration: Duration::from_millis(u64::try_from(end_ms - open.start_ms).unwrap_or(0)),
                start_ms: u64::try_from(open.start_ms).unwrap_or(0),
            });
        }
    }

    /// Follows the 32-bit millisecond clock across wraps (and small steps back, as
    /// audio and video interleave), relative to the first frame.
    fn unwrap_timestamp(&mut self, timestamp: u32) -> i64 {
        let unwrapped = match self.last_timestamp {
            Some((last, last_unwrapped)) => {
                last_unwrapped + i64::from(timestamp.wrapping_sub(last) as i32)
            }
            None => i64::from(timestamp),
        };
        self.last_timestamp = Some((timestamp, unwrapped));
        unwrapped
    }

    /// Records a frame of the track whose timestamps measure segments.
    fn clock_tick(&mut self, now_ms: i64) {
        if let Some(last) = self.last_clock_ms {
            if now_ms > last {
                self.last_gap_ms = now_ms - last;
            }
        }
        self.last_clock_ms = Some(now_ms);
    }
}

fn write(
    packetizer: &mut Packetizer,
    open: &mut Option<OpenSegment>,
    pes: &Pes,
) -> Result<(), Error> {
    match open.as_mut() {
        Some(open) => packetizer.write_pes(pes, &mut open.bytes),
        None => Ok(()),
    }
}

fn to_90k(ms: i64) -> u64 {
    u64::try_from(ms * 90 + TIMESTAMP_OFFSET_90K).unwrap_or(0)
}

fn pcr(dts_ms: i64) -> u64 {
    u64::try_from(dts_ms * 90 + TIMESTAMP_OFFSET_90K - PCR_LEAD_90K).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: [u8; 16] = [
        1, 100, 0, 31, 0xff, 0xe1, 0, 3, 0x67, 0xaa, 0xbb, 1, 0, 2, 0x68, 0xcc,
    ];

    fn frame(kind: FrameKind, timestamp: u32, keyframe: bool, payload: Vec<u8>) -> MediaFrame {
        MediaFrame {
            kind,
            timestamp,
            keyframe,
            sequence_header: false,
            payload: Bytes::from(payload),
        }
    }

    fn avc_header() -> MediaFrame {
        let mut payload = vec![0x17, 0, 0, 0, 0];
        payload.extend_from_slice(&RECORD);
        frame(FrameKind::Video, 0, false, payload)
    }

    fn video(timestamp: u32, keyframe: bool) -> MediaFrame {
        let first = if keyframe { 0x17 } else { 0x27 };
        let nal = if keyframe { 0x65 } else { 0x41 };
        frame(
            FrameKind::Video,
            timestamp,
            keyframe,
            vec![first, 1, 0, 0, 0, 0, 0, 0, 3, nal, 0x11, 0x22],
        )
    }

    fn aac_header() -> MediaFrame {
        frame(FrameKind::Audio, 0, false, vec![0xaf, 0, 0x12, 0x10])
    }

    fn audio(timestamp: u32) -> MediaFrame {
        frame(
            FrameKind::Audio,
            timestamp,
            false,
            vec![0xaf, 1, 0x21, 0x10, 0x04],
        )
    }

    fn settings(target_ms: u64) -> TsSettings {
        TsSettings {
            segment_target: Duration::from_millis(target_ms),
            ..TsSettings::default()
        }
    }

    fn run(segmenter: &mut TsSegmenter, frames: &[MediaFrame]) -> Vec<TsSegment> {
        let mut out = Vec::new();
        for f in frames {
            segmenter.push(f, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn cuts_at_the_first_keyframe_past_the_target() {
        let mut s = TsSegmenter::new(settings(1000));
        let mut frames = vec![avc_header(), aac_header(), audio(0), video(0, false)];
        for i in 0..30u32 {
            frames.push(video(i * 100, i % 6 == 0));
            frames.push(audio(i * 100 + 10));
        }
        let mut out = run(&mut s, &frames);
        s.finish(&mut out);
        // Keyframes every 600 ms: cuts at 1200, 2400; the last runs to 2900 + 100.
        let spans: Vec<_> = out
            .iter()
            .map(|s| (s.start_ms, s.duration.as_millis()))
            .collect();
        assert_eq!(spans, [(0, 1200), (1200, 1200), (2400, 600)]);
        assert!(out.iter().all(|s| s.bytes.len() % 188 == 0));
        // Audio before the first keyframe was dropped; nothing after finish.
        s.finish(&mut out);
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn audio_only_streams_cut_on_any_frame() {
        let mut s = TsSegmenter::new(settings(1000));
        let mut frames = vec![aac_header()];
        frames.extend((0..50).map(|i| audio(i * 23)));
        let mut out = run(&mut s, &frames);
        s.finish(&mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].start_ms, 0);
        assert_eq!(out[0].duration, Duration::from_millis(1012));
        // Video configured later is ignored: the PMT was fixed at the start.
        let late = run(&mut s, &[avc_header(), video(2000, true)]);
        assert!(late.is_empty());
    }

    #[test]
    fn byte_cap_cuts_without_a_keyframe() {
        let mut s = TsSegmenter::new(TsSettings {
            segment_target: Duration::from_secs(100),
            max_segment_bytes: 2000,
        });
        let mut frames = vec![avc_header(), video(0, true)];
        frames.extend((1..40).map(|i| video(i * 33, false)));
        let out = run(&mut s, &frames);
        assert!(!out.is_empty());
        assert!(out.iter().all(|seg| seg.bytes.len() <= 2000 + 188 * 2));
    }

    #[test]
    fn bad_frames_are_errors_and_the_segmenter_goes_on() {
        let mut s = TsSegmenter::new(settings(1000));
        let mut out = Vec::new();
        // Before any configuration: dropped.
        s.push(&video(0, true), &mut out).unwrap();
        s.push(&audio(0), &mut out).unwrap();
        s.push(&avc_header(), &mut out).unwrap();
        let truncated = frame(
            FrameKind::Video,
            5,
            true,
            vec![0x17, 1, 0, 0, 0, 0, 0, 0, 9, 0x65],
        );
        assert!(matches!(
            s.push(&truncated, &mut out),
            Err(Error::TruncatedNal { timestamp: 5, .. })
        ));
        let hevc_header = frame(FrameKind::Video, 0, false, vec![0x1c, 0, 0, 0, 0]);
        assert!(matches!(
            s.push(&hevc_header, &mut out),
            Err(Error::UnsupportedVideoCodec(VideoCodec::Hevc))
        ));
        let mp3 = frame(FrameKind::Audio, 0, false, vec![0x2f, 0xff]);
        assert!(s.push(&mp3, &mut out).is_err());
        assert!(s
            .push(&frame(FrameKind::Video, 0, false, vec![]), &mut out)
            .is_err());
        s.push(&video(10, true), &mut out).unwrap();
        s.push(&video(1100, true), &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].duration, Duration::from_millis(1090));
    }

    #[test]
    fn timestamps_follow_the_32_bit_wrap() {
        let mut s = TsSegmenter::new(settings(1000));
        let start = u32::MAX - 500;
        let frames = [
            avc_header(),
            video(start, true),
            video(start.wrapping_add(600), true),
            video(start.wrapping_add(1200), true),
        ];
        let out = run(&mut s, &frames);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].duration, Duration::from_millis(1200));
    }
}
