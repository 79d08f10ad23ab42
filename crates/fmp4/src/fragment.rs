//! One CMAF fragment (chunk): `moof` with a `traf` per track, then one `mdat` holding
//! each track's samples back to back in `traf` order.

use bytes::{Bytes, BytesMut};

use crate::writer::BoxWriter;

/// `sample_depends_on = 2` (an I picture / any audio frame).
pub(crate) const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// `sample_depends_on = 1`, `sample_is_non_sync_sample = 1`.
pub(crate) const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
const TRUN_DATA_OFFSET: u32 = 0x000001;
const TRUN_DURATION: u32 = 0x000100;
const TRUN_SIZE: u32 = 0x000200;
const TRUN_FLAGS: u32 = 0x000400;
const TRUN_CTS: u32 = 0x000800;

/// One coded frame, in its track's timescale.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) dts: u64,
    pub(crate) duration: u32,
    pub(crate) keyframe: bool,
    /// Presentation minus decode time.
    pub(crate) cts: i32,
    pub(crate) data: Bytes,
}

/// One track's samples in a fragment.
pub(crate) struct Run<'a> {
    pub(crate) track_id: u32,
    pub(crate) samples: &'a [Sample],
    /// Write composition offsets (video); audio has none.
    pub(crate) with_cts: bool,
}

/// `moof` + `mdat`. Runs without samples are left out.
pub(crate) fn encode_fragment(sequence_number: u32, runs: &[Run<'_>]) -> Bytes {
    let data_len: usize = runs
        .iter()
        .flat_map(|r| r.samples.iter())
        .map(|s| s.data.len())
        .sum();
    let sample_count: usize = runs.iter().map(|r| r.samples.len()).sum();
    let mut w = BoxWriter::with_capacity(256 + sample_count * 16 + data_len);
    let moof = w.start(b"moof");
    let mfhd = w.start_full(b"mfhd", 0, 0);
    w.u32(sequence_number);
    w.end(mfhd);

    // Where each trun's data_offset goes, and that run's offset inside the mdat body.
    let mut offsets = Vec::with_capacity(runs.len());
    let mut data_before = 0usize;
    for run in runs {
        let Some(first) = run.samples.first() else {
            continue;
        };
        let traf = w.start(b"traf");
        let tfhd = w.start_full(b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF);
        w.u32(run.track_id);
        w.end(tfhd);
        let tfdt = w.start_full(b"tfdt", 1, 0);
        w.u64(first.dts);
        w.end(tfdt);
        let mut flags = TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS;
        if run.with_cts {
            flags |= TRUN_CTS;
        }
        // Version 1: signed composition offsets.
        let trun = w.start_full(b"trun", 1, flags);
        w.u32(u32::try_from(run.samples.len()).unwrap_or(u32::MAX));
        offsets.push((w.len(), data_before));
        w.u32(0); // data_offset, patched below
        for s in run.samples {
            w.u32(s.duration);
            w.u32(u32::try_from(s.data.len()).unwrap_or(u32::MAX));
            w.u32(if s.keyframe {
                SYNC_SAMPLE_FLAGS
            } else {
                NON_SYNC_SAMPLE_FLAGS
            });
            if run.with_cts {
                w.i32(s.cts);
            }
        }
        w.end(trun);
        w.end(traf);
        data_before += run.samples.iter().map(|s| s.data.len()).sum::<usize>();
    }
    w.end(moof);
    let moof_len = w.len();
    for (pos, before) in offsets {
        let offset = moof_len + 8 + before;
        w.patch_u32(pos, u32::try_from(offset).unwrap_or(u32::MAX));
    }
    let mdat = w.start(b"mdat");
    for run in runs {
        for s in run.samples {
            w.bytes(&s.data);
        }
    }
    w.end(mdat);
    let out: BytesMut = w.into_inner();
    out.freeze()
}
