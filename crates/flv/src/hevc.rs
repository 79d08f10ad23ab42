//! The H.265 decoder configuration (`HEVCDecoderConfigurationRecord`, ISO 14496-15
//! 8.3.3.1) and, best effort, the picture size from the first SPS in its NAL unit
//! arrays (ITU-T H.265 7.3.2.2).

use crate::bits::{unescape_rbsp, BitReader};
use crate::Error;

/// What the HEVC sequence header says about the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HevcConfig {
    /// `general_profile_idc` from the SPS (1 Main, 2 Main 10, ...).
    pub profile: u8,
    /// `general_level_idc` from the SPS: 30 times the level (93 = level 3.1).
    pub level: u8,
    /// Displayed size, after the conformance window.
    pub width: u32,
    pub height: u32,
}

const RECORD: &str = "HEVC decoder configuration record";
const SPS: &str = "H.265 SPS";
const NAL_SPS: u8 = 33;
const FIXED_LEN: usize = 23;

/// Parses an `HEVCDecoderConfigurationRecord` (the body of an HEVC sequence header
/// after its video tag header) and the first SPS found in its arrays.
pub fn parse_hevc_config(record: &[u8]) -> Result<HevcConfig, Error> {
    let truncated = |offset| Error::Truncated {
        what: RECORD,
        offset,
    };
    let fixed = record.get(..FIXED_LEN).ok_or(truncated(record.len()))?;
    if fixed[..3] == [0, 0, 1] || fixed[..4] == [0, 0, 0, 1] {
        return Err(Error::InvalidConfig {
            what: RECORD,
            reason: "Annex B start code instead of a configuration record",
        });
    }
    let num_arrays = fixed[22];
    let mut pos = FIXED_LEN;
    for _ in 0..num_arrays {
        let header = record.get(pos..pos + 3).ok_or(truncated(record.len()))?;
        let num_nalus = u16::from_be_bytes([header[1], header[2]]);
        pos += 3;
        // Each NAL unit takes at least its two length bytes, so a lying count ends in
        // a truncation error, not a long loop.
        for _ in 0..num_nalus {
            let len = record.get(pos..pos + 2).ok_or(truncated(record.len()))?;
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            pos += 2;
            let nal = record.get(pos..pos + len).ok_or(truncated(record.len()))?;
            pos += len;
            if nal.first().map(|b| (b >> 1) & 0x3f) == Some(NAL_SPS) {
                return parse_sps(nal);
            }
        }
    }
    Err(Error::InvalidConfig {
        what: RECORD,
        reason: "no sequence parameter set",
    })
}

/// Parses one SPS NAL unit (with its two-byte NAL header) as far as the conformance
/// window. Every loop is bounded by a 3-bit field.
fn parse_sps(nal: &[u8]) -> Result<HevcConfig, Error> {
    let rbsp = unescape_rbsp(nal.get(2..).unwrap_or_default());
    let mut r = BitReader::new(&rbsp, SPS);
    r.skip(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)? as usize;
    r.flag()?; // sps_temporal_id_nesting_flag

    // profile_tier_level(1, sps_max_sub_layers_minus1), 7.3.3
    let profile = r.u8(8)? & 0x1f; // general_profile_space, tier_flag, profile_idc
    r.skip(32 + 48)?; // compatibility flags, constraint flags
    let level = r.u8(8)?;
    let mut sub_layer_profile = [false; 8];
    let mut sub_layer_level = [false; 8];
    for i in 0..max_sub_layers_minus1 {
        sub_layer_profile[i] = r.flag()?;
        sub_layer_level[i] = r.flag()?;
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(2 * (8 - max_sub_layers_minus1))?; // reserved_zero_2bits
    }
    for i in 0..max_sub_layers_minus1 {
        if sub_layer_profile[i] {
            r.skip(88)?;
        }
        if sub_layer_level[i] {
            r.skip(8)?;
        }
    }

    r.ue()?; // sps_seq_parameter_set_id
    let chroma_format_idc = r.ue()?;
    if chroma_format_idc > 3 {
        return Err(r.invalid("chroma_format_idc above 3"));
    }
    let separate_colour_plane = chroma_format_idc == 3 && r.flag()?;
    let full_width = u64::from(r.ue()?);
    let full_height = u64::from(r.ue()?);
    let mut window = [0u64; 4]; // left, right, top, bottom
    if r.flag()? {
        for w in &mut window {
            *w = u64::from(r.ue()?);
        }
    }
    let (sub_width, sub_height) = match (separate_colour_plane, chroma_format_idc) {
        (false, 1) => (2, 2),
        (false, 2) => (2, 1),
        _ => (1, 1),
    };
    let crop_x = sub_width * (window[0] + window[1]);
    let crop_y = sub_height * (window[2] + window[3]);
    if full_width == 0 || full_height == 0 || crop_x >= full_width || crop_y >= full_height {
        return Err(r.invalid("empty picture after the conformance window"));
    }
    Ok(HevcConfig {
        profile,
        level,
        width: u32::try_from(full_width - crop_x).map_err(|_| r.invalid("width overflows"))?,
        height: u32::try_from(full_height - crop_y).map_err(|_| r.invalid("height overflows"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn x265_426x240_uses_the_conformance_window() {
        // x265 codes 432x240 and crops 6 columns.
        let config = parse_hevc_config(fixtures::X265_HVCC_426X240).unwrap();
        assert_eq!((config.width, config.height), (426, 240));
        assert_eq!((config.profile, config.level), (1, 60));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let record = fixtures::X265_HVCC_426X240;
        // The SPS is the second array (VPS, SPS, PPS, SEI); anything shorter than its
        // end must fail cleanly.
        for cut in 0..0x60 {
            assert!(parse_hevc_config(&record[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn rejects_annex_b_and_missing_sps() {
        let mut annex_b = vec![0, 0, 0, 1, 0x40, 1];
        annex_b.resize(40, 0);
        assert!(matches!(
            parse_hevc_config(&annex_b),
            Err(Error::InvalidConfig { .. })
        ));
        let mut no_arrays = fixtures::X265_HVCC_426X240[..FIXED_LEN].to_vec();
        no_arrays[22] = 0;
        assert!(matches!(
            parse_hevc_config(&no_arrays),
            Err(Error::InvalidConfig { .. })
        ));
    }

    #[test]
    fn hostile_records_never_panic() {
        let mut record = fixtures::X265_HVCC_426X240[..FIXED_LEN].to_vec();
        record[22] = 255;
        record.extend_from_slice(&[0x21, 0xff, 0xff]);
        assert!(parse_hevc_config(&record).is_err());
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut record = fixtures::X265_HVCC_426X240[..FIXED_LEN].to_vec();
            record[22] = 1;
            let mut nal = vec![NAL_SPS << 1, 1];
            for _ in 0..(seed % 60) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                nal.push(seed as u8);
            }
            record.extend_from_slice(&[0xa1, 0, 1]);
            record.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            record.extend_from_slice(&nal);
            let _ = parse_hevc_config(&record);
        }
    }
}
