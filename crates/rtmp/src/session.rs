//! What both session roles share: the chunk reader and writer, the output buffer, the
//! connection-level protocol control (acknowledgements, peer bandwidth, pings), and the
//! input pump: handshake first, then chunks into messages, each to the role's handler.

use bytes::{Bytes, BytesMut};

use crate::chunk::{write_chunks, ChunkReader, ChunkWriter};
use crate::command::{Command, CommandError};
use crate::handshake::{ClientHandshake, HandshakeError, ServerHandshake};
use crate::message::{
    type_id, AckState, ControlMessage, RawMessage, UserControl, CSID_COMMAND, CSID_DATA,
    CSID_PROTOCOL_CONTROL,
};
use crate::{Error, Limits};

/// What both handshakes offer the session that drives them.
pub(crate) trait Handshake {
    fn handle_input(&mut self, input: &[u8]) -> Result<usize, HandshakeError>;
    fn poll_transmit(&mut self) -> Option<Bytes>;
    fn is_done(&self) -> bool;
}

impl Handshake for ServerHandshake {
    fn handle_input(&mut self, input: &[u8]) -> Result<usize, HandshakeError> {
        ServerHandshake::handle_input(self, input)
    }

    fn poll_transmit(&mut self) -> Option<Bytes> {
        ServerHandshake::poll_transmit(self)
    }

    fn is_done(&self) -> bool {
        ServerHandshake::is_done(self)
    }
}

impl Handshake for ClientHandshake {
    fn handle_input(&mut self, input: &[u8]) -> Result<usize, HandshakeError> {
        ClientHandshake::handle_input(self, input)
    }

    fn poll_transmit(&mut self) -> Option<Bytes> {
        ClientHandshake::poll_transmit(self)
    }

    fn is_done(&self) -> bool {
        ClientHandshake::is_done(self)
    }
}

/// A session role, as the input pump sees it.
pub(crate) trait Role {
    fn conn(&mut self) -> &mut Conn;
    /// One complete message from the peer.
    fn on_message(&mut self, msg: RawMessage) -> Result<(), Error>;
}

/// Feeds chunk-stream bytes (after the handshake): every complete message to the role,
/// then an acknowledgement when one is due.
pub(crate) fn pump(role: &mut impl Role, input: &[u8]) -> Result<(), Error> {
    role.conn().reader.handle_input(input);
    while let Some(msg) = role.conn().reader.poll_message()? {
        role.on_message(msg)?;
    }
    role.conn().send_ack_if_due();
    Ok(())
}

/// The connection under a session, whatever its role.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) reader: ChunkReader,
    pub(crate) writer: ChunkWriter,
    out: BytesMut,
    pub(crate) ack: AckState,
    pub(crate) bytes_received: u64,
    amf_max_depth: usize,
}

impl Conn {
    pub(crate) fn new(limits: Limits) -> Self {
        let amf_max_depth = limits.amf_max_depth;
        Self {
            reader: ChunkReader::new(limits),
            writer: ChunkWriter::new(),
            out: BytesMut::new(),
            ack: AckState::default(),
            bytes_received: 0,
            amf_max_depth,
        }
    }

    /// Feeds the handshake from the front of `input` and queues what it sends; `input`
    /// is left with what follows the handshake. Returns whether the handshake is done.
    pub(crate) fn drive_handshake(
        &mut self,
        handshake: &mut impl Handshake,
        input: &mut &[u8],
    ) -> Result<bool, Error> {
        while !handshake.is_done() && !input.is_empty() {
            let consumed = handshake.handle_input(input)?;
            while let Some(out) = handshake.poll_transmit() {
                self.send_raw(&out);
            }
            if consumed == 0 {
                break;
            }
            *input = input.get(consumed..).unwrap_or_default();
        }
        Ok(handshake.is_done())
    }

    /// Queues raw bytes (handshake packets, pre-encoded chunks).
    pub(crate) fn send_raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    pub(crate) fn send_control(&mut self, msg: &ControlMessage) {
        if let ControlMessage::WindowAckSize(size) = msg {
            self.ack.window_sent = Some(*size);
        }
        self.writer.write(
            &mut self.out,
            CSID_PROTOCOL_CONTROL,
            msg.type_id(),
            0,
            0,
            &msg.encode(),
        );
    }

    pub(crate) fn send_set_chunk_size(&mut self, size: u32) {
        self.writer.write_set_chunk_size(&mut self.out, size);
    }

    pub(crate) fn send_command(&mut self, stream_id: u32, cmd: &Command) {
        tracing::trace!(command = %cmd.name, stream_id, "sending command");
        self.writer.write(
            &mut self.out,
            CSID_COMMAND,
            type_id::COMMAND_AMF0,
            stream_id,
            0,
            &cmd.encode(),
        );
    }

