//! Writing the media playlist: plain HLS, LL-HLS and delta updates.

use std::fmt::Write;
use std::time::Duration;

use crate::datetime::rfc3339_ms;
use crate::playlist::Segment;
use crate::{init_uri, part_uri, segment_uri, ts_segment_uri, PartId, Playlist, SegmentFormat};

/// What the request for the playlist asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct RenderRequest<'a> {
    /// `_HLS_skip=YES`: a delta update, when the playlist is long enough for one.
    pub skip: bool,
    /// Appended to every URI as `?query` (signature params, session); empty: nothing.
    pub query: &'a str,
}

/// Parts are listed for segments that end within this many target durations of
/// the end of the playlist (RFC 8216bis 4.4.4.9 lets older parts go).
const PART_TARGET_DURATIONS: u32 = 3;
/// `CAN-SKIP-UNTIL`, in target durations: the spec's minimum of six.
const SKIP_TARGET_DURATIONS: u32 = 6;
/// `PART-HOLD-BACK`, in part targets (the spec's minimum is two; three is advised).
const PART_HOLD_BACK_PARTS: u32 = 3;

impl Playlist {
    /// The media playlist text.
    pub fn render(&self, request: &RenderRequest) -> String {
        let low_latency = self.settings.low_latency;
        let td = self.target_duration();
        // EXTINF rounded to the nearest integer must not exceed the target duration.
        let longest_extinf = td + Duration::from_millis(499);
        let query = uri_query(request.query);

        let total: Duration = self.all_segments().map(|s| s.duration).sum();
        let skipped = if low_latency && request.skip {
            self.skippable(total, td * SKIP_TARGET_DURATIONS)
        } else {
            0
        };
        let uses_map =
            self.format == SegmentFormat::Fmp4 && self.all_segments().any(|s| s.init.is_some());
        let version = if skipped > 0 {
            9
        } else if uses_map {
            6
        } else {
            3
        };

        let mut out = String::with_capacity(256 + 160 * (self.segments.len() + 1));
        out.push_str("#EXTM3U\n");
        let _ = writeln!(out, "#EXT-X-VERSION:{version}");
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", self.target_duration_secs());
        if low_latency {
            let _ = writeln!(
                out,
                "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={},PART-HOLD-BACK={}",
                secs(td * SKIP_TARGET_DURATIONS),
                secs(self.settings.part_target * PART_HOLD_BACK_PARTS),
            );
            let _ = writeln!(
                out,
                "#EXT-X-PART-INF:PART-TARGET={}",
                secs(self.settings.part_target)
            );
        }
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence());
        let _ = writeln!(
            out,
            "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
            self.discontinuity_sequence
        );
        if skipped > 0 {
            let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
        }

        // Distance from each segment's end to the end of the playlist decides whether
        // its parts are listed.
        let part_window = td * PART_TARGET_DURATIONS;
        let mut end_distance = self.open.as_ref().map_or(Duration::ZERO, |s| s.duration);
        let mut distances = Vec::with_capacity(self.segments.len());
        for segment in self.segments.iter().rev() {
            distances.push(end_distance);
            end_distance = end_distance.saturating_add(segment.duration);
        }
        distances.reverse();

