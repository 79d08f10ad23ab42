//! The server side of an RTMP connection: handshake, then commands in, replies out.

use std::collections::VecDeque;

use bytes::Bytes;
use onair_amf0::Value;

use crate::chunk::DEFAULT_OUT_CHUNK_SIZE;
use crate::command::{data_message, status_object, Command};
use crate::handshake::{ServerHandshake, RANDOM_LEN};
use crate::message::{
    split_aggregate, type_id, ControlMessage, MediaKind, RawMessage, UserControl,
};
use crate::session::{self, Conn};
use crate::{Error, Limits};

/// Message streams (createStream) one connection may hold at once.
pub const MAX_STREAMS_PER_CONNECTION: usize = 16;

/// Settings of a [`ServerSession`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Caps on what the peer can make us buffer.
    pub limits: Limits,
    /// Chunk size announced in `accept_connect` and used for everything sent after it.
    pub out_chunk_size: u32,
    /// Window Acknowledgement Size sent in `accept_connect`.
    pub window_ack_size: u32,
    /// Set Peer Bandwidth sent in `accept_connect` (dynamic limit).
    pub peer_bandwidth: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            out_chunk_size: DEFAULT_OUT_CHUNK_SIZE,
            window_ack_size: 2_500_000,
            peer_bandwidth: 2_500_000,
        }
    }
}

