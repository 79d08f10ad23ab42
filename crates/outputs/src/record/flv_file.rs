//! FLV recordings: the file header, then the stream's own tags with timestamps from 0.
//! Every tag is complete on its own, so the file plays while it grows and after a
//! crash, up to the last tag that reached the disk.

use bytes::Bytes;
use onair_amf0::Value;
use onair_flv::encode_tag;
use onair_media::{FrameKind, MediaFrame};

use super::format::{FileStart, RecordingFormat};

/// `onMetaData` fields that describe the encoder's own file (its length, size, index)
/// rather than the stream: a recording is a different file, so they are left out.
const FILE_FIELDS: [&str; 8] = [
    "duration",
    "filesize",
    "datasize",
    "lasttimestamp",
    "lastkeyframetimestamp",
    "lastkeyframelocation",
    "keyframes",
    "canSeekToEnd",
];

#[derive(Debug, Default)]
pub(crate) struct FlvFile;

impl RecordingFormat for FlvFile {
    fn begin(&mut self, start: &FileStart<'_>, out: &mut Vec<u8>) {
        out.extend_from_slice(&onair_flv::file_header(start.has_audio, start.has_video));
        if let Some(metadata) = start.metadata.and_then(|m| stream_metadata(&m.payload)) {
            out.extend_from_slice(&encode_tag(FrameKind::Script, 0, &metadata));
        }
        for header in [start.video_header, start.audio_header]
            .into_iter()
            .flatten()
        {
            out.extend_from_slice(&encode_tag(header.kind, 0, &header.payload));
        }
    }

    fn frame(&mut self, frame: &MediaFrame, out: &mut Vec<u8>) {
        // A timed onMetaData reads as a data stream in ffmpeg; the next file carries
        // the new one at its start.
        if frame.kind == FrameKind::Script {
            return;
        }
        out.extend_from_slice(&encode_tag(frame.kind, frame.timestamp, &frame.payload));
    }

    fn finish(&mut self, _out: &mut Vec<u8>) {}
}

/// The encoder's `onMetaData` without the fields that describe its own file; `None`
/// when it is not readable metadata.
fn stream_metadata(payload: &[u8]) -> Option<Bytes> {
    let mut values = onair_amf0::decode_all(payload).ok()?;
    if values.first().and_then(Value::as_str) != Some("onMetaData") {
        return None;
    }
    if let Some(Value::EcmaArray(props) | Value::Object(props)) = values.get_mut(1) {
        props.retain(|(key, _)| !FILE_FIELDS.contains(&key.as_str()));
    }
    Some(onair_amf0::encode(&values))
}

#[cfg(test)]
mod tests {
    use onair_flv::FlvReader;

    use super::*;

    fn frame(kind: FrameKind, timestamp: u32, keyframe: bool, header: bool) -> MediaFrame {
        MediaFrame {
            kind,
            timestamp,
            keyframe,
            sequence_header: header,
            payload: Bytes::from(vec![kind as u8; 5]),
        }
    }

    fn metadata() -> MediaFrame {
        let props = Value::EcmaArray(vec![
            ("duration".into(), Value::Number(6.0)),
            ("width".into(), Value::Number(640.0)),
            ("filesize".into(), Value::Number(1e6)),
        ]);
        MediaFrame {
            payload: onair_amf0::encode(&[Value::String("onMetaData".into()), props]),
            ..frame(FrameKind::Script, 0, false, false)
        }
    }

    #[test]
    fn a_file_reads_back_with_its_header_flags_metadata_headers_and_frames() {
        let (meta, video, audio) = (
            metadata(),
            frame(FrameKind::Video, 0, true, true),
            frame(FrameKind::Audio, 0, false, true),
        );
        for (has_audio, has_video) in [(true, true), (true, false), (false, true)] {
            let mut writer = FlvFile;
            let mut out = Vec::new();
            writer.begin(
                &FileStart {
                    metadata: Some(&meta),
                    video_header: has_video.then_some(&video),
                    audio_header: has_audio.then_some(&audio),
                    has_video,
                    has_audio,
                },
                &mut out,
            );
            writer.frame(&frame(FrameKind::Video, 0, true, false), &mut out);
            writer.frame(&meta, &mut out);
            writer.frame(&frame(FrameKind::Audio, 23, false, false), &mut out);
            writer.finish(&mut out);

            let mut reader = FlvReader::new(1 << 20);
            reader.push(&out);
            let mut tags = Vec::new();
            while let Some(tag) = reader.next_tag().unwrap() {
                tags.push(tag);
            }
            let header = reader.header().unwrap();
            assert_eq!((header.has_audio, header.has_video), (has_audio, has_video));
            let kinds: Vec<_> = tags.iter().map(|t| (t.kind, t.timestamp)).collect();
            let mut expected = vec![(FrameKind::Script, 0)];
            if has_video {
                expected.push((FrameKind::Video, 0));
            }
            if has_audio {
                expected.push((FrameKind::Audio, 0));
            }
            expected.extend([(FrameKind::Video, 0), (FrameKind::Audio, 23)]);
            assert_eq!(kinds, expected);
            let fields = onair_amf0::decode_all(&tags[0].payload).unwrap();
            assert!(fields[1].get("width").is_some());
            assert!(fields[1].get("duration").is_none() && fields[1].get("filesize").is_none());
            assert_eq!(reader.buffered(), 0);
        }
    }

    #[test]
    fn unreadable_metadata_is_left_out() {
        assert!(stream_metadata(b"\x02\x00").is_none());
        assert!(stream_metadata(&onair_amf0::encode(&[Value::String("other".into())])).is_none());
    }
}
