//! Segmenter tests: every init segment and part is parsed back with `mp4-atom`.

use std::time::Duration;

use bytes::Bytes;
use mp4_atom::{Codec, Decode, Ftyp, Moof, Moov};
use onair_flv::FlvReader;
use onair_media::{FrameKind, MediaFrame};

use crate::{Error, Output, Part, Segmenter, SegmenterSettings, MAX_PART_BYTES, MAX_PART_SAMPLES};

const FIXTURE: &[u8] =
    include_bytes!("../../server/tests/fixtures/ffmpeg_testsrc2_640x360_30fps_6s.flv");
const HVCC_426X240: &[u8] = include_bytes!("../../flv/testdata/x265_hvcC_426x240.bin");
const SYNC: u32 = 0x0200_0000;
const NON_SYNC: u32 = 0x0101_0000;

fn fixture() -> Vec<MediaFrame> {
    let mut reader = FlvReader::new(1 << 24);
    reader.push(FIXTURE);
    let mut frames = Vec::new();
    while let Some(tag) = reader.next_tag().unwrap() {
        frames.push(onair_flv::classify(tag.kind, tag.timestamp, tag.payload).unwrap());
    }
    frames
}

fn run(frames: &[MediaFrame], settings: SegmenterSettings) -> Vec<Output> {
    let mut seg = Segmenter::new(settings);
    let mut out = Vec::new();
    for f in frames {
        seg.push(f, &mut out).unwrap();
    }
    seg.finish(&mut out);
    out
}

fn parts(out: &[Output]) -> Vec<&Part> {
    out.iter()
        .filter_map(|o| match o {
            Output::Part(p) => Some(p),
            Output::Init(_) => None,
        })
        .collect()
}

fn inits(out: &[Output]) -> Vec<&Bytes> {
    out.iter()
        .filter_map(|o| match o {
            Output::Init(i) => Some(i),
            Output::Part(_) => None,
        })
        .collect()
}

fn parse_init(bytes: &[u8]) -> (Ftyp, Moov) {
    let mut buf = bytes;
    let ftyp = Ftyp::decode(&mut buf).unwrap();
    let moov = Moov::decode(&mut buf).unwrap();
    assert!(buf.is_empty());
    (ftyp, moov)
}

/// One track's samples in a part.
#[derive(Debug)]
struct Run {
    tfdt: u64,
    durations: Vec<u32>,
    flags: Vec<u32>,
    cts: Vec<i64>,
    data: Vec<Bytes>,
}

/// The moof's sequence number and each track's run, by track id, with the sample
/// bytes cut out of the mdat through the trun data offsets.
fn parse_part(bytes: &Bytes) -> (u32, Vec<(u32, Run)>) {
    let mut buf: &[u8] = bytes;
    let moof = Moof::decode(&mut buf).unwrap();
    let moof_len = bytes.len() - buf.len();
    assert_eq!(&buf[4..8], b"mdat");
    let mdat_len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    assert_eq!(mdat_len, buf.len(), "one mdat fills the rest of the part");
    let mut runs = Vec::new();
    let mut data_total = 0;
    for traf in &moof.traf {
        assert!(traf.tfhd.default_base_is_moof);
        assert_eq!(traf.trun.len(), 1);
        let trun = &traf.trun[0];
        let mut pos = trun.data_offset.unwrap() as usize;
        assert!(pos >= moof_len + 8);
        let mut run = Run {
            tfdt: traf.tfdt.as_ref().unwrap().base_media_decode_time,
            durations: vec![],
            flags: vec![],
            cts: vec![],
            data: vec![],
        };
        for e in trun.samples.iter() {
            let size = e.size.unwrap() as usize;
            run.durations.push(e.duration.unwrap());
            run.flags.push(e.flags.unwrap());
            run.cts.push(e.cts.unwrap_or(0));
            run.data.push(bytes.slice(pos..pos + size));
            pos += size;
            data_total += size;
        }
        runs.push((traf.tfhd.track_id, run));
    }
    assert_eq!(
        data_total + 8,
        mdat_len,
        "the mdat holds exactly the samples"
    );
    (moof.mfhd.sequence_number, runs)
}

fn track(runs: &[(u32, Run)], id: u32) -> Option<&Run> {
    runs.iter().find(|(t, _)| *t == id).map(|(_, r)| r)
}