/// What the peer asked for; the server decides and answers with the `accept_*`/`reject_*`
/// methods.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// `connect`: answer with [`ServerSession::accept_connect`] or
    /// [`ServerSession::reject_connect`]. `app` is raw (may carry `?query` or a trailing `/`).
    Connect {
        app: String,
        tc_url: Option<String>,
        flash_ver: Option<String>,
    },
    /// `publish`: answer with `accept_publish` or `reject_publish`. `name` is raw (may
    /// include `?key=...`); `publish_type` is `live`, `record` or `append`.
    Publish {
        stream_id: u32,
        name: String,
        publish_type: String,
    },
    /// `play`: answer with `accept_play` or `reject_play`. `name` is raw (may include a query).
    Play { stream_id: u32, name: String },
    /// FCUnpublish/closeStream/deleteStream of a stream that was publishing.
    Unpublish { stream_id: u32 },
    /// closeStream/deleteStream of a stream that was playing.
    StopPlay { stream_id: u32 },
    /// Audio, video, or a data message (`@setDataFrame`/`onMetaData` and others; the payload
    /// is the raw AMF0 body, nothing stripped) on a publishing stream. `timestamp` is absolute
    /// in milliseconds (deltas accumulated, wrapping).
    Media {
        stream_id: u32,
        kind: MediaKind,
        timestamp: u32,
        payload: Bytes,
    },
    /// The answer to a [`ServerSession::send_ping`].
    PingResponse { timestamp: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamState {
    Idle,
    Publishing,
    Playing,
}

#[derive(Debug)]
struct Stream {
    id: u32,
    state: StreamState,
    name: String,
}

/// The server side of one RTMP connection, without IO.
///
/// Feed every byte read from the socket to [`handle_input`](Self::handle_input), then drain
/// [`poll_event`](Self::poll_event) and [`poll_transmit`](Self::poll_transmit). Output always
/// ends on a message boundary, so pre-encoded media chunks (see
/// [`encode_media_chunks`](crate::encode_media_chunks)) may be written between two
/// `poll_transmit` results.
pub struct ServerSession {
    config: ServerConfig,
    /// `None` once done: its buffers (a few KiB) are not kept for the connection's life.
    handshake: Option<ServerHandshake>,
    complex_handshake: bool,
    conn: Conn,
    events: VecDeque<ServerEvent>,
    connect_tid: f64,
    object_encoding: f64,
    connect_seen: bool,
    streams: Vec<Stream>,
    next_stream_id: u32,
}

impl ServerSession {
    /// A session that starts with the handshake; `random` fills S1.
    pub fn new(config: ServerConfig, random: &[u8; RANDOM_LEN]) -> Self {
        let conn = Conn::new(config.limits.clone());
        Self {
            config,
            handshake: Some(ServerHandshake::new(random, 0)),
            complex_handshake: false,
            conn,
            events: VecDeque::new(),
            connect_tid: 1.0,
            object_encoding: 0.0,
            connect_seen: false,
            streams: Vec::new(),
            next_stream_id: 1,
        }
    }

    /// Feeds bytes read from the socket. After an error the caller closes the connection.
    pub fn handle_input(&mut self, mut input: &[u8]) -> Result<(), Error> {
        self.conn.count_input(input.len());
        if let Some(handshake) = &mut self.handshake {
            if !self.conn.drive_handshake(handshake, &mut input)? {
                return Ok(());
            }
            self.complex_handshake = handshake.is_complex();
            self.handshake = None;
        }
        session::pump(self, input)
    }

    /// Everything queued for the peer since the last call, or `None`.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.conn.poll_transmit()
    }

    /// The next event, or `None`.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Accepts `connect`: Window Ack Size, Set Peer Bandwidth, Set Chunk Size, then `_result`
    /// with NetConnection.Connect.Success (echoing the client's objectEncoding).
    pub fn accept_connect(&mut self) {
        self.conn
            .send_control(&ControlMessage::WindowAckSize(self.config.window_ack_size));
        self.conn.send_control(&ControlMessage::SetPeerBandwidth {
            size: self.config.peer_bandwidth,
            limit_type: 2,
        });
        self.conn.send_set_chunk_size(self.config.out_chunk_size);
        let Value::Object(mut info) = status_object(
            "status",
            "NetConnection.Connect.Success",
            "Connection succeeded.",
        ) else {
            return;
        };
        info.push((
            "objectEncoding".to_owned(),
            Value::Number(self.object_encoding),
        ));
        let props = Value::object([
            ("fmsVer", Value::from("FMS/3,0,1,123")),
            ("capabilities", Value::Number(31.0)),
        ]);
        let reply = Command::result(self.connect_tid, props, vec![Value::Object(info)]);
        self.conn.send_command(0, &reply);
    }

    /// Rejects `connect` with `_error` NetConnection.Connect.Rejected.
    pub fn reject_connect(&mut self, description: &str) {
        let reply = Command::error(
            self.connect_tid,
            "NetConnection.Connect.Rejected",
            description,
        );
        self.conn.send_command(0, &reply);
    }

    /// Accepts `publish`: Stream Begin, then onStatus NetStream.Publish.Start.
    pub fn accept_publish(&mut self, stream_id: u32) {
        self.set_state(stream_id, StreamState::Publishing);
        self.send_user_control(UserControl::StreamBegin(stream_id));
        let name = self.stream_name(stream_id);
        self.send_status(
            stream_id,
            "status",
            "NetStream.Publish.Start",
            &format!("{name} is now published."),
        );
    }

    /// Rejects `publish` with an error onStatus, e.g. NetStream.Publish.BadName or
    /// NetStream.Publish.Unauthorized.
    pub fn reject_publish(&mut self, stream_id: u32, code: &str, description: &str) {
        self.set_state(stream_id, StreamState::Idle);
        self.send_status(stream_id, "error", code, description);
    }

    /// Accepts `play`: Stream Begin, onStatus NetStream.Play.Reset and NetStream.Play.Start,
    /// then `|RtmpSampleAccess` (the order nginx-rtmp uses).
    pub fn accept_play(&mut self, stream_id: u32) {
        self.set_state(stream_id, StreamState::Playing);
        self.send_user_control(UserControl::StreamBegin(stream_id));
        let name = self.stream_name(stream_id);
        self.send_status(
            stream_id,
            "status",
            "NetStream.Play.Reset",
            &format!("Playing and resetting {name}."),
        );
        self.send_status(
            stream_id,
            "status",
            "NetStream.Play.Start",
            &format!("Started playing {name}."),
        );
        let access = data_message(
            "|RtmpSampleAccess",
            &[Value::Boolean(true), Value::Boolean(true)],
        );
        self.conn.send_data(stream_id, &access);
        // No NetStream.Data.Start data message: only Flash used it, and ffmpeg turns it
        // into an extra empty data stream in every probe.
    }

    /// Rejects `play` with an error onStatus, e.g. NetStream.Play.StreamNotFound.
    pub fn reject_play(&mut self, stream_id: u32, code: &str, description: &str) {
        self.set_state(stream_id, StreamState::Idle);
        self.send_status(stream_id, "error", code, description);
    }

    /// The publisher left: onStatus NetStream.Play.UnpublishNotify and NetStream.Play.Stop,
    /// then Stream EOF.
    pub fn end_play(&mut self, stream_id: u32) {
        let name = self.stream_name(stream_id);
        self.send_status(
            stream_id,
            "status",
            "NetStream.Play.UnpublishNotify",
            &format!("{name} is now unpublished."),
        );
        self.send_status(
            stream_id,
            "status",
            "NetStream.Play.Stop",
            &format!("Stopped playing {name}."),
        );
        self.send_user_control(UserControl::StreamEof(stream_id));
        self.set_state(stream_id, StreamState::Idle);
    }

    /// Sends an onStatus `{level, code, description}` on `stream_id`.
    pub fn send_status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) {
        self.conn
            .send_command(stream_id, &Command::on_status(level, code, description));
    }

    /// Sends one media message (see [`encode_media_chunks`](crate::encode_media_chunks)) at
    /// the current [`out_chunk_size`](Self::out_chunk_size).
    pub fn send_media(&mut self, kind: MediaKind, stream_id: u32, timestamp: u32, payload: &[u8]) {
        self.conn
            .send_media(kind.csid(), kind.type_id(), stream_id, timestamp, payload);
    }

    /// Sends a User Control Ping Request; the answer comes as [`ServerEvent::PingResponse`].
    pub fn send_ping(&mut self, timestamp: u32) {
        self.send_user_control(UserControl::PingRequest(timestamp));
    }

    /// The chunk size of what this session sends now: 128 until `accept_connect`, then
    /// [`ServerConfig::out_chunk_size`]. Pre-encoded media written to this peer must use it.
    pub fn out_chunk_size(&self) -> u32 {
        self.conn.writer.chunk_size()
    }

    /// True once the handshake is complete.
    pub fn is_handshake_done(&self) -> bool {
        self.handshake.is_none()
    }

    /// Whether the peer used the complex (digest) handshake, for logs.
    pub fn is_complex_handshake(&self) -> bool {
        self.complex_handshake
    }

    /// Bytes received from the peer so far, handshake included.
    pub fn bytes_received(&self) -> u64 {
        self.conn.bytes_received
    }

    /// The last sequence number the peer acknowledged (bytes it received from us).
    pub fn peer_acknowledged(&self) -> Option<u32> {
        self.conn.ack.peer_acked
    }

    fn send_user_control(&mut self, event: UserControl) {
        self.conn.send_control(&ControlMessage::UserControl(event));
    }

    fn stream_name(&self, stream_id: u32) -> String {
        self.streams
            .iter()
            .find(|s| s.id == stream_id)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    }

    fn set_state(&mut self, stream_id: u32, state: StreamState) {
        if let Some(s) = self.streams.iter_mut().find(|s| s.id == stream_id) {
            s.state = state;
        }
    }

    /// The stream `id`, registered on first use (some clients publish without createStream).
    fn stream_entry(&mut self, id: u32) -> Result<&mut Stream, Error> {
        let index = match self.streams.iter().position(|s| s.id == id) {
            Some(index) => index,
            None => {
                self.new_stream(id)?;
                self.streams.len() - 1
            }
        };
        self.streams.get_mut(index).ok_or(Error::TooManyStreams {
            max: MAX_STREAMS_PER_CONNECTION,
        })
    }

    fn new_stream(&mut self, id: u32) -> Result<(), Error> {
        if self.streams.len() >= MAX_STREAMS_PER_CONNECTION {
            return Err(Error::TooManyStreams {
                max: MAX_STREAMS_PER_CONNECTION,
            });
        }
        self.streams.push(Stream {
            id,
            state: StreamState::Idle,
            name: String::new(),
        });
        Ok(())
    }

    fn handle_message(&mut self, msg: RawMessage) -> Result<(), Error> {
        match msg.type_id {
            type_id::COMMAND_AMF0 | type_id::COMMAND_AMF3 => {
                let cmd = self.conn.decode_command(&msg)?;
                self.handle_command(&msg, cmd)
            }
            type_id::AUDIO | type_id::VIDEO | type_id::DATA_AMF0 | type_id::DATA_AMF3 => {
                self.handle_media(msg);
                Ok(())
            }
            type_id::AGGREGATE => {
                for sub in split_aggregate(&msg) {
                    self.handle_media(sub);
                }
                Ok(())
            }
            _ => {
                if let Some(control) = ControlMessage::decode(&msg)? {
                    self.conn.handle_control(&control);
                    if let ControlMessage::UserControl(UserControl::PingResponse(timestamp)) =
                        control
                    {
                        self.events
                            .push_back(ServerEvent::PingResponse { timestamp });
                    }
                } else {
                    tracing::debug!(
                        type_id = msg.type_id,
                        csid = msg.csid,
                        "ignoring unsupported message type"
                    );
                }
                Ok(())
            }
        }
    }

    fn handle_media(&mut self, msg: RawMessage) {
        let Some(kind) = MediaKind::from_type_id(msg.type_id) else {
            return;
        };
        let publishing = self
            .streams
            .iter()
            .any(|s| s.id == msg.stream_id && s.state == StreamState::Publishing);
        if !publishing {
            tracing::debug!(
                stream_id = msg.stream_id,
                type_id = msg.type_id,
                "media on a stream that is not publishing, dropped"
            );
            return;
        }
        let payload = if msg.type_id == type_id::DATA_AMF3 {
            msg.payload.slice(msg.payload.len().min(1)..)
        } else {
            msg.payload
        };
        if payload.is_empty() {
            return;
        }
        self.events.push_back(ServerEvent::Media {
            stream_id: msg.stream_id,
            kind,
            timestamp: msg.timestamp,
            payload,
        });
    }

    fn handle_command(&mut self, msg: &RawMessage, cmd: Command) -> Result<(), Error> {
        tracing::debug!(command = %cmd.name, stream_id = msg.stream_id, "rtmp command");
        let tid = cmd.transaction_id;
        match cmd.name.as_str() {
            "connect" => {
                if self.connect_seen {
                    tracing::debug!("second connect ignored");
                    return Ok(());
                }
                let str_prop = |key: &str| cmd.object.get(key).and_then(Value::as_str);
                let Some(app) = str_prop("app") else {
                    return Err(Error::BadCommand {
                        name: cmd.name,
                        reason: "no app in the command object",
                    });
                };
                self.connect_seen = true;
                self.connect_tid = tid;
                self.object_encoding = cmd
                    .object
                    .get("objectEncoding")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0);
                self.events.push_back(ServerEvent::Connect {
                    app: app.to_owned(),
                    tc_url: str_prop("tcUrl").map(str::to_owned),
                    flash_ver: str_prop("flashVer")
                        .or_else(|| str_prop("flashver"))
                        .map(str::to_owned),
                });
            }
            "createStream" => {
                let id = self.next_stream_id;
                self.new_stream(id)?;
                self.next_stream_id = self.next_stream_id.wrapping_add(1).max(1);
                self.reply(tid, vec![Value::Number(f64::from(id))]);
            }
            "releaseStream" | "_checkbw" | "FCSubscribe" => self.reply(tid, vec![Value::Undefined]),
            "FCPublish" => {
                self.reply(tid, vec![Value::Undefined]);
                let name = cmd.arg_str(0).unwrap_or_default();
                let status = Command::new(
                    "onFCPublish",
                    0.0,
                    vec![status_object("status", "NetStream.Publish.Start", name)],
                );
                self.conn.send_command(0, &status);
            }
            "FCUnpublish" => {
                self.reply(tid, vec![Value::Undefined]);
                let name = cmd.arg_str(0).unwrap_or_default();
                let publishing = || {
                    self.streams
                        .iter()
                        .filter(|s| s.state == StreamState::Publishing)
                };
                let id = publishing()
                    .find(|s| s.name == name)
                    .or_else(|| {
                        let mut all = publishing();
                        all.next().filter(|_| all.next().is_none())
                    })
                    .map(|s| s.id);
                if let Some(id) = id {
                    self.stop_stream(id);
                }
            }
            "getStreamLength" => self.reply(tid, vec![Value::Number(0.0)]),
            "deleteStream" => {
                let id = cmd.arg_f64(0).map_or(msg.stream_id, f64_to_u32);
                self.stop_stream(id);
                self.streams.retain(|s| s.id != id);
            }
            "closeStream" => self.stop_stream(msg.stream_id),
            "publish" => {
                let Some(name) = cmd.arg_str(0).map(str::to_owned) else {
                    return Err(Error::BadCommand {
                        name: cmd.name,
                        reason: "no stream name",
                    });
                };
                let publish_type = cmd.arg_str(1).unwrap_or("live").to_owned();
                let stream = self.stream_entry(msg.stream_id)?;
                stream.state = StreamState::Publishing;
                stream.name.clone_from(&name);
                self.events.push_back(ServerEvent::Publish {
                    stream_id: msg.stream_id,
                    name,
                    publish_type,
                });
            }
            "play" => {
                let Some(name) = cmd.arg_str(0).map(str::to_owned) else {
                    return Err(Error::BadCommand {
                        name: cmd.name,
                        reason: "no stream name",
                    });
                };
                let stream = self.stream_entry(msg.stream_id)?;
                stream.state = StreamState::Playing;
                stream.name.clone_from(&name);
                self.events.push_back(ServerEvent::Play {
                    stream_id: msg.stream_id,
                    name,
                });
            }
            // Replies to anything we might have asked, and flow hints we do not act on.
            "_result" | "_error" | "onStatus" | "receiveAudio" | "receiveVideo" | "onBWDone" => {}
            other => {
                tracing::debug!(command = other, transaction_id = tid, "unknown command");
                if tid > 0.0 {
                    let reply = Command::error(
                        tid,
                        "NetConnection.Call.Failed",
                        &format!("Method not found ({other})."),
                    );
                    self.conn.send_command(0, &reply);
                }
            }
        }
        Ok(())
    }

    /// `_result` with a null command object.
    fn reply(&mut self, tid: f64, args: Vec<Value>) {
        self.conn
            .send_command(0, &Command::result(tid, Value::Null, args));
    }

    /// Ends publishing or playing on `stream_id`, with the matching event.
    fn stop_stream(&mut self, stream_id: u32) {
        let Some(stream) = self.streams.iter_mut().find(|s| s.id == stream_id) else {
            return;
        };
        let event = match stream.state {
            StreamState::Publishing => ServerEvent::Unpublish { stream_id },
            StreamState::Playing => ServerEvent::StopPlay { stream_id },
            StreamState::Idle => return,
        };
        stream.state = StreamState::Idle;
        self.events.push_back(event);
    }
}

