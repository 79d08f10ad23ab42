//! Fragmented MP4 recordings: the CMAF init segment, then one `moof`+`mdat` fragment
//! about every second, from the same segmenter LL-HLS uses. A fragment is complete on
//! its own, so the file plays while it grows and after a crash, up to the last
//! fragment that reached the disk.

use std::time::Duration;

use onair_fmp4::{Output, Segmenter, SegmenterSettings};
use onair_media::MediaFrame;

use super::format::{FileStart, RecordingFormat};

/// How much media one fragment holds: what a crash can lose, at most.
const FRAGMENT: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(crate) struct Fmp4File {
    segmenter: Segmenter,
    outputs: Vec<Output>,
    /// The init segment is written; a later one (a codec change the recorder has not
    /// cut a new file for yet) cannot go in the middle of this file.
    started: bool,
    errors: u64,
}

impl Fmp4File {
    pub fn new() -> Self {
        Self {
            segmenter: Segmenter::new(SegmenterSettings {
                part_target: FRAGMENT,
                segment_target: FRAGMENT,
            }),
            outputs: Vec::new(),
            started: false,
            errors: 0,
        }
    }

    fn push(&mut self, frame: &MediaFrame, out: &mut Vec<u8>) {
        if let Err(error) = self.segmenter.push(frame, &mut self.outputs) {
            self.errors += 1;
            if self.errors.is_power_of_two() {
                tracing::warn!(%error, errors = self.errors, "recording: frame left out");
            }
        }
        self.write(out);
    }

    fn write(&mut self, out: &mut Vec<u8>) {
        for output in self.outputs.drain(..) {
            match output {
                Output::Init(init) if !self.started => {
                    out.extend_from_slice(&init);
                    self.started = true;
                }
                Output::Init(_) => {}
                Output::Part(part) if self.started => out.extend_from_slice(&part.bytes),
                Output::Part(_) => {}
            }
        }
    }
}

impl RecordingFormat for Fmp4File {
    fn begin(&mut self, start: &FileStart<'_>, out: &mut Vec<u8>) {
        for frame in [start.metadata, start.video_header, start.audio_header]
            .into_iter()
            .flatten()
        {
            let frame = MediaFrame {
                timestamp: 0,
                ..frame.clone()
            };
            self.push(&frame, out);
        }
    }

    fn frame(&mut self, frame: &MediaFrame, out: &mut Vec<u8>) {
        self.push(frame, out);
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.segmenter.finish(&mut self.outputs);
        self.write(out);
    }
}
