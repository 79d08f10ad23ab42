//! A streaming FLV reader: the caller pushes bytes as they arrive and pulls whole tags.

use bytes::{Buf, Bytes, BytesMut};
use onair_media::FrameKind;

use crate::tag::{FileHeader, Tag, FLV_HEADER_LEN, PREVIOUS_TAG_SIZE_LEN, TAG_HEADER_LEN};
use crate::Error;

/// Reads FLV tags from bytes pushed in any split: an FLV file, an HTTP-FLV body, or
/// (with [`FlvReader::headerless`]) the body of an RTMP aggregate message.
///
/// Sans-IO: [`push`](Self::push) what the socket or file gave you, then call
/// [`next_tag`](Self::next_tag) until it returns `Ok(None)`. The reader buffers at most
/// one incomplete tag, whose size is capped by `max_tag_size`, plus whatever was pushed
/// and not yet pulled. Each returned payload is its own allocation, so holding on to
/// one (a GOP cache) never pins the reader's buffer.
///
/// `PreviousTagSize` back-pointers are skipped, not checked: writers get them wrong
/// and they carry nothing the tag header does not. After an error the reader is dead
/// and returns the same error from every later call.
#[derive(Debug)]
pub struct FlvReader {
    buf: BytesMut,
    /// Stream offset of `buf[0]`.
    offset: u64,
    state: State,
    max_tag_size: usize,
    header: Option<FileHeader>,
    failed: Option<Error>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    FileHeader,
    /// Bytes between the 9-byte header and the data offset the header declares.
    SkipHeader(u64),
    PreviousTagSize,
    Tag,
}

impl FlvReader {
    /// A reader for a stream that starts with the FLV file header. Tags whose body is
    /// larger than `max_tag_size` are refused with [`Error::TagTooBig`].
    pub fn new(max_tag_size: usize) -> Self {
        Self::with_state(max_tag_size, State::FileHeader)
    }

    /// A reader for bare tags (`tag, PreviousTagSize, tag, ...`) without a file
    /// header, as an RTMP aggregate message carries them.
    pub fn headerless(max_tag_size: usize) -> Self {
        Self::with_state(max_tag_size, State::Tag)
    }