/// The coded frames of one kind in the fixture: (timestamp, keyframe, cts ms, body).
fn coded(frames: &[MediaFrame], kind: FrameKind) -> Vec<(u32, bool, i32, Bytes)> {
    frames
        .iter()
        .filter(|f| f.kind == kind && !f.sequence_header)
        .filter_map(|f| match kind {
            FrameKind::Video => {
                let info = onair_flv::parse_video_tag(&f.payload).unwrap();
                info.coded_frame.then(|| {
                    (
                        f.timestamp,
                        info.keyframe,
                        info.composition_time,
                        f.payload.slice(info.header_len..),
                    )
                })
            }
            _ => {
                let info = onair_flv::parse_audio_tag(&f.payload).unwrap();
                info.coded_frame
                    .then(|| (f.timestamp, false, 0, f.payload.slice(info.header_len..)))
            }
        })
        .collect()
}

#[test]
fn init_segment_describes_h264_and_aac() {
    let out = run(&fixture(), SegmenterSettings::default());
    assert!(matches!(out[0], Output::Init(_)), "init comes first");
    assert_eq!(inits(&out).len(), 1);
    let (ftyp, moov) = parse_init(inits(&out)[0]);
    assert_eq!(ftyp.major_brand, b"iso6".into());
    for brand in [b"iso6", b"cmfc", b"mp41"] {
        assert!(ftyp.compatible_brands.contains(&brand.into()));
    }
    assert_eq!(moov.trak.len(), 2);
    let video = &moov.trak[0];
    assert_eq!(video.tkhd.track_id, 1);
    assert_eq!(video.mdia.mdhd.timescale, 90_000);
    assert_eq!(video.mdia.hdlr.handler, b"vide".into());
    assert!(video.mdia.minf.vmhd.is_some());
    assert!(video.mdia.minf.stbl.stts.entries.is_empty());
    assert!(match &video.mdia.minf.stbl.stsz.samples {
        mp4_atom::StszSamples::Identical { count, .. } => *count == 0,
        mp4_atom::StszSamples::Different { sizes } => sizes.is_empty(),
    });
    let Codec::Avc1(avc1) = &video.mdia.minf.stbl.stsd.codecs[0] else {
        panic!("not avc1: {:?}", video.mdia.minf.stbl.stsd.codecs);
    };
    assert_eq!((avc1.visual.width, avc1.visual.height), (640, 360));
    assert_eq!(avc1.avcc.avc_profile_indication, 77, "main profile");
    assert_eq!(avc1.avcc.length_size, 4);
    assert_eq!(avc1.avcc.sequence_parameter_sets.len(), 1);

    let audio = &moov.trak[1];
    assert_eq!(audio.tkhd.track_id, 2);
    assert_eq!(audio.mdia.mdhd.timescale, 44_100);
    assert_eq!(audio.mdia.hdlr.handler, b"soun".into());
    assert!(audio.mdia.minf.smhd.is_some());
    let Codec::Mp4a(mp4a) = &audio.mdia.minf.stbl.stsd.codecs[0] else {
        panic!("not mp4a");
    };
    assert_eq!(mp4a.audio.channel_count, 2);
    let dec = &mp4a.esds.es_desc.dec_config;
    assert_eq!(dec.object_type_indication, 0x40);
    let asc = dec.dec_specific.as_ref().unwrap();
    assert_eq!((asc.profile, asc.freq_index, asc.chan_conf), (2, 4, 2));

    let mvex = moov.mvex.unwrap();
    let ids: Vec<u32> = mvex.trex.iter().map(|t| t.track_id).collect();
    assert_eq!(ids, vec![1, 2]);
}

