//! The window of one rendition: complete segments, the open one, their parts, and
//! what the server must drop when segments fall out.

use std::collections::VecDeque;
use std::time::Duration;

use crate::{PartId, PlaylistSettings, Resource, SegmentFormat};

/// The facts about one finished part that the segmenter reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartInfo {
    pub duration: Duration,
    /// Starts with a keyframe (`EXT-X-PART:INDEPENDENT=YES`).
    pub independent: bool,
    /// The segmenter cut a new segment before this part.
    pub starts_segment: bool,
}

/// What [`Playlist::push_part`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub id: PartId,
    /// Segments that fell out of the window, oldest first: their bytes can go.
    pub evicted_segments: Vec<u64>,
    /// The segment this part closed by starting a new one: its parts are final, so
    /// the server can build the whole segment.
    pub completed_segment: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub(crate) msn: u64,
    pub(crate) parts: Vec<PartInfo>,
    pub(crate) duration: Duration,
    pub(crate) program_date_time_ms: u64,
    pub(crate) discontinuity: bool,
    /// The init segment version its parts need (`None` before any `new_init`).
    pub(crate) init: Option<u32>,
}

/// The media playlist of one live rendition: the server feeds it the parts the
/// segmenter finishes ([`Playlist::push_part`]), init segment changes and
/// publisher restarts, and asks it to render, to decide blocking reloads and whether
/// a requested resource is still in the window.
#[derive(Debug, Clone)]
pub struct Playlist {
    pub(crate) settings: PlaylistSettings,
    pub(crate) format: SegmentFormat,
    /// Complete segments, oldest first.
    pub(crate) segments: VecDeque<Segment>,
    pub(crate) open: Option<Segment>,
    /// The msn of the open segment, or of the next one when none is open.
    pub(crate) next_msn: u64,
    pub(crate) discontinuity_sequence: u64,
    pub(crate) init: Option<u32>,
    pending_init: bool,
    pending_discontinuity: bool,
    target_duration_secs: u64,
    max_parts_per_segment: usize,
}

impl Playlist {
    pub fn new(settings: PlaylistSettings) -> Self {
        Self::with_format(settings, SegmentFormat::Fmp4)
    }

    /// A playlist for segments of the given format. MPEG-TS playlists are always
    /// plain HLS (`low_latency` is ignored).
    pub fn with_format(mut settings: PlaylistSettings, format: SegmentFormat) -> Self {
        if format == SegmentFormat::MpegTs {
            settings.low_latency = false;
        }
        settings.window_segments = settings.window_segments.max(1);
        let target_duration_secs = settings.segment_target.as_secs_f64().ceil().max(1.0) as u64;
        // A publisher that never sends a keyframe must not grow one segment forever:
        // past four target durations' worth of parts a segment is cut regardless.
        let part_secs = settings.part_target.as_secs_f64().max(0.001);
        let max_parts_per_segment = ((4 * target_duration_secs) as f64 / part_secs)
            .ceil()
            .clamp(16.0, 4096.0) as usize;
        Self {
            settings,
            format,
            segments: VecDeque::new(),
            open: None,
            next_msn: 0,
            discontinuity_sequence: 0,
            init: None,
            pending_init: false,
            pending_discontinuity: false,
            target_duration_secs,
            max_parts_per_segment,
        }
    }

    /// The same playlist numbering its first segment `first_msn` instead of 0. A server
    /// that starts from the clock never reuses a segment URI for other media when a
    /// stream's playlist is made afresh, so caches may keep segments as immutable.
    pub fn starting_at(mut self, first_msn: u64) -> Self {
        self.next_msn = first_msn;
        self
    }

    pub fn settings(&self) -> &PlaylistSettings {
        &self.settings
    }

    pub fn format(&self) -> SegmentFormat {
        self.format
    }

    /// A new init segment is in force from the next part on, which starts a new
    /// segment. The first call returns version 0, then 1, ... URIs: [`crate::init_uri`].
    pub fn new_init(&mut self) -> u32 {
        let version = self.init.map_or(0, |v| v.wrapping_add(1));
        self.init = Some(version);
        self.pending_init = true;
        version
    }

    /// The next part starts a new segment preceded by `EXT-X-DISCONTINUITY`
    /// (the publisher restarted; timestamps reset).
    pub fn discontinuity(&mut self) {
        self.pending_discontinuity = true;
    }

    /// Records a finished part. `program_date_time_ms`: wall clock (unix ms) of the
    /// part's start, used when it starts a segment.
    pub fn push_part(&mut self, part: PartInfo, program_date_time_ms: u64) -> Pushed {
        let open_is_full = self
            .open
            .as_ref()
            .is_some_and(|s| s.parts.len() >= self.max_parts_per_segment);
        let must_start =
            part.starts_segment || self.pending_init || self.pending_discontinuity || open_is_full;
        let mut completed_segment = None;
        let mut evicted_segments = Vec::new();
        let mut open = match self.open.take() {
            Some(open) if !must_start => open,
            previous => {
                if let Some(previous) = previous {
                    completed_segment = Some(self.close(previous));
                }
                evicted_segments = self.evict();
                self.pending_init = false;
                Segment {
                    msn: self.next_msn,
                    parts: Vec::new(),
                    duration: Duration::ZERO,
                    program_date_time_ms,
                    // A discontinuity before the first segment ever has nothing to
                    // separate from.
                    discontinuity: std::mem::take(&mut self.pending_discontinuity)
                        && !self.segments.is_empty(),
                    init: self.init,
                }
            }
        };
        let id = PartId {
            msn: open.msn,
            part: u32::try_from(open.parts.len()).unwrap_or(u32::MAX),
        };
        open.parts.push(part);
        open.duration = open.duration.saturating_add(part.duration);
        self.open = Some(open);
        Pushed {
            id,
            evicted_segments,
            completed_segment,
        }
    }

