//! A `Transfer-Encoding: chunked` decoder for HTTP-FLV bodies: hands back the data,
//! drops the framing, and can be fed the body split anywhere.

/// A `Transfer-Encoding: chunked` decoder that hands back the data and drops the framing.
#[derive(Debug, Default)]
pub(super) struct ChunkedDecoder {
    state: ChunkState,
    /// Hex digits read of the current size line.
    digits: u8,
    /// The size being read.
    size: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChunkState {
    /// Reading the hex size.
    #[default]
    Size,
    /// Skipping a chunk extension up to CR LF.
    Extension,
    /// After the size line's CR.
    SizeLf,
    Data(u64),
    DataCr,
    DataLf,
    /// The zero-size chunk was read; trailers and anything after are ignored.
    Done,
}

/// A chunked body that cannot be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(super) enum ChunkError {
    #[error("bad chunk size line")]
    BadSize,
    #[error("chunk data not followed by CR LF")]
    MissingCrlf,
}

/// Most hex digits accepted in a chunk size (60 bits).
pub(super) const SIZE_DIGITS_MAX: u8 = 15;

impl ChunkedDecoder {
    pub(super) fn decode(
        &mut self,
        mut input: &[u8],
        mut out: impl FnMut(&[u8]),
    ) -> Result<(), ChunkError> {
        while let Some((&byte, rest)) = input.split_first() {
            match self.state {
                ChunkState::Size => {
                    if let Some(digit) = (byte as char).to_digit(16) {
                        self.digits += 1;
                        if self.digits > SIZE_DIGITS_MAX {
                            return Err(ChunkError::BadSize);
                        }
                        self.size = self.size << 4 | u64::from(digit);
                    } else if self.digits == 0 {
                        return Err(ChunkError::BadSize);
                    } else if byte == b'\r' {
                        self.state = ChunkState::SizeLf;
                    } else if byte == b';' || byte == b' ' || byte == b'\t' {
                        self.state = ChunkState::Extension;
                    } else {
                        return Err(ChunkError::BadSize);
                    }
                    input = rest;
                }
                ChunkState::Extension => {
                    if byte == b'\r' {
                        self.state = ChunkState::SizeLf;
                    }
                    input = rest;
                }
                ChunkState::SizeLf => {
                    if byte != b'\n' {
                        return Err(ChunkError::BadSize);
                    }
                    self.digits = 0;
                    self.state = if self.size == 0 {
                        ChunkState::Done
                    } else {
                        ChunkState::Data(self.size)
                    };
                    self.size = 0;
                    input = rest;
                }
                ChunkState::Data(remaining) => {
                    let take = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(input.len());
                    let (data, rest) = input.split_at(take);
                    out(data);
                    let left = remaining - take as u64;
                    self.state = if left == 0 {
                        ChunkState::DataCr
                    } else {
                        ChunkState::Data(left)
                    };
                    input = rest;
                }
                ChunkState::DataCr | ChunkState::DataLf => {
                    let expected = if self.state == ChunkState::DataCr {
                        b'\r'
                    } else {
                        b'\n'
                    };
                    if byte != expected {
                        return Err(ChunkError::MissingCrlf);
                    }
                    self.state = if self.state == ChunkState::DataCr {
                        ChunkState::DataLf
                    } else {
                        ChunkState::Size
                    };
                    input = rest;
                }
                ChunkState::Done => return Ok(()),
            }
        }
        Ok(())
    }

    pub(super) fn done(&self) -> bool {
        self.state == ChunkState::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_chunked_bodies_split_anywhere() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
        for split in 0..=wire.len() {
            let mut decoder = ChunkedDecoder::default();
            let mut out = Vec::new();
            let (a, b) = wire.split_at(split);
            decoder.decode(a, |d| out.extend_from_slice(d)).unwrap();
            decoder.decode(b, |d| out.extend_from_slice(d)).unwrap();
            assert_eq!(out, b"hello, world", "split at {split}");
            assert!(decoder.done());
        }
    }

    #[test]
    fn refuses_bad_chunk_framing() {
        let mut decoder = ChunkedDecoder::default();
        assert_eq!(decoder.decode(b"zz\r\n", |_| {}), Err(ChunkError::BadSize));
        let mut decoder = ChunkedDecoder::default();
        assert_eq!(
            decoder.decode(b"2\r\nabXY", |_| {}),
            Err(ChunkError::MissingCrlf)
        );
        let mut decoder = ChunkedDecoder::default();
        let huge = b"1111111111111111\r\n";
        assert_eq!(decoder.decode(huge, |_| {}), Err(ChunkError::BadSize));
    }
}
