//! The codec configurations an init segment is built from, taken from FLV sequence
//! headers (read by `onair_flv::SequenceHeader`, as everywhere else) and compared to
//! decide when a new init segment is due.

use bytes::Bytes;
use onair_flv::{CodecConfig, SequenceHeader};
use onair_media::{AudioCodec, FrameKind, VideoCodec};

use crate::Error;

/// AVC/HEVC records hold the SPS/PPS/VPS arrays: a few hundred bytes in practice.
pub(crate) const MAX_VIDEO_CONFIG: usize = 64 * 1024;
/// An AAC `AudioSpecificConfig` is 2 to 5 bytes, more only with a program config element.
pub(crate) const MAX_AUDIO_CONFIG: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VideoConfig {
    pub(crate) codec: VideoCodec,
    /// The `AVCDecoderConfigurationRecord` / `HEVCDecoderConfigurationRecord`, copied
    /// into `avcC` / `hvcC` as is.
    pub(crate) record: Bytes,
    pub(crate) width: u16,
    pub(crate) height: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AudioConfig {
    /// The `AudioSpecificConfig`, copied into the `esds` decoder specific info as is.
    pub(crate) asc: Bytes,
    pub(crate) sample_rate: u32,
    pub(crate) channels: u16,
    /// Samples per AAC frame at `sample_rate`: 1024, or 2048 when the config signals
    /// SBR explicitly (HE-AAC), whose output rate is twice the core rate.
    pub(crate) frame_samples: u32,
}

impl VideoConfig {
    /// `payload` is a video sequence header's whole tag body, whose tag header said
    /// `codec`.
    pub(crate) fn parse(codec: VideoCodec, payload: &Bytes) -> Result<Self, Error> {
        let header = SequenceHeader::parse(FrameKind::Video, payload)?;
        let record = payload.slice(header.header_len..);
        if record.len() > MAX_VIDEO_CONFIG {
            return Err(Error::ConfigTooLarge {
                what: "video decoder configuration record",
                size: record.len(),
                max: MAX_VIDEO_CONFIG,
            });
        }
        let (width, height) = match (codec, header.config?) {
            (VideoCodec::H264, CodecConfig::Avc(c)) => (c.width, c.height),
            (VideoCodec::Hevc, CodecConfig::Hevc(c)) => (c.width, c.height),
            _ => return Err(Error::UnsupportedVideoCodec { codec }),
        };
        Ok(Self {
            codec,
            record,
            width: u16::try_from(width).unwrap_or(u16::MAX),
            height: u16::try_from(height).unwrap_or(u16::MAX),
        })
    }
}

impl AudioConfig {
    /// `payload` is an audio sequence header's whole tag body, whose tag header said
    /// `codec`.
    pub(crate) fn parse(codec: AudioCodec, payload: &Bytes) -> Result<Self, Error> {
        if codec != AudioCodec::Aac {
            return Err(Error::UnsupportedAudioCodec { codec });
        }
        let header = SequenceHeader::parse(FrameKind::Audio, payload)?;
        let asc = payload.slice(header.header_len..);
        if asc.len() > MAX_AUDIO_CONFIG {
            return Err(Error::ConfigTooLarge {
                what: "AAC AudioSpecificConfig",
                size: asc.len(),
                max: MAX_AUDIO_CONFIG,
            });
        }
        let CodecConfig::Aac(c) = header.config? else {
            return Err(Error::UnsupportedAudioCodec { codec });
        };
        Ok(Self {
            asc,
            sample_rate: c.sample_rate,
            // 0 means a program config element gives the layout; stereo is what
            // players assume for the sample entry.
            channels: if c.channels == 0 {
                2
            } else {
                u16::from(c.channels)
            },
            frame_samples: if matches!(c.object_type, 5 | 29) {
                2048
            } else {
                1024
            },
        })
    }
}
