//! The RTMP handshake: C0/C1/C2 from the client, S0/S1/S2 from the server.
//!
//! Both the simple handshake (version field zero, S2/C2 echo the peer's packet) and the
//! complex one ("FP9": an HMAC-SHA256 digest hidden in C1/S1 at a position derived from
//! the packet itself, and S2/C2 signed with a key derived from the peer's digest) are
//! handled, on the server and the client side. Sans-IO: the caller feeds peer bytes to
//! `handle_input`, sends whatever `poll_transmit` returns, and supplies randomness and
//! time.
//!
//! Packet layout (1536 bytes each): time (4, big endian), version (4), then two
//! 764-byte blocks. With schema 0 ("digest first") the digest block is bytes 8..772 and
//! its offset comes from the sum of bytes 8..12; with schema 1 ("key first") it is
//! bytes 772..1536 and its offset comes from the sum of bytes 772..776.
//!
//! Deliberately absent: RTMPE (encrypted RTMP, version byte 6/8/9, Diffie-Hellman and
//! RC4) and SWF verification; the server does not validate C2, since clients routinely
//! send junk there; a client digest that does not validate makes the server fall back
//! to the simple handshake instead of failing (as nginx-rtmp and SRS do).

use bytes::{BufMut, Bytes, BytesMut};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of caller-provided randomness a handshake needs (the body of C1 or S1).
pub const RANDOM_LEN: usize = 1528;

/// The only plain RTMP version byte (C0/S0).
const RTMP_VERSION: u8 = 3;
/// Size of C1, C2, S1 and S2.
const PACKET_LEN: usize = 1536;
const DIGEST_LEN: usize = 32;
/// Part of a C2/S2 covered by its signature; the signature fills the rest.
const SIGNED_LEN: usize = PACKET_LEN - DIGEST_LEN;

/// "Genuine Adobe Flash Player 001" followed by 32 constant bytes; C1 digests use the
/// first 30 bytes, C2 signatures the whole key.
const FP_KEY: [u8; 62] = *b"Genuine Adobe Flash Player 001\
    \xF0\xEE\xC2\x4A\x80\x68\xBE\xE8\x2E\x00\xD0\xD1\x02\x9E\x7E\x57\
    \x6E\xEC\x5D\x2D\x29\x80\x6F\xAB\x93\xB8\xE6\x36\xCF\xEB\x31\xAE";
const FP_KEY_PUBLIC_LEN: usize = 30;

/// "Genuine Adobe Flash Media Server 001" followed by the same 32 constant bytes; S1
/// digests use the first 36 bytes, S2 signatures the whole key.
const FMS_KEY: [u8; 68] = *b"Genuine Adobe Flash Media Server 001\
    \xF0\xEE\xC2\x4A\x80\x68\xBE\xE8\x2E\x00\xD0\xD1\x02\x9E\x7E\x57\
    \x6E\xEC\x5D\x2D\x29\x80\x6F\xAB\x93\xB8\xE6\x36\xCF\xEB\x31\xAE";
const FMS_KEY_PUBLIC_LEN: usize = 36;

/// Version field of a complex S1: FMS 3.5.1.1, like librtmp's server. The first byte
/// must be non-zero (librtmp) and at least 3 (ffmpeg) for clients to check our digest.
const SERVER_VERSION: [u8; 4] = [3, 5, 1, 1];
/// Version field of our C1: the Flash Player version librtmp-derived clients announce.
const CLIENT_VERSION: [u8; 4] = [0x80, 0x00, 0x07, 0x02];
/// Where our C1 digest goes: librtmp (built with FP10, as everyone builds it) uses
/// schema 1; servers try both.
const CLIENT_SCHEMA: Schema = Schema::KeyFirst;

type Packet = [u8; PACKET_LEN];
type Digest = [u8; DIGEST_LEN];

/// What a peer can do wrong during the handshake. Each error ends the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The first byte (C0 or S0) asked for RTMPE, encrypted RTMP (6, 8 or 9).
    #[error("peer asked for encrypted RTMP (RTMPE, version byte {version:#04x}), which is not supported")]
    EncryptionNotSupported {
        /// The version byte the peer sent.
        version: u8,
    },
    /// The first byte (C0 or S0) is not 3. A peer speaking HTTP sends 0x47 ('G'),
    /// one speaking TLS (rtmps to a plain port) sends 0x16.
    #[error("unsupported RTMP version byte {version:#04x} at byte 0, expected 0x03")]
    UnsupportedVersion {
        /// The version byte the peer sent.
        version: u8,
    },
}