    /// Records a whole segment at once (the MPEG-TS rendition, which has no parts):
    /// one independent part that starts and ends it. `completed_segment` is its msn.
    pub fn push_segment(&mut self, duration: Duration, program_date_time_ms: u64) -> Pushed {
        let mut pushed = self.push_part(
            PartInfo {
                duration,
                independent: true,
                starts_segment: true,
            },
            program_date_time_ms,
        );
        pushed.completed_segment = self.end_segment();
        pushed
    }

    /// Closes the open segment without waiting for the next part (the publisher
    /// left). Returns its msn, or `None` when no segment was open.
    pub fn end_segment(&mut self) -> Option<u64> {
        let segment = self.open.take()?;
        Some(self.close(segment))
    }

    fn close(&mut self, segment: Segment) -> u64 {
        let msn = segment.msn;
        self.segments.push_back(segment);
        self.next_msn = msn.saturating_add(1);
        msn
    }

    /// Keeps `window_segments` complete segments once a new one is open (a closed
    /// playlist keeps one more until then, so `end_segment` never evicts).
    fn evict(&mut self) -> Vec<u64> {
        let mut evicted = Vec::new();
        while self.segments.len() > self.settings.window_segments {
            if let Some(old) = self.segments.pop_front() {
                evicted.push(old.msn);
                // The discontinuity sequence counts the EXT-X-DISCONTINUITY tags that
                // left the playlist; the next segment's own tag, if any, stays.
                if old.discontinuity {
                    self.discontinuity_sequence += 1;
                }
            }
        }
        evicted
    }

    /// The last part pushed, if it is still in the window.
    pub fn latest(&self) -> Option<PartId> {
        let segment = self.open.as_ref().or_else(|| self.segments.back())?;
        let last = segment.parts.len().checked_sub(1)?;
        Some(PartId {
            msn: segment.msn,
            part: u32::try_from(last).unwrap_or(u32::MAX),
        })
    }

    /// The part a preload hint names: the next one to be pushed.
    pub fn next_part(&self) -> PartId {
        match &self.open {
            Some(open) => PartId {
                msn: open.msn,
                part: u32::try_from(open.parts.len()).unwrap_or(u32::MAX),
            },
            None => PartId {
                msn: self.next_msn,
                part: 0,
            },
        }
    }

    /// `EXT-X-TARGETDURATION`; a blocked playlist request waits at most three times
    /// this (RFC 8216bis 6.2.5.2).
    pub fn target_duration(&self) -> Duration {
        Duration::from_secs(self.target_duration_secs)
    }

    pub(crate) fn target_duration_secs(&self) -> u64 {
        self.target_duration_secs
    }

    /// The msn of the first segment in the window (`EXT-X-MEDIA-SEQUENCE`).
    pub fn media_sequence(&self) -> u64 {
        self.segments
            .front()
            .or(self.open.as_ref())
            .map_or(self.next_msn, |s| s.msn)
    }

    /// Whether a requested resource is still in the window: an init version some
    /// listed segment uses (or the one in force), a complete segment, or a part of a
    /// complete or the open segment. A part not yet pushed is `false`; ask
    /// [`Playlist::readiness`] whether to wait for it.
    pub fn lookup(&self, resource: &Resource) -> bool {
        match *resource {
            Resource::Init(version) => {
                self.init == Some(version) || self.all_segments().any(|s| s.init == Some(version))
            }
            Resource::Segment(msn) => self.complete_segment(msn).is_some(),
            Resource::Part(id) => self
                .parts_in(id.msn)
                .is_some_and(|n| (id.part as usize) < n),
        }
    }

    /// The number of parts and the duration of a complete segment in the window.
    pub fn segment_summary(&self, msn: u64) -> Option<(u32, Duration)> {
        let s = self.complete_segment(msn)?;
        Some((u32::try_from(s.parts.len()).unwrap_or(u32::MAX), s.duration))
    }

    pub(crate) fn complete_segment(&self, msn: u64) -> Option<&Segment> {
        let first = self.segments.front()?.msn;
        let index = usize::try_from(msn.checked_sub(first)?).ok()?;
        self.segments.get(index)
    }

    /// Parts of a complete or the open segment.
    pub(crate) fn parts_in(&self, msn: u64) -> Option<usize> {
        match &self.open {
            Some(open) if open.msn == msn => Some(open.parts.len()),
            _ => self.complete_segment(msn).map(|s| s.parts.len()),
        }
    }

    pub(crate) fn all_segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter().chain(self.open.as_ref())
    }
}
