//! The audio tag header in front of every audio tag body: the legacy FLV
//! `AudioTagHeader` (AAC with its `AACPacketType`, MP3) and the Enhanced RTMP v2
//! extended header (`SoundFormat` 9, `AudioPacketType`, FourCC `Opus`/`mp4a`/`.mp3`).

use onair_media::AudioCodec;

use crate::video::{read_fourcc, skip_mod_ex};
use crate::Error;

/// What an audio tag header says about the data that follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AudioTagInfo {
    pub codec: AudioCodec,
    /// The body is a decoder configuration (AAC AudioSpecificConfig, OpusHead).
    pub sequence_header: bool,
    /// The body after `header_len` is coded audio. False for sequence start/end and
    /// E-RTMP multichannel configuration packets.
    pub coded_frame: bool,
    /// Bytes before the codec payload.
    pub header_len: usize,
}

const WHAT: &str = "audio tag header";

// Legacy SoundFormat.
const FORMAT_MP3: u8 = 2;
const FORMAT_EX_HEADER: u8 = 9;
const FORMAT_AAC: u8 = 10;
const FORMAT_MP3_8KHZ: u8 = 14;

// Enhanced RTMP AudioPacketType.
const SEQUENCE_START: u8 = 0;
const CODED_FRAMES: u8 = 1;
const SEQUENCE_END: u8 = 2;
const MULTICHANNEL_CONFIG: u8 = 4;
const MULTITRACK: u8 = 5;
const MOD_EX: u8 = 7;

/// Parses the audio tag header at the start of an FLV audio tag body / RTMP audio
/// message.
pub fn parse_audio_tag(payload: &[u8]) -> Result<AudioTagInfo, Error> {
    let first = *payload.first().ok_or(Error::Truncated {
        what: WHAT,
        offset: 0,
    })?;
    let sound_format = first >> 4;
    match sound_format {
        FORMAT_AAC => {
            let packet_type = *payload.get(1).ok_or(Error::Truncated {
                what: WHAT,
                offset: 1,
            })?;
            let sequence_header = match packet_type {
                0 => true,
                1 => false,
                _ => {
                    return Err(Error::UnsupportedPacketType {
                        media: "audio",
                        packet_type,
                        reason: "AACPacketType must be 0 or 1",
                    })
                }
            };
            Ok(AudioTagInfo {
                codec: AudioCodec::Aac,
                sequence_header,
                coded_frame: !sequence_header,
                header_len: 2,
            })
        }
        FORMAT_MP3 | FORMAT_MP3_8KHZ => Ok(AudioTagInfo {
            codec: AudioCodec::Mp3,
            sequence_header: false,
            coded_frame: true,
            header_len: 1,
        }),
        FORMAT_EX_HEADER => parse_enhanced(payload, first),
        _ => Err(Error::UnsupportedAudioFormat { sound_format }),
    }
}