        let mut map_in_force = None;
        for (segment, distance) in self.segments.iter().zip(distances).skip(skipped) {
            self.segment_head(&mut out, segment, &mut map_in_force, &query);
            if low_latency && distance < part_window {
                write_parts(&mut out, segment, &query);
            }
            let _ = writeln!(
                out,
                "#EXTINF:{},\n{}{query}",
                secs(segment.duration.min(longest_extinf)),
                self.segment_uri(segment.msn),
            );
        }
        if low_latency {
            if let Some(open) = &self.open {
                self.segment_head(&mut out, open, &mut map_in_force, &query);
                write_parts(&mut out, open, &query);
            }
            let next = self.next_part();
            let _ = writeln!(
                out,
                "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}{query}\"",
                part_uri(next)
            );
        }
        out
    }

    /// Leading segments that end at least `skip_until` before the end of the playlist.
    fn skippable(&self, total: Duration, skip_until: Duration) -> usize {
        let Some(boundary) = total.checked_sub(skip_until) else {
            return 0;
        };
        let mut end = Duration::ZERO;
        self.segments
            .iter()
            .take_while(|s| {
                end += s.duration;
                end <= boundary
            })
            .count()
    }

    /// The tags before a segment's parts and `EXTINF`.
    fn segment_head(
        &self,
        out: &mut String,
        segment: &Segment,
        map_in_force: &mut Option<u32>,
        query: &str,
    ) {
        if segment.discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if self.format == SegmentFormat::Fmp4 {
            if let Some(init) = segment.init.filter(|v| *map_in_force != Some(*v)) {
                let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}{query}\"", init_uri(init));
                *map_in_force = Some(init);
            }
        }
        let _ = writeln!(
            out,
            "#EXT-X-PROGRAM-DATE-TIME:{}",
            rfc3339_ms(segment.program_date_time_ms)
        );
    }

    fn segment_uri(&self, msn: u64) -> String {
        match self.format {
            SegmentFormat::Fmp4 => segment_uri(msn),
            SegmentFormat::MpegTs => ts_segment_uri(msn),
        }
    }
}

fn write_parts(out: &mut String, segment: &Segment, query: &str) {
    for (index, part) in segment.parts.iter().enumerate() {
        let id = PartId {
            msn: segment.msn,
            part: u32::try_from(index).unwrap_or(u32::MAX),
        };
        let _ = write!(
            out,
            "#EXT-X-PART:DURATION={},URI=\"{}{query}\"",
            secs(part.duration),
            part_uri(id)
        );
        if part.independent {
            out.push_str(",INDEPENDENT=YES");
        }
        out.push('\n');
    }
}

/// A playlist rendered with an empty query, with `?query` added to every URI in it:
/// the same text [`Playlist::render`] gives for that query. A server renders the
/// playlist once per change and gives each player its own query (a session, a
/// signature) with this, which costs a copy instead of a render.
pub fn with_query(playlist: &str, query: &str) -> String {
    let query = uri_query(query);
    if query.is_empty() {
        return playlist.to_owned();
    }
    let uris = playlist.matches('\n').count();
    let mut out = String::with_capacity(playlist.len() + uris * query.len());
    for line in playlist.split_inclusive('\n') {
        let body = line.strip_suffix('\n').unwrap_or(line);
        let ending = &line[body.len()..];
        if body.is_empty() {
            out.push_str(line);
        } else if !body.starts_with('#') {
            out.push_str(body);
            out.push_str(&query);
            out.push_str(ending);
        } else if let Some(at) = body.find("URI=\"") {
            let value = at + "URI=\"".len();
            let close = body[value..]
                .find('"')
                .map_or(body.len(), |end| value + end);
            out.push_str(&body[..close]);
            out.push_str(&query);
            out.push_str(&body[close..]);
            out.push_str(ending);
        } else {
            out.push_str(line);
        }
    }
    out
}

/// `?query`, or nothing. Characters that would end a quoted attribute or a line are
/// dropped: a playlist must not be re-shaped by what a client put in its URL.
fn uri_query(query: &str) -> String {
    if query.is_empty() {
        return String::new();
    }
    let mut out = String::with_capacity(query.len() + 1);
    out.push('?');
    out.extend(
        query
            .chars()
            .filter(|c| !matches!(c, '"' | '\r' | '\n') && !c.is_control()),
    );
    out
}

/// Seconds with three decimals.
pub(crate) fn secs(d: Duration) -> String {
    let ms = (d.as_nanos() + 500_000) / 1_000_000;
    format!("{}.{:03}", ms / 1000, ms % 1000)
}
