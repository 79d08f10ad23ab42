//! AMF0 (Action Message Format 0), the encoding of RTMP commands and FLV script data.
//!
//! [`decode_all`] reads a sequence of values with a nesting-depth cap, so a hostile
//! peer cannot recurse the decoder into a stack overflow; [`encode`] writes values
//! back. Deliberately absent: AMF3, object references and typed objects' class
//! registries; RTMP encoders never send them in the commands we handle, and the
//! decoder reports them as [`Error::UnsupportedMarker`].

mod decode;
mod encode;
mod value;

pub use decode::{decode_all, Decoder, DEFAULT_MAX_DEPTH};
pub use encode::{encode, encode_into};
pub use value::Value;

/// Everything that can be wrong with AMF0 bytes. Offsets count from the start of the
/// buffer given to the decoder, so they can be found in a packet capture.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("AMF0 data ends early at byte {offset}")]
    Truncated { offset: usize },
    #[error("AMF0 marker {marker:#04x} at byte {offset} is not supported")]
    UnsupportedMarker { marker: u8, offset: usize },
    #[error("AMF0 nesting deeper than {max_depth} at byte {offset}")]
    TooDeep { max_depth: usize, offset: usize },
    #[error("AMF0 string at byte {offset} is not valid UTF-8")]
    InvalidUtf8 { offset: usize },
    #[error(
        "AMF0 container at byte {offset} declares {declared} entries, more than the data can hold"
    )]
    BadLength { declared: u32, offset: usize },
}
