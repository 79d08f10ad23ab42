//! Shared media types used by every other onair crate: the name of a stream
//! ([`StreamPath`]), one unit of media as it moves through the server
//! ([`MediaFrame`]) and the codecs we recognise.
//!
//! Deliberately absent: any parsing of codec bitstreams (that is the `flv` crate's job)
//! and any IO.

mod frame;
mod path;

pub use frame::{AudioCodec, FrameKind, MediaFrame, VideoCodec};
pub use path::{PathError, StreamPath, RESERVED_APPS};
