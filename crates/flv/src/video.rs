//! The video tag header in front of every video tag body: the legacy FLV
//! `VideoTagHeader` (AVC, and HEVC under the widely used non-standard codec id 12)
//! and the Enhanced RTMP extended header (veovera E-RTMP v1/v2: `IsExHeader`,
//! `VideoPacketType`, FourCC, `ModEx` prefixes).

use onair_media::VideoCodec;

use crate::Error;

/// What a video tag header says about the frame that follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct VideoTagInfo {
    pub codec: VideoCodec,
    /// A coded frame that starts a group of pictures (frame type 1). Sequence headers
    /// are never keyframes here, even though encoders mark them with frame type 1.
    pub keyframe: bool,
    /// The body is a decoder configuration record (AVCC, HVCC, av1C, vpcC).
    pub sequence_header: bool,
    pub end_of_sequence: bool,
    /// The body after `header_len` is coded picture data (length-prefixed NAL units for
    /// AVC/HEVC, OBUs for AV1, a frame for VP9). False for sequence start/end,
    /// E-RTMP metadata and command frames, so a muxer knows what to skip.
    pub coded_frame: bool,
    /// Presentation minus decode time in milliseconds (AVC/HEVC `CodedFrames`).
    pub composition_time: i32,
    /// Bytes before the codec payload.
    pub header_len: usize,
}

const WHAT: &str = "video tag header";

// Legacy frame types.
const FRAME_KEY: u8 = 1;
const FRAME_COMMAND: u8 = 5;

// Legacy codec ids.
const CODEC_AVC: u8 = 7;
const CODEC_HEVC: u8 = 12;

// Legacy AVCPacketType.
const AVC_SEQUENCE_HEADER: u8 = 0;
const AVC_NALU: u8 = 1;
const AVC_END_OF_SEQUENCE: u8 = 2;

// Enhanced RTMP VideoPacketType.
const SEQUENCE_START: u8 = 0;
const CODED_FRAMES: u8 = 1;
const SEQUENCE_END: u8 = 2;
const CODED_FRAMES_X: u8 = 3;
const METADATA: u8 = 4;
const MPEG2TS_SEQUENCE_START: u8 = 5;
const MULTITRACK: u8 = 6;
const MOD_EX: u8 = 7;

/// Parses the video tag header at the start of an FLV video tag body / RTMP video
/// message.
pub fn parse_video_tag(payload: &[u8]) -> Result<VideoTagInfo, Error> {
    let first = *payload.first().ok_or(Error::Truncated {
        what: WHAT,
        offset: 0,
    })?;
    if first & 0x80 != 0 {
        parse_enhanced(payload, first)
    } else {
        parse_legacy(payload, first)
    }
}

fn parse_legacy(payload: &[u8], first: u8) -> Result<VideoTagInfo, Error> {
    let frame_type = first >> 4;
    let codec_id = first & 0x0f;
    let codec = match codec_id {
        CODEC_AVC => VideoCodec::H264,
        CODEC_HEVC => VideoCodec::Hevc,
        _ => return Err(Error::UnsupportedVideoCodec { codec_id }),
    };
    if frame_type == FRAME_COMMAND {
        // Video info/command frame: a command byte follows, no picture.
        return Ok(VideoTagInfo {
            codec,
            keyframe: false,
            sequence_header: false,
            end_of_sequence: false,
            coded_frame: false,
            composition_time: 0,
            header_len: 1,
        });
    }
    let header = payload.get(..5).ok_or(Error::Truncated {
        what: WHAT,
        offset: payload.len(),
    })?;
    let packet_type = header[1];
    let composition_time = si24([header[2], header[3], header[4]]);
    let (sequence_header, end_of_sequence, coded_frame) = match packet_type {
        AVC_SEQUENCE_HEADER => (true, false, false),
        AVC_NALU => (false, false, true),
        AVC_END_OF_SEQUENCE => (false, true, false),
        _ => {
            return Err(Error::UnsupportedPacketType {
                media: "video",
                packet_type,
                reason: "AVCPacketType must be 0, 1 or 2",
            })
        }
    };
    Ok(VideoTagInfo {
        codec,
        keyframe: coded_frame && frame_type == FRAME_KEY,
        sequence_header,
        end_of_sequence,
        coded_frame,
        composition_time: if coded_frame { composition_time } else { 0 },
        header_len: 5,
    })
}