/// A stream id sent as an AMF0 number; out-of-range values saturate.
fn f64_to_u32(n: f64) -> u32 {
    // `as` saturates and maps NaN to 0.
    n as u32
}

impl session::Role for ServerSession {
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
    use crate::command::status_fields;
    use crate::message::{CSID_COMMAND, CSID_PROTOCOL_CONTROL};
    use crate::session::pair::{Pair, RawClient};
    use crate::ClientEvent;

    const FFMPEG_CONNECT: &[u8] = include_bytes!("../testdata/ffmpeg-5.1_publish_connect.bin");
    const FFMPEG_PUBLISH: &[u8] = include_bytes!("../testdata/ffmpeg-5.1_publish.bin");

    fn session() -> ServerSession {
        ServerSession::new(ServerConfig::default(), &[3; RANDOM_LEN])
    }

    fn events(server: &mut ServerSession) -> Vec<ServerEvent> {
        std::iter::from_fn(|| server.poll_event()).collect()
    }

    fn codes(client_events: &[ClientEvent]) -> Vec<&str> {
        client_events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Status { code, .. } => Some(code.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn ffmpeg_connect_capture_split_anywhere() {
        let expected = vec![ServerEvent::Connect {
            app: "live".to_owned(),
            tc_url: Some("rtmp://127.0.0.1:19351/live".to_owned()),
            flash_ver: Some("FMLE/3.0 (compatible; Lavf59.27.100)".to_owned()),
        }];
        let mut whole = session();
        assert!(whole.handle_input(FFMPEG_CONNECT).is_ok());
        assert!(whole.is_handshake_done());
        assert_eq!(events(&mut whole), expected);
        assert_eq!(whole.bytes_received(), FFMPEG_CONNECT.len() as u64);
        let s0s1s2 = whole.poll_transmit();
        assert_eq!(s0s1s2.as_ref().map(Bytes::len), Some(1 + 1536 * 2));
        for at in 0..=FFMPEG_CONNECT.len() {
            let mut split = session();
            let (a, b) = FFMPEG_CONNECT.split_at(at);
            assert!(split.handle_input(a).is_ok());
            let mut out = split
                .poll_transmit()
                .map(|b| b.to_vec())
                .unwrap_or_default();
            assert!(split.handle_input(b).is_ok());
            out.extend(
                split
                    .poll_transmit()
                    .map(|b| b.to_vec())
                    .unwrap_or_default(),
            );
            assert_eq!(events(&mut split), expected, "split at {at}");
            assert_eq!(Some(&out[..]), s0s1s2.as_deref(), "split at {at}");
        }
    }

    #[test]
    fn ffmpeg_publish_capture() {
        let mut server = session();
        assert!(server.handle_input(FFMPEG_PUBLISH).is_ok());
        let events = events(&mut server);
        assert!(matches!(&events[0], ServerEvent::Connect { app, .. } if app == "live"));
        assert_eq!(
            events[1],
            ServerEvent::Publish {
                stream_id: 1,
                name: "demo?key=abc".to_owned(),
                publish_type: "live".to_owned(),
            }
        );
        let ServerEvent::Media {
            kind: MediaKind::Data,
            payload,
            ..
        } = &events[2]
        else {
            panic!("metadata first, got {:?}", events[2]);
        };
        assert!(payload.starts_with(b"\x02\x00\x0d@setDataFrame\x02\x00\x0aonMetaData"));
        let video: Vec<u32> = events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Media {
                    kind: MediaKind::Video,
                    timestamp,
                    ..
                } => Some(*timestamp),
                _ => None,
            })
            .collect();
        // Sequence header, ten frames at 10 fps, end of sequence.
        assert_eq!(video.len(), 12);
        assert!(video.windows(2).all(|w| w[0] <= w[1]), "{video:?}");
        assert_eq!(
            events.last(),
            Some(&ServerEvent::Unpublish { stream_id: 1 })
        );
        let unpublishes = events
            .iter()
            .filter(|e| matches!(e, ServerEvent::Unpublish { .. }))
            .count();
        assert_eq!(unpublishes, 1, "FCUnpublish then deleteStream report once");
    }

