//! MPEG-TS packets through the `mpeg2ts` crate: PAT and PMT, PES packets split
//! over 188-byte packets, per-PID continuity counters, PCR.

use mpeg2ts::es::{StreamId, StreamType};
use mpeg2ts::pes::PesHeader;
use mpeg2ts::time::{ClockReference, Timestamp};
use mpeg2ts::ts::payload::{self, Pat, Pmt};
use mpeg2ts::ts::{
    AdaptationField, ContinuityCounter, EsInfo, Pid, ProgramAssociation,
    TransportScramblingControl, TsHeader, TsPacket, TsPacketWriter, TsPayload, VersionNumber,
    WriteTsPacket,
};

use crate::Error;

const PAT_PID: u16 = 0;
const PMT_PID: u16 = 0x1000;
pub(crate) const VIDEO_PID: u16 = 0x100;
pub(crate) const AUDIO_PID: u16 = 0x101;
pub(crate) const VIDEO_STREAM_ID: u8 = 0xe0;
pub(crate) const AUDIO_STREAM_ID: u8 = 0xc0;
const PROGRAM: u16 = 1;
const PAYLOAD: usize = TsPacket::SIZE - 4;
/// Start code, stream id, length, flags, header length.
const PES_FIXED_HEADER: usize = 9;

/// One PES packet's worth of elementary stream data and its timing.
pub(crate) struct Pes<'a> {
    pub(crate) pid: u16,
    pub(crate) stream_id: u8,
    /// 90 kHz.
    pub(crate) pts: u64,
    pub(crate) dts: Option<u64>,
    /// Program clock reference base (90 kHz), on the first packet.
    pub(crate) pcr: Option<u64>,
    pub(crate) random_access: bool,
    pub(crate) data: &'a [u8],
}

/// Continuity counters of the PIDs the segmenter writes, kept across segments so
/// the stream reads as one.
#[derive(Debug, Default)]
pub(crate) struct Packetizer {
    pat: u8,
    pmt: u8,
    video: u8,
    audio: u8,
}

impl Packetizer {
    /// PAT then PMT listing the tracks; the PCR is on video when there is video.
    pub(crate) fn write_tables(
        &mut self,
        video: bool,
        audio: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let pat = TsPayload::Pat(Pat {
            transport_stream_id: 1,
            version_number: VersionNumber::new(),
            table: vec![ProgramAssociation {
                program_num: PROGRAM,
                program_map_pid: pid(PMT_PID)?,
            }],
        });
        let cc = next(&mut self.pat);
        write(out, packet(PAT_PID, cc, None, pat)?)?;

        let mut es_info = Vec::new();
        if video {
            es_info.push(EsInfo {
                stream_type: StreamType::H264,
                elementary_pid: pid(VIDEO_PID)?,
                descriptors: Vec::new(),
            });
        }
        if audio {
            es_info.push(EsInfo {
                stream_type: StreamType::AdtsAac,
                elementary_pid: pid(AUDIO_PID)?,
                descriptors: Vec::new(),
            });
        }
        let pmt = TsPayload::Pmt(Pmt {
            program_num: PROGRAM,
            pcr_pid: Some(pid(if video { VIDEO_PID } else { AUDIO_PID })?),
            version_number: VersionNumber::new(),
            program_info: Vec::new(),
            es_info,
        });
        let cc = next(&mut self.pmt);
        write(out, packet(PMT_PID, cc, None, pmt)?)
    }

    pub(crate) fn write_pes(&mut self, pes: &Pes, out: &mut Vec<u8>) -> Result<(), Error> {
        let header = PesHeader {
            stream_id: StreamId::new(pes.stream_id),
            priority: false,
            data_alignment_indicator: true,
            copyright: false,
            original_or_copy: false,
            pts: Some(timestamp(pes.pts)?),
            dts: pes.dts.map(timestamp).transpose()?,
            escr: None,
        };
        let optional_len = 3 + 5 + if pes.dts.is_some() { 5 } else { 0 };
        // Video PES packets may be unbounded (0); audio ones carry their length.
        let pes_packet_len = if pes.stream_id == VIDEO_STREAM_ID {
            0
        } else {
            u16::try_from(optional_len + pes.data.len()).unwrap_or(0)
        };
        let pcr = pes
            .pcr
            .map(|base| ClockReference::new((base & Timestamp::MAX) * 300))
            .transpose()
            .map_err(mux)?;
        let adaptation = (pcr.is_some() || pes.random_access).then(|| AdaptationField {
            discontinuity_indicator: false,
            random_access_indicator: pes.random_access,
            es_priority_indicator: false,
            pcr,
            opcr: None,
            splice_countdown: None,
            transport_private_data: Vec::new(),
            extension: None,
        });
        let adaptation_len = adaptation
            .as_ref()
            .map_or(0, |a| 2 + if a.pcr.is_some() { 6 } else { 0 });
        let first_len =
            (PAYLOAD - adaptation_len - PES_FIXED_HEADER - (optional_len - 3)).min(pes.data.len());
        let (first, mut rest) = pes.data.split_at(first_len);
        let counter = self.counter(pes.pid);
        let start = TsPayload::PesStart(payload::Pes {
            header,
            pes_packet_len,
            data: bytes(first)?,
        });
        let cc = next(counter);
        write(out, packet(pes.pid, cc, adaptation, start)?)?;
        while !rest.is_empty() {
            let (chunk, after) = rest.split_at(rest.len().min(PAYLOAD));
            let cc = next(self.counter(pes.pid));
            write(
                out,
                packet(pes.pid, cc, None, TsPayload::PesContinuation(bytes(chunk)?))?,
            )?;
            rest = after;
        }
        Ok(())
    }

    fn counter(&mut self, pid: u16) -> &mut u8 {
        if pid == VIDEO_PID {
            &mut self.video
        } else {
            &mut self.audio
        }
    }
}

/// The counter's current value, then advances it (mod 16).
fn next(counter: &mut u8) -> u8 {
    let value = *counter;
    *counter = (value + 1) & 0x0f;
    value
}

fn packet(
    pid_value: u16,
    cc: u8,
    adaptation_field: Option<AdaptationField>,
    payload: TsPayload,
) -> Result<TsPacket, Error> {
    Ok(TsPacket {
        header: TsHeader {
            transport_error_indicator: false,
            transport_priority: false,
            pid: pid(pid_value)?,
            transport_scrambling_control: TransportScramblingControl::NotScrambled,
            continuity_counter: ContinuityCounter::from_u8(cc).map_err(mux)?,
        },
        adaptation_field,
        payload: Some(payload),
    })
}

fn write(out: &mut Vec<u8>, packet: TsPacket) -> Result<(), Error> {
    TsPacketWriter::new(out)
        .write_ts_packet(&packet)
        .map_err(mux)
}

fn pid(value: u16) -> Result<Pid, Error> {
    Pid::new(value).map_err(mux)
}

fn timestamp(ticks: u64) -> Result<Timestamp, Error> {
    Timestamp::new(ticks & Timestamp::MAX).map_err(mux)
}

fn bytes(data: &[u8]) -> Result<payload::Bytes, Error> {
    payload::Bytes::new(data).map_err(mux)
}

fn mux(e: mpeg2ts::Error) -> Error {
    Error::Mux(e.to_string())
}
