//! The client side of an RTMP connection: publish or play one stream.

use std::collections::VecDeque;

use bytes::Bytes;
use onair_amf0::Value;

use crate::chunk::DEFAULT_OUT_CHUNK_SIZE;
use crate::command::{data_message_name, status_fields, with_set_data_frame, Command};
use crate::handshake::{ClientHandshake, RANDOM_LEN};
use crate::message::{
    split_aggregate, type_id, ControlMessage, MediaKind, RawMessage, UserControl,
};
use crate::session::{self, Conn};
use crate::{Error, Limits};

/// Settings of a [`ClientSession`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Caps on what the server can make us buffer.
    pub limits: Limits,
    /// The `app` of `connect` (the first path segment of the URL).
    pub app: String,
    /// The `tcUrl` of `connect`, e.g. `rtmp://host:1935/live`.
    pub tc_url: String,
    /// Chunk size announced right after the handshake and used for everything we send.
    pub out_chunk_size: u32,
    /// The `flashVer` of `connect`, e.g. `FMLE/3.0 (compatible; onair)`.
    pub flash_ver: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            app: "live".to_owned(),
            tc_url: "rtmp://localhost/live".to_owned(),
            out_chunk_size: DEFAULT_OUT_CHUNK_SIZE,
            flash_ver: "FMLE/3.0 (compatible; onair)".to_owned(),
        }
    }
}

/// What the server did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// `connect` succeeded.
    Connected,
    /// NetStream.Publish.Start received.
    PublishStarted { stream_id: u32 },
    /// NetStream.Play.Start received.
    PlayStarted { stream_id: u32 },
    /// Any onStatus (also those above), and `_error` replies.
    Status {
        level: String,
        code: String,
        description: String,
    },
    /// Audio, video or a data message on the playing stream.
    Media {
        kind: MediaKind,
        timestamp: u32,
        payload: Bytes,
    },
    /// The server closed the stream (NetStream.Play.Stop/UnpublishNotify or Stream EOF);
    /// reported once per stream.
    StreamEnded,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    Publish(String),
    Play(String),
}

#[derive(Debug)]
struct Stream {
    id: u32,
    role: Role,
    ended: bool,
}

/// The client side of one RTMP connection, without IO: connects, then publishes or plays
/// one stream.
///
/// C0+C1 are queued at once; after the handshake Set Chunk Size and `connect` follow by
/// themselves. [`publish`](Self::publish) and [`play`](Self::play) called before
/// [`ClientEvent::Connected`] are remembered and run once connected.
pub struct ClientSession {
    config: ClientConfig,
    handshake: ClientHandshake,
    handshake_done: bool,
    conn: Conn,
    events: VecDeque<ClientEvent>,
    connected: bool,
    next_tid: f64,
    /// What to do once connected.
    queued: Option<Role>,
    /// A createStream in flight: its transaction id and what the stream is for.
    creating: Option<(f64, Role)>,
    stream: Option<Stream>,
}

const CONNECT_TID: f64 = 1.0;

impl ClientSession {
    /// A session with C0+C1 queued; `random` fills C1.
    pub fn new(config: ClientConfig, random: &[u8; RANDOM_LEN]) -> Self {
        let mut handshake = ClientHandshake::new(random, 0);
        let mut conn = Conn::new(config.limits.clone());
        while let Some(out) = handshake.poll_transmit() {
            conn.send_raw(&out);
        }
        Self {
            config,
            handshake,
            handshake_done: false,
            conn,
            events: VecDeque::new(),
            connected: false,
            next_tid: CONNECT_TID + 1.0,
            queued: None,
            creating: None,
            stream: None,
        }
    }

    /// Feeds bytes read from the socket. After an error the caller closes the connection.
    pub fn handle_input(&mut self, mut input: &[u8]) -> Result<(), Error> {
        self.conn.count_input(input.len());
        if !self.handshake_done {
            if !self.conn.drive_handshake(&mut self.handshake, &mut input)? {
                return Ok(());
            }
            self.handshake_done = true;
            self.conn.send_set_chunk_size(self.config.out_chunk_size);
            self.send_connect();
        }
        session::pump(self, input)
    }

