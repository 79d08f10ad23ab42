use bytes::{BufMut, Bytes, BytesMut};

use crate::Value;

/// Encodes values one after another, as RTMP command messages carry them.
pub fn encode(values: &[Value]) -> Bytes {
    let mut buf = BytesMut::new();
    for value in values {
        encode_into(value, &mut buf);
    }
    buf.freeze()
}

pub fn encode_into(value: &Value, buf: &mut BytesMut) {
    match value {
        Value::Number(n) => {
            buf.put_u8(0x00);
            buf.put_f64(*n);
        }
        Value::Boolean(b) => {
            buf.put_u8(0x01);
            buf.put_u8(u8::from(*b));
        }
        Value::String(s) => {
            if s.len() > usize::from(u16::MAX) {
                buf.put_u8(0x0c);
                buf.put_u32(s.len() as u32);
            } else {
                buf.put_u8(0x02);
                buf.put_u16(s.len() as u16);
            }
            buf.put_slice(s.as_bytes());
        }
        Value::Object(props) => {
            buf.put_u8(0x03);
            put_properties(props, buf);
        }
        Value::Null => buf.put_u8(0x05),
        Value::Undefined => buf.put_u8(0x06),
        Value::EcmaArray(props) => {
            buf.put_u8(0x08);
            buf.put_u32(props.len() as u32);
            put_properties(props, buf);
        }
        Value::StrictArray(items) => {
            buf.put_u8(0x0a);
            buf.put_u32(items.len() as u32);
            for item in items {
                encode_into(item, buf);
            }
        }
        Value::Date(millis) => {
            buf.put_u8(0x0b);
            buf.put_f64(*millis);
            buf.put_i16(0);
        }
    }
}

fn put_properties(props: &[(String, Value)], buf: &mut BytesMut) {
    for (key, value) in props {
        let key = truncate_key(key);
        buf.put_u16(key.len() as u16);
        buf.put_slice(key.as_bytes());
        encode_into(value, buf);
    }
    buf.put_slice(&[0x00, 0x00, 0x09]);
}

/// Property names are limited to 65535 bytes by the format; cut at a char boundary.
fn truncate_key(key: &str) -> &str {
    let mut end = key.len().min(usize::from(u16::MAX));
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    &key[..end]
}