    #[test]
    fn replies_to_ffmpeg_commands() {
        let mut c = RawClient::new(ServerConfig::default());
        for (tid, name) in [(2.0, "releaseStream"), (3.0, "FCPublish")] {
            let cmd = Command::new(name, tid, vec![Value::from("demo")]);
            assert!(c.command(0, &cmd).is_ok());
        }
        assert!(c
            .command(0, &Command::new("createStream", 4.0, vec![]))
            .is_ok());
        assert!(c.command(0, &Command::new("_checkbw", 5.0, vec![])).is_ok());
        assert!(c
            .command(
                0,
                &Command::new("getStreamLength", 6.0, vec![Value::from("demo")])
            )
            .is_ok());
        let replies: Vec<(String, f64, Vec<Value>)> = c
            .commands()
            .into_iter()
            .map(|(_, cmd)| (cmd.name, cmd.transaction_id, cmd.args))
            .collect();
        assert_eq!(replies.len(), 6);
        assert_eq!(replies[0].0, "_result");
        assert_eq!(replies[0].1, 2.0);
        assert_eq!((replies[1].0.as_str(), replies[1].1), ("_result", 3.0));
        assert_eq!(replies[2].0, "onFCPublish");
        assert_eq!(
            status_fields(replies[2].2.first()).1,
            "NetStream.Publish.Start"
        );
        assert_eq!(
            replies[3],
            ("_result".into(), 4.0, vec![Value::Number(1.0)])
        );
        assert_eq!((replies[4].0.as_str(), replies[4].1), ("_result", 5.0));
        assert_eq!(
            replies[5],
            ("_result".into(), 6.0, vec![Value::Number(0.0)])
        );
        // Stream ids count up from 1.
        assert!(c
            .command(0, &Command::new("createStream", 7.0, vec![]))
            .is_ok());
        assert_eq!(c.commands()[0].1.args, vec![Value::Number(2.0)]);
    }