/// Which of the two 764-byte blocks of C1/S1 carries the digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schema {
    /// Schema 0: digest block at bytes 8..772, key block after it.
    DigestFirst,
    /// Schema 1: key block at bytes 8..772, digest block after it.
    KeyFirst,
}

impl Schema {
    /// Position of the 32-byte digest inside a 1536-byte packet: the four bytes that
    /// open the digest block, summed, modulo 728, past those four bytes. At most
    /// 772 + 4 + 727 = 1503, so the digest always fits.
    fn digest_offset(self, packet: &Packet) -> usize {
        let block = match self {
            Schema::DigestFirst => 8,
            Schema::KeyFirst => 772,
        };
        let sum: usize = packet[block..block + 4]
            .iter()
            .map(|&b| usize::from(b))
            .sum();
        block + 4 + sum % 728
    }
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Digest {
    // HMAC accepts keys of any length: new_from_slice cannot fail.
    #[allow(clippy::expect_used)]
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// HMAC of the packet with the 32 bytes at `offset` left out.
fn packet_digest(packet: &Packet, offset: usize, key: &[u8]) -> Digest {
    hmac_sha256(key, &[&packet[..offset], &packet[offset + DIGEST_LEN..]])
}

/// Finds a valid digest under either schema (schema 1 first, as nginx-rtmp does).
fn find_digest(packet: &Packet, key: &[u8]) -> Option<(Schema, Digest)> {
    [Schema::KeyFirst, Schema::DigestFirst]
        .into_iter()
        .find_map(|schema| {
            let offset = schema.digest_offset(packet);
            let digest = packet_digest(packet, offset, key);
            (packet[offset..offset + DIGEST_LEN] == digest).then_some((schema, digest))
        })
}

/// Writes the digest into `packet` under `schema` and returns it.
fn insert_digest(packet: &mut Packet, schema: Schema, key: &[u8]) -> Digest {
    let offset = schema.digest_offset(packet);
    let digest = packet_digest(packet, offset, key);
    packet[offset..offset + DIGEST_LEN].copy_from_slice(&digest);
    digest
}

/// Signature of a complex S2/C2: HMAC over its first 1504 bytes with the key
/// HMAC(full key, digest the peer put in its C1/S1).
fn response_signature(body: &[u8], full_key: &[u8], peer_digest: &Digest) -> Digest {
    let key = hmac_sha256(full_key, &[peer_digest]);
    hmac_sha256(&key, &[body])
}

/// A complex S2/C2: `filler`, then its signature.
fn signed_response(filler: &[u8; SIGNED_LEN], full_key: &[u8], peer_digest: &Digest) -> Packet {
    let mut packet = [0; PACKET_LEN];
    packet[..SIGNED_LEN].copy_from_slice(filler);
    let signature = response_signature(filler, full_key, peer_digest);
    packet[SIGNED_LEN..].copy_from_slice(&signature);
    packet
}

/// A C1/S1 before any digest: time, version, random body.
fn challenge(epoch: u32, version: [u8; 4], random: &[u8; RANDOM_LEN]) -> Packet {
    let mut packet = [0; PACKET_LEN];
    packet[..4].copy_from_slice(&epoch.to_be_bytes());
    packet[4..8].copy_from_slice(&version);
    packet[8..].copy_from_slice(random);
    packet
}

fn check_version(version: u8) -> Result<(), HandshakeError> {
    match version {
        RTMP_VERSION => Ok(()),
        6 | 8 | 9 => Err(HandshakeError::EncryptionNotSupported { version }),
        _ => Err(HandshakeError::UnsupportedVersion { version }),
    }
}

fn version_field(packet: &Packet) -> u32 {
    u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]])
}

/// A 1536-byte packet being received in pieces.
struct PacketBuf {
    buf: Box<Packet>,
    len: usize,
}

impl PacketBuf {
    fn new() -> Self {
        Self {
            buf: Box::new([0; PACKET_LEN]),
            len: 0,
        }
    }

    /// Copies as much of `input` as still fits; returns how much that was.
    fn fill(&mut self, input: &[u8]) -> usize {
        let take = (PACKET_LEN - self.len).min(input.len());
        self.buf[self.len..self.len + take].copy_from_slice(&input[..take]);
        self.len += take;
        take
    }