    /// Writes a message on a media chunk stream (self-contained type 0 header).
    pub(crate) fn send_media(
        &mut self,
        csid: u32,
        type_id: u8,
        stream_id: u32,
        timestamp: u32,
        payload: &[u8],
    ) {
        write_chunks(
            &mut self.out,
            csid,
            type_id,
            stream_id,
            timestamp,
            payload,
            self.writer.chunk_size(),
        );
    }

    /// An AMF0 data message on the data chunk stream.
    pub(crate) fn send_data(&mut self, stream_id: u32, payload: &[u8]) {
        self.send_media(CSID_DATA, type_id::DATA_AMF0, stream_id, 0, payload);
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<Bytes> {
        if self.out.is_empty() {
            None
        } else {
            // Take the whole buffer: `split` would keep its spare room (the handshake
            // made it a few KiB) alive for the connection's life.
            Some(std::mem::take(&mut self.out).freeze())
        }
    }

    /// Counts received bytes; call once per input before parsing it.
    pub(crate) fn count_input(&mut self, len: usize) {
        self.bytes_received = self.bytes_received.saturating_add(len as u64);
    }

    /// Sends an Acknowledgement if a window's worth of bytes arrived; call after parsing.
    pub(crate) fn send_ack_if_due(&mut self) {
        if let Some(ack) = self.ack.ack_due(self.bytes_received) {
            self.send_control(&ack);
        }
    }

    /// Handles the connection-level part of a control message. Returns a Ping Response's
    /// timestamp, which the session reports; other user control events are for the session.
    pub(crate) fn handle_control(&mut self, msg: &ControlMessage) {
        match *msg {
            // Applied by the chunk reader already.
            ControlMessage::SetChunkSize(_) | ControlMessage::Abort { .. } => {}
            ControlMessage::Acknowledgement { sequence } => self.ack.peer_acked = Some(sequence),
            ControlMessage::WindowAckSize(size) => {
                tracing::trace!(size, "peer window acknowledgement size");
                self.ack.peer_window = size;
            }
            ControlMessage::SetPeerBandwidth { size, .. } => {
                if self.ack.window_sent != Some(size) {
                    self.send_control(&ControlMessage::WindowAckSize(size));
                }
            }
            ControlMessage::UserControl(UserControl::PingRequest(ts)) => {
                self.send_control(&ControlMessage::UserControl(UserControl::PingResponse(ts)));
            }
            ControlMessage::UserControl(_) => {}
        }
    }

    /// Parses a command message (type 20, or 17 with its format byte skipped).
    pub(crate) fn decode_command(&self, msg: &RawMessage) -> Result<Command, Error> {
        let body = if msg.type_id == type_id::COMMAND_AMF3 {
            msg.payload.get(1..).unwrap_or_default()
        } else {
            &msg.payload[..]
        };
        Command::decode(body, self.amf_max_depth).map_err(|err| match err {
            CommandError::Amf(source) => Error::Amf {
                csid: msg.csid,
                type_id: msg.type_id,
                source,
            },
            CommandError::NoName => Error::BadCommand {
                name: String::new(),
                reason: "the command name is not a string",
            },
        })
    }
}

/// An in-memory client/server pair for tests: bytes are shuttled between the two sessions
/// until neither has anything left to send.
#[cfg(test)]
pub(crate) mod pair {
    use bytes::BytesMut;

    use crate::command::Command;
    use crate::message::{
        type_id, ControlMessage, RawMessage, CSID_COMMAND, CSID_PROTOCOL_CONTROL,
    };
    use crate::{
        ChunkReader, ChunkWriter, ClientConfig, ClientEvent, ClientHandshake, ClientSession, Error,
        Limits, ServerConfig, ServerEvent, ServerSession, RANDOM_LEN,
    };

    /// A hand-driven client in front of a [`ServerSession`]: the test writes the messages,
    /// and reads what the server answers as messages.
    pub(crate) struct RawClient {
        pub(crate) server: ServerSession,
        writer: ChunkWriter,
        reader: ChunkReader,
    }

    impl RawClient {
        /// A server session with the handshake done.
        pub(crate) fn new(config: ServerConfig) -> Self {
            let mut server = ServerSession::new(config, &[9; RANDOM_LEN]);
            let mut hs = ClientHandshake::new(&[5; RANDOM_LEN], 0);
            while let Some(c0c1) = hs.poll_transmit() {
                server.handle_input(&c0c1).expect("C0C1");
            }
            while let Some(s) = server.poll_transmit() {
                hs.handle_input(&s).expect("S0S1S2");
            }
            while let Some(c2) = hs.poll_transmit() {
                server.handle_input(&c2).expect("C2");
            }
            assert!(server.is_handshake_done());
            Self {
                server,
                writer: ChunkWriter::new(),
                reader: ChunkReader::new(Limits::default()),
            }
        }