#[test]
fn fixture_parts_carry_every_sample_with_durations_flags_and_cts() {
    let frames = fixture();
    let out = run(&frames, SegmenterSettings::default());
    let video_in = coded(&frames, FrameKind::Video);
    let audio_in = coded(&frames, FrameKind::Audio);
    assert_eq!(video_in.len(), 180);

    let mut video = Vec::new(); // (dts, duration, flags, cts, data)
    let mut audio = Vec::new();
    let mut next_tfdt = [None, None];
    let mut last_seq = 0;
    for part in parts(&out) {
        let (seq, runs) = parse_part(&part.bytes);
        assert_eq!(seq, last_seq + 1, "mfhd sequence numbers count up");
        last_seq = seq;
        let v = track(&runs, 1).unwrap();
        assert_eq!(part.start_ms, v.tfdt / 90);
        let ticks: u64 = v.durations.iter().map(|&d| u64::from(d)).sum();
        assert_eq!(
            part.duration,
            Duration::from_nanos(ticks * 1_000_000_000 / 90_000)
        );
        assert_eq!(part.independent, v.flags[0] == SYNC);
        for (i, (id, run)) in runs.iter().enumerate() {
            assert_eq!(*id as usize, i + 1, "video traf first, then audio");
            if let Some(expected) = next_tfdt[i] {
                assert_eq!(run.tfdt, expected, "tfdt continues across parts");
            }
            let sum: u64 = run.durations.iter().map(|&d| u64::from(d)).sum();
            next_tfdt[i] = Some(run.tfdt + sum);
            let mut dts = run.tfdt;
            for s in 0..run.durations.len() {
                let sample = (
                    dts,
                    run.durations[s],
                    run.flags[s],
                    run.cts[s],
                    run.data[s].clone(),
                );
                if i == 0 {
                    video.push(sample);
                } else {
                    audio.push(sample);
                }
                dts += u64::from(run.durations[s]);
            }
        }
    }
    assert_eq!(video.len(), video_in.len());
    for (k, ((dts, duration, flags, cts, data), (ts, key, ct, body))) in
        video.iter().zip(&video_in).enumerate()
    {
        assert_eq!(*dts, u64::from(*ts) * 90);
        let expected = match video_in.get(k + 1) {
            Some(next) => (next.0 - ts) * 90,
            None => video[k - 1].1, // the last one repeats the one before
        };
        assert_eq!(*duration, expected);
        assert_eq!(*flags, if *key { SYNC } else { NON_SYNC });
        assert_eq!(*cts, i64::from(*ct) * 90);
        assert_eq!(data, body);
    }
    assert!(video.iter().any(|s| s.3 > 0), "the fixture has B-frames");
    assert_eq!(audio.len(), audio_in.len());
    for ((dts, duration, flags, _, data), (ts, _, _, body)) in audio.iter().zip(&audio_in) {
        assert_eq!(*duration, 1024);
        assert_eq!(*flags, SYNC);
        assert!((*dts as i64 - i64::from(*ts) * 44_100 / 1000).abs() <= 512);
        assert_eq!(data, body);
    }
}

#[test]
fn parts_are_cut_at_the_target_and_segments_on_keyframes() {
    let frames = fixture();
    let settings = SegmenterSettings::default();
    let out = run(&frames, settings);
    let parts = parts(&out);
    let segment_starts: Vec<u64> = parts
        .iter()
        .filter(|p| p.starts_segment)
        .map(|p| p.start_ms)
        .collect();
    // A 1 s GOP, 2 s segments.
    assert_eq!(segment_starts, vec![0, 2000, 4000]);
    for (i, p) in parts.iter().enumerate() {
        if p.starts_segment {
            assert!(p.independent);
        }
        let Some(next) = parts.get(i + 1) else {
            continue;
        };
        assert_eq!(p.start_ms + p.duration.as_millis() as u64, next.start_ms);
        if !next.starts_segment {
            assert!(p.duration >= settings.part_target, "{p:?}");
        }
        // Cut at the first frame that reaches the target: without its last sample
        // the part would be short.
        let (_, runs) = parse_part(&p.bytes);
        let last = u64::from(*track(&runs, 1).unwrap().durations.last().unwrap());
        assert!(p.duration.as_nanos() as u64 - last * 1_000_000_000 / 90_000 < 333_000_000);
    }
    // 6 s of 333 ms parts, a few shortened at segment starts.
    assert!((18..=21).contains(&parts.len()), "{}", parts.len());
    // The keyframe at 1 s (its GOP is inside a segment) happens to start a part:
    // independent, not a segment start.
    let at_1s = parts.iter().find(|p| p.start_ms == 1000).unwrap();
    assert!(at_1s.independent && !at_1s.starts_segment);
    assert_eq!(parts.iter().filter(|p| p.independent).count(), 6);
}