    fn is_full(&self) -> bool {
        self.len == PACKET_LEN
    }
}

/// Reads the version byte (C0/S0) and then one packet into `packet`, from `input`
/// starting at `*consumed`. Returns true once the version byte and the packet are in.
fn read_version_and_packet(
    version: &mut Option<u8>,
    packet: &mut PacketBuf,
    input: &[u8],
    consumed: &mut usize,
) -> Result<bool, HandshakeError> {
    let rest = input.get(*consumed..).unwrap_or_default();
    if version.is_none() {
        let Some((&first, _)) = rest.split_first() else {
            return Ok(false);
        };
        check_version(first)?;
        *version = Some(first);
        *consumed += 1;
    }
    let rest = input.get(*consumed..).unwrap_or_default();
    *consumed += packet.fill(rest);
    Ok(packet.is_full())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    /// Waiting for C0 and C1.
    C0C1,
    /// S0+S1+S2 queued; counting C2 bytes.
    C2 {
        received: usize,
    },
    Done,
}

/// Server side of the handshake: reads C0+C1, answers S0+S1+S2, then reads C2.
pub struct ServerHandshake {
    state: ServerState,
    epoch: u32,
    random: Box<[u8; RANDOM_LEN]>,
    c0: Option<u8>,
    c1: PacketBuf,
    out: BytesMut,
    complex: bool,
}

impl ServerHandshake {
    /// `random`: RANDOM_LEN bytes of caller-provided randomness (for S1/S2 bodies).
    /// `epoch`: the server's time field for S1 (ms, caller-provided, may be 0).
    pub fn new(random: &[u8; RANDOM_LEN], epoch: u32) -> Self {
        Self {
            state: ServerState::C0C1,
            epoch,
            random: Box::new(*random),
            c0: None,
            c1: PacketBuf::new(),
            out: BytesMut::new(),
            complex: false,
        }
    }

    /// Feeds bytes from the peer and returns how many were consumed. Bytes after the
    /// end of C2 are not consumed: they are the first chunk-stream bytes and stay with
    /// the caller. Partial input is buffered (at most C1, 1536 bytes).
    pub fn handle_input(&mut self, input: &[u8]) -> Result<usize, HandshakeError> {
        let mut consumed = 0;
        loop {
            match self.state {
                ServerState::C0C1 => {
                    if !read_version_and_packet(&mut self.c0, &mut self.c1, input, &mut consumed)? {
                        break;
                    }
                    self.respond();
                    self.state = ServerState::C2 { received: 0 };
                }
                ServerState::C2 { received } => {
                    let available = input.len().saturating_sub(consumed);
                    if available == 0 {
                        break;
                    }
                    let take = (PACKET_LEN - received).min(available);
                    consumed += take;
                    self.state = if received + take == PACKET_LEN {
                        tracing::debug!(complex = self.complex, "rtmp handshake done");
                        ServerState::Done
                    } else {
                        ServerState::C2 {
                            received: received + take,
                        }
                    };
                }
                ServerState::Done => break,
            }
        }
        Ok(consumed)
    }

    /// Queues S0+S1+S2 for the complete C1.
    fn respond(&mut self) {
        let c1 = &*self.c1.buf;
        let version = version_field(c1);
        let client_digest = if version == 0 {
            None
        } else {
            find_digest(c1, &FP_KEY[..FP_KEY_PUBLIC_LEN])
        };
        let (s1, s2) = match client_digest {
            Some((schema, digest)) => {
                tracing::debug!(
                    client_version = %format_args!("{version:#010x}"),
                    ?schema,
                    "complex rtmp handshake"
                );
                let mut s1 = challenge(self.epoch, SERVER_VERSION, &self.random);
                insert_digest(&mut s1, schema, &FMS_KEY[..FMS_KEY_PUBLIC_LEN]);
                let mut filler = [0; SIGNED_LEN];
                filler.copy_from_slice(&self.random[RANDOM_LEN - SIGNED_LEN..]);
                let s2 = signed_response(&filler, &FMS_KEY, &digest);
                self.complex = true;
                (s1, s2)
            }
            None => {
                if version != 0 {
                    tracing::debug!(
                        client_version = %format_args!("{version:#010x}"),
                        "C1 digest does not validate, falling back to the simple rtmp handshake"
                    );
                }
                (challenge(self.epoch, [0; 4], &self.random), *c1)
            }
        };
        self.out.reserve(1 + 2 * PACKET_LEN);
        self.out.put_u8(RTMP_VERSION);
        self.out.put_slice(&s1);
        self.out.put_slice(&s2);
    }

