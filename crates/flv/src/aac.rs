//! The AAC `AudioSpecificConfig` (ISO 14496-3 1.6.2.1) carried by an AAC sequence
//! header: object type, sample rate and channel count.

use crate::bits::BitReader;
use crate::Error;

/// What an AAC sequence header says about the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AacConfig {
    /// Audio object type (2 = AAC-LC, 5 = SBR / HE-AAC, 29 = PS / HE-AACv2).
    pub object_type: u8,
    /// Output sample rate in Hz. With explicit SBR signalling (object type 5 or 29)
    /// this is the extension (SBR) rate, twice the core rate.
    pub sample_rate: u32,
    /// Channel count from `channelConfiguration` (7 means 7.1 = 8 channels). 0 when
    /// the layout is given by a program config element, which is not parsed.
    pub channels: u8,
}

const WHAT: &str = "AAC AudioSpecificConfig";

const SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Parses an `AudioSpecificConfig` (the body of an AAC sequence header after its
/// audio tag header).
pub fn parse_aac_config(asc: &[u8]) -> Result<AacConfig, Error> {
    let mut r = BitReader::new(asc, WHAT);
    let object_type = object_type(&mut r)?;
    let mut sample_rate = sample_rate(&mut r)?;
    let channel_configuration = r.bits(4)?;
    let channels = match channel_configuration {
        0..=6 => channel_configuration as u8,
        7 | 12 | 14 => 8,
        11 => 7,
        13 => 24,
        _ => return Err(r.invalid("reserved channelConfiguration")),
    };
    if object_type == 5 || object_type == 29 {
        // Explicit hierarchical SBR signalling: the extension rate is the output rate.
        sample_rate = self::sample_rate(&mut r)?;
    }
    Ok(AacConfig {
        object_type,
        sample_rate,
        channels,
    })
}

fn object_type(r: &mut BitReader<'_>) -> Result<u8, Error> {
    let object_type = r.u8(5)?;
    if object_type == 31 {
        // audioObjectTypeExt: 32..=95
        return Ok(32 + r.u8(6)?);
    }
    Ok(object_type)
}

fn sample_rate(r: &mut BitReader<'_>) -> Result<u32, Error> {
    let index = r.bits(4)?;
    if index == 15 {
        let explicit = r.bits(24)?;
        if explicit == 0 {
            return Err(r.invalid("explicit sampling frequency is 0"));
        }
        return Ok(explicit);
    }
    SAMPLE_RATES
        .get(index as usize)
        .copied()
        .ok_or_else(|| r.invalid("reserved samplingFrequencyIndex"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn aac_lc_configs() {
        assert_eq!(
            parse_aac_config(&[0x12, 0x10]).unwrap(),
            AacConfig {
                object_type: 2,
                sample_rate: 44100,
                channels: 2
            }
        );
        // 48 kHz mono.
        let config = parse_aac_config(&[0x11, 0x88]).unwrap();
        assert_eq!((config.sample_rate, config.channels), (48000, 1));
        // 7.1.
        assert_eq!(parse_aac_config(&[0x12, 0x38]).unwrap().channels, 8);
    }

    #[test]
    fn ffmpeg_fixture_is_44100_hz_mono() {
        let seq = fixtures::first_audio_sequence_header(fixtures::TESTSRC2_320X240);
        assert_eq!(&seq[..2], &[0xaf, 0]);
        let config = parse_aac_config(&seq[2..]).unwrap();
        assert_eq!(
            config,
            AacConfig {
                object_type: 2,
                sample_rate: 44100,
                channels: 1
            }
        );
        let seq = fixtures::first_audio_sequence_header(fixtures::TESTSRC2_1280X720);
        assert_eq!(parse_aac_config(&seq[2..]).unwrap().sample_rate, 48000);
    }

    #[test]
    fn explicit_frequency_index_15() {
        // 00010 1111 <24 bits: 44056> 0010 -> AAC-LC, 44056 Hz, stereo.
        let mut bits: u64 = 0b00010;
        bits = (bits << 4) | 0b1111;
        bits = (bits << 24) | 44056;
        bits = (bits << 4) | 2;
        bits <<= 3; // pad 37 bits to 40
        let bytes = &bits.to_be_bytes()[3..];
        let config = parse_aac_config(bytes).unwrap();
        assert_eq!(
            (config.object_type, config.sample_rate, config.channels),
            (2, 44056, 2)
        );
    }

    #[test]
    fn escaped_object_type_31() {
        // 11111 000010 (ext 2 -> 34) 0011 (48 kHz) 0001 -> 19 bits.
        let mut bits: u32 = 0b11111;
        bits = (bits << 6) | 0b000010;
        bits = (bits << 4) | 3;
        bits = (bits << 4) | 1;
        bits <<= 5; // pad to 24
        let bytes = &bits.to_be_bytes()[1..];
        let config = parse_aac_config(bytes).unwrap();
        assert_eq!(
            (config.object_type, config.sample_rate, config.channels),
            (34, 48000, 1)
        );
    }

    #[test]
    fn explicit_sbr_reports_the_extension_rate() {
        // HE-AAC: 00101 (5) 0110 (24 kHz core) 0010 (stereo) 0011 (48 kHz) 00010 ...
        let config = parse_aac_config(&[0x2b, 0x11, 0x88, 0x00]).unwrap();
        assert_eq!(config.object_type, 5);
        assert_eq!(config.sample_rate, 48000);
        assert_eq!(config.channels, 2);
    }

    #[test]
    fn errors() {
        assert!(matches!(
            parse_aac_config(&[]),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            parse_aac_config(&[0x12]),
            Err(Error::Truncated { .. })
        ));
        // Index 13 is reserved.
        assert!(matches!(
            parse_aac_config(&[0x16, 0x90]),
            Err(Error::InvalidConfig { .. })
        ));
        // Channel configuration 8 is reserved.
        assert!(matches!(
            parse_aac_config(&[0x12, 0x40]),
            Err(Error::InvalidConfig { .. })
        ));
        // Explicit frequency of zero.
        assert!(matches!(
            parse_aac_config(&[0x17, 0x80, 0x00, 0x00, 0x10]),
            Err(Error::InvalidConfig { .. })
        ));
    }
}