fn parse_enhanced(payload: &[u8], first: u8) -> Result<VideoTagInfo, Error> {
    let frame_type = (first >> 4) & 0x07;
    let mut packet_type = first & 0x0f;
    let mut pos = 1;
    if packet_type == MOD_EX {
        (packet_type, pos) = skip_mod_ex(payload, pos, "video")?;
    }
    if packet_type != METADATA && frame_type == FRAME_COMMAND {
        return Err(Error::UnsupportedPacketType {
            media: "video",
            packet_type,
            reason: "Enhanced RTMP command frames carry no FourCC",
        });
    }
    if packet_type == MULTITRACK {
        return Err(Error::UnsupportedPacketType {
            media: "video",
            packet_type,
            reason: "Enhanced RTMP multitrack video is not supported",
        });
    }
    let fourcc = read_fourcc(payload, pos, WHAT)?;
    pos += 4;
    let codec = match &fourcc {
        b"avc1" => VideoCodec::H264,
        b"hvc1" => VideoCodec::Hevc,
        b"av01" => VideoCodec::Av1,
        b"vp09" => VideoCodec::Vp9,
        _ => return Err(Error::UnsupportedVideoFourCc { fourcc }),
    };
    let mut info = VideoTagInfo {
        codec,
        keyframe: false,
        sequence_header: false,
        end_of_sequence: false,
        coded_frame: false,
        composition_time: 0,
        header_len: pos,
    };
    match packet_type {
        SEQUENCE_START => info.sequence_header = true,
        SEQUENCE_END => info.end_of_sequence = true,
        CODED_FRAMES | CODED_FRAMES_X => {
            info.coded_frame = true;
            info.keyframe = frame_type == FRAME_KEY;
            let has_composition_time =
                packet_type == CODED_FRAMES && matches!(codec, VideoCodec::H264 | VideoCodec::Hevc);
            if has_composition_time {
                let ct = payload.get(pos..pos + 3).ok_or(Error::Truncated {
                    what: WHAT,
                    offset: payload.len(),
                })?;
                info.composition_time = si24([ct[0], ct[1], ct[2]]);
                info.header_len = pos + 3;
            }
        }
        // AMF-encoded video metadata (HDR colour info) or an AV1 MPEG-2 TS descriptor:
        // passed along, neither configures the decoder nor carries a picture.
        METADATA | MPEG2TS_SEQUENCE_START => {}
        _ => {
            return Err(Error::UnsupportedPacketType {
                media: "video",
                packet_type,
                reason: "reserved Enhanced RTMP VideoPacketType",
            })
        }
    }
    Ok(info)
}

/// Skips E-RTMP v2 `ModEx` prefixes starting at `pos` (just after the first byte);
/// returns the real packet type and the position after the last prefix. Shared by
/// audio and video, whose `ModEx` layouts are the same.
pub(crate) fn skip_mod_ex(
    payload: &[u8],
    mut pos: usize,
    media: &'static str,
) -> Result<(u8, usize), Error> {
    let what = if media == "audio" {
        "audio tag header"
    } else {
        WHAT
    };
    let truncated = || Error::Truncated {
        what,
        offset: payload.len(),
    };
    // Each prefix consumes at least two bytes, so the loop ends with the payload.
    loop {
        let mut size = usize::from(*payload.get(pos).ok_or_else(truncated)?) + 1;
        pos += 1;
        if size == 256 {
            let b = payload.get(pos..pos + 2).ok_or_else(truncated)?;
            size = usize::from(u16::from_be_bytes([b[0], b[1]])) + 1;
            pos += 2;
        }
        // The ModEx data (e.g. a nanosecond timestamp offset) is not needed here.
        pos = pos.checked_add(size).ok_or_else(truncated)?;
        let next = *payload.get(pos).ok_or_else(truncated)?;
        pos += 1;
        let packet_type = next & 0x0f;
        if packet_type != MOD_EX {
            return Ok((packet_type, pos));
        }
    }
}