    /// Bytes to send to the peer, if any (S0+S1+S2 once C0+C1 are complete).
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| self.out.split().freeze())
    }

    /// True once C2 has been received in full.
    pub fn is_done(&self) -> bool {
        self.state == ServerState::Done
    }

    /// Whether the peer used the complex (digest) handshake, for logs.
    pub fn is_complex(&self) -> bool {
        self.complex
    }
}

/// Client side of the handshake: sends C0+C1 (complex, like librtmp), reads
/// S0+S1+S2, then sends C2.
pub struct ClientHandshake {
    epoch: u32,
    c1: Box<Packet>,
    c1_digest: Digest,
    s0: Option<u8>,
    s1: PacketBuf,
    s2: PacketBuf,
    out: BytesMut,
    done: bool,
    complex: bool,
}

impl ClientHandshake {
    /// Queues C0+C1 at once (see `poll_transmit`). C1 carries a digest (schema 1,
    /// version 128.0.7.2), so servers that insist on the complex handshake accept it.
    /// `random`: RANDOM_LEN bytes of caller-provided randomness; `epoch`: our time
    /// field for C1 (ms, may be 0).
    pub fn new(random: &[u8; RANDOM_LEN], epoch: u32) -> Self {
        let mut c1 = Box::new(challenge(epoch, CLIENT_VERSION, random));
        let c1_digest = insert_digest(&mut c1, CLIENT_SCHEMA, &FP_KEY[..FP_KEY_PUBLIC_LEN]);
        let mut out = BytesMut::with_capacity(1 + PACKET_LEN);
        out.put_u8(RTMP_VERSION);
        out.put_slice(&c1[..]);
        Self {
            epoch,
            c1,
            c1_digest,
            s0: None,
            s1: PacketBuf::new(),
            s2: PacketBuf::new(),
            out,
            done: false,
            complex: false,
        }
    }

    /// Feeds bytes from the peer and returns how many were consumed: S0+S1+S2 only,
    /// anything after them stays with the caller. Once S2 is in, C2 is queued.
    pub fn handle_input(&mut self, input: &[u8]) -> Result<usize, HandshakeError> {
        if self.done {
            return Ok(0);
        }
        let mut consumed = 0;
        if !read_version_and_packet(&mut self.s0, &mut self.s1, input, &mut consumed)? {
            return Ok(consumed);
        }
        consumed += self.s2.fill(input.get(consumed..).unwrap_or_default());
        if self.s2.is_full() {
            self.respond();
            self.done = true;
        }
        Ok(consumed)
    }

    /// Queues C2 for the complete S1 and S2. Like librtmp: if S1 carries a server
    /// digest, C2 is signed with it; otherwise C2 echoes S1 with our time in its
    /// second field. Unlike librtmp, a server whose S2 does not validate is only
    /// logged: the keys are public, so failing would protect nothing.
    fn respond(&mut self) {
        let s1 = &*self.s1.buf;
        let s2 = &*self.s2.buf;
        let version = version_field(s1);
        let server_digest = if version == 0 {
            None
        } else {
            find_digest(s1, &FMS_KEY[..FMS_KEY_PUBLIC_LEN])
        };
        let c2 = match server_digest {
            Some((schema, digest)) => {
                self.complex = true;
                let expected = response_signature(&s2[..SIGNED_LEN], &FMS_KEY, &self.c1_digest);
                let s2_valid = s2[SIGNED_LEN..] == expected;
                tracing::debug!(
                    server_version = %format_args!("{version:#010x}"),
                    ?schema,
                    s2_valid,
                    "complex rtmp handshake"
                );
                let mut filler = [0; SIGNED_LEN];
                filler.copy_from_slice(&self.c1[PACKET_LEN - SIGNED_LEN..]);
                signed_response(&filler, &FP_KEY, &digest)
            }
            None => {
                tracing::debug!(
                    server_version = %format_args!("{version:#010x}"),
                    s2_echoes_c1 = s2 == &*self.c1,
                    "simple rtmp handshake"
                );
                let mut c2 = *s1;
                c2[4..8].copy_from_slice(&self.epoch.to_be_bytes());
                c2
            }
        };
        self.out.put_slice(&c2);
    }

