//! Shared media types used by every other onair crate: the name of a stream
//! ([`StreamPath`]), one unit of media as it moves through the server
//! ([`MediaFrame`]), the codecs we recognise, and the error a subsystem's settings
//! give when they cannot work ([`SettingsError`]).
//!
//! Deliberately absent: any parsing of codec bitstreams (that is the `flv` crate's job)
//! and any IO.

mod frame;
mod path;
mod settings;

pub use frame::{AudioCodec, FrameKind, MediaFrame, VideoCodec};
pub use path::{PathError, StreamPath, RESERVED_APPS};
pub use settings::SettingsError;