        pub(crate) fn bytes(
            &self,
            csid: u32,
            type_id: u8,
            stream_id: u32,
            timestamp: u32,
            payload: &[u8],
        ) -> BytesMut {
            let mut buf = BytesMut::new();
            self.writer
                .write(&mut buf, csid, type_id, stream_id, timestamp, payload);
            buf
        }

        pub(crate) fn send(
            &mut self,
            csid: u32,
            type_id: u8,
            stream_id: u32,
            timestamp: u32,
            payload: &[u8],
        ) -> Result<(), Error> {
            let buf = self.bytes(csid, type_id, stream_id, timestamp, payload);
            self.server.handle_input(&buf)
        }

        pub(crate) fn command(&mut self, stream_id: u32, cmd: &Command) -> Result<(), Error> {
            self.send(
                CSID_COMMAND,
                type_id::COMMAND_AMF0,
                stream_id,
                0,
                &cmd.encode(),
            )
        }

        pub(crate) fn control(&mut self, msg: &ControlMessage) -> Result<(), Error> {
            self.send(CSID_PROTOCOL_CONTROL, msg.type_id(), 0, 0, &msg.encode())
        }

        /// Everything the server sent since the last call, as messages.
        pub(crate) fn received(&mut self) -> Vec<RawMessage> {
            while let Some(bytes) = self.server.poll_transmit() {
                self.reader.handle_input(&bytes);
            }
            let mut out = Vec::new();
            while let Some(msg) = self.reader.poll_message().expect("server output parses") {
                out.push(msg);
            }
            assert_eq!(
                self.reader.pending_input(),
                0,
                "output ends on a message boundary"
            );
            out
        }

        /// The commands among [`received`](Self::received), with their message stream ids.
        pub(crate) fn commands(&mut self) -> Vec<(u32, Command)> {
            self.received()
                .into_iter()
                .filter(|m| m.type_id == type_id::COMMAND_AMF0)
                .map(|m| {
                    (
                        m.stream_id,
                        Command::decode(&m.payload, 16).expect("command"),
                    )
                })
                .collect()
        }

        pub(crate) fn events(&mut self) -> Vec<ServerEvent> {
            std::iter::from_fn(|| self.server.poll_event()).collect()
        }
    }

    pub(crate) struct Pair {
        pub(crate) client: ClientSession,
        pub(crate) server: ServerSession,
        pub(crate) client_events: Vec<ClientEvent>,
        pub(crate) server_events: Vec<ServerEvent>,
        /// Bytes the server sent so far.
        pub(crate) server_bytes: u64,
        /// Everything the client sent, handshake included.
        pub(crate) client_sent: Vec<u8>,
    }

    impl Pair {
        pub(crate) fn new(client: ClientConfig, server: ServerConfig) -> Self {
            Self {
                client: ClientSession::new(client, &[7; RANDOM_LEN]),
                server: ServerSession::new(server, &[9; RANDOM_LEN]),
                client_events: Vec::new(),
                server_events: Vec::new(),
                server_bytes: 0,
                client_sent: Vec::new(),
            }
        }

        pub(crate) fn default_pair() -> Self {
            Self::new(ClientConfig::default(), ServerConfig::default())
        }

        /// Shuttles bytes both ways until both sides are quiet; collects events.
        pub(crate) fn run(&mut self) {
            loop {
                let mut moved = false;
                if let Some(bytes) = self.client.poll_transmit() {
                    self.client_sent.extend_from_slice(&bytes);
                    self.server.handle_input(&bytes).expect("server input");
                    moved = true;
                }
                if let Some(bytes) = self.server.poll_transmit() {
                    self.server_bytes += bytes.len() as u64;
                    self.client.handle_input(&bytes).expect("client input");
                    moved = true;
                }
                while let Some(event) = self.client.poll_event() {
                    self.client_events.push(event);
                }
                while let Some(event) = self.server.poll_event() {
                    self.server_events.push(event);
                }
                if !moved {
                    return;
                }
            }
        }

        /// The messages the client sent, after the handshake.
        pub(crate) fn client_messages(&self) -> Vec<RawMessage> {
            let mut reader = ChunkReader::new(Limits::default());
            reader.handle_input(self.client_sent.get(1 + 1536 * 2..).unwrap_or_default());
            std::iter::from_fn(|| reader.poll_message().expect("client output parses")).collect()
        }

        /// Runs until the server reports `connect`, then accepts it.
        pub(crate) fn connect(&mut self) {
            self.run();
            assert!(matches!(
                self.server_events.first(),
                Some(ServerEvent::Connect { .. })
            ));
            self.server.accept_connect();
            self.run();
            assert!(self.client_events.contains(&ClientEvent::Connected));
            self.client_events.clear();
            self.server_events.clear();
        }
    }
}
