//! H.264 from the AVCC form FLV carries (length-prefixed NAL units, parameter sets
//! in the decoder configuration record) to the Annex B byte stream MPEG-TS carries.

use crate::Error;

/// What a keyframe needs in front of it and how NAL units are delimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AvcParams {
    pub(crate) nal_length_size: usize,
    pub(crate) sps: Vec<Vec<u8>>,
    pub(crate) pps: Vec<Vec<u8>>,
}

const START_CODE: [u8; 4] = [0, 0, 0, 1];
/// Access unit delimiter, `primary_pic_type` 7 (any slice type).
const AUD: [u8; 6] = [0, 0, 0, 1, 0x09, 0xf0];
const NAL_SPS: u8 = 7;
const NAL_AUD: u8 = 9;

/// Parses an `AVCDecoderConfigurationRecord` (ISO 14496-15 5.3.3.1).
pub(crate) fn parse_record(record: &[u8]) -> Result<AvcParams, Error> {
    let [version, _profile, _compat, _level, length_byte, sps_count, rest @ ..] = record else {
        return Err(Error::AvcConfig("shorter than its fixed fields"));
    };
    if *version != 1 {
        return Err(Error::AvcConfig("configurationVersion is not 1"));
    }
    let nal_length_size = usize::from(length_byte & 0x03) + 1;
    if nal_length_size == 3 {
        return Err(Error::AvcConfig("3-byte NAL lengths"));
    }
    let mut rest = rest;
    let sps = parameter_sets(&mut rest, usize::from(sps_count & 0x1f))?;
    let (&pps_count, mut after) = rest.split_first().ok_or(Error::AvcConfig("no PPS count"))?;
    let pps = parameter_sets(&mut after, usize::from(pps_count))?;
    if sps.is_empty() || pps.is_empty() {
        return Err(Error::AvcConfig("no SPS or no PPS"));
    }
    Ok(AvcParams {
        nal_length_size,
        sps,
        pps,
    })
}

fn parameter_sets(input: &mut &[u8], count: usize) -> Result<Vec<Vec<u8>>, Error> {
    let mut sets = Vec::with_capacity(count);
    for _ in 0..count {
        let [hi, lo, rest @ ..] = *input else {
            return Err(Error::AvcConfig(
                "parameter set length runs past the record",
            ));
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        let set = rest
            .get(..len)
            .ok_or(Error::AvcConfig("parameter set runs past the record"))?;
        sets.push(set.to_vec());
        *input = &rest[len..];
    }
    Ok(sets)
}

/// Appends one access unit in Annex B form: an AUD, the parameter sets before a
/// keyframe that does not carry its own, then each NAL unit with a start code.
pub(crate) fn to_annex_b(
    params: &AvcParams,
    frame: &[u8],
    keyframe: bool,
    timestamp: u32,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let nals = split_nals(frame, params.nal_length_size, timestamp)?;
    out.extend_from_slice(&AUD);
    let carries_sps = nals.iter().any(|n| nal_type(n) == Some(NAL_SPS));
    if keyframe && !carries_sps {
        for set in params.sps.iter().chain(&params.pps) {
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(set);
        }
    }
    for nal in nals {
        if nal.is_empty() || nal_type(nal) == Some(NAL_AUD) {
            continue;
        }
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(nal);
    }
    Ok(())
}

fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| b & 0x1f)
}

fn split_nals(frame: &[u8], length_size: usize, timestamp: u32) -> Result<Vec<&[u8]>, Error> {
    let mut nals = Vec::new();
    let mut offset = 0;
    while offset < frame.len() {
        let truncated = Error::TruncatedNal { timestamp, offset };
        let len_bytes = frame
            .get(offset..offset + length_size)
            .ok_or(truncated.clone())?;
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        let start = offset + length_size;
        let nal = start
            .checked_add(len)
            .and_then(|end| frame.get(start..end))
            .ok_or(truncated)?;
        nals.push(nal);
        offset = start + len;
    }
    Ok(nals)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Vec<u8> {
        // version 1, High 3.1, 4-byte lengths, one SPS, one PPS.
        vec![
            1, 100, 0, 31, 0xff, 0xe1, 0, 3, 0x67, 0xaa, 0xbb, 1, 0, 2, 0x68, 0xcc,
        ]
    }

    #[test]
    fn parses_record_and_inserts_parameter_sets_before_keyframes() {
        let params = parse_record(&record()).unwrap();
        assert_eq!(params.nal_length_size, 4);
        assert_eq!(params.sps, [vec![0x67, 0xaa, 0xbb]]);
        assert_eq!(params.pps, [vec![0x68, 0xcc]]);

        let frame = [0, 0, 0, 2, 0x65, 0x11, 0, 0, 0, 2, 0x09, 0xf0];
        let mut out = Vec::new();
        to_annex_b(&params, &frame, true, 0, &mut out).unwrap();
        assert_eq!(
            out,
            [
                0, 0, 0, 1, 0x09, 0xf0, // AUD
                0, 0, 0, 1, 0x67, 0xaa, 0xbb, // SPS
                0, 0, 0, 1, 0x68, 0xcc, // PPS
                0, 0, 0, 1, 0x65, 0x11, // IDR (the frame's own AUD dropped)
            ]
        );
        let mut out = Vec::new();
        to_annex_b(&params, &[0, 0, 0, 1, 0x41], false, 0, &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x41]);
    }

    #[test]
    fn malformed_input_is_an_error_at_every_truncation() {
        let record = record();
        for cut in 0..record.len() {
            assert!(parse_record(&record[..cut]).is_err(), "cut at {cut}");
        }
        let params = parse_record(&record).unwrap();
        let frame = [0, 0, 0, 3, 0x65, 0x11, 0x22];
        for cut in 1..frame.len() {
            let result = to_annex_b(&params, &frame[..cut], true, 7, &mut Vec::new());
            assert!(
                matches!(result, Err(Error::TruncatedNal { timestamp: 7, .. })),
                "cut at {cut}"
            );
        }
        // A length near usize::MAX must not overflow.
        let huge = [0xff, 0xff, 0xff, 0xff, 1];
        assert!(to_annex_b(&params, &huge, false, 0, &mut Vec::new()).is_err());
    }
}
