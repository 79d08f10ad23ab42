//! Feeds arbitrary chunk-stream bytes to a `ChunkReader` and to a `ServerSession` after a
//! valid handshake, whole and split in two, and checks that the split changes nothing: same
//! messages (or the same error) from the reader, same events (or the same error) from the
//! session. The session accepts every connect, publish and play, to reach more states.
//! Input: two bytes giving the split point, then the chunk stream (the captured ffmpeg
//! publish without its handshake, for example).
#![no_main]

use libfuzzer_sys::fuzz_target;
use onair_rtmp::{
    ChunkReader, ClientHandshake, Limits, RawMessage, ServerConfig, ServerEvent, ServerSession,
    RANDOM_LEN,
};

/// Small caps, so the fuzzer reaches them.
fn limits() -> Limits {
    Limits {
        max_incoming_chunk_size: 4096,
        max_message_size: 64 * 1024,
        max_chunk_streams: 8,
        amf_max_depth: 8,
    }
}

fn read(pieces: &[&[u8]]) -> (Vec<RawMessage>, Option<String>) {
    let mut reader = ChunkReader::new(limits());
    let mut msgs = Vec::new();
    for piece in pieces {
        reader.handle_input(piece);
        loop {
            match reader.poll_message() {
                Ok(Some(msg)) => msgs.push(msg),
                Ok(None) => break,
                Err(e) => return (msgs, Some(e.to_string())),
            }
        }
        // Polled dry: at most one chunk (header, extended timestamp, payload) is left.
        assert!(reader.pending_input() <= 3 + 11 + 4 + 4096);
    }
    (msgs, None)
}

/// A server session past a valid (complex) handshake.
fn session() -> ServerSession {
    let config = ServerConfig {
        limits: limits(),
        ..ServerConfig::default()
    };
    let mut server = ServerSession::new(config, &[0x33; RANDOM_LEN]);
    let mut client = ClientHandshake::new(&[0x44; RANDOM_LEN], 0);
    while let Some(c0c1) = client.poll_transmit() {
        server.handle_input(&c0c1).expect("C0C1");
    }
    while let Some(s) = server.poll_transmit() {
        client.handle_input(&s).expect("S0S1S2");
    }
    while let Some(c2) = client.poll_transmit() {
        server.handle_input(&c2).expect("C2");
    }
    assert!(server.is_handshake_done());
    server
}

fn serve(pieces: &[&[u8]]) -> (Vec<ServerEvent>, Option<String>) {
    let mut server = session();
    let mut events = Vec::new();
    for piece in pieces {
        let result = server.handle_input(piece);
        // Events queued before an error still come out.
        while let Some(event) = server.poll_event() {
            match &event {
                ServerEvent::Connect { .. } => server.accept_connect(),
                ServerEvent::Publish { stream_id, .. } => server.accept_publish(*stream_id),
                ServerEvent::Play { stream_id, .. } => server.accept_play(*stream_id),
                _ => {}
            }
            events.push(event);
        }
        while server.poll_transmit().is_some() {}
        if let Err(e) = result {
            return (events, Some(e.to_string()));
        }
    }
    (events, None)
}

fuzz_target!(|data: &[u8]| {
    let [a, b, stream @ ..] = data else {
        return;
    };
    let at = usize::from(u16::from_le_bytes([*a, *b])).min(stream.len());
    let (first, second) = stream.split_at(at);
    assert_eq!(read(&[stream]), read(&[first, second]));
    assert_eq!(serve(&[stream]), serve(&[first, second]));
});