    fn with_state(max_tag_size: usize, state: State) -> Self {
        Self {
            buf: BytesMut::new(),
            offset: 0,
            state,
            max_tag_size,
            header: None,
            failed: None,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// The file header, once it has been read. Always `None` for a headerless reader.
    pub fn header(&self) -> Option<FileHeader> {
        self.header
    }

    /// Bytes pushed and not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete tag; `Ok(None)` means more bytes are needed.
    pub fn next_tag(&mut self) -> Result<Option<Tag>, Error> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        match self.advance() {
            Ok(tag) => Ok(tag),
            Err(err) => {
                self.buf = BytesMut::new();
                self.failed = Some(err.clone());
                Err(err)
            }
        }
    }

    fn advance(&mut self) -> Result<Option<Tag>, Error> {
        loop {
            match self.state {
                State::FileHeader => {
                    if let Some(found) = self.buf.get(..3) {
                        if found != b"FLV" {
                            let mut sig = [0u8; 3];
                            sig.copy_from_slice(found);
                            return Err(Error::BadSignature { found: sig });
                        }
                    }
                    let Some(h) = self.buf.get(..FLV_HEADER_LEN) else {
                        return Ok(None);
                    };
                    let data_offset = u32::from_be_bytes([h[5], h[6], h[7], h[8]]);
                    if (data_offset as usize) < FLV_HEADER_LEN {
                        return Err(Error::BadDataOffset { data_offset });
                    }
                    self.header = Some(FileHeader {
                        version: h[3],
                        has_audio: h[4] & 0x04 != 0,
                        has_video: h[4] & 0x01 != 0,
                    });
                    self.consume(FLV_HEADER_LEN);
                    self.state = State::SkipHeader(u64::from(data_offset) - FLV_HEADER_LEN as u64);
                }
                State::SkipHeader(remaining) => {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(self.buf.len());
                    self.consume(n);
                    let remaining = remaining - n as u64;
                    if remaining > 0 {
                        self.state = State::SkipHeader(remaining);
                        return Ok(None);
                    }
                    self.state = State::PreviousTagSize;
                }
                State::PreviousTagSize => {
                    if self.buf.len() < PREVIOUS_TAG_SIZE_LEN {
                        return Ok(None);
                    }
                    self.consume(PREVIOUS_TAG_SIZE_LEN);
                    self.state = State::Tag;
                }
                State::Tag => {
                    let Some(h) = self.buf.get(..TAG_HEADER_LEN) else {
                        return Ok(None);
                    };
                    let offset = self.offset;
                    let tag_type = h[0] & 0x1f;
                    let kind = match tag_type {
                        8 => FrameKind::Audio,
                        9 => FrameKind::Video,
                        18 => FrameKind::Script,
                        _ => return Err(Error::UnknownTagType { tag_type, offset }),
                    };
                    if h[0] & 0x20 != 0 {
                        return Err(Error::EncryptedTag { tag_type, offset });
                    }
                    let size = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
                    if size > self.max_tag_size {
                        return Err(Error::TagTooBig {
                            tag_type,
                            size,
                            max: self.max_tag_size,
                            offset,
                        });
                    }
                    let timestamp = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
                    let Some(payload) = self.buf.get(TAG_HEADER_LEN..TAG_HEADER_LEN + size) else {
                        return Ok(None);
                    };
                    let payload = Bytes::copy_from_slice(payload);
                    self.consume(TAG_HEADER_LEN + size);
                    self.state = State::PreviousTagSize;
                    return Ok(Some(Tag {
                        kind,
                        timestamp,
                        payload,
                    }));
                }
            }
        }
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.advance(n);
        self.offset += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tag::{encode_tag, file_header};

    const MAX: usize = 1 << 20;

    /// Feeds `input` as `pieces`, pulling after every push; returns the tags and the
    /// error that ended the stream, if any.
    fn read_split(input: &[u8], cuts: &[usize]) -> (Vec<Tag>, Option<Error>) {
        let mut reader = FlvReader::new(MAX);
        let mut tags = Vec::new();
        let mut start = 0;
        for &end in cuts.iter().chain(std::iter::once(&input.len())) {
            reader.push(&input[start..end]);
            start = end;
            loop {
                match reader.next_tag() {
                    Ok(Some(tag)) => tags.push(tag),
                    Ok(None) => break,
                    Err(err) => return (tags, Some(err)),
                }
            }
        }
        (tags, None)
    }

    fn sample_stream() -> Vec<u8> {
        let mut out = file_header(true, true).to_vec();
        out.extend_from_slice(&encode_tag(
            FrameKind::Script,
            0,
            b"\x02\x00\x0aonMetaData\x05",
        ));
        out.extend_from_slice(&encode_tag(FrameKind::Video, 0, &[0x17, 0, 0, 0, 0, 1, 2]));
        out.extend_from_slice(&encode_tag(FrameKind::Audio, 0, &[0xaf, 0, 0x12, 0x10]));
        out.extend_from_slice(&encode_tag(FrameKind::Video, 40, &[0x27, 1, 0, 0, 0x50]));
        out.extend_from_slice(&encode_tag(FrameKind::Audio, 0x0100_0023, &[0xaf, 1, 9]));
        out.extend_from_slice(&encode_tag(FrameKind::Video, 80, &[]));
        out
    }

    #[test]
    fn round_trips_encoded_tags() {
        let (tags, err) = read_split(&sample_stream(), &[]);
        assert_eq!(err, None);
        assert_eq!(tags.len(), 6);
        assert_eq!(tags[0].kind, FrameKind::Script);
        assert_eq!(tags[1].kind, FrameKind::Video);
        assert_eq!(&tags[1].payload[..], &[0x17, 0, 0, 0, 0, 1, 2]);
        assert_eq!(tags[3].timestamp, 40);
        assert_eq!(tags[4].kind, FrameKind::Audio);
        assert_eq!(tags[4].timestamp, 0x0100_0023);
        assert!(tags[5].payload.is_empty());
    }

    #[test]
    fn same_tags_for_every_two_piece_split() {
        let input = sample_stream();
        let whole = read_split(&input, &[]);
        for cut in 0..=input.len() {
            assert_eq!(read_split(&input, &[cut]), whole, "split at {cut}");
        }
    }

    #[test]
    fn same_tags_when_fed_one_byte_at_a_time() {
        let input = sample_stream();
        let cuts: Vec<usize> = (1..input.len()).collect();
        assert_eq!(read_split(&input, &cuts), read_split(&input, &[]));
    }

    #[test]
    fn reports_header() {
        let mut reader = FlvReader::new(MAX);
        reader.push(&file_header(false, true)[..8]);
        assert_eq!(reader.next_tag(), Ok(None));
        assert_eq!(reader.header(), None);
        reader.push(&[9]);
        assert_eq!(reader.next_tag(), Ok(None));
        assert_eq!(
            reader.header(),
            Some(FileHeader {
                version: 1,
                has_audio: false,
                has_video: true
            })
        );
    }

    #[test]
    fn skips_to_declared_data_offset() {
        let mut input = b"FLV\x01\x05\x00\x00\x00\x0c".to_vec();
        input.extend_from_slice(&[0xee; 3]); // header extension
        input.extend_from_slice(&[0; 4]); // PreviousTagSize0
        input.extend_from_slice(&encode_tag(FrameKind::Audio, 7, &[0x2f, 1]));
        let whole = read_split(&input, &[]);
        assert_eq!(whole.0.len(), 1);
        assert_eq!(whole.0[0].timestamp, 7);
        for cut in 0..=input.len() {
            assert_eq!(read_split(&input, &[cut]), whole);
        }
    }

    #[test]
    fn rejects_bad_signature_and_data_offset() {
        let (_, err) = read_split(b"FLX\x01\x05\x00\x00\x00\x09", &[]);
        assert_eq!(err, Some(Error::BadSignature { found: *b"FLX" }));
        // Three bytes are enough to tell.
        let (_, err) = read_split(b"GET", &[]);
        assert!(matches!(err, Some(Error::BadSignature { .. })));
        let (_, err) = read_split(b"FLV\x01\x05\x00\x00\x00\x08", &[]);
        assert_eq!(err, Some(Error::BadDataOffset { data_offset: 8 }));
    }

    #[test]
    fn rejects_unknown_tag_type_with_offset() {
        let mut input = file_header(true, true).to_vec();
        input.extend_from_slice(&encode_tag(FrameKind::Audio, 0, &[0xaf, 1]));
        let bad_at = input.len() as u64;
        let mut tag = encode_tag(FrameKind::Audio, 0, &[0xaf, 1]).to_vec();
        tag[0] = 15;
        input.extend_from_slice(&tag);
        let (tags, err) = read_split(&input, &[]);
        assert_eq!(tags.len(), 1);
        assert_eq!(
            err,
            Some(Error::UnknownTagType {
                tag_type: 15,
                offset: bad_at
            })
        );
    }

    #[test]
    fn rejects_encrypted_tags() {
        let mut input = file_header(true, true).to_vec();
        let mut tag = encode_tag(FrameKind::Video, 0, &[0x17, 1, 0, 0, 0]).to_vec();
        tag[0] |= 0x20;
        input.extend_from_slice(&tag);
        let (_, err) = read_split(&input, &[]);
        assert_eq!(
            err,
            Some(Error::EncryptedTag {
                tag_type: 9,
                offset: 13
            })
        );
    }

    #[test]
    fn refuses_oversized_tag_before_buffering_it() {
        let mut reader = FlvReader::new(100);
        reader.push(&file_header(true, true));
        let tag = encode_tag(FrameKind::Video, 0, &[0u8; 101]);
        reader.push(&tag[..TAG_HEADER_LEN]);
        assert_eq!(
            reader.next_tag(),
            Err(Error::TagTooBig {
                tag_type: 9,
                size: 101,
                max: 100,
                offset: 13
            })
        );
        // Dead from now on; further input is dropped.
        reader.push(&tag[TAG_HEADER_LEN..]);
        assert_eq!(reader.buffered(), 0);
        assert!(matches!(reader.next_tag(), Err(Error::TagTooBig { .. })));
        // Exactly at the limit is fine.
        let mut reader = FlvReader::new(100);
        reader.push(&file_header(true, true));
        reader.push(&encode_tag(FrameKind::Video, 0, &[0u8; 100]));
        assert_eq!(reader.next_tag().unwrap().unwrap().payload.len(), 100);
    }

    #[test]
    fn headerless_reads_aggregate_message_bodies() {
        let mut body = encode_tag(FrameKind::Video, 1000, &[0x27, 1, 0, 0, 0]).to_vec();
        body.extend_from_slice(&encode_tag(FrameKind::Audio, 1010, &[0xaf, 1]));
        let mut reader = FlvReader::headerless(MAX);
        reader.push(&body);
        assert_eq!(reader.next_tag().unwrap().unwrap().timestamp, 1000);
        assert_eq!(reader.next_tag().unwrap().unwrap().kind, FrameKind::Audio);
        assert_eq!(reader.next_tag(), Ok(None));
        assert_eq!(reader.header(), None);
    }

    #[test]
    fn ffmpeg_fixture_reads_the_same_however_it_is_split() {
        let input = crate::fixtures::TESTSRC2_320X240;
        let whole = read_split(input, &[]);
        assert_eq!(whole.1, None);
        assert!(whole.0.len() > 100);
        assert_eq!(whole.0[0].kind, FrameKind::Script);
        // Every boundary at once: one byte per push.
        let cuts: Vec<usize> = (1..input.len()).collect();
        assert_eq!(read_split(input, &cuts), whole);
        // Two pieces, at every offset of the first few tags (header, metadata, both
        // sequence headers, the first keyframe) and at a stride over the rest.
        let prefix = &input[..4096];
        let prefix_whole = read_split(prefix, &[]);
        for cut in 0..=prefix.len() {
            assert_eq!(read_split(prefix, &[cut]), prefix_whole, "split at {cut}");
        }
        for cut in (0..=input.len()).step_by(331) {
            assert_eq!(read_split(input, &[cut]), whole, "split at {cut}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for round in 0..300 {
            let mut input = if round % 2 == 0 {
                file_header(true, true).to_vec()
            } else {
                sample_stream()
            };
            for _ in 0..(round % 64) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                input.push(seed as u8);
            }
            let cut = (seed as usize) % (input.len() + 1);
            let _ = read_split(&input, &[cut]);
        }
    }
}
