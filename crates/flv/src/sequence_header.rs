//! A sequence header, parsed in one place: the tag header read, the decoder
//! configuration record sliced off, and the record parsed for the codecs we read.
//!
//! The relay's codec info, the fMP4 segmenter, the MPEG-TS segmenter, the HLS `CODECS`
//! attribute and the recorder all start from here, so they agree on what a header says.

use onair_media::{AudioCodec, FrameKind, VideoCodec};

use crate::{
    parse_aac_config, parse_audio_tag, parse_avc_config, parse_hevc_config, parse_video_tag,
    AacConfig, AvcConfig, Error, HevcConfig,
};

/// The codec a sequence header configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Video(VideoCodec),
    Audio(AudioCodec),
}

/// A parsed decoder configuration record.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum CodecConfig {
    Avc(AvcConfig),
    Hevc(HevcConfig),
    Aac(AacConfig),
    /// A codec whose record is carried but not read here (AV1 `av1C`, VP9 `vpcC`,
    /// `OpusHead`, an MP3 sequence start).
    Unparsed,
}

/// One audio or video sequence header: the codec, the record as it came, and what the
/// record says.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SequenceHeader<'a> {
    pub codec: Codec,
    /// Bytes of tag header before the record: `record` is `payload[header_len..]`.
    pub header_len: usize,
    /// The decoder configuration record (`AVCDecoderConfigurationRecord`,
    /// `HEVCDecoderConfigurationRecord`, AAC `AudioSpecificConfig`, ...), unparsed.
    pub record: &'a [u8],
    /// The record read for its codec. An error here leaves the header itself valid:
    /// the codec is known even when its record is broken, and callers differ in what
    /// they make of that (the hub still names the codec; the fMP4 segmenter refuses).
    pub config: Result<CodecConfig, Error>,
}

