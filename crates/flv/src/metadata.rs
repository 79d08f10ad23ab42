//! Script data: `onMetaData` as FLV files store it and as RTMP publishers send it
//! (wrapped in `@setDataFrame`).

use bytes::Bytes;
use onair_amf0::Value;

use crate::Error;

const SET_DATA_FRAME: &str = "@setDataFrame";
const ON_METADATA: &str = "onMetaData";

/// The `onMetaData` fields the server reports. Absent or mistyped fields are `None`.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Metadata {
    pub width: Option<f64>,
    pub height: Option<f64>,
    pub frame_rate: Option<f64>,
    pub video_data_rate: Option<f64>,
    pub audio_data_rate: Option<f64>,
    /// `videocodecid` as text: a legacy codec id (`"7"`), or the FourCC (`"hvc1"`)
    /// that Enhanced RTMP encoders send either as a string or packed into a number.
    pub video_codec_id: Option<String>,
    pub audio_codec_id: Option<String>,
    pub encoder: Option<String>,
}

/// RTMP publishers send `@setDataFrame`, `"onMetaData"`, `{..}`; FLV files store
/// `"onMetaData"`, `{..}`. Returns what to store or forward: the script data without
/// `@setDataFrame`, re-encoded with AMF0 (any other handler name is kept as is).
pub fn strip_set_data_frame(payload: &[u8]) -> Result<Bytes, Error> {
    let values = script_values(payload)?;
    Ok(onair_amf0::encode(&values))
}

