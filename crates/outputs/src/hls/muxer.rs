//! The task that turns one publish into HLS: it reads the stream like a viewer (a hub
//! tap), cuts it into CMAF parts and hands them to the stream's [`HlsStream`].

use std::sync::Arc;
use std::time::Instant;

use onair_fmp4::{Output, Segmenter, SegmenterSettings};
use onair_hls::ts::{TsSegment, TsSegmenter, TsSettings};
use onair_policy::CodecInfo;
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
    let mut codecs = CodecInfo::default();
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
            codecs.handle_frame(&frame.frame);
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
    codecs: &CodecInfo,
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
                stream.set_codecs(codecs.rfc6381_codecs());
            }
            Output::Part(part) => stream.add_part(part),
        }
    }
}
