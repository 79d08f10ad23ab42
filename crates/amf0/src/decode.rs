use crate::{Error, Value};

/// Nesting depth allowed by [`decode_all`]; real encoders never go past 3.
pub const DEFAULT_MAX_DEPTH: usize = 16;

/// Decodes every value in `buf` with the default depth cap.
pub fn decode_all(buf: &[u8]) -> Result<Vec<Value>, Error> {
    Decoder::new(buf)
        .with_max_depth(DEFAULT_MAX_DEPTH)
        .decode_all()
}

/// A cursor over AMF0 bytes.
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    max_depth: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }

    pub fn with_max_depth(mut self, max_depth: usize) -> Self {
        self.max_depth = max_depth;
        self
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn decode_all(mut self) -> Result<Vec<Value>, Error> {
        let mut values = Vec::new();
        while !self.is_empty() {
            values.push(self.decode()?);
        }
        Ok(values)
    }

    /// Decodes the next value.
    pub fn decode(&mut self) -> Result<Value, Error> {
        self.value(0)
    }

    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        let offset = self.pos;
        if depth > self.max_depth {
            return Err(Error::TooDeep {
                max_depth: self.max_depth,
                offset,
            });
        }
        let marker = self.u8()?;
        Ok(match marker {
            0x00 => Value::Number(self.f64()?),
            0x01 => Value::Boolean(self.u8()? != 0),
            0x02 => {
                let len = usize::from(self.u16()?);
                Value::String(self.utf8(len)?)
            }
            0x03 => Value::Object(self.properties(depth)?),
            0x05 => Value::Null,
            0x06 => Value::Undefined,
            0x08 => {
                // The count is advisory; encoders get it wrong, the end marker is what counts.
                self.u32()?;
                Value::EcmaArray(self.properties(depth)?)
            }
            0x0a => {
                let declared = self.u32()?;
                // Every value takes at least one byte, which caps a hostile count.
                if declared as usize > self.buf.len() - self.pos {
                    return Err(Error::BadLength { declared, offset });
                }
                let mut items = Vec::with_capacity(declared as usize);
                for _ in 0..declared {
                    items.push(self.value(depth + 1)?);
                }
                Value::StrictArray(items)
            }
            0x0b => {
                let millis = self.f64()?;
                self.u16()?;
                Value::Date(millis)
            }
            0x0c => {
                let len = self.u32()? as usize;
                Value::String(self.utf8(len)?)
            }
            other => {
                return Err(Error::UnsupportedMarker {
                    marker: other,
                    offset,
                })
            }
        })
    }

    fn properties(&mut self, depth: usize) -> Result<Vec<(String, Value)>, Error> {
        let mut props = Vec::new();
        loop {
            let len = usize::from(self.u16()?);
            if len == 0 && self.peek() == Some(0x09) {
                self.pos += 1;
                return Ok(props);
            }
            let key = self.utf8(len)?;
            let value = self.value(depth + 1)?;
            props.push((key, value));
        }
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.buf.len());
        let end = end.ok_or(Error::Truncated {
            offset: self.buf.len(),
        })?;
        let slice = &self.buf[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Error> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, Error> {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(self.take(8)?);
        Ok(f64::from_be_bytes(bytes))
    }

    fn utf8(&mut self, len: usize) -> Result<String, Error> {
        let offset = self.pos;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| Error::InvalidUtf8 { offset })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode;

    fn sample() -> Vec<Value> {
        vec![
            Value::from("connect"),
            Value::Number(1.0),
            Value::object([
                ("app", Value::from("live")),
                ("tcUrl", Value::from("rtmp://localhost/live")),
                ("fpad", Value::Boolean(false)),
                ("capabilities", Value::Number(239.0)),
                ("nested", Value::object([("deep", Value::Null)])),
            ]),
            Value::Null,
            Value::Undefined,
            Value::EcmaArray(vec![("width".into(), Value::Number(1280.0))]),
            Value::StrictArray(vec![Value::Number(1.0), Value::from("x")]),
            Value::Date(1_700_000_000_000.0),
            Value::String("é".repeat(40_000)),
        ]
    }

    #[test]
    fn round_trips() {
        let values = sample();
        let bytes = encode(&values);
        assert_eq!(decode_all(&bytes).unwrap(), values);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = encode(&sample());
        for cut in 0..bytes.len() {
            let _ = decode_all(&bytes[..cut]);
        }
        assert!(matches!(
            decode_all(&bytes[..bytes.len() - 1]),
            Err(Error::Truncated { .. })
        ));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut bytes = Vec::new();
        for _ in 0..10_000 {
            bytes.extend_from_slice(&[0x03, 0x00, 0x01, b'a']);
        }
        assert!(matches!(decode_all(&bytes), Err(Error::TooDeep { .. })));
        let mut arrays = Vec::new();
        for _ in 0..10_000 {
            arrays.extend_from_slice(&[0x0a, 0, 0, 0, 1]);
        }
        assert!(matches!(decode_all(&arrays), Err(Error::TooDeep { .. })));
    }

    #[test]
    fn hostile_array_length_is_refused() {
        let bytes = [0x0a, 0xff, 0xff, 0xff, 0xff, 0x05];
        assert!(matches!(decode_all(&bytes), Err(Error::BadLength { .. })));
    }

    #[test]
    fn unknown_marker_is_reported_with_offset() {
        let bytes = [0x05, 0x11];
        assert_eq!(
            decode_all(&bytes),
            Err(Error::UnsupportedMarker {
                marker: 0x11,
                offset: 1
            })
        );
    }

    #[test]
    fn ecma_array_count_is_advisory() {
        // ffmpeg's onMetaData says 0 entries and then lists several.
        let mut bytes = vec![0x08, 0, 0, 0, 0];
        bytes.extend_from_slice(&[0x00, 0x01, b'w', 0x00]);
        bytes.extend_from_slice(&640f64.to_be_bytes());
        bytes.extend_from_slice(&[0x00, 0x00, 0x09]);
        let values = decode_all(&bytes).unwrap();
        assert_eq!(values[0].get("w"), Some(&Value::Number(640.0)));
    }
}