/// Reads the `onMetaData` fields, with or without `@setDataFrame` in front.
pub fn parse_metadata(payload: &[u8]) -> Result<Metadata, Error> {
    let values = script_values(payload)?;
    let name = values.first().and_then(Value::as_str).unwrap_or_default();
    if name != ON_METADATA {
        return Err(Error::NotMetadata {
            name: name.to_owned(),
        });
    }
    // An ECMA array from ffmpeg and OBS, an object from some others; anything else
    // means no fields.
    let Some(props) = values.get(1) else {
        return Ok(Metadata::default());
    };
    let number = |key: &str| props.get(key).and_then(Value::as_f64);
    Ok(Metadata {
        width: number("width"),
        height: number("height"),
        frame_rate: number("framerate").or_else(|| number("fps")),
        video_data_rate: number("videodatarate"),
        audio_data_rate: number("audiodatarate"),
        video_codec_id: props.get("videocodecid").and_then(codec_id_text),
        audio_codec_id: props.get("audiocodecid").and_then(codec_id_text),
        encoder: props
            .get("encoder")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// Decodes script data and drops a leading `@setDataFrame`; the first remaining
/// value must be the handler name.
fn script_values(payload: &[u8]) -> Result<Vec<Value>, Error> {
    let mut values = onair_amf0::decode_all(payload)?;
    if values.first().and_then(Value::as_str) == Some(SET_DATA_FRAME) {
        values.remove(0);
    }
    match values.first() {
        Some(Value::String(_)) => Ok(values),
        _ => Err(Error::NoScriptName),
    }
}

/// A codec id as text: small integers as decimal, FourCC numbers (E-RTMP) and
/// strings as the four characters.
fn codec_id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.fract() == 0.0 && *n >= 0.0 && *n <= f64::from(u32::MAX) => {
            let n = *n as u32;
            let bytes = n.to_be_bytes();
            if n > 0xff && bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
                Some(String::from_utf8_lossy(&bytes).into_owned())
            } else {
                Some(n.to_string())
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use onair_amf0::{decode_all, encode};

    fn obs_like() -> Vec<Value> {
        vec![
            Value::from("@setDataFrame"),
            Value::from("onMetaData"),
            Value::EcmaArray(vec![
                ("width".into(), Value::Number(1920.0)),
                ("height".into(), Value::Number(1080.0)),
                ("framerate".into(), Value::Number(29.97)),
                ("videodatarate".into(), Value::Number(2500.0)),
                ("audiodatarate".into(), Value::Number(160.0)),
                ("videocodecid".into(), Value::Number(7.0)),
                ("audiocodecid".into(), Value::Number(10.0)),
                (
                    "encoder".into(),
                    Value::from("obs-output module (libobs version 30.0.0)"),
                ),
            ]),
        ]
    }

    #[test]
    fn strips_set_data_frame() {
        let payload = encode(&obs_like());
        let stripped = strip_set_data_frame(&payload).unwrap();
        let values = decode_all(&stripped).unwrap();
        assert_eq!(values, obs_like()[1..].to_vec());
        // Already stripped data comes back the same.
        assert_eq!(strip_set_data_frame(&stripped).unwrap(), stripped);
    }

    #[test]
    fn parses_with_and_without_set_data_frame() {
        let with = parse_metadata(&encode(&obs_like())).unwrap();
        let without = parse_metadata(&encode(&obs_like()[1..])).unwrap();
        assert_eq!(with, without);
        assert_eq!(with.width, Some(1920.0));
        assert_eq!(with.height, Some(1080.0));
        assert_eq!(with.frame_rate, Some(29.97));
        assert_eq!(with.video_data_rate, Some(2500.0));
        assert_eq!(with.audio_data_rate, Some(160.0));
        assert_eq!(with.video_codec_id.as_deref(), Some("7"));
        assert_eq!(with.audio_codec_id.as_deref(), Some("10"));
        assert!(with.encoder.unwrap().starts_with("obs-output"));
    }

    #[test]
    fn enhanced_rtmp_fourcc_codec_ids() {
        let payload = encode(&[
            Value::from("onMetaData"),
            Value::object([
                (
                    "videocodecid",
                    Value::Number(f64::from(u32::from_be_bytes(*b"hvc1"))),
                ),
                ("audiocodecid", Value::from("Opus")),
                ("width", Value::from("wide")),
            ]),
        ]);
        let meta = parse_metadata(&payload).unwrap();
        assert_eq!(meta.video_codec_id.as_deref(), Some("hvc1"));
        assert_eq!(meta.audio_codec_id.as_deref(), Some("Opus"));
        assert_eq!(meta.width, None);
        assert_eq!(codec_id_text(&Value::Number(-1.0)), None);
        assert_eq!(codec_id_text(&Value::Number(1e12)), None);
        assert_eq!(codec_id_text(&Value::Number(f64::NAN)), None);
        assert_eq!(codec_id_text(&Value::Number(256.0)).as_deref(), Some("256"));
    }

    #[test]
    fn ffmpeg_fixture_metadata() {
        let script = fixtures::tags(fixtures::TESTSRC2_320X240)
            .into_iter()
            .find(|t| t.kind == onair_media::FrameKind::Script)
            .unwrap();
        let meta = parse_metadata(&script.payload).unwrap();
        assert_eq!(meta.width, Some(320.0));
        assert_eq!(meta.height, Some(240.0));
        assert_eq!(meta.frame_rate, Some(25.0));
        assert_eq!(meta.video_codec_id.as_deref(), Some("7"));
        assert_eq!(meta.audio_codec_id.as_deref(), Some("10"));
        assert!(meta.encoder.unwrap().starts_with("Lavf"));
        // A file's script tag has no @setDataFrame; stripping re-encodes it unchanged.
        assert_eq!(
            strip_set_data_frame(&script.payload).unwrap(),
            script.payload
        );
    }

    #[test]
    fn errors() {
        assert!(matches!(
            parse_metadata(&encode(&[Value::from("onCuePoint"), Value::Null])),
            Err(Error::NotMetadata { name }) if name == "onCuePoint"
        ));
        assert!(matches!(
            parse_metadata(&encode(&[Value::Number(1.0)])),
            Err(Error::NoScriptName)
        ));
        assert!(matches!(
            strip_set_data_frame(&encode(&[Value::from("@setDataFrame")])),
            Err(Error::NoScriptName)
        ));
        assert!(matches!(parse_metadata(&[0x02, 0x00]), Err(Error::Amf0(_))));
        assert!(matches!(
            strip_set_data_frame(&[]),
            Err(Error::NoScriptName)
        ));
        // onMetaData with no properties is empty, not an error.
        let bare = parse_metadata(&encode(&[Value::from("onMetaData")])).unwrap();
        assert_eq!(bare, Metadata::default());
    }
}