#[test]
fn a_part_comes_out_with_the_frame_that_closes_it() {
    let frames = fixture();
    let mut seg = Segmenter::new(SegmenterSettings::default());
    let mut out = Vec::new();
    let mut open_since: Option<u64> = None;
    for f in &frames {
        let before = out.len();
        seg.push(f, &mut out).unwrap();
        for o in &out[before..] {
            if let Output::Part(p) = o {
                // Only a video frame at the next part's start can close a part.
                assert_eq!(f.kind, FrameKind::Video);
                assert_eq!(
                    u64::from(f.timestamp),
                    p.start_ms + p.duration.as_millis() as u64
                );
                open_since = None;
            }
        }
        let info = (f.kind == FrameKind::Video && !f.sequence_header)
            .then(|| onair_flv::parse_video_tag(&f.payload).unwrap());
        if let Some(info) = info.filter(|i| i.coded_frame) {
            let start = *open_since.get_or_insert(u64::from(f.timestamp));
            // Never more than one frame past the target without a part.
            assert!(u64::from(f.timestamp) - start < 333 + 34 || info.keyframe);
        }
    }
}

/// The fixture with a different AVC decoder configuration sent at `at_ms`.
fn with_new_avc_config(frames: &[MediaFrame], at_ms: u32) -> Vec<MediaFrame> {
    let header = frames
        .iter()
        .find(|f| f.kind == FrameKind::Video && f.sequence_header)
        .unwrap();
    let mut changed = header.payload.to_vec();
    changed[5 + 2] ^= 0x04; // profile_compatibility: a different record, still valid
    let mut out = Vec::new();
    let mut inserted = false;
    for f in frames {
        if !inserted && f.kind == FrameKind::Video && f.timestamp >= at_ms && !f.sequence_header {
            out.push(MediaFrame {
                timestamp: f.timestamp,
                payload: Bytes::from(changed.clone()),
                ..header.clone()
            });
            inserted = true;
        }
        out.push(f.clone());
    }
    out
}

#[test]
fn a_new_codec_config_emits_init_and_starts_a_segment() {
    let frames = with_new_avc_config(&fixture(), 2500);
    let out = run(&frames, SegmenterSettings::default());
    let inits = inits(&out);
    assert_eq!(inits.len(), 2);
    let (_, moov) = parse_init(inits[1]);
    let Codec::Avc1(avc1) = &moov.trak[0].mdia.minf.stbl.stsd.codecs[0] else {
        panic!("not avc1");
    };
    assert_ne!(avc1.avcc.profile_compatibility, 0);
    let second = out
        .iter()
        .position(|o| o == &Output::Init(inits[1].clone()))
        .unwrap();
    let Output::Part(before) = &out[second - 1] else {
        panic!("a part is flushed before the new init");
    };
    assert!(before.start_ms + before.duration.as_millis() as u64 >= 2490);
    let Output::Part(after) = &out[second + 1] else {
        panic!("a part follows the new init");
    };
    assert!(after.starts_segment && after.independent);
    // The next keyframe after 2.5 s is at 3 s; frames in between were undecodable.
    assert_eq!(after.start_ms, 3000);
    // The same header again changes nothing.
    let header = frames
        .iter()
        .find(|f| f.sequence_header && f.kind == FrameKind::Video)
        .unwrap();
    let mut seg = Segmenter::new(SegmenterSettings::default());
    let mut o = Vec::new();
    for f in fixture().iter().take(100) {
        seg.push(f, &mut o).unwrap();
    }
    let n = o.len();
    seg.push(header, &mut o).unwrap();
    assert_eq!(o.len(), n);
}

#[test]
fn an_aac_config_change_emits_init_with_the_new_rate() {
    let mut frames = fixture();
    let at = frames.iter().position(|f| f.timestamp >= 3000).unwrap();
    // AAC-LC, 48 kHz, stereo.
    frames.insert(
        at,
        MediaFrame {
            kind: FrameKind::Audio,
            timestamp: 3000,
            keyframe: false,
            sequence_header: true,
            payload: Bytes::from_static(&[0xaf, 0, 0x11, 0x90]),
        },
    );
    let out = run(&frames, SegmenterSettings::default());
    let inits = inits(&out);
    assert_eq!(inits.len(), 2);
    let (_, moov) = parse_init(inits[1]);
    assert_eq!(moov.trak[1].mdia.mdhd.timescale, 48_000);
    let i = out
        .iter()
        .position(|o| o == &Output::Init(inits[1].clone()))
        .unwrap();
    let Output::Part(after) = &out[i + 1] else {
        panic!()
    };
    assert!(after.starts_segment && after.start_ms >= 3000);
}

