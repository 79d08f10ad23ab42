//! The H.264 decoder configuration (`AVCDecoderConfigurationRecord`, ISO 14496-15
//! 5.3.3.1) and the parts of its first sequence parameter set (ITU-T H.264 7.3.2.1)
//! that tell us the picture size and frame rate.

use crate::bits::{unescape_rbsp, BitReader};
use crate::Error;

/// What the AVC sequence header says about the stream.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct AvcConfig {
    /// `profile_idc` from the SPS (66 Baseline, 77 Main, 100 High, ...).
    pub profile: u8,
    /// `level_idc` from the SPS (31 = level 3.1).
    pub level: u8,
    /// Displayed size, after frame cropping.
    pub width: u32,
    pub height: u32,
    /// From the SPS VUI timing info (`time_scale / (2 * num_units_in_tick)`), if present.
    pub frame_rate: Option<f64>,
    /// Bytes in each NAL unit length prefix of the coded frames (1, 2 or 4).
    pub nal_length_size: u8,
}

const RECORD: &str = "AVC decoder configuration record";
const SPS: &str = "H.264 SPS";

/// Parses an `AVCDecoderConfigurationRecord` (the body of an AVC sequence header after
/// its video tag header) and the first SPS in it.
pub fn parse_avc_config(record: &[u8]) -> Result<AvcConfig, Error> {
    let truncated = |offset| Error::Truncated {
        what: RECORD,
        offset,
    };
    let fixed = record.get(..6).ok_or(truncated(record.len()))?;
    if fixed[0] != 1 {
        return Err(Error::InvalidConfig {
            what: RECORD,
            reason: "configurationVersion is not 1",
        });
    }
    let nal_length_size = (fixed[4] & 0x03) + 1;
    if nal_length_size == 3 {
        return Err(Error::InvalidConfig {
            what: RECORD,
            reason: "lengthSizeMinusOne is 2 (3-byte NAL lengths are not allowed)",
        });
    }
    if fixed[5] & 0x1f == 0 {
        return Err(Error::InvalidConfig {
            what: RECORD,
            reason: "no sequence parameter set",
        });
    }
    let len_bytes = record.get(6..8).ok_or(truncated(record.len()))?;
    let sps_len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
    let sps = record.get(8..8 + sps_len).ok_or(truncated(record.len()))?;
    let sps = parse_sps(sps)?;
    Ok(AvcConfig {
        profile: sps.profile,
        level: sps.level,
        width: sps.width,
        height: sps.height,
        frame_rate: sps.frame_rate,
        nal_length_size,
    })
}

struct Sps {
    profile: u8,
    level: u8,
    width: u32,
    height: u32,
    frame_rate: Option<f64>,
}

/// Profiles whose SPS carries chroma format, bit depths and scaling matrices.
fn has_chroma_info(profile: u8) -> bool {
    matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

/// Parses one SPS NAL unit (with its one-byte NAL header). Every loop is bounded by
/// the standard's limits, checked before looping, so a hostile SPS costs at most a
/// few thousand bit reads.
fn parse_sps(nal: &[u8]) -> Result<Sps, Error> {
    let header = *nal.first().ok_or(Error::Truncated {
        what: SPS,
        offset: 0,
    })?;
    if header & 0x1f != 7 {
        return Err(Error::InvalidConfig {
            what: SPS,
            reason: "NAL unit type is not 7 (SPS)",
        });
    }
    let rbsp = unescape_rbsp(nal.get(1..).unwrap_or_default());
    let mut r = BitReader::new(&rbsp, SPS);
    let profile = r.u8(8)?;
    r.skip(8)?; // constraint_set flags, reserved_zero_2bits
    let level = r.u8(8)?;
    r.ue()?; // seq_parameter_set_id

    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    if has_chroma_info(profile) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc > 3 {
            return Err(r.invalid("chroma_format_idc above 3"));
        }
        if chroma_format_idc == 3 {
            separate_colour_plane = r.flag()?;
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.flag()?; // qpprime_y_zero_transform_bypass_flag
        if r.flag()? {
            // seq_scaling_matrix_present_flag
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }

    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        // pic_order_cnt_type
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.flag()?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            let cycle = r.ue()?;
            if cycle > 255 {
                return Err(r.invalid("num_ref_frames_in_pic_order_cnt_cycle above 255"));
            }
            for _ in 0..cycle {
                r.se()?; // offset_for_ref_frame
            }
        }
        2 => {}
        _ => return Err(r.invalid("pic_order_cnt_type above 2")),
    }
    r.ue()?; // max_num_ref_frames
    r.flag()?; // gaps_in_frame_num_value_allowed_flag
    let width_in_mbs = u64::from(r.ue()?) + 1;
    let height_in_map_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = r.flag()?;
    if !frame_mbs_only {
        r.flag()?; // mb_adaptive_frame_field_flag
    }
    r.flag()?; // direct_8x8_inference_flag
    let mut crop = [0u64; 4]; // left, right, top, bottom
    if r.flag()? {
        for c in &mut crop {
            *c = u64::from(r.ue()?);
        }
    }

    // 7.4.2.1.1: crop offsets are in chroma sample units.
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let field_factor = if frame_mbs_only { 1 } else { 2 };
    let (crop_unit_x, crop_unit_y) = match chroma_array_type {
        0 => (1, field_factor),
        1 => (2, 2 * field_factor),
        2 => (2, field_factor),
        _ => (1, field_factor),
    };
    let full_width = width_in_mbs * 16;
    let full_height = field_factor * height_in_map_units * 16;
    let crop_x = crop_unit_x * (crop[0] + crop[1]);
    let crop_y = crop_unit_y * (crop[2] + crop[3]);
    if crop_x >= full_width || crop_y >= full_height {
        return Err(r.invalid("frame cropping removes the whole picture"));
    }
    let width = u32::try_from(full_width - crop_x).map_err(|_| r.invalid("width overflows"))?;
    let height = u32::try_from(full_height - crop_y).map_err(|_| r.invalid("height overflows"))?;

    // The VUI is optional and encoders sometimes truncate it; a broken VUI only costs
    // us the frame rate.
    let frame_rate = if r.flag().unwrap_or(false) {
        vui_frame_rate(&mut r).ok().flatten()
    } else {
        None
    };

    Ok(Sps {
        profile,
        level,
        width,
        height,
        frame_rate,
    })
}