    /// Everything queued for the server since the last call, or `None`.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.conn.poll_transmit()
    }

    /// The next event, or `None`.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Publishes `name` (live): releaseStream, FCPublish, createStream, then publish on the
    /// stream the server returns. Called before `Connected`, it runs once connected.
    pub fn publish(&mut self, name: &str) {
        let role = Role::Publish(name.to_owned());
        if self.connected {
            self.start(role);
        } else {
            self.queued = Some(role);
        }
    }

    /// Plays `name`: createStream, then play and Set Buffer Length. Called before
    /// `Connected`, it runs once connected.
    pub fn play(&mut self, name: &str) {
        let role = Role::Play(name.to_owned());
        if self.connected {
            self.start(role);
        } else {
            self.queued = Some(role);
        }
    }

    /// Sends one media message on the publishing stream; dropped when not publishing.
    pub fn send_media(&mut self, kind: MediaKind, timestamp: u32, payload: &[u8]) {
        match &self.stream {
            Some(Stream {
                id,
                role: Role::Publish(_),
                ..
            }) => {
                let id = *id;
                self.conn
                    .send_media(kind.csid(), kind.type_id(), id, timestamp, payload);
            }
            _ => tracing::debug!(?kind, "not publishing, media dropped"),
        }
    }

    /// Sends metadata: `payload` is AMF0 (`"onMetaData", {..}`), prefixed with `@setDataFrame`
    /// unless it already starts with it.
    pub fn send_metadata(&mut self, payload: &[u8]) {
        let payload = with_set_data_frame(payload);
        self.send_media(MediaKind::Data, 0, &payload);
    }

    /// Ends the stream: FCUnpublish (when publishing) and deleteStream.
    pub fn close(&mut self) {
        self.queued = None;
        self.creating = None;
        let Some(stream) = self.stream.take() else {
            return;
        };
        if let Role::Publish(name) = &stream.role {
            let tid = self.tid();
            self.conn.send_command(
                0,
                &Command::new("FCUnpublish", tid, vec![Value::from(name.as_str())]),
            );
        }
        let tid = self.tid();
        self.conn.send_command(
            0,
            &Command::new(
                "deleteStream",
                tid,
                vec![Value::Number(f64::from(stream.id))],
            ),
        );
    }

    /// The chunk size of what this session sends now.
    pub fn out_chunk_size(&self) -> u32 {
        self.conn.writer.chunk_size()
    }

    /// Bytes received from the server so far, handshake included.
    pub fn bytes_received(&self) -> u64 {
        self.conn.bytes_received
    }

    fn tid(&mut self) -> f64 {
        let tid = self.next_tid;
        self.next_tid += 1.0;
        tid
    }

    fn send_connect(&mut self) {
        let object = Value::object([
            ("app", Value::from(self.config.app.as_str())),
            ("type", Value::from("nonprivate")),
            ("flashVer", Value::from(self.config.flash_ver.as_str())),
            ("tcUrl", Value::from(self.config.tc_url.as_str())),
            ("fpad", Value::Boolean(false)),
            ("capabilities", Value::Number(15.0)),
            ("audioCodecs", Value::Number(4071.0)),
            ("videoCodecs", Value::Number(252.0)),
            ("videoFunction", Value::Number(1.0)),
        ]);
        let cmd = Command {
            name: "connect".to_owned(),
            transaction_id: CONNECT_TID,
            object,
            args: Vec::new(),
        };
        self.conn.send_command(0, &cmd);
    }

    fn start(&mut self, role: Role) {
        if let Role::Publish(name) = &role {
            let name = Value::from(name.as_str());
            let tid = self.tid();
            self.conn
                .send_command(0, &Command::new("releaseStream", tid, vec![name.clone()]));
            let tid = self.tid();
            self.conn
                .send_command(0, &Command::new("FCPublish", tid, vec![name]));
        }
        let tid = self.tid();
        self.conn
            .send_command(0, &Command::new("createStream", tid, Vec::new()));
        self.creating = Some((tid, role));
    }

    /// createStream answered: publish or play on the new stream.
    fn stream_created(&mut self, id: u32, role: Role) {
        match &role {
            Role::Publish(name) => {
                let cmd = Command::new(
                    "publish",
                    0.0,
                    vec![Value::from(name.as_str()), Value::from("live")],
                );
                self.conn.send_command(id, &cmd);
            }
            Role::Play(name) => {
                // Start -1000 like FFmpeg: live if there is one, else recorded.
                let cmd = Command::new(
                    "play",
                    0.0,
                    vec![Value::from(name.as_str()), Value::Number(-1000.0)],
                );
                self.conn.send_command(id, &cmd);
                self.conn.send_control(&ControlMessage::UserControl(
                    UserControl::SetBufferLength {
                        stream_id: id,
                        buffer_ms: 3000,
                    },
                ));
            }
        }
        self.stream = Some(Stream {
            id,
            role,
            ended: false,
        });
    }

    fn stream_ended(&mut self) {
        if let Some(stream) = &mut self.stream {
            if !stream.ended {
                stream.ended = true;
                self.events.push_back(ClientEvent::StreamEnded);
            }
        }
    }

    fn handle_message(&mut self, msg: RawMessage) -> Result<(), Error> {
        match msg.type_id {
            type_id::COMMAND_AMF0 | type_id::COMMAND_AMF3 => {
                let cmd = self.conn.decode_command(&msg)?;
                self.handle_command(&msg, cmd);
            }
            type_id::AUDIO | type_id::VIDEO | type_id::DATA_AMF0 | type_id::DATA_AMF3 => {
                self.handle_media(msg);
            }
            type_id::AGGREGATE => {
                for sub in split_aggregate(&msg) {
                    self.handle_media(sub);
                }
            }
            _ => {
                if let Some(control) = ControlMessage::decode(&msg)? {
                    self.conn.handle_control(&control);
                    if let ControlMessage::UserControl(UserControl::StreamEof(id)) = control {
                        if self.stream.as_ref().is_some_and(|s| s.id == id) {
                            self.stream_ended();
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn handle_media(&mut self, msg: RawMessage) {
        let Some(kind) = MediaKind::from_type_id(msg.type_id) else {
            return;
        };
        let payload = if msg.type_id == type_id::DATA_AMF3 {
            msg.payload.slice(msg.payload.len().min(1)..)
        } else {
            msg.payload
        };
        if kind == MediaKind::Data {
            match data_message_name(&payload).as_deref() {
                Some("onStatus") => {
                    if let Ok(values) = onair_amf0::Decoder::new(&payload)
                        .with_max_depth(self.config.limits.amf_max_depth)
                        .decode_all()
                    {
                        let (level, code, description) = status_fields(values.get(1));
                        self.events.push_back(ClientEvent::Status {
                            level,
                            code,
                            description,
                        });
                    }
                    return;
                }
                Some("|RtmpSampleAccess") => return,
                _ => {}
            }
        }
        if payload.is_empty() {
            return;
        }
        self.events.push_back(ClientEvent::Media {
            kind,
            timestamp: msg.timestamp,
            payload,
        });
    }

    fn handle_command(&mut self, msg: &RawMessage, cmd: Command) {
        tracing::debug!(command = %cmd.name, stream_id = msg.stream_id, "rtmp command");
        match cmd.name.as_str() {
            "_result" => {
                if cmd.transaction_id == CONNECT_TID && !self.connected {
                    self.connected = true;
                    self.events.push_back(ClientEvent::Connected);
                    if let Some(role) = self.queued.take() {
                        self.start(role);
                    }
                    return;
                }
                if let Some((tid, role)) = self.creating.take() {
                    if tid == cmd.transaction_id {
                        let id = cmd.arg_f64(0).map_or(1, |n| n as u32);
                        self.stream_created(id, role);
                    } else {
                        self.creating = Some((tid, role));
                    }
                }
            }
            "_error" => {
                let (level, code, description) = status_fields(cmd.args.first());
                if cmd.transaction_id == CONNECT_TID {
                    self.queued = None;
                }
                self.events.push_back(ClientEvent::Status {
                    level,
                    code,
                    description,
                });
            }
            "onStatus" => {
                let (level, code, description) = status_fields(cmd.args.first());
                let stream_id = msg.stream_id;
                let specific = match code.as_str() {
                    "NetStream.Publish.Start" => Some(ClientEvent::PublishStarted { stream_id }),
                    "NetStream.Play.Start" => {
                        if let Some(stream) = &mut self.stream {
                            stream.ended = false;
                        }
                        Some(ClientEvent::PlayStarted { stream_id })
                    }
                    _ => None,
                };
                let ends = matches!(
                    code.as_str(),
                    "NetStream.Play.Stop" | "NetStream.Play.UnpublishNotify"
                );
                self.events.push_back(ClientEvent::Status {
                    level,
                    code,
                    description,
                });
                if let Some(event) = specific {
                    self.events.push_back(event);
                }
                if ends {
                    self.stream_ended();
                }
            }
            _ => {}
        }
    }
}

impl session::Role for ClientSession {
    fn conn(&mut self) -> &mut Conn {
        &mut self.conn
    }

    fn on_message(&mut self, msg: RawMessage) -> Result<(), Error> {
        self.handle_message(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::pair::Pair;
    use crate::ServerEvent;

    fn commands(msgs: &[RawMessage]) -> Vec<(u32, String, Vec<Value>)> {
        msgs.iter()
            .filter(|m| m.type_id == type_id::COMMAND_AMF0)
            .filter_map(|m| {
                Command::decode(&m.payload, 16)
                    .ok()
                    .map(|c| (m.stream_id, c.name, c.args))
            })
            .collect()
    }

    #[test]
    fn sends_set_chunk_size_and_connect_after_the_handshake() {
        let mut p = Pair::default_pair();
        p.run();
        let msgs = p.client_messages();
        assert_eq!(
            ControlMessage::decode(&msgs[0]).ok().flatten(),
            Some(ControlMessage::SetChunkSize(4096))
        );
        let connect = Command::decode(&msgs[1].payload, 16).ok();
        assert_eq!(connect.as_ref().map(|c| c.name.as_str()), Some("connect"));
        assert_eq!(connect.as_ref().map(|c| c.transaction_id), Some(1.0));
        assert_eq!(p.client.out_chunk_size(), 4096);
        // The server's Set Peer Bandwidth gets a Window Ack Size back.
        p.server.accept_connect();
        p.run();
        let controls: Vec<_> = p.client_messages()[2..]
            .iter()
            .filter_map(|m| ControlMessage::decode(m).ok().flatten())
            .collect();
        assert_eq!(controls, vec![ControlMessage::WindowAckSize(2_500_000)]);
        assert!(p.client.bytes_received() > 3073);
    }

    #[test]
    fn publish_before_connected_runs_once_connected() {
        let mut p = Pair::default_pair();
        p.client.publish("demo");
        p.client.send_media(MediaKind::Video, 0, b"dropped");
        p.run();
        assert_eq!(p.server_events.len(), 1);
        p.server.accept_connect();
        p.run();
        assert!(matches!(&p.server_events[1], ServerEvent::Publish { name, .. } if name == "demo"));
        p.client.close();
        p.run();
        let sent: Vec<(u32, String)> = commands(&p.client_messages())
            .into_iter()
            .map(|(sid, name, _)| (sid, name))
            .collect();
        assert_eq!(
            sent,
            [
                (0, "connect".to_owned()),
                (0, "releaseStream".to_owned()),
                (0, "FCPublish".to_owned()),
                (0, "createStream".to_owned()),
                (1, "publish".to_owned()),
                (0, "FCUnpublish".to_owned()),
                (0, "deleteStream".to_owned()),
            ]
        );
        let media = p
            .client_messages()
            .iter()
            .filter(|m| MediaKind::from_type_id(m.type_id).is_some())
            .count();
        assert_eq!(media, 0);
    }

    #[test]
    fn play_sends_buffer_length() {
        let mut p = Pair::default_pair();
        p.connect();
        p.client.play("demo");
        p.run();
        let msgs = p.client_messages();
        let cmds = commands(&msgs);
        let play = cmds.iter().find(|c| c.1 == "play");
        assert_eq!(
            play.map(|c| (c.0, c.2.clone())),
            Some((1, vec![Value::from("demo"), Value::Number(-1000.0)]))
        );
        let buffer = msgs
            .iter()
            .filter_map(|m| ControlMessage::decode(m).ok().flatten())
            .find(|c| {
                matches!(
                    c,
                    ControlMessage::UserControl(UserControl::SetBufferLength { .. })
                )
            });
        assert_eq!(
            buffer,
            Some(ControlMessage::UserControl(UserControl::SetBufferLength {
                stream_id: 1,
                buffer_ms: 3000
            }))
        );
    }

    #[test]
    fn stream_eof_alone_ends_the_stream() {
        let mut p = Pair::default_pair();
        p.connect();
        p.client.play("demo");
        p.run();
        p.server.accept_play(1);
        p.run();
        p.client_events.clear();
        // A server that only sends Stream EOF (Stream Begin of another id is ignored).
        let mut buf = bytes::BytesMut::new();
        let writer = crate::ChunkWriter::new();
        for event in [
            UserControl::StreamEof(2),
            UserControl::StreamEof(1),
            UserControl::StreamEof(1),
        ] {
            let msg = ControlMessage::UserControl(event);
            writer.write(&mut buf, 2, msg.type_id(), 0, 0, &msg.encode());
        }
        assert!(p.client.handle_input(&buf).is_ok());
        p.run();
        assert_eq!(p.client_events, vec![ClientEvent::StreamEnded]);
    }
}
