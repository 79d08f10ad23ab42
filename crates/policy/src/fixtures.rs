//! Frames for the tests: made by hand, or taken from ffmpeg's captures in
//! `crates/flv/testdata` (see its README for the commands that made them).

use bytes::Bytes;
use onair_amf0::Value;
use onair_flv::FlvReader;
use onair_media::{FrameKind, MediaFrame};

/// H.264 High 320x240 25 fps (`avc1.64000d`), AAC-LC 44.1 kHz mono, `onMetaData`.
pub(crate) const TESTSRC2_320X240: &[u8] =
    include_bytes!("../../flv/testdata/ffmpeg_testsrc2_320x240_25fps_aac.flv");
/// H.264 High 1280x720 30 fps (`avc1.64001f`), AAC-LC 48 kHz mono.
pub(crate) const TESTSRC2_1280X720: &[u8] =
    include_bytes!("../../flv/testdata/ffmpeg_testsrc2_1280x720_30fps_aac.flv");
/// A bare `HEVCDecoderConfigurationRecord`, 426x240.
pub(crate) const X265_HVCC_426X240: &[u8] =
    include_bytes!("../../flv/testdata/x265_hvcC_426x240.bin");

/// Every tag of a capture, classified as the server does.
pub(crate) fn frames(flv: &[u8]) -> Vec<MediaFrame> {
    let mut reader = FlvReader::new(1 << 20);
    reader.push(flv);
    let mut frames = Vec::new();
    while let Some(tag) = reader.next_tag().unwrap() {
        frames.push(onair_flv::classify(tag.kind, tag.timestamp, tag.payload).unwrap());
    }
    frames
}

/// The first sequence header of `kind` in a capture.
pub(crate) fn sequence_header(flv: &[u8], kind: FrameKind) -> MediaFrame {
    frames(flv)
        .into_iter()
        .find(|f| f.kind == kind && f.sequence_header)
        .unwrap()
}

pub(crate) fn frame(kind: FrameKind, timestamp: u32, keyframe: bool, size: usize) -> MediaFrame {
    MediaFrame {
        kind,
        timestamp,
        keyframe,
        sequence_header: false,
        payload: Bytes::from(vec![0u8; size]),
    }
}

pub(crate) fn keyframe(timestamp: u32) -> MediaFrame {
    frame(FrameKind::Video, timestamp, true, 100)
}

pub(crate) fn picture(timestamp: u32) -> MediaFrame {
    frame(FrameKind::Video, timestamp, false, 10)
}

pub(crate) fn audio(timestamp: u32) -> MediaFrame {
    frame(FrameKind::Audio, timestamp, false, 10)
}

/// A legacy FLV sequence header carrying `record`.
pub(crate) fn header(kind: FrameKind, record: &[u8]) -> MediaFrame {
    let mut payload = match kind {
        FrameKind::Video => vec![0x17, 0, 0, 0, 0],
        _ => vec![0xaf, 0],
    };
    payload.extend_from_slice(record);
    MediaFrame {
        kind,
        timestamp: 0,
        keyframe: false,
        sequence_header: true,
        payload: Bytes::from(payload),
    }
}

/// `onMetaData` with these properties, as ffmpeg writes it (an ECMA array).
pub(crate) fn metadata(props: &[(&str, Value)]) -> MediaFrame {
    let props = props
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    MediaFrame {
        kind: FrameKind::Script,
        timestamp: 0,
        keyframe: false,
        sequence_header: false,
        payload: onair_amf0::encode(&[Value::String("onMetaData".into()), Value::EcmaArray(props)]),
    }
}
