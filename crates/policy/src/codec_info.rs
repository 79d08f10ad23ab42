//! What a stream's metadata and sequence headers say about it.

use onair_flv::{Codec, CodecConfig, SequenceHeader};
use onair_media::{FrameKind, MediaFrame, VideoCodec};

/// What the codec headers and metadata say about a stream: the codecs, picture size
/// and rates the API reports, the RFC 6381 `CODECS` attribute of an HLS playlist, and
/// whether the stream has video.
///
/// Fed every frame in order ([`handle_frame`](CodecInfo::handle_frame)); only script
/// data and sequence headers change it. Headers are read by
/// `onair_flv::SequenceHeader`, the one place every muxer reads them. The relay's hub
/// keeps one per stream (`StreamSnapshot::codecs`); the HLS muxer and the recorder
/// keep their own over the frames they read:
///
/// ```
/// # use bytes::Bytes;
/// use onair_media::{FrameKind, MediaFrame};
/// use onair_policy::CodecInfo;
///
/// let header = |kind, payload: &'static [u8]| MediaFrame {
///     kind,
///     timestamp: 0,
///     keyframe: false,
///     sequence_header: true,
///     payload: Bytes::from_static(payload),
/// };
/// let mut codecs = CodecInfo::default();
/// // An AAC-LC 44.1 kHz stereo sequence header.
/// codecs.handle_frame(&header(FrameKind::Audio, &[0xaf, 0, 0x12, 0x10]));
/// assert_eq!(codecs.audio_codec.as_deref(), Some("aac"));
/// assert_eq!(codecs.rfc6381_codecs().as_deref(), Some("mp4a.40.2"));
/// assert!(!codecs.has_video());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CodecInfo {
    pub video_codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub frame_rate: Option<f64>,
    pub audio_codec: Option<String>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u8>,
    pub encoder: Option<String>,
    /// `avc1.PPCCLL` from the last video header.
    video_rfc6381: Option<String>,
    /// `mp4a.40.N` from the last audio header.
    audio_rfc6381: Option<String>,
    /// A video sequence header arrived (parsed or not).
    video_header_seen: bool,
    /// The last metadata announces video (a width or a video codec).
    metadata_says_video: bool,
}

impl CodecInfo {
    /// Takes any frame: script data is read as `onMetaData`, sequence headers as
    /// codec headers, everything else is ignored.
    pub fn handle_frame(&mut self, frame: &MediaFrame) {
        match frame.kind {
            FrameKind::Script => self.apply_metadata(&frame.payload),
            FrameKind::Video if frame.sequence_header => self.apply_video_header(&frame.payload),
            FrameKind::Audio if frame.sequence_header => self.apply_audio_header(&frame.payload),
            _ => {}
        }
    }

    /// `onMetaData` (or other script data, which says nothing). The sequence headers
    /// win over metadata for the picture size: metadata fills only what no header has.
    pub fn apply_metadata(&mut self, payload: &[u8]) {
        let meta = onair_flv::parse_metadata(payload);
        self.metadata_says_video = meta
            .as_ref()
            .is_ok_and(|m| m.width.is_some() || m.video_codec_id.is_some());
        let Ok(meta) = meta else {
            return;
        };
        self.encoder = meta.encoder.or(self.encoder.take());
        if self.frame_rate.is_none() {
            self.frame_rate = meta.frame_rate;
        }
        if self.width.is_none() {
            self.width = meta.width.map(|w| w as u32);
            self.height = meta.height.map(|h| h as u32);
        }
    }

    /// The body of a video sequence header. A header whose tag cannot be read changes
    /// nothing but [`has_video`](CodecInfo::has_video); one whose record cannot be
    /// read still names the codec.
    pub fn apply_video_header(&mut self, payload: &[u8]) {
        self.video_header_seen = true;
        let Ok(header) = SequenceHeader::parse(FrameKind::Video, payload) else {
            return;
        };
        let Codec::Video(codec) = header.codec else {
            return;
        };
        self.video_codec = Some(format!("{codec:?}").to_lowercase());
        // Bytes 1..4 of an AVCDecoderConfigurationRecord are the SPS's profile,
        // constraint flags and level, whatever the rest of the record holds.
        self.video_rfc6381 = match (codec, header.record.get(1..4)) {
            (VideoCodec::H264, Some(&[profile, compat, level])) => {
                Some(format!("avc1.{profile:02x}{compat:02x}{level:02x}"))
            }
            _ => None,
        };
        match header.config {
            Ok(CodecConfig::Avc(avc)) => {
                self.width = Some(avc.width);
                self.height = Some(avc.height);
                self.frame_rate = avc.frame_rate.or(self.frame_rate);
            }
            Ok(CodecConfig::Hevc(hevc)) => {
                self.width = Some(hevc.width);
                self.height = Some(hevc.height);
            }
            _ => {}
        }
    }