impl<'a> SequenceHeader<'a> {
    /// Parses the body of an audio or video tag / RTMP message that carries a sequence
    /// header (legacy FLV or Enhanced RTMP). An error means the tag header is
    /// malformed, names a codec FLV parsing does not know, or is not a sequence header.
    pub fn parse(kind: FrameKind, payload: &'a [u8]) -> Result<Self, Error> {
        let (codec, sequence_header, header_len) = match kind {
            FrameKind::Video => {
                let tag = parse_video_tag(payload)?;
                (Codec::Video(tag.codec), tag.sequence_header, tag.header_len)
            }
            FrameKind::Audio => {
                let tag = parse_audio_tag(payload)?;
                (Codec::Audio(tag.codec), tag.sequence_header, tag.header_len)
            }
            FrameKind::Script => {
                return Err(Error::NotSequenceHeader {
                    media: "script data",
                })
            }
        };
        if !sequence_header {
            return Err(Error::NotSequenceHeader {
                media: match kind {
                    FrameKind::Video => "video",
                    _ => "audio",
                },
            });
        }
        let record = payload.get(header_len..).unwrap_or_default();
        let config = match codec {
            Codec::Video(VideoCodec::H264) => parse_avc_config(record).map(CodecConfig::Avc),
            Codec::Video(VideoCodec::Hevc) => parse_hevc_config(record).map(CodecConfig::Hevc),
            Codec::Audio(AudioCodec::Aac) => parse_aac_config(record).map(CodecConfig::Aac),
            _ => Ok(CodecConfig::Unparsed),
        };
        Ok(Self {
            codec,
            header_len: payload.len() - record.len(),
            record,
            config,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn ffmpeg_avc_and_aac_headers() {
        let seq = fixtures::first_video_sequence_header(fixtures::TESTSRC2_320X240);
        let header = SequenceHeader::parse(FrameKind::Video, &seq).unwrap();
        assert_eq!(header.codec, Codec::Video(VideoCodec::H264));
        assert_eq!(header.header_len, 5);
        assert_eq!(header.record, &seq[5..]);
        let Ok(CodecConfig::Avc(avc)) = header.config else {
            panic!("{:?}", header.config);
        };
        assert_eq!((avc.width, avc.height), (320, 240));
        assert_eq!(avc, parse_avc_config(&seq[5..]).unwrap());

        let seq = fixtures::first_audio_sequence_header(fixtures::TESTSRC2_1280X720);
        let header = SequenceHeader::parse(FrameKind::Audio, &seq).unwrap();
        assert_eq!(header.codec, Codec::Audio(AudioCodec::Aac));
        assert_eq!(header.record, &seq[2..]);
        let Ok(CodecConfig::Aac(aac)) = header.config else {
            panic!("{:?}", header.config);
        };
        assert_eq!((aac.object_type, aac.sample_rate), (2, 48000));
    }

    #[test]
    fn every_fixture_video_header_parses() {
        for flv in fixtures::ALL_FLV {
            let seq = fixtures::first_video_sequence_header(flv);
            let header = SequenceHeader::parse(FrameKind::Video, &seq).unwrap();
            assert!(matches!(header.config, Ok(CodecConfig::Avc(_))));
        }
    }

    #[test]
    fn enhanced_rtmp_headers() {
        let mut seq = vec![0x90];
        seq.extend_from_slice(b"hvc1");
        seq.extend_from_slice(fixtures::X265_HVCC_426X240);
        let header = SequenceHeader::parse(FrameKind::Video, &seq).unwrap();
        assert_eq!(header.codec, Codec::Video(VideoCodec::Hevc));
        assert_eq!(header.record, fixtures::X265_HVCC_426X240);
        let Ok(CodecConfig::Hevc(hevc)) = header.config else {
            panic!("{:?}", header.config);
        };
        assert_eq!((hevc.width, hevc.height), (426, 240));

        // AV1 and Opus records are carried, not read.
        let mut av1 = vec![0x90];
        av1.extend_from_slice(b"av01");
        av1.extend_from_slice(&[0x81, 0, 0x0c, 0]);
        let header = SequenceHeader::parse(FrameKind::Video, &av1).unwrap();
        assert_eq!(header.codec, Codec::Video(VideoCodec::Av1));
        assert_eq!(header.record, &[0x81, 0, 0x0c, 0]);
        assert_eq!(header.config, Ok(CodecConfig::Unparsed));

        let mut opus = vec![0x90];
        opus.extend_from_slice(b"Opus");
        opus.extend_from_slice(b"OpusHead\x01\x02");
        let header = SequenceHeader::parse(FrameKind::Audio, &opus).unwrap();
        assert_eq!(header.codec, Codec::Audio(AudioCodec::Opus));
        assert_eq!(header.record, b"OpusHead\x01\x02");
        assert_eq!(header.config, Ok(CodecConfig::Unparsed));
    }

    #[test]
    fn a_broken_record_keeps_the_codec() {
        // Version 1, profile/compat/level, then nothing: the tag is fine, the record not.
        let seq = [0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x1e];
        let header = SequenceHeader::parse(FrameKind::Video, &seq).unwrap();
        assert_eq!(header.codec, Codec::Video(VideoCodec::H264));
        assert_eq!(header.record, &[1, 0x42, 0xc0, 0x1e]);
        assert!(matches!(header.config, Err(Error::Truncated { .. })));

        let aac = [0xaf, 0, 0x12];
        let header = SequenceHeader::parse(FrameKind::Audio, &aac).unwrap();
        assert!(matches!(header.config, Err(Error::Truncated { .. })));
    }

    #[test]
    fn what_is_not_a_sequence_header() {
        let picture = [0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65];
        assert_eq!(
            SequenceHeader::parse(FrameKind::Video, &picture),
            Err(Error::NotSequenceHeader { media: "video" })
        );
        assert_eq!(
            SequenceHeader::parse(FrameKind::Audio, &[0xaf, 1, 0x21]),
            Err(Error::NotSequenceHeader { media: "audio" })
        );
        assert_eq!(
            SequenceHeader::parse(FrameKind::Script, b"anything"),
            Err(Error::NotSequenceHeader {
                media: "script data"
            })
        );
        assert!(matches!(
            SequenceHeader::parse(FrameKind::Video, &[]),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            SequenceHeader::parse(FrameKind::Video, &[0x13, 0]),
            Err(Error::UnsupportedVideoCodec { codec_id: 3 })
        ));
    }

    #[test]
    fn truncated_at_every_offset() {
        // Short of its tag header a header is an error; past it, the record is what
        // follows, and the record's own errors stay in `config`.
        let seq = fixtures::first_video_sequence_header(fixtures::X264_HIGH422_CQM);
        for cut in 0..seq.len() {
            match SequenceHeader::parse(FrameKind::Video, &seq[..cut]) {
                Ok(header) => {
                    assert!(cut >= 5, "cut at {cut}");
                    assert_eq!(header.record, &seq[5..cut]);
                }
                Err(error) => {
                    assert!(cut < 5, "cut at {cut}: {error}");
                }
            }
        }
    }
}