fn audio_only(frames: &[MediaFrame]) -> Vec<MediaFrame> {
    frames
        .iter()
        .filter(|f| f.kind == FrameKind::Audio)
        .cloned()
        .collect()
}

#[test]
fn audio_only_stream_starts_after_the_header_wait_and_loses_nothing() {
    let frames = audio_only(&fixture());
    let audio_in = coded(&frames, FrameKind::Audio);
    let mut seg = Segmenter::new(SegmenterSettings::default());
    let mut out = Vec::new();
    let mut started_at = None;
    for f in &frames {
        seg.push(f, &mut out).unwrap();
        if started_at.is_none() && !out.is_empty() {
            started_at = Some(f.timestamp);
        }
    }
    seg.finish(&mut out);
    // ffmpeg's first AAC frame is at 44 ms.
    let first = audio_in[0].0;
    let started_at = started_at.unwrap() - first;
    assert!((1000..1030).contains(&started_at), "{started_at}");
    let (_, moov) = parse_init(inits(&out)[0]);
    assert_eq!(moov.trak.len(), 1);
    assert_eq!(moov.trak[0].tkhd.track_id, 2);
    let parts = parts(&out);
    assert_eq!(parts[0].start_ms, u64::from(first));
    let mut samples = 0;
    let mut next = None;
    for p in &parts {
        assert!(p.independent);
        let (_, runs) = parse_part(&p.bytes);
        assert_eq!(runs.len(), 1);
        let a = track(&runs, 2).unwrap();
        if let Some(n) = next {
            assert_eq!(a.tfdt, n);
        }
        let ticks: u64 = a.durations.iter().map(|&d| u64::from(d)).sum();
        next = Some(a.tfdt + ticks);
        samples += a.durations.len();
    }
    assert_eq!(samples, audio_in.len());
    for p in &parts[..parts.len() - 1] {
        assert!(p.duration >= Duration::from_millis(333));
        assert!(p.duration < Duration::from_millis(333 + 24));
    }
    let starts: Vec<u64> = parts
        .iter()
        .filter(|p| p.starts_segment)
        .map(|p| p.start_ms)
        .collect();
    assert_eq!(starts.len(), 3, "{starts:?}");
    assert_eq!(starts[0], u64::from(first));
    assert!(starts
        .windows(2)
        .all(|w| w[1] - w[0] >= 2000 && w[1] - w[0] < 2400));
}

#[test]
fn metadata_without_video_starts_audio_only_at_once() {
    let frames = fixture();
    let meta = frames.iter().find(|f| f.kind == FrameKind::Script).unwrap();
    let mut values = onair_amf0_values(&meta.payload);
    values.retain(|k| !k.starts_with("video"));
    let mut seg = Segmenter::new(SegmenterSettings::default());
    let mut out = Vec::new();
    seg.push(&script(&values), &mut out).unwrap();
    for f in audio_only(&frames).iter().take(2) {
        seg.push(f, &mut out).unwrap();
    }
    assert!(seg.init_segment().is_some());
    assert_eq!(inits(&out).len(), 1);
}

/// The `onMetaData` keys of a script tag (the test only needs which keys exist).
fn onair_amf0_values(payload: &[u8]) -> Vec<String> {
    let meta = onair_flv::parse_metadata(payload).unwrap();
    let mut keys = Vec::new();
    if meta.video_codec_id.is_some() {
        keys.push("videocodecid".to_owned());
    }
    if meta.audio_codec_id.is_some() {
        keys.push("audiocodecid".to_owned());
    }
    keys
}

