//! Feeds arbitrary bytes to the FLV reader whole and in two pieces and checks the
//! split changes nothing; then runs every tag through the tag-header parsers,
//! `classify`, the codec configuration parsers (AVC, HEVC, AAC) and the metadata
//! parser, and re-encodes it with `encode_tag` to check it reads back the same.
//! Input: one byte choosing the split point and the reader mode (high bit set: bare
//! tags as in an RTMP aggregate message), then the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onair_flv::{Error, FlvReader, Tag};
use onair_media::{AudioCodec, FrameKind, VideoCodec};

const MAX_TAG_SIZE: usize = 1 << 20;

fn reader(headerless: bool) -> FlvReader {
    if headerless {
        FlvReader::headerless(MAX_TAG_SIZE)
    } else {
        FlvReader::new(MAX_TAG_SIZE)
    }
}

fn read(headerless: bool, pieces: &[&[u8]]) -> (Vec<Tag>, Option<Error>) {
    let mut reader = reader(headerless);
    let mut tags = Vec::new();
    for piece in pieces {
        reader.push(piece);
        loop {
            match reader.next_tag() {
                Ok(Some(tag)) => {
                    assert!(tag.payload.len() <= MAX_TAG_SIZE);
                    tags.push(tag);
                }
                Ok(None) => break,
                Err(err) => {
                    // A dead reader stays dead.
                    assert_eq!(reader.next_tag(), Err(err.clone()));
                    return (tags, Some(err));
                }
            }
        }
    }
    (tags, None)
}

fn inspect(tag: &Tag) {
    let _ = onair_flv::classify(tag.kind, tag.timestamp, tag.payload.clone());
    match tag.kind {
        FrameKind::Video => {
            let Ok(info) = onair_flv::parse_video_tag(&tag.payload) else {
                return;
            };
            assert!(info.header_len <= tag.payload.len());
            let body = tag.payload.get(info.header_len..).unwrap_or_default();
            if info.sequence_header {
                match info.codec {
                    VideoCodec::H264 => drop(onair_flv::parse_avc_config(body)),
                    VideoCodec::Hevc => drop(onair_flv::parse_hevc_config(body)),
                    _ => {}
                }
            }
            // Whatever the header says, both record parsers must survive any body.
            let _ = onair_flv::parse_avc_config(body);
            let _ = onair_flv::parse_hevc_config(body);
        }
        FrameKind::Audio => {
            let Ok(info) = onair_flv::parse_audio_tag(&tag.payload) else {
                return;
            };
            assert!(info.header_len <= tag.payload.len());
            let body = tag.payload.get(info.header_len..).unwrap_or_default();
            if info.sequence_header && info.codec == AudioCodec::Aac {
                let _ = onair_flv::parse_aac_config(body);
            }
            let _ = onair_flv::parse_aac_config(body);
        }
        FrameKind::Script => {
            let _ = onair_flv::parse_metadata(&tag.payload);
            if let Ok(stripped) = onair_flv::strip_set_data_frame(&tag.payload) {
                // Stripping is idempotent.
                assert_eq!(
                    onair_flv::strip_set_data_frame(&stripped).ok(),
                    Some(stripped.clone())
                );
            }
        }
    }
    // encode_tag -> reader gives the tag back.
    let encoded = onair_flv::encode_tag(tag.kind, tag.timestamp, &tag.payload);
    let mut again = FlvReader::headerless(MAX_TAG_SIZE);
    again.push(&encoded);
    assert_eq!(again.next_tag().ok().flatten().as_ref(), Some(tag));
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let headerless = seed & 0x80 != 0;
    let cut = stream.len() * usize::from(seed & 0x7f) / 0x7f;
    let whole = read(headerless, &[stream]);
    let (head, tail) = stream.split_at(cut);
    assert_eq!(read(headerless, &[head, tail]), whole);
    for tag in &whole.0 {
        inspect(tag);
    }
});
