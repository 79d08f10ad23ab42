//! Bit-level reading for codec parameter sets: RBSP unescaping, fixed-width fields
//! and exp-Golomb codes. Every read is bounds-checked and reports which structure
//! ran short.

use crate::Error;

/// Removes emulation prevention bytes (`00 00 03` -> `00 00`) from a NAL unit, giving
/// its raw byte sequence payload.
pub(crate) fn unescape_rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0usize;
    for &byte in nal {
        if zeros >= 2 && byte == 0x03 {
            zeros = 0;
            continue;
        }
        zeros = if byte == 0 { zeros + 1 } else { 0 };
        out.push(byte);
    }
    out
}

/// Reads bits most-significant first.
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits.
    pos: usize,
    what: &'static str,
}

impl<'a> BitReader<'a> {
    /// `what` names the structure in errors ("H.264 SPS").
    pub(crate) fn new(data: &'a [u8], what: &'static str) -> Self {
        Self { data, pos: 0, what }
    }

    fn truncated(&self) -> Error {
        Error::Truncated {
            what: self.what,
            offset: self.data.len(),
        }
    }

    pub(crate) fn invalid(&self, reason: &'static str) -> Error {
        Error::InvalidConfig {
            what: self.what,
            reason,
        }
    }

    pub(crate) fn bit(&mut self) -> Result<bool, Error> {
        let byte = self
            .data
            .get(self.pos / 8)
            .ok_or_else(|| self.truncated())?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    pub(crate) fn flag(&mut self) -> Result<bool, Error> {
        self.bit()
    }

    /// Reads `n` bits; more than 32 are not read (callers only ask for constants).
    pub(crate) fn bits(&mut self, n: u32) -> Result<u32, Error> {
        let mut value = 0u64;
        for _ in 0..n.min(32) {
            value = (value << 1) | u64::from(self.bit()?);
        }
        // At most 32 bits were shifted in.
        Ok(value as u32)
    }

    pub(crate) fn u8(&mut self, n: u32) -> Result<u8, Error> {
        Ok((self.bits(n.min(8))? & 0xff) as u8)
    }

    pub(crate) fn skip(&mut self, n: usize) -> Result<(), Error> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.truncated())?;
        if end > self.data.len().saturating_mul(8) {
            self.pos = self.data.len().saturating_mul(8);
            return Err(self.truncated());
        }
        self.pos = end;
        Ok(())
    }

    /// Unsigned exp-Golomb, `ue(v)`. Codes longer than 32 bits (values above
    /// `u32::MAX - 1`) are refused: no field we read can legitimately be that large.
    pub(crate) fn ue(&mut self) -> Result<u32, Error> {
        let mut leading_zeros = 0u32;
        while !self.bit()? {
            leading_zeros += 1;
            if leading_zeros > 31 {
                return Err(self.invalid("exp-Golomb code longer than 32 bits"));
            }
        }
        let suffix = u64::from(self.bits(leading_zeros)?);
        let value = (1u64 << leading_zeros) - 1 + suffix;
        u32::try_from(value).map_err(|_| self.invalid("exp-Golomb value overflows 32 bits"))
    }

    /// Signed exp-Golomb, `se(v)`.
    pub(crate) fn se(&mut self) -> Result<i64, Error> {
        let k = i64::from(self.ue()?);
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_emulation_prevention() {
        assert_eq!(
            unescape_rbsp(&[0x67, 0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03]),
            vec![0x67, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00]
        );
        // A 03 that does not follow two zeros stays.
        assert_eq!(unescape_rbsp(&[0x00, 0x03, 0x03]), vec![0x00, 0x03, 0x03]);
    }

    #[test]
    fn reads_fixed_and_exp_golomb_fields() {
        // 1 | 010 | 011 | 00100 | 00101 | 1111 -> ue 0, 1, 2, 3, se(4) = -2, bits
        let data = [0b1010_0110, 0b0100_0010, 0b1111_1000];
        let mut r = BitReader::new(&data, "test");
        assert_eq!(r.ue().unwrap(), 0);
        assert_eq!(r.ue().unwrap(), 1);
        assert_eq!(r.ue().unwrap(), 2);
        assert_eq!(r.ue().unwrap(), 3);
        assert_eq!(r.se().unwrap(), -2);
        assert_eq!(r.bits(4).unwrap(), 0b1111);
        assert_eq!(r.bits(3).unwrap(), 0);
        assert!(matches!(
            r.bit(),
            Err(Error::Truncated { what: "test", .. })
        ));
    }

    #[test]
    fn refuses_overlong_exp_golomb() {
        let data = [0u8; 8];
        let mut r = BitReader::new(&data, "test");
        assert!(matches!(r.ue(), Err(Error::InvalidConfig { .. })));
        // 31 leading zeros and a full suffix is the largest value accepted.
        let data = [0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe];
        let mut r = BitReader::new(&data, "test");
        assert_eq!(r.ue().unwrap(), u32::MAX - 1);
    }

    #[test]
    fn skip_past_end_is_an_error() {
        let data = [0u8; 2];
        let mut r = BitReader::new(&data, "test");
        assert!(r.skip(16).is_ok());
        assert!(r.skip(1).is_err());
        let mut r = BitReader::new(&data, "test");
        assert!(r.skip(usize::MAX).is_err());
    }
}
