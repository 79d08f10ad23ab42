//! AAC raw frames to ADTS (ISO 14496-3 1.A.2), the framing MPEG-TS carries.

use crate::Error;

/// The fields of an ADTS header that come from the `AudioSpecificConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AdtsParams {
    /// ADTS `profile`: audio object type minus one (1 = AAC-LC).
    profile: u8,
    sampling_index: u8,
    channels: u8,
}

/// ADTS can carry only object types 1-4; HE-AAC (5, 29) is sent as its AAC-LC core
/// with implicit SBR signalling.
pub(crate) fn parse_asc(asc: &[u8]) -> Result<AdtsParams, Error> {
    let [a, b, rest @ ..] = asc else {
        return Err(Error::AacConfig("shorter than two bytes"));
    };
    let mut object_type = a >> 3;
    let sampling_index = ((a & 0x07) << 1) | (b >> 7);
    let channels = (b >> 3) & 0x0f;
    if sampling_index > 12 {
        return Err(Error::AacConfig("explicit or reserved sampling frequency"));
    }
    if object_type == 5 || object_type == 29 {
        // extensionSamplingFrequencyIndex (4 bits) then the core object type: bits
        // 17..22 of the config.
        let c = *rest
            .first()
            .ok_or(Error::AacConfig("HE-AAC config ends early"))?;
        let d = rest.get(1).copied().unwrap_or(0);
        let word = u32::from_be_bytes([*a, *b, c, d]);
        object_type = ((word >> 10) & 0x1f) as u8;
    }
    if !(1..=4).contains(&object_type) {
        return Err(Error::AacConfig("object type ADTS cannot carry"));
    }
    if channels == 0 || channels > 7 {
        return Err(Error::AacConfig("channel configuration ADTS cannot carry"));
    }
    Ok(AdtsParams {
        profile: object_type - 1,
        sampling_index,
        channels,
    })
}

/// The largest raw frame ADTS can frame (a 13-bit length including the header).
pub(crate) const MAX_RAW_FRAME: usize = 0x1fff - 7;

/// Appends a 7-byte ADTS header (no CRC) and the raw frame. Frames too large for
/// ADTS are dropped (returns false).
pub(crate) fn to_adts(params: AdtsParams, raw: &[u8], out: &mut Vec<u8>) -> bool {
    if raw.len() > MAX_RAW_FRAME {
        return false;
    }
    let len = raw.len() + 7;
    out.extend_from_slice(&[
        0xff,
        0xf1, // MPEG-4, layer 0, no CRC
        (params.profile << 6) | (params.sampling_index << 2) | (params.channels >> 2),
        ((params.channels & 0x03) << 6) | ((len >> 11) as u8 & 0x03),
        (len >> 3) as u8,
        (((len & 0x07) as u8) << 5) | 0x1f,
        0xfc, // buffer fullness 0x7ff (VBR), one raw data block
    ]);
    out.extend_from_slice(raw);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lc_stereo_44100() {
        // AAC-LC, 44.1 kHz (index 4), stereo: 0x12 0x10.
        let params = parse_asc(&[0x12, 0x10]).unwrap();
        let mut out = Vec::new();
        assert!(to_adts(params, &[0xaa; 10], &mut out));
        assert_eq!(&out[..7], &[0xff, 0xf1, 0x50, 0x80, 0x02, 0x3f, 0xfc]);
        assert_eq!(out.len(), 17);
    }

    #[test]
    fn he_aac_uses_its_core_object_type() {
        // Object type 5, index 6 (24 kHz core), stereo, extension index 3, core type 2.
        // 00101 0110 0010 0011 00010 ...
        let bits: u32 = (5 << 27) | (6 << 23) | (2 << 19) | (3 << 15) | (2 << 10);
        let asc = bits.to_be_bytes();
        let params = parse_asc(&asc).unwrap();
        assert_eq!(params.profile, 1);
        assert_eq!(params.sampling_index, 6);
    }

    #[test]
    fn rejects_what_adts_cannot_carry() {
        assert!(parse_asc(&[0x12]).is_err());
        assert!(parse_asc(&[0xf8, 0x10]).is_err()); // object type 31
        assert!(parse_asc(&[0x17, 0x90]).is_err()); // explicit frequency (15)
        assert!(parse_asc(&[0x12, 0x00]).is_err()); // channels from a PCE
        assert!(parse_asc(&[0x2a, 0x10]).is_err()); // HE-AAC, truncated
        let params = parse_asc(&[0x12, 0x10]).unwrap();
        assert!(!to_adts(
            params,
            &vec![0; MAX_RAW_FRAME + 1],
            &mut Vec::new()
        ));
    }
}