pub(crate) fn read_fourcc(
    payload: &[u8],
    pos: usize,
    what: &'static str,
) -> Result<[u8; 4], Error> {
    let b = payload.get(pos..pos + 4).ok_or(Error::Truncated {
        what,
        offset: payload.len(),
    })?;
    Ok([b[0], b[1], b[2], b[3]])
}

/// A signed 24-bit big-endian integer.
fn si24(b: [u8; 3]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], 0]) >> 8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_avc_packets() {
        let seq = parse_video_tag(&[0x17, 0, 0, 0, 0, 1, 0x64]).unwrap();
        assert_eq!(seq.codec, VideoCodec::H264);
        assert!(seq.sequence_header && !seq.keyframe && !seq.coded_frame);
        assert_eq!(seq.header_len, 5);

        let key = parse_video_tag(&[0x17, 1, 0, 0, 0x50, 0, 0, 0, 1, 0x65]).unwrap();
        assert!(key.keyframe && key.coded_frame && !key.sequence_header);
        assert_eq!(key.composition_time, 80);

        let inter = parse_video_tag(&[0x27, 1, 0xff, 0xff, 0xd8, 0, 0, 0, 1, 0x41]).unwrap();
        assert!(!inter.keyframe && inter.coded_frame);
        assert_eq!(inter.composition_time, -40);

        let eos = parse_video_tag(&[0x17, 2, 0, 0, 0]).unwrap();
        assert!(eos.end_of_sequence && !eos.keyframe && !eos.coded_frame);
    }

    #[test]
    fn legacy_hevc_codec_id_12() {
        let info = parse_video_tag(&[0x1c, 1, 0, 0, 0, 0, 0, 0, 1, 0x26]).unwrap();
        assert_eq!(info.codec, VideoCodec::Hevc);
        assert!(info.keyframe);
    }

    #[test]
    fn legacy_command_frame_is_not_a_picture() {
        let info = parse_video_tag(&[0x57, 0x01]).unwrap();
        assert!(!info.keyframe && !info.coded_frame && !info.sequence_header);
        assert_eq!(info.header_len, 1);
    }

    #[test]
    fn legacy_errors() {
        assert!(matches!(
            parse_video_tag(&[]),
            Err(Error::Truncated { offset: 0, .. })
        ));
        assert!(matches!(
            parse_video_tag(&[0x17, 1, 0]),
            Err(Error::Truncated { .. })
        ));
        // Sorenson H.263, VP6: not something we forward.
        assert_eq!(
            parse_video_tag(&[0x22, 0, 0]),
            Err(Error::UnsupportedVideoCodec { codec_id: 2 })
        );
        assert!(matches!(
            parse_video_tag(&[0x17, 3, 0, 0, 0]),
            Err(Error::UnsupportedPacketType { packet_type: 3, .. })
        ));
    }

    /// `IsExHeader | frame type << 4 | packet type`, then the FourCC.
    fn ex(frame_type: u8, packet_type: u8, fourcc: &[u8; 4], rest: &[u8]) -> Vec<u8> {
        let mut out = vec![0x80 | (frame_type << 4) | packet_type];
        out.extend_from_slice(fourcc);
        out.extend_from_slice(rest);
        out
    }

    #[test]
    fn enhanced_hevc_packets() {
        let seq = parse_video_tag(&ex(1, SEQUENCE_START, b"hvc1", &[1, 1, 0x60])).unwrap();
        assert_eq!(seq.codec, VideoCodec::Hevc);
        assert!(seq.sequence_header && !seq.keyframe && !seq.coded_frame);
        assert_eq!(seq.header_len, 5);

        let x = parse_video_tag(&ex(1, CODED_FRAMES_X, b"hvc1", &[0, 0, 0, 2, 0x26, 1])).unwrap();
        assert!(x.keyframe && x.coded_frame);
        assert_eq!((x.composition_time, x.header_len), (0, 5));

        let with_ct = parse_video_tag(&ex(
            2,
            CODED_FRAMES,
            b"hvc1",
            &[0xff, 0xff, 0xec, 0, 0, 0, 1, 2],
        ))
        .unwrap();
        assert!(!with_ct.keyframe && with_ct.coded_frame);
        assert_eq!((with_ct.composition_time, with_ct.header_len), (-20, 8));

        let end = parse_video_tag(&ex(1, SEQUENCE_END, b"hvc1", &[])).unwrap();
        assert!(end.end_of_sequence && !end.coded_frame);
    }

    #[test]
    fn enhanced_av1_vp9_avc_and_metadata() {
        // AV1 and VP9 CodedFrames carry no composition time.
        let av1 = parse_video_tag(&ex(1, CODED_FRAMES, b"av01", &[0x12, 0])).unwrap();
        assert_eq!(
            (av1.codec, av1.header_len, av1.keyframe),
            (VideoCodec::Av1, 5, true)
        );
        let vp9 = parse_video_tag(&ex(2, CODED_FRAMES, b"vp09", &[0x86])).unwrap();
        assert_eq!(
            (vp9.codec, vp9.header_len, vp9.keyframe),
            (VideoCodec::Vp9, 5, false)
        );
        let avc = parse_video_tag(&ex(1, CODED_FRAMES, b"avc1", &[0, 0, 40])).unwrap();
        assert_eq!((avc.codec, avc.composition_time), (VideoCodec::H264, 40));
        let meta = parse_video_tag(&ex(1, METADATA, b"hvc1", b"\x02\x00\x09colorInfo")).unwrap();
        assert!(!meta.coded_frame && !meta.keyframe && !meta.sequence_header);
    }

    #[test]
    fn enhanced_mod_ex_prefix_is_skipped() {
        // ModEx: size-1 = 2 (3 bytes of TimestampOffsetNano), then type 0 | CodedFramesX.
        let mut tag = vec![
            0x80 | (1 << 4) | MOD_EX,
            2,
            0x00,
            0x01,
            0x02,
            CODED_FRAMES_X,
        ];
        tag.extend_from_slice(b"hvc1");
        tag.extend_from_slice(&[0, 0, 0, 1, 0x26]);
        let info = parse_video_tag(&tag).unwrap();
        assert!(info.keyframe && info.coded_frame);
        assert_eq!(info.header_len, 10);

        // Truncated inside the ModEx data.
        assert!(matches!(
            parse_video_tag(&tag[..4]),
            Err(Error::Truncated { .. })
        ));
        // 256-byte form with a 16-bit size.
        let mut long = vec![
            0x80 | (1 << 4) | MOD_EX,
            255,
            0x00,
            0x00,
            0xaa,
            CODED_FRAMES_X,
        ];
        long.extend_from_slice(b"av01");
        let info = parse_video_tag(&long).unwrap();
        assert_eq!(info.header_len, 10);
    }

    #[test]
    fn enhanced_errors() {
        assert_eq!(
            parse_video_tag(&ex(1, CODED_FRAMES, b"vp08", &[])),
            Err(Error::UnsupportedVideoFourCc { fourcc: *b"vp08" })
        );
        assert!(matches!(
            parse_video_tag(&ex(1, MULTITRACK, b"hvc1", &[])),
            Err(Error::UnsupportedPacketType { packet_type: 6, .. })
        ));
        assert!(matches!(
            parse_video_tag(&[0x80 | (5 << 4) | CODED_FRAMES, 1]),
            Err(Error::UnsupportedPacketType { .. })
        ));
        assert!(matches!(
            parse_video_tag(&ex(1, 9, b"hvc1", &[])),
            Err(Error::UnsupportedPacketType { packet_type: 9, .. })
        ));
        assert!(matches!(
            parse_video_tag(&[0x91, b'h', b'v']),
            Err(Error::Truncated { .. })
        ));
        // CodedFrames for hvc1 needs its composition time.
        assert!(matches!(
            parse_video_tag(&ex(1, CODED_FRAMES, b"hvc1", &[0, 0])),
            Err(Error::Truncated { .. })
        ));
    }

    #[test]
    fn every_truncation_is_handled() {
        let tags = [
            ex(1, CODED_FRAMES, b"hvc1", &[0, 0, 1, 0, 0, 0, 1, 0x26]),
            vec![
                0x80 | (1 << 4) | MOD_EX,
                255,
                0x00,
                0x00,
                0xaa,
                CODED_FRAMES_X,
                b'a',
            ],
            vec![0x17, 1, 0, 0, 0, 0, 0, 0, 1],
        ];
        for tag in &tags {
            for cut in 0..tag.len() {
                let _ = parse_video_tag(&tag[..cut]);
            }
        }
    }
}
