//! RFC 6381 `CODECS` strings for the multivariant playlist.

/// `avc1.PPCCLL` from `profile_idc`, the constraint flags byte and `level_idc`.
pub fn avc_codec(profile: u8, constraints: u8, level: u8) -> String {
    format!("avc1.{profile:02x}{constraints:02x}{level:02x}")
}

/// `avc1.PPCCLL` from an `AVCDecoderConfigurationRecord` (bytes 1..4 are the SPS's
/// profile, constraint flags and level), or `None` when it is too short.
pub fn avc_codec_from_record(record: &[u8]) -> Option<String> {
    match record {
        [1, profile, constraints, level, ..] => Some(avc_codec(*profile, *constraints, *level)),
        _ => None,
    }
}

/// `mp4a.40.N` for an AAC audio object type (2 = AAC-LC).
pub fn aac_codec(object_type: u8) -> String {
    format!("mp4a.40.{object_type}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_strings() {
        assert_eq!(avc_codec(100, 0, 31), "avc1.64001f");
        assert_eq!(
            avc_codec_from_record(&[1, 0x42, 0xc0, 0x1e, 0xff]).as_deref(),
            Some("avc1.42c01e")
        );
        assert_eq!(avc_codec_from_record(&[1, 0x42]), None);
        assert_eq!(avc_codec_from_record(&[0, 0x42, 0xc0, 0x1e]), None);
        assert_eq!(aac_codec(2), "mp4a.40.2");
    }
}