    #[test]
    fn accept_connect_sends_control_then_result() {
        let mut c = RawClient::new(ServerConfig::default());
        let connect = Command {
            name: "connect".into(),
            transaction_id: 1.0,
            object: Value::object([
                ("app", Value::from("live/")),
                ("objectEncoding", Value::Number(3.0)),
            ]),
            args: vec![],
        };
        assert!(c.command(0, &connect).is_ok());
        assert_eq!(
            c.events(),
            vec![ServerEvent::Connect {
                app: "live/".into(),
                tc_url: None,
                flash_ver: None
            }]
        );
        assert_eq!(c.server.out_chunk_size(), 128);
        c.server.accept_connect();
        assert_eq!(c.server.out_chunk_size(), 4096);
        let msgs = c.received();
        let controls: Vec<ControlMessage> = msgs
            .iter()
            .filter_map(|m| ControlMessage::decode(m).ok().flatten())
            .collect();
        assert_eq!(
            controls,
            vec![
                ControlMessage::WindowAckSize(2_500_000),
                ControlMessage::SetPeerBandwidth {
                    size: 2_500_000,
                    limit_type: 2
                },
                ControlMessage::SetChunkSize(4096),
            ]
        );
        assert!(msgs[..3].iter().all(|m| m.csid == CSID_PROTOCOL_CONTROL));
        let result = Command::decode(&msgs[3].payload, 16).ok();
        let result = result.as_ref();
        assert_eq!(result.map(|r| r.name.as_str()), Some("_result"));
        assert_eq!(result.map(|r| r.transaction_id), Some(1.0));
        assert_eq!(msgs[3].csid, CSID_COMMAND);
        let info = result.and_then(|r| r.args.first());
        assert_eq!(status_fields(info).1, "NetConnection.Connect.Success");
        assert_eq!(
            info.and_then(|i| i.get("objectEncoding")),
            Some(&Value::Number(3.0))
        );
        assert_eq!(
            result
                .and_then(|r| r.object.get("fmsVer"))
                .and_then(Value::as_str),
            Some("FMS/3,0,1,123")
        );
    }

