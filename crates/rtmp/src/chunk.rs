//! The chunk stream: splitting messages into chunks and reassembling them (RTMP spec 5.3).

use bytes::{BufMut, Bytes, BytesMut};

use crate::message::{type_id, MediaKind, RawMessage};
use crate::{Error, Limits};

/// Chunk size every RTMP connection starts with in both directions.
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Chunk size the sessions announce for what they send, unless configured otherwise.
pub const DEFAULT_OUT_CHUNK_SIZE: u32 = 4096;
/// Largest timestamp that fits the 3-byte field; this value itself means "extended".
const EXTENDED: u32 = 0xff_ffff;
/// Largest message length that fits the 3-byte field.
pub(crate) const MAX_ENCODABLE_LEN: usize = 0xff_ffff;
/// Initial room reserved for a multi-chunk message: a header alone must not make us allocate
/// the declared length.
const INITIAL_PARTIAL_CAPACITY: usize = 64 * 1024;

/// What the last header on one chunk stream said, and its partially received message.
#[derive(Debug)]
struct ChunkStream {
    csid: u32,
    /// Absolute timestamp of the last message started on this chunk stream.
    timestamp: u32,
    /// The last timestamp field (absolute for type 0, a delta otherwise), after extension.
    ts_field: u32,
    /// Whether the last type 0/1/2 header used an extended timestamp.
    extended: bool,
    length: u32,
    type_id: u8,
    stream_id: u32,
    partial: Option<BytesMut>,
}

/// Reassembles messages from the chunks a peer sends.
///
/// Feed bytes with [`handle_input`](Self::handle_input), then call
/// [`poll_message`](Self::poll_message) until it returns `Ok(None)` ("need more bytes"), so at
/// most one incomplete chunk stays buffered. Set Chunk Size and Abort messages are applied
/// here (and still returned, for logging). A message that arrives in a single chunk is handed
/// out without copying it again.
#[derive(Debug)]
pub struct ChunkReader {
    limits: Limits,
    chunk_size: u32,
    buf: BytesMut,
    streams: Vec<ChunkStream>,
    /// Bytes held by all partial messages together.
    buffered: usize,
}

/// A chunk header parsed from the buffer, nothing consumed yet.
struct Header {
    /// Header and payload bytes of this chunk.
    len: usize,
    payload_len: usize,
    csid: u32,
    fmt: u8,
    ts_field: u32,
    extended: bool,
    length: u32,
    type_id: u8,
    stream_id: u32,
}

fn be24(b: &[u8]) -> u32 {
    b.iter()
        .take(3)
        .fold(0u32, |acc, &byte| (acc << 8) | u32::from(byte))
}

fn be32(b: &[u8]) -> u32 {
    b.iter()
        .take(4)
        .fold(0u32, |acc, &byte| (acc << 8) | u32::from(byte))
}

fn le32(b: &[u8]) -> u32 {
    b.iter()
        .take(4)
        .rev()
        .fold(0u32, |acc, &byte| (acc << 8) | u32::from(byte))
}

