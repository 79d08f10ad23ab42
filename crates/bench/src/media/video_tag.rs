//! Telling H.264 video tag bodies apart: keyframes and sequence headers.

/// A video tag body that starts a GOP: frame type 1 (keyframe), AVC NALU (packet type 1).
pub(super) fn is_keyframe(payload: &[u8]) -> bool {
    matches!(payload, [first, 1, ..] if first >> 4 == 1 && first & 0x0f == 7)
}

/// An AVC sequence header (decoder configuration), not a picture.
pub(super) fn is_sequence_header(payload: &[u8]) -> bool {
    matches!(payload, [first, 0, ..] if first & 0x0f == 7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spots_keyframes_and_sequence_headers() {
        assert!(is_keyframe(&[0x17, 1, 0, 0, 0]));
        assert!(!is_keyframe(&[0x17, 0, 0, 0, 0]));
        assert!(!is_keyframe(&[0x27, 1, 0, 0, 0]));
        assert!(!is_keyframe(&[0x17]));
        assert!(is_sequence_header(&[0x17, 0, 0, 0, 0]));
        assert!(!is_sequence_header(&[0x17, 1]));
    }
}
