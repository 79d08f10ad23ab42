//! Turning a tag body into the [`MediaFrame`] the server moves around.

use bytes::Bytes;
use onair_media::{FrameKind, MediaFrame};

use crate::{parse_audio_tag, parse_video_tag, Error};

/// Builds a [`MediaFrame`] with `keyframe` and `sequence_header` set from the audio or
/// video tag header (see [`VideoTagInfo`](crate::VideoTagInfo) for what counts as a
/// keyframe). Audio frames are never keyframes. Script data is not inspected: both
/// flags are false.
///
/// An error means the header is malformed or names a codec we do not handle; the
/// caller decides whether to drop the frame or the connection.
pub fn classify(kind: FrameKind, timestamp: u32, payload: Bytes) -> Result<MediaFrame, Error> {
    let (keyframe, sequence_header) = match kind {
        FrameKind::Video => {
            let info = parse_video_tag(&payload)?;
            (info.keyframe, info.sequence_header)
        }
        FrameKind::Audio => (false, parse_audio_tag(&payload)?.sequence_header),
        FrameKind::Script => (false, false),
    };
    Ok(MediaFrame {
        kind,
        timestamp,
        keyframe,
        sequence_header,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn classifies_legacy_frames() {
        let seq = classify(
            FrameKind::Video,
            0,
            Bytes::from_static(&[0x17, 0, 0, 0, 0, 1]),
        )
        .unwrap();
        assert!(seq.sequence_header && !seq.keyframe);
        let key = classify(
            FrameKind::Video,
            40,
            Bytes::from_static(&[0x17, 1, 0, 0, 0]),
        )
        .unwrap();
        assert!(key.keyframe && !key.sequence_header);
        assert_eq!(key.timestamp, 40);
        let aac = classify(
            FrameKind::Audio,
            0,
            Bytes::from_static(&[0xaf, 0, 0x12, 0x10]),
        )
        .unwrap();
        assert!(aac.sequence_header && !aac.keyframe);
        let script = classify(FrameKind::Script, 0, Bytes::from_static(b"anything")).unwrap();
        assert!(!script.sequence_header && !script.keyframe);
        assert!(classify(FrameKind::Video, 0, Bytes::new()).is_err());
        assert!(classify(FrameKind::Audio, 0, Bytes::from_static(&[0x6f])).is_err());
    }

    #[test]
    fn classifies_enhanced_hevc() {
        let mut seq = vec![0x90];
        seq.extend_from_slice(b"hvc1");
        seq.extend_from_slice(fixtures::X265_HVCC_426X240);
        let frame = classify(FrameKind::Video, 0, Bytes::from(seq.clone())).unwrap();
        assert!(frame.sequence_header && !frame.keyframe);
        let info = parse_video_tag(&seq).unwrap();
        let config = crate::parse_hevc_config(&seq[info.header_len..]).unwrap();
        assert_eq!((config.width, config.height), (426, 240));

        let mut key = vec![0x93];
        key.extend_from_slice(b"hvc1");
        key.extend_from_slice(&[0, 0, 0, 3, 0x26, 0x01, 0xaf]);
        let frame = classify(FrameKind::Video, 33, Bytes::from(key)).unwrap();
        assert!(frame.keyframe && !frame.sequence_header);

        let mut inter = vec![0xa1];
        inter.extend_from_slice(b"hvc1");
        inter.extend_from_slice(&[0, 0, 0x21, 0, 0, 0, 3, 0x02, 0x01, 0xd0]);
        let frame = classify(FrameKind::Video, 66, Bytes::from(inter)).unwrap();
        assert!(!frame.keyframe && !frame.sequence_header);
    }

    #[test]
    fn every_fixture_tag_classifies() {
        for flv in fixtures::ALL_FLV {
            let tags = fixtures::tags(flv);
            let mut keyframes = 0;
            let mut sequence_headers = 0;
            for tag in tags {
                let frame = classify(tag.kind, tag.timestamp, tag.payload).unwrap();
                keyframes += usize::from(frame.keyframe);
                sequence_headers += usize::from(frame.sequence_header);
            }
            assert!(keyframes >= 1);
            assert!(sequence_headers >= 1);
        }
    }

    #[test]
    fn ffmpeg_320x240_has_one_keyframe_per_second() {
        let frames: Vec<MediaFrame> = fixtures::tags(fixtures::TESTSRC2_320X240)
            .into_iter()
            .map(|t| classify(t.kind, t.timestamp, t.payload).unwrap())
            .collect();
        let video: Vec<&MediaFrame> = frames
            .iter()
            .filter(|f| f.kind == FrameKind::Video)
            .collect();
        assert!(video[0].sequence_header);
        assert!(
            video[1].keyframe,
            "first picture after the sequence header is an IDR"
        );
        // 2 s at 25 fps with -g 25.
        let keyframes: Vec<u32> = video
            .iter()
            .filter(|f| f.keyframe)
            .map(|f| f.timestamp)
            .collect();
        assert_eq!(keyframes, vec![0, 1000]);
        let infos: Vec<crate::VideoTagInfo> = video
            .iter()
            .map(|f| parse_video_tag(&f.payload).unwrap())
            .collect();
        assert_eq!(infos.iter().filter(|i| i.coded_frame).count(), 50);
        // ffmpeg ends the stream with an AVC end-of-sequence tag.
        assert!(infos.last().unwrap().end_of_sequence);
    }
}