impl ChunkReader {
    /// A reader at the initial chunk size of 128.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            chunk_size: DEFAULT_CHUNK_SIZE,
            buf: BytesMut::new(),
            streams: Vec::new(),
            buffered: 0,
        }
    }

    /// Appends bytes read from the peer.
    pub fn handle_input(&mut self, input: &[u8]) {
        if self.buf.is_empty() {
            // A fresh buffer of this size: the old one may be far larger (a burst) and
            // would otherwise stay with a connection that now sends a few bytes a minute.
            self.buf = BytesMut::from(input);
        } else {
            self.buf.extend_from_slice(input);
        }
    }

    /// The chunk size the peer currently sends with.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Bytes received but not yet parsed (at most one chunk once polled dry).
    pub fn pending_input(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    pub fn poll_message(&mut self) -> Result<Option<RawMessage>, Error> {
        loop {
            let Some(header) = self.parse_header()? else {
                if self.buf.is_empty() {
                    // Parsed dry: let go of the allocation (messages may still share it).
                    self.buf = BytesMut::new();
                }
                return Ok(None);
            };
            if let Some(msg) = self.take_chunk(header)? {
                self.apply_control(&msg)?;
                return Ok(Some(msg));
            }
        }
    }

    fn stream(&self, csid: u32) -> Option<&ChunkStream> {
        self.streams.iter().find(|s| s.csid == csid)
    }

    fn stream_mut(&mut self, csid: u32) -> Option<&mut ChunkStream> {
        self.streams.iter_mut().find(|s| s.csid == csid)
    }

    /// Parses the chunk header at the start of the buffer and checks that the whole chunk is
    /// there. Consumes nothing.
    fn parse_header(&self) -> Result<Option<Header>, Error> {
        let buf = &self.buf[..];
        let Some(&b0) = buf.first() else {
            return Ok(None);
        };
        let fmt = b0 >> 6;
        let (csid, mut pos) = match b0 & 0x3f {
            0 => match buf.get(1) {
                Some(&b1) => (64 + u32::from(b1), 2),
                None => return Ok(None),
            },
            1 => match (buf.get(1), buf.get(2)) {
                (Some(&b1), Some(&b2)) => (64 + u32::from(b1) + u32::from(b2) * 256, 3),
                _ => return Ok(None),
            },
            n => (u32::from(n), 1),
        };
        let header_len = [11, 7, 3, 0][usize::from(fmt)];
        let Some(mh) = buf.get(pos..pos + header_len) else {
            return Ok(None);
        };
        pos += header_len;

        let prev = self.stream(csid);
        let (mut ts_field, mut extended, mut length, mut type_id, mut stream_id) = match prev {
            Some(s) => (s.ts_field, s.extended, s.length, s.type_id, s.stream_id),
            // SRS accepts a type 1 header on a fresh chunk stream (librtmp sends pings like
            // that); stream id 0 is implied.
            None if fmt <= 1 => (0, false, 0, 0, 0),
            None => return Err(Error::MissingChunkHeader { csid, fmt }),
        };
        if fmt <= 2 {
            ts_field = be24(mh);
            extended = ts_field == EXTENDED;
        }
        if fmt <= 1 {
            length = be24(&mh[3..]);
            type_id = mh.get(6).copied().unwrap_or(0);
        }
        if fmt == 0 {
            stream_id = le32(&mh[7..]);
        }
        let continuing = fmt == 3 && prev.is_some_and(|s| s.partial.is_some());
        if extended {
            let Some(ext) = buf.get(pos..pos + 4) else {
                return Ok(None);
            };
            let ext = be32(ext);
            if !continuing {
                ts_field = ext;
                pos += 4;
            } else if ext == ts_field {
                // FFmpeg, librtmp and the spec repeat the extended timestamp on continuation
                // chunks; some encoders do not. Like SRS, take the 4 bytes only if they repeat
                // the value we have.
                pos += 4;
            }
        }
        if fmt <= 1 && length > self.limits.max_message_size {
            return Err(Error::MessageTooLarge {
                csid,
                type_id,
                size: length,
                max: self.limits.max_message_size,
            });
        }
        let received = match prev.and_then(|s| s.partial.as_ref()) {
            Some(partial) if continuing => partial.len(),
            _ => 0,
        };
        let remaining = (length as usize).saturating_sub(received);
        let payload_len = remaining.min(self.chunk_size as usize);
        if buf.len() < pos + payload_len {
            return Ok(None);
        }
        Ok(Some(Header {
            len: pos + payload_len,
            payload_len,
            csid,
            fmt,
            ts_field,
            extended,
            length,
            type_id,
            stream_id,
        }))
    }

    /// Consumes the chunk `header` describes; returns the message it completes, if any.
    fn take_chunk(&mut self, h: Header) -> Result<Option<RawMessage>, Error> {
        let index = match self.streams.iter().position(|s| s.csid == h.csid) {
            Some(index) => index,
            None => {
                if self.streams.len() >= self.limits.max_chunk_streams {
                    return Err(Error::TooManyChunkStreams {
                        csid: h.csid,
                        max: self.limits.max_chunk_streams,
                    });
                }
                self.streams.push(ChunkStream {
                    csid: h.csid,
                    timestamp: 0,
                    ts_field: 0,
                    extended: false,
                    length: 0,
                    type_id: 0,
                    stream_id: 0,
                    partial: None,
                });
                self.streams.len() - 1
            }
        };
        let max_buffered = self.limits.max_buffered_partial();
        let Some(s) = self.streams.get_mut(index) else {
            return Ok(None);
        };
        let continuing = h.fmt == 3 && s.partial.is_some();
        if !continuing {
            if let Some(dropped) = s.partial.take() {
                tracing::debug!(
                    csid = h.csid,
                    dropped = dropped.len(),
                    "new message header before the previous message was complete"
                );
                self.buffered = self.buffered.saturating_sub(dropped.len());
            }
            s.timestamp = if h.fmt == 0 {
                h.ts_field
            } else {
                s.timestamp.wrapping_add(h.ts_field)
            };
        }
        s.ts_field = h.ts_field;
        s.extended = h.extended;
        s.length = h.length;
        s.type_id = h.type_id;
        s.stream_id = h.stream_id;

        let data = self.buf.split_to(h.len).split_off(h.len - h.payload_len);

        if !continuing && data.len() == h.length as usize {
            return Ok(Some(RawMessage {
                csid: h.csid,
                timestamp: s.timestamp,
                type_id: h.type_id,
                stream_id: h.stream_id,
                // Copied out: a view would keep the whole read buffer alive for as long
                // as the message lives (an audio frame in a stream's ring, seconds).
                payload: Bytes::copy_from_slice(&data),
            }));
        }
        let buffered = self.buffered + data.len();
        if buffered > max_buffered {
            return Err(Error::TooMuchBuffered {
                csid: h.csid,
                buffered,
                max: max_buffered,
            });
        }
        self.buffered = buffered;
        let partial = s.partial.get_or_insert_with(|| {
            BytesMut::with_capacity((h.length as usize).min(INITIAL_PARTIAL_CAPACITY))
        });
        partial.extend_from_slice(&data);
        if partial.len() < h.length as usize {
            return Ok(None);
        }
        let payload = s.partial.take().unwrap_or_default().freeze();
        self.buffered = self.buffered.saturating_sub(payload.len());
        Ok(Some(RawMessage {
            csid: h.csid,
            timestamp: s.timestamp,
            type_id: h.type_id,
            stream_id: h.stream_id,
            payload,
        }))
    }

    /// Applies Set Chunk Size and Abort, which change how the following chunks are read.
    fn apply_control(&mut self, msg: &RawMessage) -> Result<(), Error> {
        let short = || Error::Truncated {
            csid: msg.csid,
            type_id: msg.type_id,
            len: msg.payload.len(),
        };
        match msg.type_id {
            type_id::SET_CHUNK_SIZE => {
                let bytes = msg.payload.get(..4).ok_or_else(short)?;
                let size = be32(bytes);
                let max = self.limits.max_incoming_chunk_size;
                if size == 0 || size > max || size & 0x8000_0000 != 0 {
                    return Err(Error::BadChunkSize { size, max });
                }
                tracing::trace!(size, "peer set chunk size");
                self.chunk_size = size;
            }
            type_id::ABORT => {
                let bytes = msg.payload.get(..4).ok_or_else(short)?;
                let csid = be32(bytes);
                if let Some(s) = self.stream_mut(csid) {
                    if let Some(dropped) = s.partial.take() {
                        self.buffered = self.buffered.saturating_sub(dropped.len());
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Writes messages as chunks: a type 0 header on the first chunk and type 3 after, so every
/// message is self-contained and needs no state shared with other messages.
#[derive(Debug, Clone)]
pub struct ChunkWriter {
    chunk_size: u32,
}

impl Default for ChunkWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkWriter {
    /// A writer at the initial chunk size of 128.
    pub fn new() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }

    /// The chunk size messages are written with.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Writes a Set Chunk Size message and uses `size` (clamped to 1..=2^31-1) from then on.
    pub fn write_set_chunk_size(&mut self, buf: &mut BytesMut, size: u32) {
        let size = size.clamp(1, 0x7fff_ffff);
        self.write(
            buf,
            crate::message::CSID_PROTOCOL_CONTROL,
            type_id::SET_CHUNK_SIZE,
            0,
            0,
            &size.to_be_bytes(),
        );
        self.chunk_size = size;
    }

    /// Writes one message as chunks. Payloads over 16 MiB cannot be framed and are dropped
    /// with a warning.
    pub fn write(
        &self,
        buf: &mut BytesMut,
        csid: u32,
        type_id: u8,
        stream_id: u32,
        timestamp: u32,
        payload: &[u8],
    ) {
        write_chunks(
            buf,
            csid,
            type_id,
            stream_id,
            timestamp,
            payload,
            self.chunk_size,
        );
    }
}

fn put_basic_header(buf: &mut BytesMut, fmt: u8, csid: u32) {
    let fmt = fmt << 6;
    match csid {
        2..=63 => buf.put_u8(fmt | csid as u8),
        64..=319 => {
            buf.put_u8(fmt);
            buf.put_u8((csid - 64) as u8);
        }
        _ => {
            let id = csid.clamp(320, 65599) - 64;
            buf.put_u8(fmt | 1);
            buf.put_u8((id & 0xff) as u8);
            buf.put_u8((id >> 8) as u8);
        }
    }
}

pub(crate) fn write_chunks(
    buf: &mut BytesMut,
    csid: u32,
    type_id: u8,
    stream_id: u32,
    timestamp: u32,
    payload: &[u8],
    chunk_size: u32,
) {
    if payload.len() > MAX_ENCODABLE_LEN {
        tracing::warn!(
            csid,
            type_id,
            len = payload.len(),
            "message too long for RTMP, dropped"
        );
        return;
    }
    let chunk_size = chunk_size.max(1) as usize;
    let extended = timestamp >= EXTENDED;
    let chunks = payload.len().div_ceil(chunk_size).max(1);
    buf.reserve(payload.len() + 16 + (chunks - 1) * (if extended { 7 } else { 3 }));

    put_basic_header(buf, 0, csid);
    let ts_field = if extended { EXTENDED } else { timestamp };
    buf.put_slice(&ts_field.to_be_bytes()[1..]);
    buf.put_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    buf.put_u8(type_id);
    buf.put_u32_le(stream_id);
    if extended {
        buf.put_u32(timestamp);
    }
    let mut chunks = payload.chunks(chunk_size);
    if let Some(first) = chunks.next() {
        buf.put_slice(first);
    }
    for chunk in chunks {
        put_basic_header(buf, 3, csid);
        if extended {
            buf.put_u32(timestamp);
        }
        buf.put_slice(chunk);
    }
}

/// Encodes one media message as complete RTMP chunks with a type 0 (full) header on the first
/// chunk and type 3 headers after, so the bytes are self-contained and the same [`Bytes`] can be
/// written to every viewer regardless of what was sent before on that connection.
///
/// Chunk stream ids are fixed: audio 4, video 6, data 5. Timestamps at or above 0xFFFFFF use
/// the extended timestamp, repeated on type 3 chunks as FFmpeg and librtmp expect. A payload
/// over 16 MiB cannot be framed: the result is empty and a warning is logged.
pub fn encode_media_chunks(
    kind: MediaKind,
    message_stream_id: u32,
    timestamp: u32,
    payload: &[u8],
    chunk_size: u32,
) -> Bytes {
    let mut buf = BytesMut::new();
    write_chunks(
        &mut buf,
        kind.csid(),
        kind.type_id(),
        message_stream_id,
        timestamp,
        payload,
        chunk_size,
    );
    buf.freeze()
}

/// The chunks [`encode_media_chunks`] would write, as pieces that share `payload`
/// instead of copying it: the chunk headers (slices of one small buffer) alternate with
/// slices of the payload. Written in order (one vectored write), they are the same
/// bytes; kept in memory, they cost the headers only.
pub fn media_chunk_parts(
    kind: MediaKind,
    message_stream_id: u32,
    timestamp: u32,
    payload: &Bytes,
    chunk_size: u32,
) -> Vec<Bytes> {
    if payload.is_empty() || payload.len() > MAX_ENCODABLE_LEN {
        return vec![encode_media_chunks(
            kind,
            message_stream_id,
            timestamp,
            payload,
            chunk_size,
        )];
    }
    let chunk_size = chunk_size.max(1) as usize;
    let chunks = payload.len().div_ceil(chunk_size).max(1);
    // The first chunk's header, then each later chunk's.
    let mut headers = BytesMut::new();
    let mut ends = Vec::with_capacity(chunks);
    for (index, chunk) in payload.chunks(chunk_size).enumerate() {
        let header_start = headers.len();
        if index == 0 {
            write_chunks(
                &mut headers,
                kind.csid(),
                kind.type_id(),
                message_stream_id,
                timestamp,
                &[],
                chunk_size as u32,
            );
            // `write_chunks` wrote the length of an empty message: patch in the real one.
            let len = (payload.len() as u32).to_be_bytes();
            let at = header_start + basic_header_len(kind.csid()) + 3;
            headers[at..at + 3].copy_from_slice(&len[1..]);
        } else {
            put_basic_header(&mut headers, 3, kind.csid());
            if timestamp >= EXTENDED {
                headers.put_u32(timestamp);
            }
        }
        ends.push((headers.len(), chunk.len()));
    }
    let headers = headers.freeze();
    let mut parts = Vec::with_capacity(chunks * 2);
    let (mut header_start, mut payload_start) = (0, 0);
    for (header_end, len) in ends {
        parts.push(headers.slice(header_start..header_end));
        parts.push(payload.slice(payload_start..payload_start + len));
        header_start = header_end;
        payload_start += len;
    }
    parts
}

fn basic_header_len(csid: u32) -> usize {
    match csid {
        2..=63 => 1,
        64..=319 => 2,
        _ => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::CSID_COMMAND;

    #[test]
    fn chunk_parts_are_the_encoded_chunks() {
        for len in [0usize, 1, 100, 128, 129, 4096, 4097, 10_000] {
            let payload = Bytes::from((0..len).map(|i| i as u8).collect::<Vec<_>>());
            for timestamp in [0, 1000, 0xFF_FFFF, 0x1234_5678] {
                for chunk_size in [128, 4096] {
                    for kind in [MediaKind::Audio, MediaKind::Video, MediaKind::Data] {
                        let whole = encode_media_chunks(kind, 1, timestamp, &payload, chunk_size);
                        let parts = media_chunk_parts(kind, 1, timestamp, &payload, chunk_size);
                        assert_eq!(
                            parts.concat(),
                            whole.to_vec(),
                            "{len} {timestamp} {chunk_size}"
                        );
                    }
                }
            }
        }
    }

    /// Chunk data of the ffmpeg capture, after C0+C1 and C2.
    const FFMPEG_CONNECT: &[u8] = include_bytes!("../testdata/ffmpeg-5.1_publish_connect.bin");
    const FFMPEG_PUBLISH: &[u8] = include_bytes!("../testdata/ffmpeg-5.1_publish.bin");
    const HANDSHAKE_LEN: usize = 1 + 1536 + 1536;

    fn read_all(limits: Limits, pieces: &[&[u8]]) -> Result<Vec<RawMessage>, Error> {
        let mut reader = ChunkReader::new(limits);
        let mut out = Vec::new();
        for piece in pieces {
            reader.handle_input(piece);
            while let Some(msg) = reader.poll_message()? {
                out.push(msg);
            }
        }
        Ok(out)
    }

    fn read(input: &[u8]) -> Vec<RawMessage> {
        read_all(Limits::default(), &[input]).expect("valid chunks")
    }

    fn read_err(input: &[u8]) -> Error {
        read_all(Limits::default(), &[input]).expect_err("invalid chunks")
    }

    fn msg(csid: u32, timestamp: u32, type_id: u8, stream_id: u32, payload: &[u8]) -> RawMessage {
        RawMessage {
            csid,
            timestamp,
            type_id,
            stream_id,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    /// A chunk with a basic header and the fields of header type `fmt`.
    fn chunk(fmt: u8, csid: u32, ts: u32, len: u32, type_id: u8, stream_id: u32) -> Vec<u8> {
        let mut buf = BytesMut::new();
        put_basic_header(&mut buf, fmt, csid);
        if fmt <= 2 {
            buf.put_slice(&ts.min(EXTENDED).to_be_bytes()[1..]);
        }
        if fmt <= 1 {
            buf.put_slice(&len.to_be_bytes()[1..]);
            buf.put_u8(type_id);
        }
        if fmt == 0 {
            buf.put_u32_le(stream_id);
        }
        if fmt <= 2 && ts >= EXTENDED {
            buf.put_u32(ts);
        }
        buf.to_vec()
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn ffmpeg_connect_is_one_message_in_two_chunks() {
        let msgs = read(&FFMPEG_CONNECT[HANDSHAKE_LEN..]);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].type_id, type_id::COMMAND_AMF0);
        assert_eq!(msgs[0].csid, 3);
        assert_eq!(msgs[0].payload.len(), 140);
        assert!(msgs[0].payload.starts_with(b"\x02\x00\x07connect"));
    }

    #[test]
    fn same_messages_for_every_split() {
        let input = &FFMPEG_CONNECT[HANDSHAKE_LEN..];
        let whole = read(input);
        for at in 0..=input.len() {
            let (a, b) = input.split_at(at);
            assert_eq!(
                read_all(Limits::default(), &[a, b]).ok(),
                Some(whole.clone())
            );
        }
        // The whole publish, in pieces of many sizes (every offset of 17 KB is too slow).
        let input = &FFMPEG_PUBLISH[HANDSHAKE_LEN..];
        let whole = read(input);
        assert!(whole.len() > 30);
        for size in [1, 2, 3, 5, 11, 127, 128, 129, 1000, 4096, 4097] {
            let pieces: Vec<&[u8]> = input.chunks(size).collect();
            assert_eq!(
                read_all(Limits::default(), &pieces).ok(),
                Some(whole.clone())
            );
        }
    }

    #[test]
    fn all_header_types_and_timestamp_deltas() {
        let input = cat(&[
            &chunk(0, 4, 1000, 2, 8, 1),
            b"a1",
            // Type 1: new length and type, delta 20.
            &chunk(1, 4, 20, 3, 9, 0),
            b"v22",
            // Type 2: same length and type, delta 30.
            &chunk(2, 4, 30, 0, 0, 0),
            b"v33",
            // Type 3 starting a message: everything repeats, including the delta.
            &chunk(3, 4, 0, 0, 0, 0),
            b"v44",
        ]);
        let expected = vec![
            msg(4, 1000, 8, 1, b"a1"),
            msg(4, 1020, 9, 1, b"v22"),
            msg(4, 1050, 9, 1, b"v33"),
            msg(4, 1080, 9, 1, b"v44"),
        ];
        assert_eq!(read(&input), expected);
    }

    #[test]
    fn type_3_after_type_0_repeats_the_timestamp_as_delta() {
        // FFmpeg and SRS: the timestamp field of a type 0 header serves as the delta of a
        // following type 3 header that starts a new message.
        let input = cat(&[
            &chunk(0, 5, 40, 1, 8, 1),
            b"a",
            &chunk(3, 5, 0, 0, 0, 0),
            b"b",
        ]);
        assert_eq!(
            read(&input),
            vec![msg(5, 40, 8, 1, b"a"), msg(5, 80, 8, 1, b"b")]
        );
    }

    #[test]
    fn timestamps_wrap() {
        let input = cat(&[
            &chunk(0, 4, 0xffff_fff0, 1, 8, 1),
            b"a",
            &chunk(2, 4, 0x20, 0, 0, 0),
            b"b",
        ]);
        assert_eq!(
            read(&input),
            vec![msg(4, 0xffff_fff0, 8, 1, b"a"), msg(4, 0x10, 8, 1, b"b")]
        );
    }

    #[test]
    fn basic_header_sizes() {
        for csid in [2, 3, 63, 64, 65, 319, 320, 321, 65599] {
            let mut buf = BytesMut::new();
            write_chunks(&mut buf, csid, 20, 0, 7, b"hello", 128);
            let expected_header = match csid {
                2..=63 => 1,
                64..=319 => 2,
                _ => 3,
            };
            assert_eq!(buf.len(), expected_header + 11 + 5, "csid {csid}");
            assert_eq!(
                read(&buf),
                vec![msg(csid, 7, 20, 0, b"hello")],
                "csid {csid}"
            );
        }
    }

    #[test]
    fn extended_timestamp_repeated_on_type_3_chunks() {
        let ts = 0x0100_0000;
        let payload = vec![0xab; 300];
        // What FFmpeg, librtmp and encode_media_chunks send: the 4 bytes on every chunk.
        let mut repeated = chunk(0, 6, ts, 300, 9, 1);
        repeated.extend_from_slice(&payload[..128]);
        repeated.extend(cat(&[&[0xc6], &ts.to_be_bytes(), &payload[128..256]]));
        repeated.extend(cat(&[&[0xc6], &ts.to_be_bytes(), &payload[256..]]));
        let expected = vec![msg(6, ts, 9, 1, &payload)];
        assert_eq!(read(&repeated), expected);
        // Some encoders leave it out of continuation chunks; tell them apart like SRS.
        let mut bare = chunk(0, 6, ts, 300, 9, 1);
        bare.extend_from_slice(&payload[..128]);
        bare.extend(cat(&[&[0xc6], &payload[128..256]]));
        bare.extend(cat(&[&[0xc6], &payload[256..]]));
        assert_eq!(read(&bare), expected);
        // A type 3 header that starts a new message always carries it.
        let mut next = chunk(0, 6, ts, 2, 9, 1);
        next.extend_from_slice(b"v1");
        next.extend(cat(&[&[0xc6], &ts.to_be_bytes(), b"v2"]));
        assert_eq!(
            read(&next),
            vec![
                msg(6, ts, 9, 1, b"v1"),
                msg(6, ts.wrapping_mul(2), 9, 1, b"v2")
            ]
        );
        // Every split gives the same.
        for at in 0..=repeated.len() {
            let (a, b) = repeated.split_at(at);
            assert_eq!(
                read_all(Limits::default(), &[a, b]).ok(),
                Some(expected.clone())
            );
        }
    }

    #[test]
    fn extended_delta_on_type_1_and_2() {
        let input = cat(&[
            &chunk(0, 4, 10, 1, 8, 1),
            b"a",
            &chunk(1, 4, 0x0100_0000, 1, 8, 0),
            b"b",
            &chunk(2, 4, 0x0100_0000, 0, 0, 0),
            b"c",
        ]);
        assert_eq!(
            read(&input),
            vec![
                msg(4, 10, 8, 1, b"a"),
                msg(4, 0x0100_000a, 8, 1, b"b"),
                msg(4, 0x0200_000a, 8, 1, b"c"),
            ]
        );
    }

    #[test]
    fn interleaved_chunk_streams() {
        let video = vec![9u8; 200];
        let audio = vec![8u8; 150];
        let input = cat(&[
            &chunk(0, 6, 40, 200, 9, 1),
            &video[..128],
            &chunk(0, 4, 41, 150, 8, 1),
            &audio[..128],
            &[0xc6],
            &video[128..],
            &[0xc4],
            &audio[128..],
        ]);
        assert_eq!(
            read(&input),
            vec![msg(6, 40, 9, 1, &video), msg(4, 41, 8, 1, &audio)]
        );
    }

    #[test]
    fn set_chunk_size_applies_to_following_chunks() {
        let mut writer = ChunkWriter::new();
        let mut buf = BytesMut::new();
        writer.write_set_chunk_size(&mut buf, 1000);
        assert_eq!(writer.chunk_size(), 1000);
        let payload = vec![3u8; 2500];
        writer.write(&mut buf, 4, 8, 1, 5, &payload);
        // 1 + 11 + 4, then 3 chunks of at most 1000 bytes.
        assert_eq!(buf.len(), 16 + 12 + 2500 + 2);
        let mut reader = ChunkReader::new(Limits::default());
        reader.handle_input(&buf);
        let first = reader.poll_message().ok().flatten();
        assert_eq!(first, Some(msg(2, 0, 1, 0, &1000u32.to_be_bytes())));
        assert_eq!(reader.chunk_size(), 1000);
        assert_eq!(
            reader.poll_message().ok().flatten(),
            Some(msg(4, 5, 8, 1, &payload))
        );
        assert_eq!(reader.pending_input(), 0);
    }

    #[test]
    fn abort_discards_the_partial_message() {
        let input = cat(&[
            &chunk(0, 6, 0, 200, 9, 1),
            &[1; 128],
            &chunk(0, 2, 0, 4, 2, 0),
            &6u32.to_be_bytes(),
            &chunk(0, 6, 0, 3, 9, 1),
            b"new",
        ]);
        let msgs = read(&input);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].type_id, type_id::ABORT);
        assert_eq!(msgs[1], msg(6, 0, 9, 1, b"new"));
    }

    #[test]
    fn zero_length_message() {
        let input = cat(&[&chunk(0, 3, 0, 0, 20, 0), &chunk(0, 3, 0, 1, 20, 0), b"x"]);
        assert_eq!(
            read(&input),
            vec![msg(3, 0, 20, 0, b""), msg(3, 0, 20, 0, b"x")]
        );
    }

    fn set_chunk_size(size: u32) -> Vec<u8> {
        cat(&[&chunk(0, 2, 0, 4, 1, 0), &size.to_be_bytes()])
    }

    #[test]
    fn bad_chunk_sizes() {
        for size in [0, 0x8000_0000, 0xffff_ffff, (1 << 20) + 1] {
            assert!(
                matches!(read_err(&set_chunk_size(size)), Error::BadChunkSize { size: s, .. } if s == size),
                "{size}"
            );
        }
        assert_eq!(read(&set_chunk_size(1 << 20)).len(), 1);
        let short = cat(&[&chunk(0, 2, 0, 3, 1, 0), b"abc"]);
        assert!(matches!(read_err(&short), Error::Truncated { .. }));
    }

    #[test]
    fn message_too_large_before_allocating() {
        // 16 MiB - 1 declared, with no payload following: rejected from the header alone.
        let err = read_err(&chunk(0, 6, 0, 0xff_ffff, 9, 1));
        assert!(matches!(
            err,
            Error::MessageTooLarge {
                csid: 6,
                type_id: 9,
                size: 0xff_ffff,
                max: 0x80_0000
            }
        ));
        let err = read_err(&cat(&[
            &chunk(0, 6, 0, 10, 9, 1),
            b"0123456789",
            &chunk(1, 6, 0, 0x90_0000, 9, 0),
        ]));
        assert!(matches!(err, Error::MessageTooLarge { .. }));
    }

    #[test]
    fn too_many_chunk_streams() {
        let mut input = Vec::new();
        for csid in 3..3 + 64 {
            input.extend(chunk(0, csid, 0, 1, 8, 1));
            input.push(0);
        }
        assert_eq!(read(&input).len(), 64);
        input.extend(chunk(0, 100, 0, 1, 8, 1));
        input.push(0);
        assert!(matches!(
            read_err(&input),
            Error::TooManyChunkStreams { csid: 100, max: 64 }
        ));
    }

    #[test]
    fn partial_messages_together_are_capped() {
        let limits = Limits {
            max_message_size: 1000,
            ..Limits::default()
        };
        let mut input = Vec::new();
        for csid in 3..6 {
            input.extend(chunk(0, csid, 0, 1000, 9, 1));
            input.extend_from_slice(&[0; 128]);
        }
        // Seven chunks (896 bytes) each stay under the 1000-byte messages, 2688 in all.
        for _ in 0..6 {
            for csid in 3..6u8 {
                input.push(0xc0 | csid);
                input.extend_from_slice(&[0; 128]);
            }
        }
        let err = read_all(limits, &[&input]).expect_err("capped");
        assert!(matches!(err, Error::TooMuchBuffered { max: 2000, .. }));
    }

    #[test]
    fn continuation_without_header_is_an_error() {
        assert!(matches!(
            read_err(&[0x86, 0, 0, 1]),
            Error::MissingChunkHeader { csid: 6, fmt: 2 }
        ));
        assert!(matches!(
            read_err(&[0xc6]),
            Error::MissingChunkHeader { csid: 6, fmt: 3 }
        ));
        // librtmp starts chunk stream 2 with a type 1 header for pings; that is accepted.
        let ping = cat(&[&chunk(1, 2, 0, 6, 4, 0), &[0, 6, 0, 0, 0, 9]]);
        assert_eq!(read(&ping), vec![msg(2, 0, 4, 0, &[0, 6, 0, 0, 0, 9])]);
    }

    #[test]
    fn media_chunks_round_trip() {
        for chunk_size in [1, 128, 4096] {
            for ts in [0, 1, 0xff_fffe, 0xff_ffff, 0x0100_0000, u32::MAX] {
                let cs = chunk_size as usize;
                for len in [0, 1, cs - 1, cs, cs + 1, 2 * cs, 2 * cs + 1, 3 * cs + 7] {
                    let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
                    for kind in [MediaKind::Audio, MediaKind::Video, MediaKind::Data] {
                        let bytes = encode_media_chunks(kind, 1, ts, &payload, chunk_size);
                        let mut input = set_chunk_size(chunk_size);
                        input.extend_from_slice(&bytes);
                        let msgs = read(&input);
                        let expected = msg(kind.csid(), ts, kind.type_id(), 1, &payload);
                        assert_eq!(msgs.get(1), Some(&expected), "{chunk_size} {ts} {len}");
                        // Self-contained: the same bytes again give the same message.
                        input.extend_from_slice(&bytes);
                        assert_eq!(read(&input).get(2), Some(&expected));
                    }
                }
            }
        }
    }

    #[test]
    fn media_chunks_layout() {
        let bytes = encode_media_chunks(MediaKind::Video, 1, 0x0100_0000, &[7; 5], 4);
        assert_eq!(
            &bytes[..],
            &[
                0x06, 0xff, 0xff, 0xff, 0, 0, 5, 9, 1, 0, 0, 0, 1, 0, 0, 0, 7, 7, 7, 7, 0xc6, 1, 0,
                0, 0, 7
            ]
        );
        assert!(encode_media_chunks(MediaKind::Audio, 1, 0, &vec![0; 0x100_0000], 4096).is_empty());
        assert_eq!(CSID_COMMAND, 3);
    }
}
