//! AMF0 commands (message types 20 and 17): parsing, building, and the status objects
//! servers answer with.

use bytes::{BufMut, Bytes, BytesMut};
use onair_amf0::{Decoder, Value};

/// One command: a name, a transaction id, a command object and arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// `connect`, `createStream`, `publish`, `_result`, `onStatus`, ...
    pub name: String,
    /// Matches a reply to its request; 0 when no reply is expected.
    pub transaction_id: f64,
    /// The command object (`connect`'s properties, `_result`'s server info); often null.
    pub object: Value,
    /// Everything after the command object.
    pub args: Vec<Value>,
}

/// Why a command could not be parsed.
#[derive(Debug)]
pub(crate) enum CommandError {
    Amf(onair_amf0::Error),
    NoName,
}

impl Command {
    /// A command with a null command object.
    pub fn new(name: &str, transaction_id: f64, args: Vec<Value>) -> Self {
        Self {
            name: name.to_owned(),
            transaction_id,
            object: Value::Null,
            args,
        }
    }

    /// Parses an AMF0 command body (for type 17, skip the format byte first).
    ///
    /// Nesting deeper than `max_depth` is an error. Other AMF errors after the name are
    /// tolerated: the values before them are kept (Flash clients may append AMF3 values).
    pub(crate) fn decode(payload: &[u8], max_depth: usize) -> Result<Self, CommandError> {
        let mut dec = Decoder::new(payload).with_max_depth(max_depth);
        let name = match dec.decode().map_err(CommandError::Amf)? {
            Value::String(name) => name,
            _ => return Err(CommandError::NoName),
        };
        let mut values = Vec::new();
        while !dec.is_empty() {
            match dec.decode() {
                Ok(value) => values.push(value),
                Err(err @ onair_amf0::Error::TooDeep { .. }) => return Err(CommandError::Amf(err)),
                Err(err) => {
                    tracing::debug!(command = %name, error = %err, "ignoring undecodable command tail");
                    break;
                }
            }
        }
        let mut values = values.into_iter();
        let transaction_id = values.next().and_then(|v| v.as_f64()).unwrap_or(0.0);
        let object = values.next().unwrap_or(Value::Null);
        Ok(Self {
            name,
            transaction_id,
            object,
            args: values.collect(),
        })
    }

    /// The AMF0 body.
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::new();
        onair_amf0::encode_into(&Value::String(self.name.clone()), &mut buf);
        onair_amf0::encode_into(&Value::Number(self.transaction_id), &mut buf);
        onair_amf0::encode_into(&self.object, &mut buf);
        for arg in &self.args {
            onair_amf0::encode_into(arg, &mut buf);
        }
        buf.freeze()
    }

    /// The argument at `index` as a string.
    pub fn arg_str(&self, index: usize) -> Option<&str> {
        self.args.get(index).and_then(Value::as_str)
    }

    /// The argument at `index` as a number.
    pub fn arg_f64(&self, index: usize) -> Option<f64> {
        self.args.get(index).and_then(Value::as_f64)
    }

    /// `onStatus` with a `{level, code, description}` info object, transaction id 0.
    pub fn on_status(level: &str, code: &str, description: &str) -> Self {
        Self::new(
            "onStatus",
            0.0,
            vec![status_object(level, code, description)],
        )
    }

    /// `_result` for `transaction_id` with a command object and arguments.
    pub fn result(transaction_id: f64, object: Value, args: Vec<Value>) -> Self {
        Self {
            name: "_result".to_owned(),
            transaction_id,
            object,
            args,
        }
    }

    /// `_error` for `transaction_id` with an error info object.
    pub fn error(transaction_id: f64, code: &str, description: &str) -> Self {
        Self::new(
            "_error",
            transaction_id,
            vec![status_object("error", code, description)],
        )
    }
}

/// `{level, code, description}`, the info object of `onStatus`, `_result` and `_error`.
pub fn status_object(level: &str, code: &str, description: &str) -> Value {
    Value::object([
        ("level", Value::from(level)),
        ("code", Value::from(code)),
        ("description", Value::from(description)),
    ])
}