/// 7.3.2.1.1.1: only the deltas are coded; the values are not needed.
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), Error> {
    let mut last_scale: i64 = 8;
    let mut next_scale: i64 = 8;
    for _ in 0..size {
        if next_scale != 0 {
            let delta = r.se()?;
            if !(-128..=127).contains(&delta) {
                return Err(r.invalid("delta_scale outside -128..=127"));
            }
            next_scale = (last_scale + delta + 256) % 256;
        }
        if next_scale != 0 {
            last_scale = next_scale;
        }
    }
    Ok(())
}

/// E.1.1 up to `timing_info`.
fn vui_frame_rate(r: &mut BitReader<'_>) -> Result<Option<f64>, Error> {
    if r.flag()? {
        // aspect_ratio_info_present_flag
        if r.u8(8)? == 255 {
            r.skip(32)?; // sar_width, sar_height
        }
    }
    if r.flag()? {
        r.flag()?; // overscan_appropriate_flag
    }
    if r.flag()? {
        // video_signal_type_present_flag
        r.skip(4)?; // video_format, video_full_range_flag
        if r.flag()? {
            r.skip(24)?; // colour_primaries, transfer_characteristics, matrix_coefficients
        }
    }
    if r.flag()? {
        r.ue()?; // chroma_sample_loc_type_top_field
        r.ue()?; // chroma_sample_loc_type_bottom_field
    }
    if !r.flag()? {
        return Ok(None); // timing_info_present_flag
    }
    let num_units_in_tick = r.bits(32)?;
    let time_scale = r.bits(32)?;
    if num_units_in_tick == 0 || time_scale == 0 {
        return Ok(None);
    }
    Ok(Some(
        f64::from(time_scale) / (2.0 * f64::from(num_units_in_tick)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn config_of(flv: &[u8]) -> AvcConfig {
        let seq = fixtures::first_video_sequence_header(flv);
        assert_eq!(&seq[..5], &[0x17, 0, 0, 0, 0]);
        parse_avc_config(&seq[5..]).unwrap()
    }

    #[test]
    fn ffmpeg_320x240_25fps() {
        let config = config_of(fixtures::TESTSRC2_320X240);
        assert_eq!((config.width, config.height), (320, 240));
        assert_eq!(config.profile, 100);
        assert_eq!(config.level, 13);
        assert_eq!(config.frame_rate, Some(25.0));
        assert_eq!(config.nal_length_size, 4);
    }

    #[test]
    fn ffmpeg_1280x720_30fps() {
        let config = config_of(fixtures::TESTSRC2_1280X720);
        assert_eq!((config.width, config.height), (1280, 720));
        assert_eq!(config.frame_rate, Some(30.0));
    }

    #[test]
    fn ffmpeg_1920x1080_is_cropped_from_1088() {
        let config = config_of(fixtures::TESTSRC2_1920X1080);
        assert_eq!((config.width, config.height), (1920, 1080));
        assert_eq!(config.frame_rate, Some(25.0));
    }

    #[test]
    fn high_422_with_scaling_matrices_and_odd_crop() {
        // 4:2:2 crops in 2x1 units: 352x208 coded, cropped to 350x202.
        let config = config_of(fixtures::X264_HIGH422_CQM);
        assert_eq!(config.profile, 122);
        assert_eq!((config.width, config.height), (350, 202));
        assert_eq!(config.frame_rate, Some(30.0));
    }

    /// Writes bits for hand-built SPSs.
    struct BitWriter {
        bytes: Vec<u8>,
        bits: usize,
    }

    impl BitWriter {
        fn new() -> Self {
            Self {
                bytes: Vec::new(),
                bits: 0,
            }
        }
        fn bit(&mut self, b: bool) {
            if self.bits & 7 == 0 {
                self.bytes.push(0);
            }
            if b {
                let last = self.bytes.len() - 1;
                self.bytes[last] |= 0x80 >> (self.bits % 8);
            }
            self.bits += 1;
        }
        fn bits(&mut self, n: u32, v: u64) {
            for i in (0..n).rev() {
                self.bit((v >> i) & 1 == 1);
            }
        }
        fn ue(&mut self, v: u64) {
            let v = v + 1;
            let len = 64 - v.leading_zeros();
            self.bits(len - 1, 0);
            self.bits(len, v);
        }
    }

    /// A Baseline SPS, escaped into a NAL unit.
    fn baseline_sps(
        level: u64,
        sps_id: u64,
        width_mbs: u64,
        height_mbs: u64,
        crop: Option<[u64; 4]>,
    ) -> Vec<u8> {
        let mut w = BitWriter::new();
        w.bits(8, 66); // profile_idc
        w.bits(8, 0); // constraint flags
        w.bits(8, level); // level_idc
        w.ue(sps_id);
        w.ue(0); // log2_max_frame_num_minus4
        w.ue(2); // pic_order_cnt_type
        w.ue(1); // max_num_ref_frames
        w.bit(false);
        w.ue(width_mbs - 1);
        w.ue(height_mbs - 1);
        w.bit(true); // frame_mbs_only
        w.bit(true); // direct_8x8_inference
        match crop {
            Some(c) => {
                w.bit(true);
                for v in c {
                    w.ue(v);
                }
            }
            None => w.bit(false),
        }
        w.bit(false); // no VUI
        w.bit(true); // rbsp_stop_one_bit
        let mut nal = vec![0x67];
        let mut zeros = 0;
        for b in w.bytes {
            if zeros >= 2 && b <= 3 {
                nal.push(3);
                zeros = 0;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            nal.push(b);
        }
        nal
    }

    fn record(sps: &[u8]) -> Vec<u8> {
        let mut out = vec![1, 66, 0xc0, 30, 0xff, 0xe1];
        out.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        out.extend_from_slice(sps);
        out.extend_from_slice(&[1, 0, 4, 0x68, 0xce, 0x3c, 0x80]);
        out
    }

    #[test]
    fn hand_built_baseline_sps_with_crop_and_no_vui() {
        let sps = baseline_sps(30, 0, 120, 68, Some([0, 0, 0, 4]));
        let config = parse_avc_config(&record(&sps)).unwrap();
        assert_eq!((config.width, config.height), (1920, 1080));
        assert_eq!((config.profile, config.level), (66, 30));
        assert_eq!(config.frame_rate, None);
    }

    #[test]
    fn emulation_prevention_is_removed() {
        // Constraint flags 0, level 0 and ue(63) = 0b0000001_000000 give 00 00 02, which
        // an encoder must escape as 00 00 03 02.
        let sps = baseline_sps(0, 63, 40, 30, None);
        assert_eq!(&sps[..6], &[0x67, 66, 0, 0, 3, 2]);
        let config = parse_avc_config(&record(&sps)).unwrap();
        assert_eq!((config.width, config.height, config.level), (640, 480, 0));
    }

    #[test]
    fn rejects_bad_records() {
        let good = record(&baseline_sps(30, 0, 20, 15, None));
        assert!(parse_avc_config(&good).is_ok());
        for cut in 0..good.len() - 8 {
            assert!(parse_avc_config(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut version = good.clone();
        version[0] = 0;
        assert!(matches!(
            parse_avc_config(&version),
            Err(Error::InvalidConfig { .. })
        ));
        let mut no_sps = good.clone();
        no_sps[5] = 0xe0;
        assert!(matches!(
            parse_avc_config(&no_sps),
            Err(Error::InvalidConfig { .. })
        ));
        let mut not_sps = good.clone();
        not_sps[8] = 0x68;
        assert!(matches!(
            parse_avc_config(&not_sps),
            Err(Error::InvalidConfig { .. })
        ));
        // Cropping more than the picture.
        let crop_all = record(&baseline_sps(30, 0, 1, 1, Some([8, 0, 0, 0])));
        assert!(matches!(
            parse_avc_config(&crop_all),
            Err(Error::InvalidConfig { .. })
        ));
    }

    #[test]
    fn hostile_sps_is_bounded_and_never_panics() {
        // All ones: profile 255, every exp-Golomb 0, ... must end in an error or a value.
        let mut nal = vec![0x67];
        nal.extend_from_slice(&[0xff; 64]);
        let _ = parse_avc_config(&record(&nal));
        // High profile, scaling lists of all-ones deltas.
        let mut nal = vec![0x67, 100, 0, 40, 0b1010_1011];
        nal.extend_from_slice(&[0x55; 4000]);
        let _ = parse_avc_config(&record(&nal));
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let mut nal = vec![0x67];
            for _ in 0..(seed % 40) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                nal.push(seed as u8);
            }
            let _ = parse_avc_config(&record(&nal));
        }
    }
}