    /// Bytes to send to the peer, if any: C0+C1 from the start, C2 once S2 is in.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| self.out.split().freeze())
    }

    /// True once S2 has been received and C2 queued.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Whether the server answered with the complex (digest) handshake, for logs.
    pub fn is_complex(&self) -> bool {
        self.complex
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from `ffmpeg -i rtmp://...` (ffmpeg 5.1, Debian 12): complex C1,
    /// version 9.0.124.2, digest at schema 0. ffmpeg's publish C0C1 is identical.
    const FFMPEG_C0C1: &[u8] = include_bytes!("../testdata/ffmpeg-5.1_c0c1.bin");
    /// Captured from `rtmpdump -w <hash> -x <size>` (librtmp 2.4, Debian 12): the SWF
    /// options make it use the complex handshake, version 10.0.45.2, schema 0.
    const RTMPDUMP_C0C1: &[u8] = include_bytes!("../testdata/rtmpdump-2.4_c0c1.bin");
    /// nginx-rtmp 1.2.2's S0S1S2 in answer to `ClientHandshake::new(&client_random(), 0)`.
    const NGINX_S0S1S2: &[u8] = include_bytes!("../testdata/nginx-rtmp-1.2.2_s0s1s2.bin");
    /// `ffmpeg -listen 1` (5.1)'s simple S0S1S2 in answer to the same C0C1.
    const FFMPEG_LISTEN_S0S1S2: &[u8] = include_bytes!("../testdata/ffmpeg-5.1-listen_s0s1s2.bin");

    fn server_random() -> [u8; RANDOM_LEN] {
        std::array::from_fn(|i| (i * 7 + 13) as u8)
    }

    /// The randomness the captured server responses were made for.
    fn client_random() -> [u8; RANDOM_LEN] {
        std::array::from_fn(|i| (i * 31 + 5) as u8)
    }

    fn hmac(key: &[u8], data: &[&[u8]]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
        for d in data {
            mac.update(d);
        }
        mac.finalize().into_bytes().into()
    }

    /// Digest offset written out independently of `Schema::digest_offset`:
    /// schema 0 sums bytes 8..12 and adds 12, schema 1 sums 772..776 and adds 776.
    fn offset_for(c1: &[u8], schema: u8) -> usize {
        let (at, base) = if schema == 0 { (8, 12) } else { (772, 776) };
        let sum: usize = c1[at..at + 4].iter().map(|&b| b as usize).sum();
        sum % 728 + base
    }

    fn digest_valid(packet: &[u8], offset: usize, key: &[u8]) -> bool {
        hmac(key, &[&packet[..offset], &packet[offset + 32..]]) == packet[offset..offset + 32]
    }

    /// A C0C1 as librtmp builds it for the FP9 handshake.
    fn librtmp_c0c1(schema: u8, version: [u8; 4], seed: usize) -> Vec<u8> {
        let mut c1 = vec![0u8; 1536];
        c1[..4].copy_from_slice(&77u32.to_be_bytes());
        c1[4..8].copy_from_slice(&version);
        for (i, b) in c1[8..].iter_mut().enumerate() {
            *b = (i * 13 + seed) as u8;
        }
        let offset = offset_for(&c1, schema);
        let digest = hmac(&FP_KEY[..30], &[&c1[..offset], &c1[offset + 32..]]);
        c1[offset..offset + 32].copy_from_slice(&digest);
        let mut c0c1 = vec![3];
        c0c1.extend_from_slice(&c1);
        c0c1
    }

    /// Checks a complex S0S1S2 answering `c1` whose digest is at `schema`; S1's digest
    /// is expected at `s1_schema`.
    fn assert_complex_reply_at(reply: &[u8], c1: &[u8], schema: u8, s1_schema: u8) {
        assert_eq!(reply.len(), 1 + 1536 + 1536);
        assert_eq!(reply[0], 3);
        let (s1, s2) = reply[1..].split_at(1536);
        assert_ne!(s1[4..8], [0; 4], "complex S1 needs a version");
        let s1_offset = offset_for(s1, s1_schema);
        assert!(digest_valid(s1, s1_offset, &FMS_KEY[..36]), "S1 digest");
        let c1_offset = offset_for(c1, schema);
        let key = hmac(&FMS_KEY, &[&c1[c1_offset..c1_offset + 32]]);
        assert_eq!(hmac(&key, &[&s2[..1504]]), s2[1504..], "S2 signature");
    }

    /// Our server puts its S1 digest at the client's schema.
    fn assert_complex_reply(reply: &[u8], c1: &[u8], schema: u8) {
        assert_complex_reply_at(reply, c1, schema, schema);
    }

    struct Run {
        out: Vec<u8>,
        consumed: usize,
        done: bool,
        complex: bool,
    }

    fn run_server(pieces: &[&[u8]]) -> Result<Run, HandshakeError> {
        let mut hs = ServerHandshake::new(&server_random(), 1000);
        let mut run = Run {
            out: Vec::new(),
            consumed: 0,
            done: false,
            complex: false,
        };
        for piece in pieces {
            run.consumed += hs.handle_input(piece)?;
            while let Some(out) = hs.poll_transmit() {
                run.out.extend_from_slice(&out);
            }
        }
        run.done = hs.is_done();
        run.complex = hs.is_complex();
        Ok(run)
    }

    fn run_client(pieces: &[&[u8]]) -> Result<Run, HandshakeError> {
        let mut hs = ClientHandshake::new(&client_random(), 0);
        let mut run = Run {
            out: Vec::new(),
            consumed: 0,
            done: false,
            complex: false,
        };
        for piece in pieces {
            run.consumed += hs.handle_input(piece)?;
        }
        while let Some(out) = hs.poll_transmit() {
            run.out.extend_from_slice(&out);
        }
        run.done = hs.is_done();
        run.complex = hs.is_complex();
        Ok(run)
    }

    /// Runs `run` on `input` whole, one byte at a time and split in two at every
    /// offset, and checks that every run gives the same result.
    fn assert_split_invariant(
        run: fn(&[&[u8]]) -> Result<Run, HandshakeError>,
        input: &[u8],
    ) -> Run {
        let whole = run(&[input]).expect("whole input");
        let check = |r: Run, what: &str| {
            assert_eq!(r.out, whole.out, "{what}");
            assert_eq!(r.consumed, whole.consumed, "{what}");
            assert_eq!(r.done, whole.done, "{what}");
            assert_eq!(r.complex, whole.complex, "{what}");
        };
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        check(run(&bytes).expect("byte by byte"), "byte by byte");
        for split in 0..=input.len() {
            let (a, b) = input.split_at(split);
            check(
                run(&[a, b]).expect("two pieces"),
                &format!("split at {split}"),
            );
        }
        whole
    }

    #[test]
    fn client_and_server_complete_a_complex_handshake() {
        let mut client = ClientHandshake::new(&client_random(), 5);
        let mut server = ServerHandshake::new(&server_random(), 9);
        let c0c1 = client.poll_transmit().expect("C0C1 at once");
        assert_eq!(c0c1.len(), 1537);
        assert_eq!(server.handle_input(&c0c1), Ok(1537));
        let s0s1s2 = server.poll_transmit().expect("S0S1S2");
        assert_complex_reply(&s0s1s2, &c0c1[1..], 1);
        assert!(!client.is_done());
        assert_eq!(client.handle_input(&s0s1s2), Ok(3073));
        assert!(client.is_done() && client.is_complex());
        let c2 = client.poll_transmit().expect("C2");
        assert_eq!(c2.len(), 1536);
        // C2 is signed with a key derived from the server's S1 digest.
        let s1 = &s0s1s2[1..1537];
        let offset = offset_for(s1, 1);
        let key = hmac(&FP_KEY, &[&s1[offset..offset + 32]]);
        assert_eq!(hmac(&key, &[&c2[..1504]]), c2[1504..]);
        assert!(!server.is_done());
        assert_eq!(server.handle_input(&c2), Ok(1536));
        assert!(server.is_done() && server.is_complex());
        assert_eq!(server.poll_transmit(), None);
        assert_eq!(client.poll_transmit(), None);
    }

    #[test]
    fn simple_client_gets_simple_reply() {
        let mut c0c1 = vec![3u8];
        c0c1.extend_from_slice(&42u32.to_be_bytes());
        c0c1.extend_from_slice(&[0; 4]);
        c0c1.extend((0..RANDOM_LEN).map(|i| (i * 3) as u8));
        let mut server = ServerHandshake::new(&server_random(), 1000);
        assert_eq!(server.handle_input(&c0c1), Ok(1537));
        assert!(!server.is_complex());
        let reply = server.poll_transmit().expect("S0S1S2");
        assert_eq!(reply.len(), 3073);
        assert_eq!(reply[0], 3);
        assert_eq!(reply[1..5], 1000u32.to_be_bytes());
        assert_eq!(reply[5..9], [0; 4]);
        assert_eq!(reply[9..1537], server_random());
        assert_eq!(reply[1537..], c0c1[1..], "S2 echoes C1");
        // C2 content is not checked: junk completes the handshake.
        assert_eq!(server.handle_input(&[0xAB; 1536]), Ok(1536));
        assert!(server.is_done());
    }

    #[test]
    fn librtmp_style_c1_gets_valid_complex_reply_for_both_schemas() {
        for schema in [0, 1] {
            for seed in 0..8 {
                let c0c1 = librtmp_c0c1(schema, [0x80, 0, 7, 2], seed);
                let run = run_server(&[&c0c1]).expect("complex C1");
                assert!(run.complex, "schema {schema} seed {seed}");
                assert_complex_reply(&run.out, &c0c1[1..], schema);
            }
        }
    }

    #[test]
    fn captured_ffmpeg_and_librtmp_c1_get_valid_complex_reply() {
        for c0c1 in [FFMPEG_C0C1, RTMPDUMP_C0C1] {
            let run = run_server(&[c0c1]).expect("captured C1");
            assert!(run.complex);
            assert!(digest_valid(
                &c0c1[1..],
                offset_for(&c0c1[1..], 0),
                &FP_KEY[..30]
            ));
            assert_complex_reply(&run.out, &c0c1[1..], 0);
        }
    }

    #[test]
    fn invalid_digest_falls_back_to_simple() {
        let mut c0c1 = librtmp_c0c1(0, [9, 0, 124, 2], 1);
        let offset = 1 + offset_for(&c0c1[1..], 0);
        c0c1[offset] ^= 1;
        let run = run_server(&[&c0c1]).expect("bad digest is not fatal");
        assert!(!run.complex);
        assert_eq!(run.out[5..9], [0; 4]);
        assert_eq!(run.out[1537..], c0c1[1..]);
    }

    #[test]
    fn server_rejects_other_versions_at_the_first_byte() {
        for version in [6, 8, 9] {
            let mut server = ServerHandshake::new(&server_random(), 0);
            assert_eq!(
                server.handle_input(&[version]),
                Err(HandshakeError::EncryptionNotSupported { version })
            );
            assert_eq!(server.poll_transmit(), None);
        }
        for version in [0, 1, 2, 4, 0x16, b'G', 0xFF] {
            let mut input = vec![version];
            input.extend_from_slice(&[0; 1536 * 2]);
            let mut server = ServerHandshake::new(&server_random(), 0);
            assert_eq!(
                server.handle_input(&input),
                Err(HandshakeError::UnsupportedVersion { version })
            );
            assert!(!server.is_done());
            assert_eq!(server.poll_transmit(), None);
        }
    }

    #[test]
    fn truncated_input_is_buffered() {
        let c0c1 = librtmp_c0c1(1, [0x80, 0, 7, 2], 3);
        let mut server = ServerHandshake::new(&server_random(), 0);
        assert_eq!(server.handle_input(&[]), Ok(0));
        assert_eq!(server.handle_input(&c0c1[..1000]), Ok(1000));
        assert!(!server.is_done());
        assert_eq!(server.poll_transmit(), None);
        assert_eq!(server.handle_input(&c0c1[1000..]), Ok(537));
        assert!(server.poll_transmit().is_some());
        assert_eq!(server.handle_input(&[0; 1535]), Ok(1535));
        assert!(!server.is_done());
        assert_eq!(server.handle_input(&[0]), Ok(1));
        assert!(server.is_done());

        let mut client = ClientHandshake::new(&client_random(), 0);
        assert_eq!(client.handle_input(&NGINX_S0S1S2[..2000]), Ok(2000));
        assert!(!client.is_done());
        assert_eq!(
            client.poll_transmit().map(|b| b.len()),
            Some(1537),
            "only C0C1"
        );
    }

    #[test]
    fn bytes_after_the_handshake_are_not_consumed() {
        let mut input = librtmp_c0c1(0, [9, 0, 124, 2], 5);
        input.extend_from_slice(&[0x55; 1536]);
        input.extend_from_slice(b"\x03chunk stream bytes");
        let run = run_server(&[&input]).expect("server");
        assert!(run.done);
        assert_eq!(run.consumed, 1537 + 1536);

        let mut server = ServerHandshake::new(&server_random(), 0);
        assert_eq!(server.handle_input(&input), Ok(3073));
        assert_eq!(
            server.handle_input(b"more"),
            Ok(0),
            "nothing consumed once done"
        );

        let mut input = NGINX_S0S1S2.to_vec();
        input.extend_from_slice(b"\x02window ack size");
        let run = run_client(&[&input]).expect("client");
        assert!(run.done);
        assert_eq!(run.consumed, 3073);
    }

    #[test]
    fn server_gives_same_result_for_any_split() {
        for c0c1 in [librtmp_c0c1(1, [0x80, 0, 7, 2], 2), FFMPEG_C0C1.to_vec()] {
            let mut input = c0c1;
            input.extend((0..1536).map(|i| i as u8));
            input.extend_from_slice(b"trailing");
            let run = assert_split_invariant(run_server, &input);
            assert!(run.done && run.complex);
            assert_eq!(run.consumed, 3073);
        }
        let mut simple = vec![3u8; 1];
        simple.extend_from_slice(&[0; 3072]);
        simple.push(7);
        let run = assert_split_invariant(run_server, &simple);
        assert!(run.done && !run.complex);
        assert_eq!(run.consumed, 3073);
        // Rejection does not depend on the split either.
        let bad = [6u8; 40];
        for split in 0..=bad.len() {
            let (a, b) = bad.split_at(split);
            assert!(run_server(&[a, b]).is_err());
        }
    }

    #[test]
    fn client_gives_same_result_for_any_split() {
        let mut input = NGINX_S0S1S2.to_vec();
        input.extend_from_slice(b"after");
        let run = assert_split_invariant(run_client, &input);
        assert!(run.done && run.complex);
        assert_eq!(run.consumed, 3073);
        assert_eq!(run.out.len(), 1537 + 1536);
    }

    #[test]
    fn client_against_captured_nginx_rtmp() {
        let run = run_client(&[NGINX_S0S1S2]).expect("nginx-rtmp reply");
        assert!(run.done && run.complex);
        let c0c1 = &run.out[..1537];
        // Our C1: version 128.0.7.2, digest at schema 1; nginx found it.
        assert_eq!(c0c1[5..9], CLIENT_VERSION);
        assert!(digest_valid(
            &c0c1[1..],
            offset_for(&c0c1[1..], 1),
            &FP_KEY[..30]
        ));
        // nginx-rtmp puts its S1 digest at schema 0 and signs S2 with our digest.
        assert_complex_reply_at(NGINX_S0S1S2, &c0c1[1..], 1, 0);
        let s1 = &NGINX_S0S1S2[1..1537];
        let c2 = &run.out[1537..];
        let offset = offset_for(s1, 0);
        let key = hmac(&FP_KEY, &[&s1[offset..offset + 32]]);
        assert_eq!(hmac(&key, &[&c2[..1504]]), c2[1504..]);
    }

    #[test]
    fn client_echoes_simple_s1() {
        let mut client = ClientHandshake::new(&client_random(), 321);
        assert_eq!(client.handle_input(FFMPEG_LISTEN_S0S1S2), Ok(3073));
        assert!(client.is_done() && !client.is_complex());
        let out = client.poll_transmit().expect("C0C1 and C2");
        let c2 = &out[1537..];
        let s1 = &FFMPEG_LISTEN_S0S1S2[1..1537];
        assert_eq!(c2[..4], s1[..4], "peer's time echoed");
        assert_eq!(
            c2[4..8],
            321u32.to_be_bytes(),
            "our time in the second field"
        );
        assert_eq!(c2[8..], s1[8..]);
    }

    #[test]
    fn client_tolerates_a_bad_s2_signature() {
        let mut input = NGINX_S0S1S2.to_vec();
        input[3072] ^= 0xFF;
        let run = run_client(&[&input]).expect("a bad S2 is only logged");
        assert!(run.done && run.complex);
        assert_eq!(run.out.len(), 1537 + 1536);
    }

    #[test]
    fn client_rejects_other_versions() {
        for (version, err) in [
            (6, HandshakeError::EncryptionNotSupported { version: 6 }),
            (0xFF, HandshakeError::UnsupportedVersion { version: 0xFF }),
        ] {
            let mut input = NGINX_S0S1S2.to_vec();
            input[0] = version;
            let mut client = ClientHandshake::new(&client_random(), 0);
            assert_eq!(client.handle_input(&input), Err(err));
            assert!(!client.is_done());
        }
    }
}