/// A script tag `onMetaData` with the given keys set to codec id numbers.
fn script(keys: &[String]) -> MediaFrame {
    use onair_amf0::Value;
    let props: Vec<(String, Value)> = keys
        .iter()
        .map(|k| {
            (
                k.clone(),
                Value::Number(if k.starts_with("video") { 7.0 } else { 10.0 }),
            )
        })
        .collect();
    let payload =
        onair_amf0::encode(&[Value::String("onMetaData".into()), Value::EcmaArray(props)]);
    MediaFrame {
        kind: FrameKind::Script,
        timestamp: 0,
        keyframe: false,
        sequence_header: false,
        payload,
    }
}

#[test]
fn video_only_stream_without_metadata() {
    let frames: Vec<MediaFrame> = fixture()
        .into_iter()
        .filter(|f| f.kind == FrameKind::Video)
        .collect();
    let out = run(&frames, SegmenterSettings::default());
    let (_, moov) = parse_init(inits(&out)[0]);
    assert_eq!(moov.trak.len(), 1);
    assert_eq!(moov.trak[0].tkhd.track_id, 1);
    let parts = parts(&out);
    assert_eq!(parts[0].start_ms, 0);
    assert!(parts[0].starts_segment && parts[0].independent);
    let total: usize = parts
        .iter()
        .map(|p| track(&parse_part(&p.bytes).1, 1).unwrap().durations.len())
        .sum();
    assert_eq!(total, 180);
}

/// An H.264 stream from scratch: the fixture's header and frames with the given
/// timestamps and sizes (every 30th a keyframe).
fn synthetic_video(timestamps: &[u32], size: usize) -> Vec<MediaFrame> {
    let header = fixture()
        .into_iter()
        .find(|f| f.kind == FrameKind::Video && f.sequence_header)
        .unwrap();
    let mut out = vec![header];
    for (i, &ts) in timestamps.iter().enumerate() {
        let key = i % 30 == 0;
        let mut payload = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        payload.extend_from_slice(&(size as u32 - 4).to_be_bytes());
        payload.resize(5 + size, 0x41);
        out.push(onair_flv::classify(FrameKind::Video, ts, Bytes::from(payload)).unwrap());
    }
    out
}

fn video_only_settings() -> Vec<MediaFrame> {
    vec![script(&["videocodecid".to_owned()])]
}

#[test]
fn timestamps_going_backwards_never_give_negative_or_zero_durations() {
    let mut ts: Vec<u32> = (0..60).map(|i| i * 33).collect();
    ts.extend([1900, 1900, 1800, 500, 533, 566]);
    ts.extend((0..60).map(|i| 600 + i * 33));
    let mut frames = video_only_settings();
    frames.extend(synthetic_video(&ts, 100));
    let out = run(&frames, SegmenterSettings::default());
    let mut next = None;
    let mut count = 0;
    for p in parts(&out) {
        let (_, runs) = parse_part(&p.bytes);
        let v = track(&runs, 1).unwrap();
        if let Some(n) = next {
            assert!(v.tfdt >= n, "tfdt never goes back");
        }
        assert!(v.durations.iter().all(|&d| d > 0 && d <= 10 * 90_000));
        next = Some(v.tfdt + v.durations.iter().map(|&d| u64::from(d)).sum::<u64>());
        count += v.durations.len();
    }
    assert_eq!(count, ts.len());
}

#[test]
fn parts_are_bounded_in_bytes_and_samples() {
    // 3 MiB pictures: at most two fit in an 8 MiB part.
    let ts: Vec<u32> = (0..10).map(|i| i * 33).collect();
    let mut frames = video_only_settings();
    frames.extend(synthetic_video(&ts, 3 << 20));
    let out = run(&frames, SegmenterSettings::default());
    let big = parts(&out);
    assert_eq!(big.len(), 5);
    assert!(big.iter().all(|p| p.bytes.len() <= MAX_PART_BYTES + 4096));

    // A stalled video track with audio flowing: the part is cut at the sample limit.
    let fixture = fixture();
    let mut frames: Vec<MediaFrame> = fixture
        .iter()
        .filter(|f| f.kind != FrameKind::Video || f.timestamp < 100)
        .cloned()
        .collect();
    let aac = frames
        .iter()
        .rfind(|f| f.kind == FrameKind::Audio && !f.sequence_header)
        .unwrap()
        .clone();
    let mut ts = aac.timestamp;
    for _ in 0..2500 {
        ts += 23;
        frames.push(MediaFrame {
            timestamp: ts,
            ..aac.clone()
        });
    }
    let out = run(&frames, SegmenterSettings::default());
    let sizes: Vec<usize> = parts(&out)
        .iter()
        .map(|p| {
            parse_part(&p.bytes)
                .1
                .iter()
                .map(|(_, r)| r.durations.len())
                .sum()
        })
        .collect();
    assert!(sizes.iter().all(|&n| n <= MAX_PART_SAMPLES));
    assert!(
        sizes.iter().filter(|&&n| n == MAX_PART_SAMPLES).count() >= 2,
        "{sizes:?}"
    );

    // A single frame over the limit is refused, and the segmenter goes on.
    let mut seg = Segmenter::new(SegmenterSettings::default());
    let mut out = Vec::new();
    let frames = synthetic_video(&[0, 33, 66], 100);
    seg.push(&frames[0], &mut out).unwrap();
    seg.push(&frames[1], &mut out).unwrap();
    let huge = synthetic_video(&[40], MAX_PART_BYTES + 1).pop().unwrap();
    assert!(matches!(
        seg.push(&huge, &mut out),
        Err(Error::FrameTooLarge { media: "video", .. })
    ));
    seg.push(&frames[2], &mut out).unwrap();
}

