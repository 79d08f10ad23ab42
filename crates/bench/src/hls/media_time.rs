//! Where a downloaded piece of media sits on the stream's timeline: the video track of
//! a CMAF init segment and part (with `mp4-atom`), and the first video decode time of
//! an MPEG-TS segment.

use mp4_atom::{Decode, Ftyp, Moof, Moov};

/// The video track of an init segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct VideoTrack {
    pub(super) id: u32,
    pub(super) timescale: u32,
}

pub(super) fn video_track(init: &[u8]) -> Option<VideoTrack> {
    let mut buf = init;
    Ftyp::decode(&mut buf).ok()?;
    let moov = Moov::decode(&mut buf).ok()?;
    let trak = moov
        .trak
        .iter()
        .find(|t| t.mdia.hdlr.handler == b"vide".into())?;
    let timescale = trak.mdia.mdhd.timescale;
    (timescale > 0).then_some(VideoTrack {
        id: trak.tkhd.track_id,
        timescale,
    })
}

/// A part's video samples on the timeline, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct PartSpan {
    /// Decode time of the first video sample (`tfdt`).
    pub(super) start_ms: f64,
    /// `tfdt` + the sum of the video sample durations: the decode time of the frame
    /// that closed the part.
    pub(super) end_ms: f64,
    /// The first video sample is a sync sample (a keyframe).
    pub(super) starts_with_keyframe: bool,
}

/// The video span of a part (`moof` + `mdat`); `None` without video samples.
pub(super) fn part_span(part: &[u8], track: VideoTrack) -> Option<PartSpan> {
    let mut buf = part;
    let moof = Moof::decode(&mut buf).ok()?;
    let traf = moof.traf.iter().find(|t| t.tfhd.track_id == track.id)?;
    let start = traf.tfdt.as_ref()?.base_media_decode_time;
    let mut ticks = 0u64;
    let mut first_flags = None;
    for trun in &traf.trun {
        for entry in trun.samples.iter() {
            let duration = entry.duration.or(traf.tfhd.default_sample_duration)?;
            ticks += u64::from(duration);
            if first_flags.is_none() {
                first_flags = entry.flags.or(traf.tfhd.default_sample_flags);
            }
        }
    }
    if ticks == 0 {
        return None;
    }
    let ms = |t: u64| t as f64 * 1000.0 / f64::from(track.timescale);
    Some(PartSpan {
        start_ms: ms(start),
        end_ms: ms(start + ticks),
        // sample_is_non_sync_sample is bit 16 of the sample flags.
        starts_with_keyframe: first_flags.is_some_and(|f| f & 0x0001_0000 == 0),
    })
}

const TS_PACKET: usize = 188;

