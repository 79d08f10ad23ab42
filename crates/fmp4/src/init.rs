//! The CMAF init segment: `ftyp` + `moov` describing each track, with empty sample
//! tables and `mvex`/`trex` so every sample lives in fragments.

use bytes::Bytes;
use onair_media::VideoCodec;

use crate::config::{AudioConfig, VideoConfig};
use crate::writer::BoxWriter;

pub(crate) const VIDEO_TRACK_ID: u32 = 1;
pub(crate) const AUDIO_TRACK_ID: u32 = 2;
pub(crate) const VIDEO_TIMESCALE: u32 = 90_000;
const MOVIE_TIMESCALE: u32 = 1000;

const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// Builds `ftyp` + `moov` for the tracks present.
pub(crate) fn encode_init(video: Option<&VideoConfig>, audio: Option<&AudioConfig>) -> Bytes {
    let mut w = BoxWriter::with_capacity(1024);
    let ftyp = w.start(b"ftyp");
    w.bytes(b"iso6");
    w.u32(0);
    for brand in [b"iso6", b"cmfc", b"mp41"] {
        w.bytes(brand);
    }
    w.end(ftyp);

    let moov = w.start(b"moov");
    mvhd(&mut w);
    if let Some(v) = video {
        video_trak(&mut w, v);
    }
    if let Some(a) = audio {
        audio_trak(&mut w, a);
    }
    let mvex = w.start(b"mvex");
    for (present, track_id) in [
        (video.is_some(), VIDEO_TRACK_ID),
        (audio.is_some(), AUDIO_TRACK_ID),
    ] {
        if present {
            let trex = w.start_full(b"trex", 0, 0);
            w.u32(track_id);
            w.u32(1); // default_sample_description_index
            w.zeros(12); // default duration, size, flags: every trun carries its own
            w.end(trex);
        }
    }
    w.end(mvex);
    w.end(moov);
    w.into_inner().freeze()
}

fn mvhd(w: &mut BoxWriter) {
    let mvhd = w.start_full(b"mvhd", 0, 0);
    w.zeros(8); // creation, modification time
    w.u32(MOVIE_TIMESCALE);
    w.u32(0); // duration: unknown, live
    w.u32(0x0001_0000); // rate 1.0
    w.u16(0x0100); // volume 1.0
    w.zeros(10);
    matrix(w);
    w.zeros(24); // pre_defined
    w.u32(AUDIO_TRACK_ID + 1); // next_track_ID
    w.end(mvhd);
}

fn matrix(w: &mut BoxWriter) {
    for v in MATRIX {
        w.u32(v);
    }
}

fn tkhd(w: &mut BoxWriter, track_id: u32, volume: u16, width: u16, height: u16) {
    // Flags: track_enabled | track_in_movie.
    let tkhd = w.start_full(b"tkhd", 0, 3);
    w.zeros(8); // creation, modification time
    w.u32(track_id);
    w.u32(0); // reserved
    w.u32(0); // duration
    w.zeros(8); // reserved
    w.u16(0); // layer
    w.u16(0); // alternate_group
    w.u16(volume);
    w.u16(0); // reserved
    matrix(w);
    w.u32(u32::from(width) << 16);
    w.u32(u32::from(height) << 16);
    w.end(tkhd);
}

fn mdhd(w: &mut BoxWriter, timescale: u32) {
    let mdhd = w.start_full(b"mdhd", 0, 0);
    w.zeros(8); // creation, modification time
    w.u32(timescale);
    w.u32(0); // duration
    w.u16(0x55c4); // language "und", packed ISO-639-2/T
    w.u16(0);
    w.end(mdhd);
}

fn hdlr(w: &mut BoxWriter, handler: &[u8; 4], name: &[u8]) {
    let hdlr = w.start_full(b"hdlr", 0, 0);
    w.u32(0); // pre_defined
    w.bytes(handler);
    w.zeros(12);
    w.bytes(name);
    w.u8(0);
    w.end(hdlr);
}

fn dinf(w: &mut BoxWriter) {
    let dinf = w.start(b"dinf");
    let dref = w.start_full(b"dref", 0, 0);
    w.u32(1);
    // Flag 1: the media is in this file.
    let url = w.start_full(b"url ", 0, 1);
    w.end(url);
    w.end(dref);
    w.end(dinf);
}

/// `stbl` with the one sample entry written by `entry` and empty sample tables.
fn stbl(w: &mut BoxWriter, entry: impl FnOnce(&mut BoxWriter)) {
    let stbl = w.start(b"stbl");
    let stsd = w.start_full(b"stsd", 0, 0);
    w.u32(1);
    entry(w);
    w.end(stsd);
    for fourcc in [b"stts", b"stsc", b"stco"] {
        let b = w.start_full(fourcc, 0, 0);
        w.u32(0);
        w.end(b);
    }
    let stsz = w.start_full(b"stsz", 0, 0);
    w.u32(0); // sample_size
    w.u32(0); // sample_count
    w.end(stsz);
    w.end(stbl);
}