#[test]
fn bad_frames_are_errors_about_that_frame_only() {
    let frames = fixture();
    let mut seg = Segmenter::new(SegmenterSettings::default());
    let mut out = Vec::new();
    let half = frames.len() / 2;
    for f in &frames[..half] {
        seg.push(f, &mut out).unwrap();
    }
    let bad = |kind, payload: &'static [u8]| MediaFrame {
        kind,
        timestamp: 3000,
        keyframe: false,
        sequence_header: false,
        payload: Bytes::from_static(payload),
    };
    assert!(matches!(
        seg.push(&bad(FrameKind::Video, &[]), &mut out),
        Err(Error::Flv(_))
    ));
    assert!(matches!(
        seg.push(&bad(FrameKind::Audio, &[0x2f, 0xff, 0xfb]), &mut out),
        Err(Error::UnsupportedAudioCodec { .. })
    ));
    let mut av1 = vec![0x91];
    av1.extend_from_slice(b"av01\x12\x00");
    assert!(matches!(
        seg.push(
            &MediaFrame {
                payload: Bytes::from(av1),
                ..bad(FrameKind::Video, &[])
            },
            &mut out
        ),
        Err(Error::UnsupportedVideoCodec { .. })
    ));
    // A broken AVC sequence header.
    assert!(seg
        .push(
            &bad(FrameKind::Video, &[0x17, 0, 0, 0, 0, 1, 0x64]),
            &mut out
        )
        .is_err());
    for f in &frames[half..] {
        seg.push(f, &mut out).unwrap();
    }
    seg.finish(&mut out);
    assert_eq!(inits(&out).len(), 1);
    let total: usize = parts(&out)
        .iter()
        .map(|p| track(&parse_part(&p.bytes).1, 1).unwrap().durations.len())
        .sum();
    assert_eq!(total, 180);
}

#[test]
fn finish_closes_the_last_part_and_nothing_comes_before_headers() {
    let mut seg = Segmenter::new(SegmenterSettings::default());
    let mut out = Vec::new();
    seg.finish(&mut out);
    assert!(out.is_empty() && seg.init_segment().is_none());
    // Pictures before any header are dropped.
    let frames = synthetic_video(&[0, 33], 10);
    seg.push(&frames[1], &mut out).unwrap();
    assert!(out.is_empty());
    // A short stream that never reaches the header wait still comes out at the end.
    for f in &frames {
        seg.push(f, &mut out).unwrap();
    }
    assert!(out.is_empty());
    seg.finish(&mut out);
    let parts = parts(&out);
    assert_eq!(parts.len(), 1);
    let (_, runs) = parse_part(&parts[0].bytes);
    assert_eq!(track(&runs, 1).unwrap().durations, vec![2970, 2970]);
}