    #[test]
    fn connect_publish_media() {
        let mut p = Pair::default_pair();
        p.run();
        assert_eq!(
            p.server_events,
            vec![ServerEvent::Connect {
                app: "live".to_owned(),
                tc_url: Some("rtmp://localhost/live".to_owned()),
                flash_ver: Some("FMLE/3.0 (compatible; onair)".to_owned()),
            }]
        );
        p.server_events.clear();
        p.server.accept_connect();
        p.run();
        assert_eq!(p.client_events, vec![ClientEvent::Connected]);
        p.client_events.clear();

        p.client.publish("demo?key=k");
        p.run();
        assert_eq!(
            p.server_events,
            vec![ServerEvent::Publish {
                stream_id: 1,
                name: "demo?key=k".to_owned(),
                publish_type: "live".to_owned(),
            }]
        );
        p.server_events.clear();
        p.server.accept_publish(1);
        p.run();
        assert_eq!(codes(&p.client_events), ["NetStream.Publish.Start"]);
        assert!(p
            .client_events
            .contains(&ClientEvent::PublishStarted { stream_id: 1 }));

        let video = vec![0x17u8; 10_000];
        p.client.send_metadata(b"\x02\x00\x0aonMetaData\x05");
        p.client.send_media(MediaKind::Video, 40, &video);
        p.client
            .send_media(MediaKind::Audio, 0x0100_0000, b"\xaf\x01abc");
        p.run();
        assert_eq!(
            p.server_events,
            vec![
                ServerEvent::Media {
                    stream_id: 1,
                    kind: MediaKind::Data,
                    timestamp: 0,
                    payload: Bytes::from_static(
                        b"\x02\x00\x0d@setDataFrame\x02\x00\x0aonMetaData\x05"
                    ),
                },
                ServerEvent::Media {
                    stream_id: 1,
                    kind: MediaKind::Video,
                    timestamp: 40,
                    payload: Bytes::from(video),
                },
                ServerEvent::Media {
                    stream_id: 1,
                    kind: MediaKind::Audio,
                    timestamp: 0x0100_0000,
                    payload: Bytes::from_static(b"\xaf\x01abc"),
                },
            ]
        );
        p.server_events.clear();

        p.client.close();
        p.run();
        assert_eq!(
            p.server_events,
            vec![ServerEvent::Unpublish { stream_id: 1 }]
        );
    }

    #[test]
    fn reject_publish() {
        let mut p = Pair::default_pair();
        p.connect();
        p.client.publish("bad name");
        p.run();
        p.server
            .reject_publish(1, "NetStream.Publish.BadName", "no such app/name");
        p.run();
        assert_eq!(
            p.client_events,
            vec![ClientEvent::Status {
                level: "error".into(),
                code: "NetStream.Publish.BadName".into(),
                description: "no such app/name".into(),
            }]
        );
        // Media after a rejected publish is not reported.
        p.server_events.clear();
        p.client.send_media(MediaKind::Video, 0, b"\x17\x00");
        p.run();
        assert_eq!(p.server_events, vec![]);
    }

    #[test]
    fn reject_connect() {
        let mut p = Pair::default_pair();
        p.run();
        p.client.publish("demo");
        p.server.reject_connect("app not allowed");
        p.run();
        assert_eq!(
            p.client_events,
            vec![ClientEvent::Status {
                level: "error".into(),
                code: "NetConnection.Connect.Rejected".into(),
                description: "app not allowed".into(),
            }]
        );
        // The queued publish was dropped.
        assert_eq!(p.server_events.len(), 1);
    }

    #[test]
    fn play_accept_media_end() {
        let mut p = Pair::default_pair();
        p.connect();
        p.client.play("demo?sig=x");
        p.run();
        assert_eq!(
            p.server_events,
            vec![ServerEvent::Play {
                stream_id: 1,
                name: "demo?sig=x".into()
            }]
        );
        p.server.accept_play(1);
        p.run();
        assert_eq!(
            codes(&p.client_events),
            ["NetStream.Play.Reset", "NetStream.Play.Start",]
        );
        assert!(p
            .client_events
            .contains(&ClientEvent::PlayStarted { stream_id: 1 }));
        p.client_events.clear();

        // Pre-encoded chunks, as the server fans them out, between session output.
        let shared = encode_media_chunks_for(&p.server, MediaKind::Video, 1, 33, &[0x17; 5000]);
        p.client.handle_input(&shared).expect("shared chunks");
        p.server.send_media(MediaKind::Audio, 1, 34, b"\xaf\x01");
        p.run();
        assert_eq!(
            p.client_events,
            vec![
                ClientEvent::Media {
                    kind: MediaKind::Video,
                    timestamp: 33,
                    payload: Bytes::from(vec![0x17; 5000]),
                },
                ClientEvent::Media {
                    kind: MediaKind::Audio,
                    timestamp: 34,
                    payload: Bytes::from_static(b"\xaf\x01"),
                },
            ]
        );
        p.client_events.clear();

        p.server.end_play(1);
        p.run();
        assert_eq!(
            p.client_events
                .iter()
                .filter(|e| **e == ClientEvent::StreamEnded)
                .count(),
            1
        );
        assert_eq!(
            codes(&p.client_events),
            ["NetStream.Play.UnpublishNotify", "NetStream.Play.Stop"]
        );

        p.server_events.clear();
        p.client.close();
        p.run();
        // The stream already ended, so deleteStream reports nothing.
        assert_eq!(p.server_events, vec![]);
    }

    fn encode_media_chunks_for(
        server: &ServerSession,
        kind: MediaKind,
        stream_id: u32,
        ts: u32,
        payload: &[u8],
    ) -> Bytes {
        crate::encode_media_chunks(kind, stream_id, ts, payload, server.out_chunk_size())
    }

