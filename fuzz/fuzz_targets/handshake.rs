//! Feeds arbitrary bytes to both sides of the RTMP handshake, whole and split into
//! pieces, and checks that the split changes nothing: same bytes out, same count
//! consumed, same outcome. Input: one byte seeding the split sizes, then the peer's
//! bytes (a captured C0C1, for example).
#![no_main]

use libfuzzer_sys::fuzz_target;
use onair_rtmp::{ClientHandshake, HandshakeError, ServerHandshake, RANDOM_LEN};

#[derive(Debug, PartialEq)]
struct Outcome {
    out: Vec<u8>,
    consumed: usize,
    done: bool,
    error: Option<HandshakeError>,
}

/// The split sizes: a small LCG seeded by `seed`, sizes 1..=2048 (0 means whole).
fn pieces(seed: u8, data: &[u8]) -> Vec<&[u8]> {
    if seed == 0 {
        return vec![data];
    }
    let mut state = u32::from(seed);
    let mut rest = data;
    let mut pieces = Vec::new();
    while !rest.is_empty() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let size = match (state >> 16) % 4 {
            0 => 1,
            1 => ((state >> 8) % 16) as usize + 1,
            _ => ((state >> 4) % 2048) as usize + 1,
        };
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

trait Side {
    fn handle_input(&mut self, input: &[u8]) -> Result<usize, HandshakeError>;
    fn poll_transmit(&mut self) -> Option<bytes::Bytes>;
    fn is_done(&self) -> bool;
}

macro_rules! side {
    ($t:ty) => {
        impl Side for $t {
            fn handle_input(&mut self, input: &[u8]) -> Result<usize, HandshakeError> {
                <$t>::handle_input(self, input)
            }
            fn poll_transmit(&mut self) -> Option<bytes::Bytes> {
                <$t>::poll_transmit(self)
            }
            fn is_done(&self) -> bool {
                <$t>::is_done(self)
            }
        }
    };
}
side!(ServerHandshake);
side!(ClientHandshake);

fn run(mut hs: impl Side, pieces: &[&[u8]]) -> Outcome {
    let mut outcome = Outcome { out: Vec::new(), consumed: 0, done: false, error: None };
    for piece in pieces {
        match hs.handle_input(piece) {
            Ok(n) => {
                assert!(n <= piece.len());
                outcome.consumed += n;
            }
            Err(e) => {
                outcome.error = Some(e);
                break;
            }
        }
        while let Some(bytes) = hs.poll_transmit() {
            outcome.out.extend_from_slice(&bytes);
        }
    }
    // The client has C0C1 queued before any input: drain it even if there was none.
    while let Some(bytes) = hs.poll_transmit() {
        outcome.out.extend_from_slice(&bytes);
    }
    outcome.done = hs.is_done();
    if outcome.error.is_none() {
        // Nothing past S2/C2 is ever taken, and nothing before it is left.
        assert_eq!(outcome.consumed, pieces.iter().map(|p| p.len()).sum::<usize>().min(3073));
    }
    outcome
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, payload)) = data.split_first() else {
        return;
    };
    let random = [0x5a; RANDOM_LEN];
    let split = pieces(seed, payload);
    let server_whole = run(ServerHandshake::new(&random, 1), &[payload]);
    assert_eq!(run(ServerHandshake::new(&random, 1), &split), server_whole);
    let client_whole = run(ClientHandshake::new(&random, 1), &[payload]);
    assert_eq!(run(ClientHandshake::new(&random, 1), &split), client_whole);
});
