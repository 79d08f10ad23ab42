//! The task that turns one publish into HLS: it reads the stream like a viewer (a hub
//! tap), cuts it into CMAF parts and hands them to the stream's [`HlsStream`].

use std::sync::Arc;
use std::time::Instant;

use onair_fmp4::{Output, Segmenter, SegmenterSettings};
use onair_hls::ts::{TsSegment, TsSegmenter, TsSettings};
use onair_media::{FrameKind, MediaFrame, VideoCodec};
use tokio_util::sync::CancellationToken;

use super::settings::HlsSettings;
use super::store::HlsStream;
use onair_relay::hub::{HubFrame, Viewer};

/// Frames taken from the ring per wake-up.
const BATCH: usize = 64;

pub(super) async fn run(
    mut tap: Viewer,
    stream: Arc<HlsStream>,
    settings: HlsSettings,
    shutdown: CancellationToken,
) {
    let mut segmenter = Segmenter::new(SegmenterSettings {
        part_target: settings.part_target(),
        segment_target: settings.segment_target(),
    });
    let mut ts = settings.legacy_ts.then(|| {
        TsSegmenter::new(TsSettings {
            segment_target: settings.segment_target(),
            ..TsSettings::default()
        })
    });
    let mut frames: Vec<Arc<HubFrame>> = Vec::with_capacity(BATCH);
    let mut out = Vec::new();
    let mut ts_out = Vec::new();
    let mut errors = 0u64;
    let mut codecs = CodecNames::default();
    loop {
        frames.clear();
        let end = tokio::select! {
            end = tap.next_batch(&mut frames, BATCH) => end,
            () = shutdown.cancelled() => break,
        };
        if let Err(end) = end {
            tracing::debug!(reason = %end, "hls muxer: stream ended");
            break;
        }
        for frame in &frames {
            codecs.observe(&frame.frame);
            let mut result = segmenter
                .push(&frame.frame, &mut out)
                .map_err(|e| e.to_string());
            if let Some(ts) = &mut ts {
                result = result.and(
                    ts.push(&frame.frame, &mut ts_out)
                        .map_err(|e| e.to_string()),
                );
            }
            if let Err(error) = result {
                errors += 1;
                // Not one line per frame: the first, then ever more rarely.
                if errors.is_power_of_two() {
                    tracing::warn!(%error, errors, "hls muxer: frame left out");
                }
            }
        }
        deliver(&stream, &codecs, &mut out, &mut ts_out);
    }
    segmenter.finish(&mut out);
    if let Some(ts) = &mut ts {
        ts.finish(&mut ts_out);
    }
    deliver(&stream, &codecs, &mut out, &mut ts_out);
    stream.publisher_left(Instant::now());
}

fn deliver(
    stream: &HlsStream,
    codecs: &CodecNames,
    out: &mut Vec<Output>,
    ts_out: &mut Vec<TsSegment>,
) {
    for segment in ts_out.drain(..) {
        stream.add_ts_segment(segment);
    }
    for output in out.drain(..) {
        match output {
            Output::Init(init) => {
                stream.add_init(init);
                stream.set_codecs(codecs.attribute());
            }
            Output::Part(part) => stream.add_part(part),
        }
    }
}

/// The RFC 6381 codec names of the stream, from the sequence headers it carried: what
/// a multivariant playlist's CODECS attribute says.
#[derive(Debug, Default)]
pub(super) struct CodecNames {
    video: Option<String>,
    audio: Option<String>,
}

impl CodecNames {
    pub fn observe(&mut self, frame: &MediaFrame) {
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

    pub fn attribute(&self) -> Option<String> {
        let names: Vec<&str> = [self.video.as_deref(), self.audio.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        (!names.is_empty()).then(|| names.join(","))
    }
}
