//! The seam between the recorder and a container. The recorder (with
//! `onair_policy::RecordCuts`) decides where files begin and end (a keyframe, rotation,
//! a codec change) and rebases timestamps so each file starts at 0; a [`RecordingFormat`] only turns that into bytes to append.
//!
//! Adding a container is a type implementing the trait and one arm in [`writer_for`].
//! FLV writes each tag as it comes; fMP4 writes the init segment, then nothing until
//! a fragment is complete, then its `moof`+`mdat`, and the last fragment at the end.
//! The recorder flushes what it is given at every keyframe and once per
//! `record.flush_interval_ms`, so a file is playable up to its last flushed fragment.

use onair_media::MediaFrame;
use onair_policy::FileHeaders;

use super::flv_file::FlvFile;
use super::fmp4_file::Fmp4File;
use super::settings::RecordFormat;

/// What a new file starts with: the stream's latest metadata and codec headers, and
/// which media it carries (the policy's [`FileHeaders`]).
pub(crate) type FileStart<'a> = FileHeaders<'a>;

/// One file's container writer. Timestamps it is given start at 0 in each file.
pub(crate) trait RecordingFormat: Send {
    /// Appends what opens the file: everything a player needs before the first frame.
    fn begin(&mut self, start: &FileStart<'_>, out: &mut Vec<u8>);
    /// Appends what `frame` adds to the file; possibly nothing yet (a fragment still
    /// being gathered). Never called before `begin`.
    fn frame(&mut self, frame: &MediaFrame, out: &mut Vec<u8>);
    /// Appends what closes the file (what is still gathered).
    fn finish(&mut self, out: &mut Vec<u8>);
}

/// A fresh writer for one file.
pub(crate) fn writer_for(format: RecordFormat) -> Box<dyn RecordingFormat> {
    match format {
        RecordFormat::Flv => Box::new(FlvFile),
        RecordFormat::Fmp4 => Box::new(Fmp4File::new()),
    }
}