#[test]
fn enhanced_rtmp_hevc_gets_an_hvc1_track() {
    let mut header = vec![0x90];
    header.extend_from_slice(b"hvc1");
    header.extend_from_slice(HVCC_426X240);
    let mut frames = video_only_settings();
    frames.push(onair_flv::classify(FrameKind::Video, 0, Bytes::from(header)).unwrap());
    for i in 0..10u32 {
        let mut f = vec![if i == 0 { 0x93 } else { 0xa3 }];
        f.extend_from_slice(b"hvc1");
        f.extend_from_slice(&[0, 0, 0, 3, 0x26, 0x01, 0xaf]);
        frames.push(onair_flv::classify(FrameKind::Video, i * 40, Bytes::from(f)).unwrap());
    }
    let out = run(&frames, SegmenterSettings::default());
    let (_, moov) = parse_init(inits(&out)[0]);
    let Codec::Hvc1(hvc1) = &moov.trak[0].mdia.minf.stbl.stsd.codecs[0] else {
        panic!("not hvc1");
    };
    assert_eq!((hvc1.visual.width, hvc1.visual.height), (426, 240));
    assert!(!hvc1.hvcc.arrays.is_empty());
    let parts = parts(&out);
    let (_, runs) = parse_part(&parts[0].bytes);
    assert_eq!(
        track(&runs, 1).unwrap().data[0].as_ref(),
        &[0, 0, 0, 3, 0x26, 0x01, 0xaf]
    );
}

#[test]
fn a_video_header_after_an_audio_only_start_adds_the_track() {
    let frames = fixture();
    let mut seg = Segmenter::new(SegmenterSettings::default());
    let mut out = Vec::new();
    // Audio alone for 1.5 s: the stream starts audio-only.
    for f in frames
        .iter()
        .filter(|f| f.kind == FrameKind::Audio && f.timestamp < 1500)
    {
        seg.push(f, &mut out).unwrap();
    }
    assert_eq!(inits(&out).len(), 1);
    let (_, moov) = parse_init(inits(&out)[0]);
    assert_eq!(moov.trak.len(), 1);
    // Then everything from 1.5 s on, with the video header in front.
    let header = frames
        .iter()
        .find(|f| f.kind == FrameKind::Video && f.sequence_header)
        .unwrap();
    seg.push(header, &mut out).unwrap();
    for f in frames
        .iter()
        .filter(|f| f.timestamp >= 1500 && f.kind != FrameKind::Script)
    {
        seg.push(f, &mut out).unwrap();
    }
    seg.finish(&mut out);
    let inits = inits(&out);
    assert_eq!(inits.len(), 2);
    let (_, moov) = parse_init(inits[1]);
    let ids: Vec<u32> = moov.trak.iter().map(|t| t.tkhd.track_id).collect();
    assert_eq!(ids, vec![1, 2]);
    let i = out
        .iter()
        .position(|o| o == &Output::Init(inits[1].clone()))
        .unwrap();
    let Output::Part(first) = &out[i + 1] else {
        panic!()
    };
    // The first keyframe after 1.5 s.
    assert_eq!(first.start_ms, 2000);
    assert!(first.starts_segment && first.independent);
    let (_, runs) = parse_part(&first.bytes);
    assert_eq!(track(&runs, 1).unwrap().flags[0], SYNC);
    assert!(track(&runs, 2).unwrap().tfdt >= 2000 * 44_100 / 1000);
}

/// Network input never panics: every fixture frame cut at every length, and junk.
#[test]
fn truncated_and_junk_frames_never_panic() {
    let frames = fixture();
    let mut seg = Segmenter::new(SegmenterSettings::default());
    let mut out = Vec::new();
    for f in frames.iter().take(60) {
        for cut in 0..f.payload.len().min(80) {
            let _ = seg.push(
                &MediaFrame {
                    payload: f.payload.slice(..cut),
                    ..f.clone()
                },
                &mut out,
            );
        }
        let _ = seg.push(f, &mut out);
    }
    let mut x: u32 = 0x1234_5678;
    for i in 0..2000u32 {
        let mut junk = Vec::new();
        for _ in 0..(i % 40) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            junk.push(x as u8);
        }
        let kind = [FrameKind::Audio, FrameKind::Video, FrameKind::Script][i as usize % 3];
        let _ = seg.push(
            &MediaFrame {
                kind,
                timestamp: x,
                keyframe: false,
                sequence_header: false,
                payload: Bytes::from(junk),
            },
            &mut out,
        );
    }
    seg.finish(&mut out);
    for p in parts(&out) {
        parse_part(&p.bytes);
    }
}