/// The decode time (ms, 90 kHz clock) of the first video PES packet of an MPEG-TS
/// segment: its DTS, or its PTS when it has none.
pub(super) fn ts_first_video_ms(segment: &[u8]) -> Option<f64> {
    for packet in segment.chunks_exact(TS_PACKET) {
        let [0x47, b1, _, b3, ..] = *packet else {
            return None;
        };
        let unit_start = b1 & 0x40 != 0;
        let adaptation = (b3 >> 4) & 0x3;
        if !unit_start || adaptation & 0x1 == 0 {
            continue;
        }
        let mut payload = 4;
        if adaptation & 0x2 != 0 {
            payload += 1 + usize::from(*packet.get(4)?);
        }
        let pes = packet.get(payload..)?;
        // A video stream id (0xE0-0xEF) after the start code.
        let [0, 0, 1, stream_id, _, _, _, flags, _, ..] = *pes else {
            continue;
        };
        if stream_id & 0xf0 != 0xe0 {
            continue;
        }
        let timestamps = flags >> 6;
        let at = match timestamps {
            0b11 => 14, // PTS then DTS: the DTS
            0b10 => 9,
            _ => continue,
        };
        let t = pes.get(at..at + 5)?;
        let ticks = (u64::from(t[0] >> 1) & 0x7) << 30
            | u64::from(t[1]) << 22
            | (u64::from(t[2]) >> 1) << 15
            | u64::from(t[3]) << 7
            | u64::from(t[4]) >> 1;
        return Some(ticks as f64 / 90.0);
    }
    None
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A 33-bit timestamp in PES header form, marker bits set.
    fn pes_time(prefix: u8, ticks: u64) -> [u8; 5] {
        [
            prefix << 4 | ((ticks >> 29) & 0x0e) as u8 | 1,
            (ticks >> 22) as u8,
            ((ticks >> 14) & 0xfe) as u8 | 1,
            (ticks >> 7) as u8,
            ((ticks << 1) & 0xfe) as u8 | 1,
        ]
    }

    /// onair's own segmenter on the committed fixture: every part's span, read back,
    /// ends where the next one starts, at a video frame's FLV timestamp.
    #[test]
    fn reads_the_video_span_of_onair_parts() {
        use onair_fmp4::{Output, Segmenter, SegmenterSettings};
        use onair_media::{FrameKind, MediaFrame};
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../server/tests/fixtures/ffmpeg_testsrc2_640x360_30fps_6s.flv"
        );
        let data = std::fs::read(path).unwrap();
        let tags = onair_relay::client::read_flv_tags(&data, 1 << 24).unwrap();
        let mut segmenter = Segmenter::new(SegmenterSettings {
            part_target: Duration::from_millis(200),
            segment_target: Duration::from_secs(1),
        });
        let mut out = Vec::new();
        let mut video_ts = Vec::new();
        for tag in &tags {
            let frame = MediaFrame {
                kind: tag.kind,
                timestamp: tag.timestamp,
                keyframe: tag.kind == FrameKind::Video && tag.payload.first() == Some(&0x17),
                sequence_header: tag.payload.get(1) == Some(&0),
                payload: tag.payload.clone(),
            };
            if tag.kind == FrameKind::Video && !frame.sequence_header {
                video_ts.push(f64::from(tag.timestamp));
            }
            segmenter.push(&frame, &mut out).unwrap();
        }
        let mut track = None;
        let mut spans = Vec::new();
        for output in &out {
            match output {
                Output::Init(init) => track = video_track(init),
                Output::Part(part) => {
                    spans.push(part_span(&part.bytes, track.unwrap()).unwrap());
                }
            }
        }
        assert_eq!(track.map(|t| t.timescale), Some(90_000));
        assert!(spans.len() > 20, "{} parts", spans.len());
        assert!(spans[0].starts_with_keyframe);
        assert!(spans.iter().any(|s| !s.starts_with_keyframe));
        for pair in spans.windows(2) {
            assert_eq!(pair[0].end_ms, pair[1].start_ms);
            assert!(video_ts.contains(&pair[0].end_ms), "{}", pair[0].end_ms);
        }
    }

    #[test]
    fn finds_the_first_video_dts_of_a_ts_segment() {
        let mut segment = Vec::new();
        // An audio PES first, then video with PTS and DTS, after an adaptation field.
        let mut audio = vec![0x47, 0x41, 0x01, 0x10, 0, 0, 1, 0xc0, 0, 0, 0x80, 0x80, 5];
        audio.extend(pes_time(0b0010, 1));
        audio.resize(TS_PACKET, 0xff);
        segment.extend(audio);
        let mut video = vec![
            0x47, 0x41, 0x00, 0x30, 1, 0x40, 0, 0, 1, 0xe0, 0, 0, 0x80, 0xc0, 10,
        ];
        video.extend(pes_time(0b0011, 8_100_000 + 9000));
        video.extend(pes_time(0b0001, 8_100_000));
        video.resize(TS_PACKET, 0xff);
        segment.extend(video);
        assert_eq!(ts_first_video_ms(&segment), Some(90_000.0));
        assert_eq!(ts_first_video_ms(&[0u8; TS_PACKET]), None);
        assert_eq!(ts_first_video_ms(b"not ts"), None);
    }
}