/// `level`, `code` and `description` of an info object, empty strings where absent.
pub(crate) fn status_fields(info: Option<&Value>) -> (String, String, String) {
    let field = |key: &str| {
        info.and_then(|info| info.get(key))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    (field("level"), field("code"), field("description"))
}

/// An AMF0 data message body: `name` followed by `values`.
pub fn data_message(name: &str, values: &[Value]) -> Bytes {
    let mut buf = BytesMut::new();
    onair_amf0::encode_into(&Value::from(name), &mut buf);
    for value in values {
        onair_amf0::encode_into(value, &mut buf);
    }
    buf.freeze()
}

/// The AMF0 encoding of the string `@setDataFrame`, which starts metadata sent by publishers.
pub(crate) const SET_DATA_FRAME: &[u8] = b"\x02\x00\x0d@setDataFrame";

/// Prefixes `payload` with `@setDataFrame` unless it already starts with it.
pub(crate) fn with_set_data_frame(payload: &[u8]) -> Bytes {
    if payload.starts_with(SET_DATA_FRAME) {
        return Bytes::copy_from_slice(payload);
    }
    let mut buf = BytesMut::with_capacity(SET_DATA_FRAME.len() + payload.len());
    buf.put_slice(SET_DATA_FRAME);
    buf.put_slice(payload);
    buf.freeze()
}

/// The first AMF0 value of a data message if it is a string (`onStatus`, `|RtmpSampleAccess`).
pub(crate) fn data_message_name(payload: &[u8]) -> Option<String> {
    match Decoder::new(payload).with_max_depth(0).decode() {
        Ok(Value::String(name)) => Some(name),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChunkReader, Limits};

    /// The commands ffmpeg sent in the captured publish session, in order.
    fn ffmpeg_commands() -> Vec<(u32, Command)> {
        let capture = include_bytes!("../testdata/ffmpeg-5.1_publish.bin");
        let mut reader = ChunkReader::new(Limits::default());
        reader.handle_input(&capture[1 + 1536 * 2..]);
        let mut out = Vec::new();
        while let Ok(Some(msg)) = reader.poll_message() {
            if msg.type_id == crate::message::type_id::COMMAND_AMF0 {
                if let Ok(cmd) = Command::decode(&msg.payload, 16) {
                    out.push((msg.stream_id, cmd));
                }
            }
        }
        out
    }

    #[test]
    fn ffmpeg_publish_command_sequence() {
        let cmds = ffmpeg_commands();
        let names: Vec<(u32, &str, f64)> = cmds
            .iter()
            .map(|(sid, c)| (*sid, c.name.as_str(), c.transaction_id))
            .collect();
        assert_eq!(
            names,
            [
                (0, "connect", 1.0),
                (0, "releaseStream", 2.0),
                (0, "FCPublish", 3.0),
                (0, "createStream", 4.0),
                (1, "publish", 5.0),
                (0, "FCUnpublish", 6.0),
                (0, "deleteStream", 7.0),
            ]
        );
        let connect = &cmds[0].1;
        let keys: Vec<&str> = connect
            .object
            .properties()
            .unwrap_or_default()
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(keys, ["app", "type", "flashVer", "tcUrl"]);
        let prop = |key| connect.object.get(key).and_then(Value::as_str);
        assert_eq!(prop("app"), Some("live"));
        assert_eq!(
            prop("flashVer"),
            Some("FMLE/3.0 (compatible; Lavf59.27.100)")
        );
        // The capture's port was picked by the OS.
        let tc_url = prop("tcUrl").unwrap_or_default();
        assert!(tc_url.starts_with("rtmp://127.0.0.1:") && tc_url.ends_with("/live"));
        let publish = &cmds[4].1;
        assert_eq!(publish.object, Value::Null);
        assert_eq!(publish.arg_str(0), Some("demo?key=abc"));
        assert_eq!(publish.arg_str(1), Some("live"));
        assert_eq!(cmds[6].1.arg_f64(0), Some(1.0));
    }

    #[test]
    fn round_trip() {
        let cmd = Command {
            name: "connect".to_owned(),
            transaction_id: 1.0,
            object: Value::object([("app", Value::from("live"))]),
            args: vec![Value::Boolean(true), Value::Null, Value::from("x")],
        };
        assert_eq!(Command::decode(&cmd.encode(), 16).ok(), Some(cmd));
        let status = Command::on_status("status", "NetStream.Play.Start", "go");
        let back = Command::decode(&status.encode(), 16).ok();
        assert_eq!(
            status_fields(back.as_ref().and_then(|c| c.args.first())),
            ("status".into(), "NetStream.Play.Start".into(), "go".into())
        );
    }

    #[test]
    fn missing_values_default() {
        let only_name = onair_amf0::encode(&[Value::from("closeStream")]);
        let cmd = Command::decode(&only_name, 16).ok();
        assert_eq!(cmd, Some(Command::new("closeStream", 0.0, vec![])));
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let mut value = Value::Null;
        for _ in 0..40 {
            value = Value::object([("a", value)]);
        }
        let body = onair_amf0::encode(&[Value::from("connect"), Value::Number(1.0), value]);
        assert!(matches!(
            Command::decode(&body, 16),
            Err(CommandError::Amf(onair_amf0::Error::TooDeep { .. }))
        ));
    }

    #[test]
    fn undecodable_tail_is_dropped_bad_name_is_not() {
        let mut body = BytesMut::new();
        body.put_slice(&onair_amf0::encode(&[
            Value::from("play"),
            Value::Number(0.0),
            Value::Null,
            Value::from("demo"),
        ]));
        // An AMF3 value marker (0x11), which AMF0 cannot read.
        body.put_slice(&[0x11, 0x04, 0x01]);
        let cmd = Command::decode(&body, 16).ok();
        assert_eq!(cmd.as_ref().and_then(|c| c.arg_str(0)), Some("demo"));
        assert_eq!(cmd.map(|c| c.args.len()), Some(1));

        let numeric = onair_amf0::encode(&[Value::Number(1.0)]);
        assert!(matches!(
            Command::decode(&numeric, 16),
            Err(CommandError::NoName)
        ));
        assert!(matches!(
            Command::decode(&[0x02, 0x00], 16),
            Err(CommandError::Amf(_))
        ));
    }

    #[test]
    fn set_data_frame_prefix() {
        let meta = onair_amf0::encode(&[
            Value::from("onMetaData"),
            Value::object([("w", Value::Number(1.0))]),
        ]);
        let wrapped = with_set_data_frame(&meta);
        assert_eq!(&wrapped[..SET_DATA_FRAME.len()], SET_DATA_FRAME);
        assert_eq!(&wrapped[SET_DATA_FRAME.len()..], &meta[..]);
        assert_eq!(with_set_data_frame(&wrapped), wrapped);
        assert_eq!(
            data_message_name(&wrapped).as_deref(),
            Some("@setDataFrame")
        );
        assert_eq!(data_message_name(&[0x00]), None);
    }
}