    #[test]
    fn reject_play_and_stop_play() {
        let mut p = Pair::default_pair();
        p.connect();
        p.client.play("missing");
        p.run();
        p.server
            .reject_play(1, "NetStream.Play.StreamNotFound", "missing not found");
        p.run();
        assert_eq!(
            p.client_events,
            vec![ClientEvent::Status {
                level: "error".into(),
                code: "NetStream.Play.StreamNotFound".into(),
                description: "missing not found".into(),
            }]
        );

        let mut p = Pair::default_pair();
        p.connect();
        p.client.play("demo");
        p.run();
        p.server.accept_play(1);
        p.server_events.clear();
        p.client.close();
        p.run();
        assert_eq!(
            p.server_events,
            vec![ServerEvent::StopPlay { stream_id: 1 }]
        );
    }

    #[test]
    fn close_stream_reports_unpublish() {
        let mut c = RawClient::new(ServerConfig::default());
        assert!(c
            .command(0, &Command::new("createStream", 2.0, vec![]))
            .is_ok());
        let publish = Command::new(
            "publish",
            0.0,
            vec![Value::from("a"), Value::from("record")],
        );
        assert!(c.command(1, &publish).is_ok());
        assert!(c
            .command(1, &Command::new("closeStream", 0.0, vec![]))
            .is_ok());
        assert_eq!(
            c.events(),
            vec![
                ServerEvent::Publish {
                    stream_id: 1,
                    name: "a".into(),
                    publish_type: "record".into()
                },
                ServerEvent::Unpublish { stream_id: 1 },
            ]
        );
    }

    #[test]
    fn pings_both_ways() {
        let mut p = Pair::default_pair();
        p.connect();
        p.server.send_ping(1234);
        p.run();
        assert_eq!(
            p.server_events,
            vec![ServerEvent::PingResponse { timestamp: 1234 }]
        );

        let mut c = RawClient::new(ServerConfig::default());
        c.received();
        let ping = ControlMessage::UserControl(UserControl::PingRequest(99));
        assert!(c.control(&ping).is_ok());
        let replies: Vec<ControlMessage> = c
            .received()
            .iter()
            .filter_map(|m| ControlMessage::decode(m).ok().flatten())
            .collect();
        assert_eq!(
            replies,
            vec![ControlMessage::UserControl(UserControl::PingResponse(99))]
        );
    }

    #[test]
    fn acknowledgements_after_each_window() {
        // The server acknowledges what the client sends ...
        let mut c = RawClient::new(ServerConfig::default());
        c.received();
        let at_start = c.server.bytes_received();
        assert!(c.control(&ControlMessage::WindowAckSize(1000)).is_ok());
        let mut acks = Vec::new();
        for _ in 0..10 {
            let data = Command::new("noop", 0.0, vec![Value::from("x".repeat(180))]);
            assert!(c.command(0, &data).is_ok());
            acks.extend(
                c.received()
                    .iter()
                    .filter_map(|m| ControlMessage::decode(m).ok().flatten()),
            );
        }
        let total = c.server.bytes_received();
        assert!(total - at_start > 2000);
        let seqs: Vec<u64> = acks
            .iter()
            .filter_map(|a| match a {
                ControlMessage::Acknowledgement { sequence } => Some(u64::from(*sequence)),
                _ => None,
            })
            .collect();
        assert_eq!(seqs.len(), acks.len());
        // Sequence numbers count every byte received (handshake included), one window apart.
        assert!(seqs.windows(2).all(|w| w[1] - w[0] >= 1000), "{seqs:?}");
        assert!(
            seqs.len() >= 2 && total - seqs[seqs.len() - 1] < 1000,
            "{seqs:?}"
        );

        // ... and the client acknowledges what the server sends.
        let config = ServerConfig {
            window_ack_size: 5000,
            ..ServerConfig::default()
        };
        let mut p = Pair::new(crate::ClientConfig::default(), config);
        p.connect();
        p.client.play("demo");
        p.run();
        p.server.accept_play(1);
        for ts in 0..10 {
            p.server.send_media(MediaKind::Video, 1, ts, &[0x27; 1000]);
            p.run();
        }
        let acked = p.server.peer_acknowledged().unwrap_or(0);
        assert!(
            acked >= 5000 && u64::from(acked) <= p.server_bytes,
            "{acked}"
        );
    }

    #[test]
    fn set_peer_bandwidth_gets_window_ack_size() {
        let mut c = RawClient::new(ServerConfig::default());
        c.received();
        let bw = ControlMessage::SetPeerBandwidth {
            size: 123_456,
            limit_type: 2,
        };
        assert!(c.control(&bw).is_ok());
        let replies: Vec<ControlMessage> = c
            .received()
            .iter()
            .filter_map(|m| ControlMessage::decode(m).ok().flatten())
            .collect();
        assert_eq!(replies, vec![ControlMessage::WindowAckSize(123_456)]);
        // Unchanged: no reply.
        assert!(c.control(&bw).is_ok());
        assert_eq!(c.received(), vec![]);
    }