fn parse_enhanced(payload: &[u8], first: u8) -> Result<AudioTagInfo, Error> {
    let mut packet_type = first & 0x0f;
    let mut pos = 1;
    if packet_type == MOD_EX {
        (packet_type, pos) = skip_mod_ex(payload, pos, "audio")?;
    }
    if packet_type == MULTITRACK {
        return Err(Error::UnsupportedPacketType {
            media: "audio",
            packet_type,
            reason: "Enhanced RTMP multitrack audio is not supported",
        });
    }
    let fourcc = read_fourcc(payload, pos, WHAT)?;
    let codec = match &fourcc {
        b"Opus" => AudioCodec::Opus,
        b"mp4a" => AudioCodec::Aac,
        b".mp3" => AudioCodec::Mp3,
        _ => return Err(Error::UnsupportedAudioFourCc { fourcc }),
    };
    let (sequence_header, coded_frame) = match packet_type {
        SEQUENCE_START => (true, false),
        CODED_FRAMES => (false, true),
        SEQUENCE_END | MULTICHANNEL_CONFIG => (false, false),
        _ => {
            return Err(Error::UnsupportedPacketType {
                media: "audio",
                packet_type,
                reason: "reserved Enhanced RTMP AudioPacketType",
            })
        }
    };
    Ok(AudioTagInfo {
        codec,
        sequence_header,
        coded_frame,
        header_len: pos + 4,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_aac_and_mp3() {
        let seq = parse_audio_tag(&[0xaf, 0, 0x12, 0x10]).unwrap();
        assert_eq!(seq.codec, AudioCodec::Aac);
        assert!(seq.sequence_header && !seq.coded_frame);
        assert_eq!(seq.header_len, 2);

        let raw = parse_audio_tag(&[0xaf, 1, 0x21]).unwrap();
        assert!(!raw.sequence_header && raw.coded_frame);

        let mp3 = parse_audio_tag(&[0x2f, 0xff, 0xfb]).unwrap();
        assert_eq!((mp3.codec, mp3.header_len), (AudioCodec::Mp3, 1));
        assert_eq!(parse_audio_tag(&[0xe2]).unwrap().codec, AudioCodec::Mp3);
    }

    #[test]
    fn legacy_errors() {
        assert!(matches!(parse_audio_tag(&[]), Err(Error::Truncated { .. })));
        assert!(matches!(
            parse_audio_tag(&[0xaf]),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            parse_audio_tag(&[0xaf, 2]),
            Err(Error::UnsupportedPacketType { packet_type: 2, .. })
        ));
        // Nellymoser, Speex: not something we forward.
        assert_eq!(
            parse_audio_tag(&[0x6e, 0]),
            Err(Error::UnsupportedAudioFormat { sound_format: 6 })
        );
        assert_eq!(
            parse_audio_tag(&[0xb2, 0]),
            Err(Error::UnsupportedAudioFormat { sound_format: 11 })
        );
    }

    fn ex(packet_type: u8, fourcc: &[u8; 4], rest: &[u8]) -> Vec<u8> {
        let mut out = vec![(FORMAT_EX_HEADER << 4) | packet_type];
        out.extend_from_slice(fourcc);
        out.extend_from_slice(rest);
        out
    }

    #[test]
    fn enhanced_opus_and_aac() {
        let head = parse_audio_tag(&ex(SEQUENCE_START, b"Opus", b"OpusHead\x01\x02")).unwrap();
        assert_eq!(head.codec, AudioCodec::Opus);
        assert!(head.sequence_header && !head.coded_frame);
        assert_eq!(head.header_len, 5);

        let frame = parse_audio_tag(&ex(CODED_FRAMES, b"Opus", &[0xfc])).unwrap();
        assert!(frame.coded_frame && !frame.sequence_header);

        let aac = parse_audio_tag(&ex(SEQUENCE_START, b"mp4a", &[0x12, 0x10])).unwrap();
        assert_eq!(aac.codec, AudioCodec::Aac);
        assert!(aac.sequence_header);

        let end = parse_audio_tag(&ex(SEQUENCE_END, b"mp4a", &[])).unwrap();
        assert!(!end.sequence_header && !end.coded_frame);

        let mut mod_ex = vec![(FORMAT_EX_HEADER << 4) | MOD_EX, 2, 0, 0, 7, CODED_FRAMES];
        mod_ex.extend_from_slice(b"Opus");
        assert_eq!(parse_audio_tag(&mod_ex).unwrap().header_len, 10);
    }

    #[test]
    fn enhanced_errors() {
        assert_eq!(
            parse_audio_tag(&ex(CODED_FRAMES, b"fLaC", &[])),
            Err(Error::UnsupportedAudioFourCc { fourcc: *b"fLaC" })
        );
        assert!(matches!(
            parse_audio_tag(&ex(MULTITRACK, b"Opus", &[])),
            Err(Error::UnsupportedPacketType { packet_type: 5, .. })
        ));
        assert!(matches!(
            parse_audio_tag(&ex(3, b"Opus", &[])),
            Err(Error::UnsupportedPacketType { packet_type: 3, .. })
        ));
        let tag = ex(CODED_FRAMES, b"Opus", &[]);
        for cut in 0..tag.len() {
            assert!(parse_audio_tag(&tag[..cut]).is_err());
        }
    }
}