fn video_trak(w: &mut BoxWriter, v: &VideoConfig) {
    let trak = w.start(b"trak");
    tkhd(w, VIDEO_TRACK_ID, 0, v.width, v.height);
    let mdia = w.start(b"mdia");
    mdhd(w, VIDEO_TIMESCALE);
    hdlr(w, b"vide", b"VideoHandler");
    let minf = w.start(b"minf");
    let vmhd = w.start_full(b"vmhd", 0, 1);
    w.zeros(8); // graphicsmode, opcolor
    w.end(vmhd);
    dinf(w);
    stbl(w, |w| {
        let (entry_type, config_type) = match v.codec {
            VideoCodec::Hevc => (b"hvc1", b"hvcC"),
            _ => (b"avc1", b"avcC"),
        };
        let entry = w.start(entry_type);
        w.zeros(6); // reserved
        w.u16(1); // data_reference_index
        w.zeros(16); // pre_defined, reserved
        w.u16(v.width);
        w.u16(v.height);
        w.u32(0x0048_0000); // 72 dpi
        w.u32(0x0048_0000);
        w.u32(0); // reserved
        w.u16(1); // frame_count
        w.zeros(32); // compressorname
        w.u16(0x0018); // depth
        w.u16(0xffff); // pre_defined = -1
        let config = w.start(config_type);
        w.bytes(&v.record);
        w.end(config);
        w.end(entry);
    });
    w.end(minf);
    w.end(mdia);
    w.end(trak);
}

fn audio_trak(w: &mut BoxWriter, a: &AudioConfig) {
    let trak = w.start(b"trak");
    tkhd(w, AUDIO_TRACK_ID, 0x0100, 0, 0);
    let mdia = w.start(b"mdia");
    mdhd(w, a.sample_rate);
    hdlr(w, b"soun", b"SoundHandler");
    let minf = w.start(b"minf");
    let smhd = w.start_full(b"smhd", 0, 0);
    w.u32(0); // balance, reserved
    w.end(smhd);
    dinf(w);
    stbl(w, |w| {
        let entry = w.start(b"mp4a");
        w.zeros(6); // reserved
        w.u16(1); // data_reference_index
        w.zeros(8); // reserved
        w.u16(a.channels);
        w.u16(16); // samplesize
        w.u32(0); // pre_defined, reserved
                  // 16.16 fixed point; rates above 65535 Hz do not fit, and decoders take the
                  // rate from the AudioSpecificConfig anyway.
        w.u32(a.sample_rate.min(0xffff) << 16);
        esds(w, a);
        w.end(entry);
    });
    w.end(minf);
    w.end(mdia);
    w.end(trak);
}

/// ISO 14496-1 descriptors: ES_Descriptor { DecoderConfigDescriptor {
/// DecoderSpecificInfo = AudioSpecificConfig }, SLConfigDescriptor }.
fn esds(w: &mut BoxWriter, a: &AudioConfig) {
    let esds = w.start_full(b"esds", 0, 0);
    let dsi_payload = a.asc.len();
    let dcd_payload = 13 + descriptor_len(dsi_payload);
    let es_payload = 3 + descriptor_len(dcd_payload) + descriptor_len(1);
    descriptor_header(w, 0x03, es_payload);
    w.u16(0); // ES_ID: 0 in MP4 files, the track id says it
    w.u8(0); // no stream dependence, URL or OCR
    descriptor_header(w, 0x04, dcd_payload);
    w.u8(0x40); // objectTypeIndication: MPEG-4 audio
    w.u8((0x05 << 2) | 1); // streamType audio, upStream 0, reserved 1
    w.bytes(&[0, 0, 0]); // bufferSizeDB
    w.u32(0); // maxBitrate
    w.u32(0); // avgBitrate
    descriptor_header(w, 0x05, dsi_payload);
    w.bytes(&a.asc);
    descriptor_header(w, 0x06, 1);
    w.u8(0x02); // predefined: MP4
    w.end(esds);
}

/// A descriptor's whole length with a 4-byte size field (always used here).
fn descriptor_len(payload: usize) -> usize {
    5 + payload
}

fn descriptor_header(w: &mut BoxWriter, tag: u8, len: usize) {
    w.u8(tag);
    // Expandable size, 7 bits per byte; the ASC is capped far below 2^28.
    w.u8(0x80 | ((len >> 21) & 0x7f) as u8);
    w.u8(0x80 | ((len >> 14) & 0x7f) as u8);
    w.u8(0x80 | ((len >> 7) & 0x7f) as u8);
    w.u8((len & 0x7f) as u8);
}
