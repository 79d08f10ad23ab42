//! Captured FLV files for tests; see `testdata/README.md` for the commands that made
//! them.

use onair_media::FrameKind;

use crate::{FlvReader, Tag};

pub(crate) const TESTSRC2_320X240: &[u8] =
    include_bytes!("../testdata/ffmpeg_testsrc2_320x240_25fps_aac.flv");
pub(crate) const TESTSRC2_1280X720: &[u8] =
    include_bytes!("../testdata/ffmpeg_testsrc2_1280x720_30fps_aac.flv");
pub(crate) const TESTSRC2_1920X1080: &[u8] =
    include_bytes!("../testdata/ffmpeg_testsrc2_1920x1080_3frames.flv");
pub(crate) const X264_HIGH422_CQM: &[u8] =
    include_bytes!("../testdata/ffmpeg_x264_high422_cqm_350x202.flv");
/// A bare `HEVCDecoderConfigurationRecord` (the `hvcC` box of an MP4).
pub(crate) const X265_HVCC_426X240: &[u8] = include_bytes!("../testdata/x265_hvcC_426x240.bin");

pub(crate) const ALL_FLV: [&[u8]; 4] = [
    TESTSRC2_320X240,
    TESTSRC2_1280X720,
    TESTSRC2_1920X1080,
    X264_HIGH422_CQM,
];

/// Every tag of a whole file; panics (it is a test) if the file does not parse.
pub(crate) fn tags(flv: &[u8]) -> Vec<Tag> {
    let mut reader = FlvReader::new(1 << 20);
    reader.push(flv);
    let mut tags = Vec::new();
    while let Some(tag) = reader.next_tag().unwrap() {
        tags.push(tag);
    }
    assert_eq!(reader.buffered(), 0, "trailing bytes after the last tag");
    tags
}

fn first_of(flv: &[u8], kind: FrameKind) -> bytes::Bytes {
    tags(flv)
        .into_iter()
        .find(|t| t.kind == kind)
        .map(|t| t.payload)
        .unwrap()
}

pub(crate) fn first_video_sequence_header(flv: &[u8]) -> bytes::Bytes {
    first_of(flv, FrameKind::Video)
}

pub(crate) fn first_audio_sequence_header(flv: &[u8]) -> bytes::Bytes {
    first_of(flv, FrameKind::Audio)
}