    #[test]
    fn unknown_commands() {
        let mut c = RawClient::new(ServerConfig::default());
        c.received();
        assert!(c.command(0, &Command::new("fooBar", 0.0, vec![])).is_ok());
        assert_eq!(c.commands(), vec![]);
        assert!(c.command(0, &Command::new("fooBar", 7.0, vec![])).is_ok());
        let replies = c.commands();
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].1.name, "_error");
        assert_eq!(replies[0].1.transaction_id, 7.0);
        assert_eq!(c.events(), vec![]);
    }

    #[test]
    fn amf3_command_is_read_as_amf0() {
        let mut c = RawClient::new(ServerConfig::default());
        let connect = Command {
            name: "connect".into(),
            transaction_id: 1.0,
            object: Value::object([("app", Value::from("live"))]),
            args: vec![],
        };
        let mut body = vec![0u8];
        body.extend_from_slice(&connect.encode());
        assert!(c.send(3, type_id::COMMAND_AMF3, 0, 0, &body).is_ok());
        assert!(matches!(&c.events()[..], [ServerEvent::Connect { app, .. }] if app == "live"));
    }

    #[test]
    fn amf3_data_skips_its_format_byte() {
        let mut c = RawClient::new(ServerConfig::default());
        let publish = Command::new("publish", 0.0, vec![Value::from("a")]);
        assert!(c.command(1, &publish).is_ok());
        assert!(c
            .send(5, type_id::DATA_AMF3, 1, 0, b"\x00\x02\x00\x01x")
            .is_ok());
        assert_eq!(
            c.events().last(),
            Some(&ServerEvent::Media {
                stream_id: 1,
                kind: MediaKind::Data,
                timestamp: 0,
                payload: Bytes::from_static(b"\x02\x00\x01x"),
            })
        );
    }

    #[test]
    fn aggregate_messages_are_split() {
        let mut c = RawClient::new(ServerConfig::default());
        let publish = Command::new("publish", 0.0, vec![Value::from("a")]);
        assert!(c.command(1, &publish).is_ok());
        c.events();
        let mut body = Vec::new();
        for (ty, ts, data) in [(9u8, 1000u32, &b"vid"[..]), (8, 1020, b"au")] {
            body.push(ty);
            body.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
            body.extend_from_slice(&ts.to_be_bytes()[1..]);
            body.push((ts >> 24) as u8);
            body.extend_from_slice(&[0, 0, 1]);
            body.extend_from_slice(data);
            body.extend_from_slice(&(11 + data.len() as u32).to_be_bytes());
        }
        assert!(c.send(6, type_id::AGGREGATE, 1, 500, &body).is_ok());
        assert_eq!(
            c.events(),
            vec![
                ServerEvent::Media {
                    stream_id: 1,
                    kind: MediaKind::Video,
                    timestamp: 500,
                    payload: Bytes::from_static(b"vid"),
                },
                ServerEvent::Media {
                    stream_id: 1,
                    kind: MediaKind::Audio,
                    timestamp: 520,
                    payload: Bytes::from_static(b"au"),
                },
            ]
        );
    }

    #[test]
    fn amf_recursion_in_a_command_is_an_error() {
        let mut c = RawClient::new(ServerConfig::default());
        // 17 nested objects, one more than the default limit.
        let mut body = onair_amf0::encode(&[Value::from("connect"), Value::Number(1.0)]).to_vec();
        body.extend(std::iter::repeat_n([0x03, 0x00, 0x01, b'a'], 17).flatten());
        body.push(0x05);
        assert!(matches!(
            c.send(3, type_id::COMMAND_AMF0, 0, 0, &body),
            Err(Error::Amf {
                type_id: 20,
                source: onair_amf0::Error::TooDeep { .. },
                ..
            })
        ));
    }

    #[test]
    fn malformed_commands() {
        let mut c = RawClient::new(ServerConfig::default());
        let no_app = Command::new("connect", 1.0, vec![]);
        assert!(matches!(
            c.command(0, &no_app),
            Err(Error::BadCommand { .. })
        ));
        let mut c = RawClient::new(ServerConfig::default());
        let no_name = Command::new("publish", 0.0, vec![]);
        assert!(matches!(
            c.command(1, &no_name),
            Err(Error::BadCommand { .. })
        ));
        let mut c = RawClient::new(ServerConfig::default());
        assert!(matches!(
            c.send(3, type_id::COMMAND_AMF0, 0, 0, b"\x00\x00"),
            Err(Error::Amf { .. })
        ));
    }

    #[test]
    fn too_many_streams() {
        let mut c = RawClient::new(ServerConfig::default());
        for tid in 0..MAX_STREAMS_PER_CONNECTION {
            let create = Command::new("createStream", tid as f64 + 2.0, vec![]);
            assert!(c.command(0, &create).is_ok());
        }
        let create = Command::new("createStream", 100.0, vec![]);
        assert!(matches!(
            c.command(0, &create),
            Err(Error::TooManyStreams { .. })
        ));
        // deleteStream frees a slot.
        let mut c = RawClient::new(ServerConfig::default());
        for tid in 0..MAX_STREAMS_PER_CONNECTION * 3 {
            let create = Command::new("createStream", 2.0, vec![]);
            assert!(c.command(0, &create).is_ok());
            let delete = Command::new("deleteStream", 0.0, vec![Value::Number(tid as f64 + 1.0)]);
            assert!(c.command(0, &delete).is_ok());
        }
    }

    #[test]
    fn malformed_chunks_end_the_session() {
        let mut c = RawClient::new(ServerConfig::default());
        assert!(matches!(
            c.control(&ControlMessage::SetChunkSize(0)),
            Err(Error::BadChunkSize { size: 0, .. })
        ));
        let mut c = RawClient::new(ServerConfig::default());
        let mut header = vec![0x06, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0];
        header.extend_from_slice(&[0; 100]);
        assert!(matches!(
            c.server.handle_input(&header),
            Err(Error::MessageTooLarge { csid: 6, .. })
        ));
    }

    #[test]
    fn garbage_instead_of_a_handshake() {
        let mut server = session();
        assert!(matches!(
            server.handle_input(b"GET / HTTP/1.1\r\n"),
            Err(Error::Handshake(_))
        ));
    }
}