    /// The body of an audio sequence header.
    pub fn apply_audio_header(&mut self, payload: &[u8]) {
        let Ok(header) = SequenceHeader::parse(FrameKind::Audio, payload) else {
            return;
        };
        let Codec::Audio(codec) = header.codec else {
            return;
        };
        self.audio_codec = Some(format!("{codec:?}").to_lowercase());
        self.audio_rfc6381 = match header.config {
            Ok(CodecConfig::Aac(aac)) => {
                self.sample_rate = Some(aac.sample_rate);
                self.channels = Some(aac.channels);
                Some(format!("mp4a.40.{}", aac.object_type))
            }
            _ => None,
        };
    }

    /// The RFC 6381 `CODECS` attribute of a multivariant playlist: `avc1.PPCCLL` for
    /// H.264, `mp4a.40.N` for AAC, comma-separated, video first; `None` when neither
    /// is known (HEVC and other codecs are not named yet).
    pub fn rfc6381_codecs(&self) -> Option<String> {
        let names: Vec<&str> = [self.video_rfc6381.as_deref(), self.audio_rfc6381.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        (!names.is_empty()).then(|| names.join(","))
    }

    /// Whether the stream has video: a video sequence header arrived, or the last
    /// metadata announces video (a width or a video codec) before its header has.
    pub fn has_video(&self) -> bool {
        self.video_header_seen || self.metadata_says_video
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use onair_amf0::Value;

    use crate::fixtures::{self, header, metadata};

    fn fed(flv: &[u8]) -> CodecInfo {
        let mut codecs = CodecInfo::default();
        for frame in fixtures::frames(flv) {
            codecs.handle_frame(&frame);
        }
        codecs
    }

    #[test]
    fn ffmpeg_h264_and_aac() {
        let codecs = fed(fixtures::TESTSRC2_320X240);
        assert_eq!(codecs.video_codec.as_deref(), Some("h264"));
        assert_eq!((codecs.width, codecs.height), (Some(320), Some(240)));
        assert_eq!(codecs.frame_rate, Some(25.0));
        assert_eq!(codecs.audio_codec.as_deref(), Some("aac"));
        assert_eq!(
            (codecs.sample_rate, codecs.channels),
            (Some(44100), Some(1))
        );
        assert!(codecs.encoder.as_deref().unwrap().starts_with("Lavf"));
        assert_eq!(
            codecs.rfc6381_codecs().as_deref(),
            Some("avc1.64000d,mp4a.40.2")
        );
        assert!(codecs.has_video());

        let codecs = fed(fixtures::TESTSRC2_1280X720);
        assert_eq!((codecs.width, codecs.height), (Some(1280), Some(720)));
        assert_eq!(codecs.sample_rate, Some(48000));
        assert_eq!(
            codecs.rfc6381_codecs().as_deref(),
            Some("avc1.64001f,mp4a.40.2")
        );
    }

    #[test]
    fn headers_alone_name_the_codecs() {
        let mut codecs = CodecInfo::default();
        assert_eq!(codecs.rfc6381_codecs(), None);
        assert!(!codecs.has_video());
        codecs.handle_frame(&fixtures::sequence_header(
            fixtures::TESTSRC2_320X240,
            FrameKind::Video,
        ));
        assert_eq!(codecs.rfc6381_codecs().as_deref(), Some("avc1.64000d"));
        assert!(codecs.has_video());
        assert_eq!(codecs.audio_codec, None);
    }

    #[test]
    fn hevc_over_enhanced_rtmp() {
        let mut payload = vec![0x90];
        payload.extend_from_slice(b"hvc1");
        payload.extend_from_slice(fixtures::X265_HVCC_426X240);
        let mut codecs = CodecInfo::default();
        codecs.handle_frame(&MediaFrame {
            kind: FrameKind::Video,
            timestamp: 0,
            keyframe: false,
            sequence_header: true,
            payload: Bytes::from(payload),
        });
        assert_eq!(codecs.video_codec.as_deref(), Some("hevc"));
        assert_eq!((codecs.width, codecs.height), (Some(426), Some(240)));
        assert_eq!(codecs.rfc6381_codecs(), None, "HEVC is not named yet");
        assert!(codecs.has_video());
    }

    #[test]
    fn a_broken_avc_record_still_names_the_codec_and_its_profile() {
        // Version, profile 0x42, constraints 0xc0, level 0x1e, then nothing.
        let mut codecs = CodecInfo::default();
        codecs.handle_frame(&header(FrameKind::Video, &[1, 0x42, 0xc0, 0x1e]));
        assert_eq!(codecs.video_codec.as_deref(), Some("h264"));
        assert_eq!(codecs.width, None);
        assert_eq!(codecs.rfc6381_codecs().as_deref(), Some("avc1.42c01e"));

        // Too short for a profile: no name.
        codecs.handle_frame(&header(FrameKind::Video, &[1, 0x42]));
        assert_eq!(codecs.rfc6381_codecs(), None);
        assert_eq!(codecs.video_codec.as_deref(), Some("h264"));
    }

    #[test]
    fn a_broken_aac_config_names_the_codec_only() {
        let mut codecs = CodecInfo::default();
        codecs.handle_frame(&header(FrameKind::Audio, &[0x12, 0x10]));
        assert_eq!(codecs.rfc6381_codecs().as_deref(), Some("mp4a.40.2"));
        // A new header whose config cannot be read withdraws the attribute.
        codecs.handle_frame(&header(FrameKind::Audio, &[0x12]));
        assert_eq!(codecs.audio_codec.as_deref(), Some("aac"));
        assert_eq!(codecs.rfc6381_codecs(), None);
        assert_eq!(codecs.sample_rate, Some(44100), "the last good rate stays");
    }

    #[test]
    fn an_unreadable_tag_changes_nothing() {
        let mut codecs = fed(fixtures::TESTSRC2_320X240);
        let before = codecs.clone();
        let mut bad = header(FrameKind::Audio, &[]);
        bad.payload = Bytes::from_static(&[0x6f]);
        codecs.handle_frame(&bad);
        assert_eq!(codecs, before);
    }

    #[test]
    fn a_new_header_replaces_the_old() {
        let mut codecs = fed(fixtures::TESTSRC2_320X240);
        codecs.handle_frame(&fixtures::sequence_header(
            fixtures::TESTSRC2_1280X720,
            FrameKind::Video,
        ));
        assert_eq!((codecs.width, codecs.height), (Some(1280), Some(720)));
        assert_eq!(codecs.frame_rate, Some(30.0));
        assert_eq!(
            codecs.rfc6381_codecs().as_deref(),
            Some("avc1.64001f,mp4a.40.2")
        );
    }

    #[test]
    fn opus_is_named_but_has_no_codecs_attribute() {
        let mut payload = vec![0x90];
        payload.extend_from_slice(b"Opus");
        payload.extend_from_slice(b"OpusHead\x01\x02");
        let mut codecs = CodecInfo::default();
        codecs.handle_frame(&MediaFrame {
            kind: FrameKind::Audio,
            timestamp: 0,
            keyframe: false,
            sequence_header: true,
            payload: Bytes::from(payload),
        });
        assert_eq!(codecs.audio_codec.as_deref(), Some("opus"));
        assert_eq!(codecs.rfc6381_codecs(), None);
    }

    #[test]
    fn metadata_fills_what_headers_do_not_say() {
        let mut codecs = CodecInfo::default();
        codecs.handle_frame(&metadata(&[
            ("width", Value::Number(1920.0)),
            ("height", Value::Number(1080.0)),
            ("framerate", Value::Number(29.97)),
            ("encoder", Value::String("obs-output module".into())),
        ]));
        assert_eq!((codecs.width, codecs.height), (Some(1920), Some(1080)));
        assert_eq!(codecs.frame_rate, Some(29.97));
        assert_eq!(codecs.video_codec, None);
        // The header's picture size wins, and later metadata does not undo it.
        codecs.handle_frame(&fixtures::sequence_header(
            fixtures::TESTSRC2_320X240,
            FrameKind::Video,
        ));
        assert_eq!((codecs.width, codecs.height), (Some(320), Some(240)));
        assert_eq!(codecs.frame_rate, Some(25.0));
        codecs.handle_frame(&metadata(&[("width", Value::Number(640.0))]));
        assert_eq!(codecs.width, Some(320));
        assert_eq!(codecs.encoder.as_deref(), Some("obs-output module"));
    }

    #[test]
    fn has_video_from_metadata_before_any_header() {
        let mut codecs = CodecInfo::default();
        codecs.handle_frame(&metadata(&[("width", Value::Number(640.0))]));
        assert!(codecs.has_video(), "a width");
        codecs.handle_frame(&metadata(&[("videocodecid", Value::Number(7.0))]));
        assert!(codecs.has_video(), "a video codec");
        codecs.handle_frame(&metadata(&[("audiocodecid", Value::Number(10.0))]));
        assert!(!codecs.has_video(), "the last metadata counts");
        codecs.handle_frame(&metadata(&[("width", Value::Number(640.0))]));
        let mut not_metadata = metadata(&[]);
        not_metadata.payload = onair_amf0::encode(&[Value::String("onCuePoint".into())]);
        codecs.handle_frame(&not_metadata);
        assert!(
            !codecs.has_video(),
            "script data that is not onMetaData says no"
        );
        // A video header is for good.
        codecs.handle_frame(&header(FrameKind::Video, &[1, 0x42, 0xc0, 0x1e]));
        codecs.handle_frame(&metadata(&[("audiocodecid", Value::Number(10.0))]));
        assert!(codecs.has_video());
    }

    /// The HLS muxer's `CodecNames` (`crates/server/src/hls/muxer.rs`), transcribed.
    #[derive(Default)]
    struct CodecNames {
        video: Option<String>,
        audio: Option<String>,
    }

    impl CodecNames {
        fn observe(&mut self, frame: &MediaFrame) {
            if !frame.sequence_header {
                return;
            }
            match frame.kind {
                FrameKind::Video => {
                    let Ok(tag) = onair_flv::parse_video_tag(&frame.payload) else {
                        return;
                    };
                    let record = frame.payload.get(tag.header_len..).unwrap_or_default();
                    self.video = match (tag.codec, record.get(1..4)) {
                        (VideoCodec::H264, Some(&[profile, compat, level])) => {
                            Some(format!("avc1.{profile:02x}{compat:02x}{level:02x}"))
                        }
                        _ => None,
                    };
                }
                FrameKind::Audio => {
                    let Ok(tag) = onair_flv::parse_audio_tag(&frame.payload) else {
                        return;
                    };
                    let config = frame.payload.get(tag.header_len..).unwrap_or_default();
                    self.audio = onair_flv::parse_aac_config(config)
                        .ok()
                        .map(|aac| format!("mp4a.40.{}", aac.object_type));
                }
                FrameKind::Script => {}
            }
        }

        fn attribute(&self) -> Option<String> {
            let names: Vec<&str> = [self.video.as_deref(), self.audio.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            (!names.is_empty()).then(|| names.join(","))
        }
    }

    #[test]
    fn the_codecs_attribute_is_the_hls_muxers() {
        let mut headers: Vec<MediaFrame> =
            [fixtures::TESTSRC2_320X240, fixtures::TESTSRC2_1280X720]
                .into_iter()
                .flat_map(fixtures::frames)
                .collect();
        let enhanced = |kind, first: u8, fourcc: &[u8], record: &[u8]| {
            let mut payload = vec![first];
            payload.extend_from_slice(fourcc);
            payload.extend_from_slice(record);
            MediaFrame {
                payload: Bytes::from(payload),
                ..header(kind, &[])
            }
        };
        headers.push(enhanced(
            FrameKind::Video,
            0x90,
            b"hvc1",
            fixtures::X265_HVCC_426X240,
        ));
        headers.push(enhanced(
            FrameKind::Video,
            0x90,
            b"av01",
            &[0x81, 0, 0x0c, 0],
        ));
        headers.push(enhanced(
            FrameKind::Video,
            0x90,
            b"avc1",
            &[1, 0x4d, 0x40, 0x28, 0xff],
        ));
        headers.push(enhanced(
            FrameKind::Audio,
            0x90,
            b"Opus",
            b"OpusHead\x01\x02",
        ));
        headers.push(enhanced(
            FrameKind::Audio,
            0x90,
            b"mp4a",
            &[0x2b, 0x11, 0x88, 0],
        ));
        // Every sequence header cut short at every length, as a broken encoder might.
        let whole: Vec<MediaFrame> = headers
            .iter()
            .filter(|f| f.sequence_header)
            .cloned()
            .collect();
        for frame in &whole {
            for cut in 0..frame.payload.len() {
                headers.push(MediaFrame {
                    payload: frame.payload.slice(..cut),
                    ..frame.clone()
                });
                headers.push(whole[cut % whole.len()].clone());
            }
        }
        let mut names = CodecNames::default();
        let mut codecs = CodecInfo::default();
        for (i, frame) in headers.iter().enumerate() {
            names.observe(frame);
            codecs.handle_frame(frame);
            assert_eq!(codecs.rfc6381_codecs(), names.attribute(), "frame {i}");
        }
    }
}
