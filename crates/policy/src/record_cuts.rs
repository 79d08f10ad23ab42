//! Where the recorder begins and ends its files.

use std::time::Duration;

use onair_media::{FrameKind, MediaFrame};

use crate::{CodecInfo, Moment};

/// The `[record]` settings that decide cuts (docs/recording.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CutRules {
    /// A file is cut at the first keyframe once it holds this much media; 0: never
    /// (`record.max_duration_s`).
    pub max_duration_s: u64,
    /// A file is cut at the first keyframe once it is this large; 0: never
    /// (`record.max_bytes`).
    pub max_bytes: u64,
    /// After a file could not be created, written or closed, no new file is tried for
    /// this long, then at the next frame that may start one (`record.retry_interval_ms`).
    pub retry_interval: Duration,
}

/// What the recorder does next, for the frame last handed to
/// [`RecordCuts::handle_frame`] (or after a skip or a failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordAction {
    /// Finish and close the open file: a cut (its duration or size reached, a codec
    /// header changed), the tap skipped frames, or the file failed.
    Close,
    /// Create a file that starts with this frame: first what [`RecordCuts::headers`]
    /// says (metadata and codec headers), then the frame (a `Write` follows). Answer
    /// with [`RecordCuts::handle_opened`] or [`RecordCuts::handle_failed`] before
    /// polling again.
    Open,
    /// Hand what is buffered to the operating system: a video keyframe.
    Flush,
    /// Append the frame at `timestamp`, counted from the file's first frame.
    Write { timestamp: u32 },
}

/// What a new file starts with: the stream's latest metadata and codec headers, and
/// which media it carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FileHeaders<'a> {
    pub metadata: Option<&'a MediaFrame>,
    pub video_header: Option<&'a MediaFrame>,
    pub audio_header: Option<&'a MediaFrame>,
    /// A video header arrived, or the metadata announces video.
    pub has_video: bool,
    pub has_audio: bool,
}

/// The recorder's file boundaries as a state machine without IO: it is fed every frame
/// of the tap with the open file's size and the time, and answers what to do with it.
///
/// The rules (what `crates/server/src/record/recorder.rs` decided inline):
/// - Metadata and codec headers are kept, never written mid-file: each file starts
///   with the latest ones, so it plays on its own. A header that differs from the last
///   of its kind (encoders resend identical ones) cuts the open file at the next frame
///   that may start one.
/// - A file starts at a video keyframe, or, in a stream without video (no video header
///   and no metadata announcing one), at any audio frame. Frames before are skipped.
/// - The open file is cut at the first such frame once it holds
///   [`max_duration_s`](CutRules::max_duration_s) of media or
///   [`max_bytes`](CutRules::max_bytes), or after a header change.
/// - When the tap skipped frames ([`handle_fell_behind`](RecordCuts::handle_fell_behind))
///   the file ends at once; the next keyframe starts another.
/// - A failure to create, write, flush or close a file
///   ([`handle_failed`](RecordCuts::handle_failed)) closes it, and no file is tried
///   before [`retry_interval`](CutRules::retry_interval) has passed.
/// - Timestamps start at 0 in every file: the first frame's decode time is the file's
///   0. Audio before the first picture's presentation time is left out (it has no
///   picture, and a player would start the file's clock at it, off the video's frame
///   grid).
/// - Every video keyframe flushes the file.
///
/// Driven as the other sans-IO machines are: `handle_*`, then
/// [`poll_action`](RecordCuts::poll_action) until `None`, doing each action and
/// reporting how the IO went. Time is any [`Moment`] (`Instant` in the server). A
/// recorder over it, with a `Vec` for a file:
///
/// ```
/// use std::time::Duration;
/// # use bytes::Bytes;
/// use onair_media::{FrameKind, MediaFrame};
/// use onair_policy::{CutRules, RecordAction, RecordCuts};
///
/// # let frame = |kind, timestamp, keyframe| MediaFrame {
/// #     kind, timestamp, keyframe, sequence_header: false, payload: Bytes::from_static(&[0; 8]),
/// # };
/// let frames = [
///     frame(FrameKind::Video, 0, false), // before the first keyframe: skipped
///     frame(FrameKind::Video, 40, true),
///     frame(FrameKind::Audio, 50, false),
///     frame(FrameKind::Video, 80, false),
/// ];
/// let mut cuts = RecordCuts::new(CutRules {
///     max_duration_s: 3_600,
///     max_bytes: 0,
///     retry_interval: Duration::from_secs(10),
/// });
/// let mut file: Option<Vec<(u32, FrameKind)>> = None;
/// let now = Duration::ZERO; // Instant::now() in the server
/// for frame in &frames {
///     let size = file.as_ref().map_or(0, |f| f.len() as u64);
///     cuts.handle_frame(frame, size, now);
///     while let Some(action) = cuts.poll_action() {
///         match action {
///             // Finish, flush and sync; if that fails: cuts.handle_failed(now).
///             RecordAction::Close => file = None,
///             // Create the file; if that fails: cuts.handle_failed(now), and go on
///             // polling. Then write what cuts.headers() holds; a write that fails is
///             // cuts.handle_failed(now) too (and the next poll says Close).
///             RecordAction::Open => {
///                 file = Some(Vec::new());
///                 cuts.handle_opened();
///             }
///             RecordAction::Flush => {}
///             RecordAction::Write { timestamp } => {
///                 if let Some(file) = &mut file {
///                     file.push((timestamp, frame.kind));
///                 }
///             }
///         }
///     }
/// }
/// assert_eq!(
///     file.unwrap(),
///     [(0, FrameKind::Video), (10, FrameKind::Audio), (40, FrameKind::Video)]
/// );
/// ```
///
/// In the server's recorder this replaces `Headers`, `cut_pending`, `retry_at`,
/// `cut_due` and the branches of `handle` / `open_file`: `Recorder::handle` becomes
/// `handle_frame(frame, open.file.bytes(), Instant::now())` and the poll loop;
/// `fell_behind` calls [`handle_fell_behind`](RecordCuts::handle_fell_behind) and
/// polls; `failed` calls [`handle_failed`](RecordCuts::handle_failed) with
/// `Instant::now()`; `FileStart` is [`headers`](RecordCuts::headers).
#[derive(Debug)]
pub struct RecordCuts<T> {
    rules: CutRules,
    codecs: CodecInfo,
    metadata: Option<MediaFrame>,
    video_header: Option<MediaFrame>,
    audio_header: Option<MediaFrame>,
    file: Option<OpenFile>,
    /// A codec header changed: the next frame that may start a file starts one.
    cut_pending: bool,
    /// The open file ends at the next poll: frames were skipped, or it failed.
    close_pending: bool,
    /// No file is tried before then, after one failed.
    retry_at: Option<T>,
    /// The frame being decided, until its last action is polled.
    current: Option<Current<T>>,
}

/// What the machine knows of the open file.
#[derive(Debug, Clone, Copy)]
struct OpenFile {
    /// The stream timestamp the file's 0 is: its first frame's decode time.
    base: u32,
    /// Audio before this stream timestamp (the first picture's presentation time) is
    /// left out.
    audio_from: u32,
}

#[derive(Debug, Clone, Copy)]
struct Current<T> {
    kind: FrameKind,
    timestamp: u32,
    video_keyframe: bool,
    /// A video keyframe, or an audio frame in a stream without video.
    starts_file: bool,
    /// The frame's composition time offset, for a file that starts with it.
    composition: u32,
    file_bytes: u64,
    now: T,
    stage: Stage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Whether the open file is cut here.
    Boundary,
    /// Whether a file opens here.
    Open,
    /// `Open` was polled; waiting for `handle_opened` or `handle_failed`.
    AwaitOpen,
    Flush,
    Write,
}

impl<T: Moment> RecordCuts<T> {
    pub fn new(rules: CutRules) -> Self {
        Self {
            rules,
            codecs: CodecInfo::default(),
            metadata: None,
            video_header: None,
            audio_header: None,
            file: None,
            cut_pending: false,
            close_pending: false,
            retry_at: None,
            current: None,
        }
    }

    /// One frame of the tap, in order. `file_bytes` is the size of the open file
    /// (buffered bytes included; anything when none is open), `now` the time.
    /// Actions still unpolled for the previous frame are dropped.
    pub fn handle_frame(&mut self, frame: &MediaFrame, file_bytes: u64, now: T) {
        self.current = None;
        match frame.kind {
            FrameKind::Script => {
                self.codecs.handle_frame(frame);
                self.metadata = Some(frame.clone());
                return;
            }
            kind if frame.sequence_header => {
                self.codecs.handle_frame(frame);
                let slot = match kind {
                    FrameKind::Video => &mut self.video_header,
                    _ => &mut self.audio_header,
                };
                if slot.as_ref().map(|h| &h.payload) != Some(&frame.payload) {
                    *slot = Some(frame.clone());
                    // Encoders resend identical headers; only a new one needs a new file.
                    self.cut_pending |= self.file.is_some();
                }
                return;
            }
            _ => {}
        }
        let video_keyframe = frame.kind == FrameKind::Video && frame.keyframe;
        let starts_file =
            video_keyframe || (frame.kind == FrameKind::Audio && !self.codecs.has_video());
        let composition = if starts_file && frame.kind == FrameKind::Video {
            onair_flv::parse_video_tag(&frame.payload)
                .map_or(0, |tag| u32::try_from(tag.composition_time).unwrap_or(0))
        } else {
            0
        };
        self.current = Some(Current {
            kind: frame.kind,
            timestamp: frame.timestamp,
            video_keyframe,
            starts_file,
            composition,
            file_bytes,
            now,
            stage: Stage::Boundary,
        });
    }

    /// The tap skipped frames (the recorder fell behind, or its tap was too slow and
    /// was replaced): the open file ends at once, the next keyframe starts another.
    pub fn handle_fell_behind(&mut self) {
        self.close_pending |= self.file.is_some();
    }

    /// The file [`RecordAction::Open`] asked for was created.
    pub fn handle_opened(&mut self) {
        let Some(current) = self
            .current
            .as_mut()
            .filter(|c| c.stage == Stage::AwaitOpen)
        else {
            return;
        };
        current.stage = Stage::Flush;
        self.cut_pending = false;
        self.file = Some(OpenFile {
            base: current.timestamp,
            audio_from: current.timestamp.saturating_add(current.composition),
        });
    }

    /// Creating, writing, flushing or closing a file failed at `now`. An open file is
    /// closed at the next poll (without its ending: what reached the disk is what
    /// there is); no file is tried for [`CutRules::retry_interval`].
    pub fn handle_failed(&mut self, now: T) {
        self.retry_at = Some(now + self.rules.retry_interval);
        if let Some(current) = self
            .current
            .as_mut()
            .filter(|c| c.stage == Stage::AwaitOpen)
        {
            // The file asked for was never created: nothing to close.
            current.stage = Stage::Flush;
            return;
        }
        if self.file.is_some() {
            self.close_pending = true;
        }
    }

    /// The next thing to do, or `None` when the frame is done with.
    pub fn poll_action(&mut self) -> Option<RecordAction> {
        if self.close_pending {
            self.close_pending = false;
            if self.file.take().is_some() {
                return Some(RecordAction::Close);
            }
        }
        loop {
            let current = self.current.as_mut()?;
            match current.stage {
                Stage::Boundary => {
                    current.stage = Stage::Open;
                    let cut = current.starts_file
                        && self.file.is_some_and(|file| {
                            cut_due(&self.rules, self.cut_pending, file, current)
                        });
                    if cut {
                        self.file = None;
                        return Some(RecordAction::Close);
                    }
                }
                Stage::Open => {
                    current.stage = Stage::Flush;
                    if !current.starts_file || self.file.is_some() {
                        continue;
                    }
                    if self.retry_at.is_some_and(|at| current.now < at) {
                        continue;
                    }
                    self.retry_at = None;
                    current.stage = Stage::AwaitOpen;
                    return Some(RecordAction::Open);
                }
                // Polled without an answer: taken as not opened.
                Stage::AwaitOpen => current.stage = Stage::Flush,
                Stage::Flush => {
                    current.stage = Stage::Write;
                    if current.video_keyframe && self.file.is_some() {
                        return Some(RecordAction::Flush);
                    }
                }
                Stage::Write => {
                    let current = self.current.take()?;
                    let file = self.file?;
                    if current.kind == FrameKind::Audio && current.timestamp < file.audio_from {
                        return None;
                    }
                    return Some(RecordAction::Write {
                        timestamp: current.timestamp.saturating_sub(file.base),
                    });
                }
            }
        }
    }

    /// What a new file starts with.
    pub fn headers(&self) -> FileHeaders<'_> {
        FileHeaders {
            metadata: self.metadata.as_ref(),
            video_header: self.video_header.as_ref(),
            audio_header: self.audio_header.as_ref(),
            has_video: self.codecs.has_video(),
            has_audio: self.audio_header.is_some(),
        }
    }

    /// What the stream's metadata and headers say, as far as the recorder has seen.
    pub fn codecs(&self) -> &CodecInfo {
        &self.codecs
    }

    /// Whether a file is open, as far as the machine was told.
    pub fn is_open(&self) -> bool {
        self.file.is_some()
    }

    /// No file is tried before then, after a failure.
    pub fn retry_at(&self) -> Option<T> {
        self.retry_at
    }
}

/// Whether the open file ends before `current`, a frame that may start one.
fn cut_due<T>(rules: &CutRules, cut_pending: bool, file: OpenFile, current: &Current<T>) -> bool {
    let media_ms = u64::from(current.timestamp.saturating_sub(file.base));
    cut_pending
        || (rules.max_duration_s > 0 && media_ms >= rules.max_duration_s.saturating_mul(1000))
        || (rules.max_bytes > 0 && current.file_bytes >= rules.max_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use onair_amf0::Value;

    use crate::fixtures::{self, audio, header, keyframe, metadata, picture};
    use RecordAction::{Close, Flush, Open, Write};

    const RETRY: Duration = Duration::from_secs(10);

    /// A file as the test recorder keeps it.
    #[derive(Debug, Default)]
    struct File {
        /// What it started with: metadata, video header, audio header.
        started_with: [bool; 3],
        frames: Vec<(FrameKind, u32)>,
        bytes: u64,
    }

    /// The server's recorder over the machine, with a disk that fails on demand.
    struct Recorder {
        cuts: RecordCuts<Duration>,
        open: Option<File>,
        closed: Vec<File>,
        fail_create: bool,
        fail_write: bool,
        fail_close: bool,
    }

    impl Recorder {
        fn new(max_duration_s: u64, max_bytes: u64) -> Self {
            Self {
                cuts: RecordCuts::new(CutRules {
                    max_duration_s,
                    max_bytes,
                    retry_interval: RETRY,
                }),
                open: None,
                closed: Vec::new(),
                fail_create: false,
                fail_write: false,
                fail_close: false,
            }
        }

        /// Feeds one frame at `now_ms` and does what the machine says; returns it.
        fn feed(&mut self, frame: &MediaFrame, now_ms: u64) -> Vec<RecordAction> {
            let now = Duration::from_millis(now_ms);
            let bytes = self.open.as_ref().map_or(0, |f| f.bytes);
            self.cuts.handle_frame(frame, bytes, now);
            self.drive(frame, now)
        }

        fn fell_behind(&mut self, now_ms: u64) -> Vec<RecordAction> {
            self.cuts.handle_fell_behind();
            self.drive(&audio(0), Duration::from_millis(now_ms))
        }

        fn drive(&mut self, frame: &MediaFrame, now: Duration) -> Vec<RecordAction> {
            let mut actions = Vec::new();
            while let Some(action) = self.cuts.poll_action() {
                actions.push(action);
                match action {
                    Close => {
                        self.closed.extend(self.open.take());
                        if self.fail_close {
                            self.cuts.handle_failed(now);
                        }
                    }
                    Open => {
                        if self.fail_create {
                            self.cuts.handle_failed(now);
                            continue;
                        }
                        let h = self.cuts.headers();
                        let started_with = [
                            h.metadata.is_some(),
                            h.video_header.is_some(),
                            h.audio_header.is_some(),
                        ];
                        self.open = Some(File {
                            started_with,
                            ..File::default()
                        });
                        self.cuts.handle_opened();
                    }
                    Flush => {}
                    Write { timestamp } => {
                        if self.fail_write {
                            self.cuts.handle_failed(now);
                            continue;
                        }
                        let file = self.open.as_mut().unwrap();
                        file.frames.push((frame.kind, timestamp));
                        file.bytes += frame.payload.len() as u64;
                    }
                }
            }
            assert_eq!(self.cuts.is_open(), self.open.is_some());
            actions
        }

        fn file(&self) -> &File {
            self.open.as_ref().unwrap()
        }
    }

    /// A video keyframe whose tag says `cts` ms of composition offset.
    fn keyframe_with_cts(timestamp: u32, cts: u8) -> MediaFrame {
        MediaFrame {
            payload: Bytes::from(vec![0x17, 1, 0, 0, cts, 0, 0, 0, 1, 0x65]),
            ..keyframe(timestamp)
        }
    }

    fn with_headers(recorder: &mut Recorder) {
        let flv = fixtures::TESTSRC2_320X240;
        assert!(recorder
            .feed(&metadata(&[("width", Value::Number(320.0))]), 0)
            .is_empty());
        let video = fixtures::sequence_header(flv, FrameKind::Video);
        assert!(recorder.feed(&video, 0).is_empty());
        let audio = fixtures::sequence_header(flv, FrameKind::Audio);
        assert!(recorder.feed(&audio, 0).is_empty());
    }

    #[test]
    fn a_file_starts_at_the_first_keyframe_with_the_headers() {
        let mut r = Recorder::new(3_600, 0);
        with_headers(&mut r);
        assert!(
            r.feed(&picture(960), 0).is_empty(),
            "no file before a keyframe"
        );
        assert!(r.feed(&audio(970), 0).is_empty());
        assert_eq!(
            r.feed(&keyframe(1_000), 0),
            [Open, Flush, Write { timestamp: 0 }]
        );
        assert_eq!(r.file().started_with, [true, true, true]);
        assert_eq!(r.feed(&audio(1_010), 0), [Write { timestamp: 10 }]);
        assert_eq!(r.feed(&picture(1_040), 0), [Write { timestamp: 40 }]);
        assert_eq!(
            r.feed(&keyframe(2_000), 0),
            [Flush, Write { timestamp: 1_000 }]
        );
        // Headers and metadata are never written mid-file.
        assert!(r.feed(&metadata(&[]), 0).is_empty());
        assert_eq!(r.file().frames.len(), 4);
    }

    #[test]
    fn audio_before_the_first_picture_is_shown_is_left_out() {
        let mut r = Recorder::new(3_600, 0);
        with_headers(&mut r);
        assert_eq!(
            r.feed(&keyframe_with_cts(1_000, 80), 0),
            [Open, Flush, Write { timestamp: 0 }]
        );
        assert!(r.feed(&audio(1_050), 0).is_empty());
        assert!(r.feed(&audio(1_079), 0).is_empty());
        assert_eq!(r.feed(&audio(1_080), 0), [Write { timestamp: 80 }]);
        // Pictures are never left out.
        assert_eq!(r.feed(&picture(1_040), 0), [Write { timestamp: 40 }]);
    }

    #[test]
    fn cut_at_the_first_keyframe_past_the_max_duration() {
        let mut r = Recorder::new(2, 0);
        with_headers(&mut r);
        r.feed(&keyframe(0), 0);
        assert_eq!(
            r.feed(&keyframe(1_500), 0),
            [Flush, Write { timestamp: 1_500 }]
        );
        // Past 2 s, but not a keyframe: the file goes on.
        assert_eq!(r.feed(&picture(2_500), 0), [Write { timestamp: 2_500 }]);
        assert_eq!(r.feed(&audio(2_990), 0), [Write { timestamp: 2_990 }]);
        assert_eq!(
            r.feed(&keyframe(3_000), 0),
            [Close, Open, Flush, Write { timestamp: 0 }]
        );
        assert_eq!(r.closed.len(), 1);
        assert_eq!(r.closed[0].frames.last(), Some(&(FrameKind::Audio, 2_990)));
        assert_eq!(r.file().started_with, [true, true, true], "headers again");
        // A keyframe exactly at the limit cuts.
        assert_eq!(
            r.feed(&keyframe(5_000), 0),
            [Close, Open, Flush, Write { timestamp: 0 }]
        );
    }

    #[test]
    fn cut_at_the_first_keyframe_past_the_max_size() {
        let mut r = Recorder::new(0, 250);
        with_headers(&mut r);
        r.feed(&keyframe(0), 0); // 100 bytes
        r.feed(&keyframe(40), 0); // 200
        for ts in [80, 120, 160, 200, 240] {
            assert_eq!(r.feed(&picture(ts), 0), [Write { timestamp: ts }]);
        }
        assert_eq!(r.file().bytes, 250);
        assert_eq!(
            r.feed(&keyframe(280), 0),
            [Close, Open, Flush, Write { timestamp: 0 }]
        );
    }

    #[test]
    fn no_limits_never_cut() {
        let mut r = Recorder::new(0, 0);
        with_headers(&mut r);
        for s in 0..100 {
            r.feed(&keyframe(s * 100_000), 0);
        }
        assert!(r.closed.is_empty());
    }

    #[test]
    fn a_new_codec_header_cuts_at_the_next_keyframe() {
        let mut r = Recorder::new(3_600, 0);
        with_headers(&mut r);
        r.feed(&keyframe(0), 0);
        // The same header again (encoders resend them): nothing.
        let same = fixtures::sequence_header(fixtures::TESTSRC2_320X240, FrameKind::Video);
        assert!(r.feed(&same, 0).is_empty());
        assert_eq!(
            r.feed(&keyframe(1_000), 0),
            [Flush, Write { timestamp: 1_000 }]
        );
        // A new one: kept, and the file ends at the next keyframe, not before.
        let new = fixtures::sequence_header(fixtures::TESTSRC2_1280X720, FrameKind::Video);
        assert!(r.feed(&new, 0).is_empty());
        assert_eq!(r.feed(&picture(1_040), 0), [Write { timestamp: 1_040 }]);
        assert_eq!(r.feed(&audio(1_050), 0), [Write { timestamp: 1_050 }]);
        assert_eq!(
            r.feed(&keyframe(2_000), 0),
            [Close, Open, Flush, Write { timestamp: 0 }]
        );
        assert_eq!(
            r.cuts.headers().video_header.unwrap().payload,
            new.payload,
            "the new file starts with the new header"
        );
        // Cut once only.
        assert_eq!(
            r.feed(&keyframe(3_000), 0),
            [Flush, Write { timestamp: 1_000 }]
        );

        // An audio header change cuts too.
        assert!(r
            .feed(&header(FrameKind::Audio, &[0x11, 0x88]), 0)
            .is_empty());
        assert_eq!(
            r.feed(&keyframe(4_000), 0),
            [Close, Open, Flush, Write { timestamp: 0 }]
        );
    }

    #[test]
    fn a_header_change_with_no_file_open_cuts_nothing_later() {
        let mut r = Recorder::new(3_600, 0);
        with_headers(&mut r);
        let new = fixtures::sequence_header(fixtures::TESTSRC2_1280X720, FrameKind::Video);
        r.feed(&new, 0);
        assert_eq!(
            r.feed(&keyframe(0), 0),
            [Open, Flush, Write { timestamp: 0 }]
        );
        assert_eq!(
            r.feed(&keyframe(1_000), 0),
            [Flush, Write { timestamp: 1_000 }]
        );
    }

    #[test]
    fn a_skip_ends_the_file_at_once_and_the_next_keyframe_starts_one() {
        let mut r = Recorder::new(3_600, 0);
        with_headers(&mut r);
        r.feed(&keyframe(0), 0);
        r.feed(&picture(40), 0);
        assert_eq!(r.fell_behind(0), [Close]);
        assert_eq!(r.closed.len(), 1);
        assert!(r.feed(&picture(5_040), 0).is_empty());
        assert!(r.feed(&audio(5_050), 0).is_empty());
        assert_eq!(
            r.feed(&keyframe(6_000), 0),
            [Open, Flush, Write { timestamp: 0 }]
        );
        // A skip with no file open does nothing.
        r.feed(&keyframe(7_000), 0);
        assert_eq!(r.fell_behind(0), [Close]);
        assert!(r.fell_behind(0).is_empty());
    }

    #[test]
    fn audio_only_streams_start_and_cut_files_without_keyframes() {
        let mut r = Recorder::new(2, 0);
        r.feed(&metadata(&[("audiocodecid", Value::Number(10.0))]), 0);
        r.feed(&header(FrameKind::Audio, &[0x12, 0x10]), 0);
        assert_eq!(r.feed(&audio(500), 0), [Open, Write { timestamp: 0 }]);
        assert_eq!(r.file().started_with, [true, false, true]);
        assert!(!r.cuts.headers().has_video);
        for ts in (523..2_500).step_by(23) {
            assert_eq!(
                r.feed(&audio(ts), 0),
                [Write {
                    timestamp: ts - 500
                }]
            );
        }
        // The first audio frame 2 s in cuts: no keyframe needed, and no flush.
        assert_eq!(
            r.feed(&audio(2_500), 0),
            [Close, Open, Write { timestamp: 0 }]
        );
        // A header change cuts at the next audio frame.
        r.feed(&header(FrameKind::Audio, &[0x11, 0x88]), 0);
        assert_eq!(
            r.feed(&audio(2_523), 0),
            [Close, Open, Write { timestamp: 0 }]
        );
    }

    #[test]
    fn audio_waits_for_a_keyframe_when_the_metadata_announces_video() {
        let mut r = Recorder::new(3_600, 0);
        r.feed(&metadata(&[("width", Value::Number(640.0))]), 0);
        r.feed(&header(FrameKind::Audio, &[0x12, 0x10]), 0);
        assert!(r.cuts.headers().has_video, "before any video header");
        assert!(r.feed(&audio(0), 0).is_empty());
        assert!(r.feed(&audio(23), 0).is_empty());
        assert_eq!(
            r.feed(&keyframe(40), 0),
            [Open, Flush, Write { timestamp: 0 }]
        );
        assert_eq!(r.file().started_with, [true, false, true]);
    }

    #[test]
    fn a_failed_open_waits_the_retry_interval() {
        let mut r = Recorder::new(3_600, 0);
        with_headers(&mut r);
        r.fail_create = true;
        assert_eq!(r.feed(&keyframe(0), 1_000), [Open]);
        assert_eq!(r.cuts.retry_at(), Some(Duration::from_millis(11_000)));
        assert!(r.feed(&picture(40), 1_040).is_empty());
        r.fail_create = false;
        // Keyframes before the retry time try nothing.
        assert!(r.feed(&keyframe(1_000), 2_000).is_empty());
        assert!(r.feed(&keyframe(9_999), 10_999).is_empty());
        // At the retry time, the next keyframe opens a file.
        assert_eq!(
            r.feed(&keyframe(10_000), 11_000),
            [Open, Flush, Write { timestamp: 0 }]
        );
        assert_eq!(r.cuts.retry_at(), None);
    }

    #[test]
    fn a_failed_write_closes_the_file_and_waits_the_retry_interval() {
        let mut r = Recorder::new(3_600, 0);
        with_headers(&mut r);
        r.feed(&keyframe(0), 0);
        r.fail_write = true;
        assert_eq!(r.feed(&picture(40), 40), [Write { timestamp: 40 }, Close]);
        r.fail_write = false;
        assert!(r.feed(&picture(80), 80).is_empty());
        assert!(r.feed(&keyframe(1_000), 1_000).is_empty());
        assert_eq!(
            r.feed(&keyframe(10_040), 10_040),
            [Open, Flush, Write { timestamp: 0 }]
        );
    }

    #[test]
    fn a_failed_close_at_a_cut_opens_no_file_until_the_retry() {
        let mut r = Recorder::new(1, 0);
        with_headers(&mut r);
        r.feed(&keyframe(0), 0);
        r.fail_close = true;
        assert_eq!(r.feed(&keyframe(1_000), 1_000), [Close]);
        r.fail_close = false;
        assert!(r.feed(&keyframe(2_000), 2_000).is_empty());
        assert_eq!(
            r.feed(&keyframe(11_000), 11_000),
            [Open, Flush, Write { timestamp: 0 }]
        );
    }

    #[test]
    fn an_open_left_unanswered_is_not_a_file() {
        let mut cuts = RecordCuts::new(CutRules {
            max_duration_s: 0,
            max_bytes: 0,
            retry_interval: RETRY,
        });
        cuts.handle_frame(&keyframe(0), 0, Duration::ZERO);
        assert_eq!(cuts.poll_action(), Some(Open));
        assert_eq!(cuts.poll_action(), None);
        assert!(!cuts.is_open());
        // Nor is one answered too late.
        cuts.handle_opened();
        assert!(!cuts.is_open());
        assert_eq!(cuts.retry_at(), None, "and it is no failure either");
    }

    #[test]
    fn timestamps_start_at_zero_in_every_file() {
        let mut r = Recorder::new(1, 0);
        with_headers(&mut r);
        for (i, ts) in (0..4_000).step_by(40).enumerate() {
            let frame = if ts % 1_000 == 0 {
                keyframe(ts)
            } else {
                picture(ts)
            };
            r.feed(&frame, i as u64);
            r.feed(&audio(ts + 20), i as u64);
        }
        assert_eq!(r.closed.len(), 3);
        for file in r.closed.iter().chain(r.open.iter()) {
            assert_eq!(file.frames[0], (FrameKind::Video, 0));
            assert_eq!(file.frames.last(), Some(&(FrameKind::Audio, 980)));
        }
    }

    /// xorshift64: deterministic streams without a random number crate.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// The recorder as `crates/server/src/record/recorder.rs` has it, transcribed line
    /// by line with its IO replaced by a log and a disk that fails on schedule, to
    /// hold the machine to the same decisions.
    mod transcribed {
        use super::*;

        #[derive(Debug, Clone, PartialEq)]
        pub(super) enum Event {
            Open {
                started_with: [bool; 3],
                has_video: bool,
            },
            Write(FrameKind, u32),
            Flush,
            Close,
        }

        /// Which IO operations fail: the n-th one asked about, by a fixed pseudo-random
        /// sequence, so the transcription and the machine's driver see the same disk.
        pub(super) struct Disk {
            rng: Rng,
            fail_one_in: u64,
        }

        impl Disk {
            pub(super) fn new(seed: u64, fail_one_in: u64) -> Self {
                Self {
                    rng: Rng(seed | 1),
                    fail_one_in,
                }
            }

            pub(super) fn fails(&mut self) -> bool {
                self.rng.next() < u64::MAX / self.fail_one_in
            }
        }

        struct OpenFile {
            base: u32,
            audio_from: u32,
            bytes: u64,
            failed: bool,
        }

        pub(super) struct Recorder {
            pub(super) rules: CutRules,
            metadata: Option<MediaFrame>,
            video: Option<MediaFrame>,
            audio: Option<MediaFrame>,
            metadata_says_video: bool,
            open: Option<OpenFile>,
            cut_pending: bool,
            retry_at: Option<Duration>,
            pub(super) disk: Disk,
            pub(super) log: Vec<Event>,
        }

        impl Recorder {
            pub(super) fn new(rules: CutRules, disk: Disk) -> Self {
                Self {
                    rules,
                    metadata: None,
                    video: None,
                    audio: None,
                    metadata_says_video: false,
                    open: None,
                    cut_pending: false,
                    retry_at: None,
                    disk,
                    log: Vec::new(),
                }
            }

            fn has_video(&self) -> bool {
                self.video.is_some() || self.metadata_says_video
            }

            pub(super) fn handle(&mut self, frame: &MediaFrame, now: Duration) {
                match frame.kind {
                    FrameKind::Script => {
                        self.metadata_says_video = onair_flv::parse_metadata(&frame.payload)
                            .is_ok_and(|m| m.width.is_some() || m.video_codec_id.is_some());
                        self.metadata = Some(frame.clone());
                        return;
                    }
                    kind if frame.sequence_header => {
                        let slot = match kind {
                            FrameKind::Video => &mut self.video,
                            _ => &mut self.audio,
                        };
                        if slot.as_ref().map(|h| &h.payload) != Some(&frame.payload) {
                            *slot = Some(frame.clone());
                            self.cut_pending |= self.open.is_some();
                        }
                        return;
                    }
                    _ => {}
                }
                let video_keyframe = frame.kind == FrameKind::Video && frame.keyframe;
                let starts_file =
                    video_keyframe || (frame.kind == FrameKind::Audio && !self.has_video());
                if starts_file {
                    if self
                        .open
                        .as_ref()
                        .is_some_and(|open| self.cut_due(open, frame))
                    {
                        self.close_file(now);
                    }
                    if self.open.is_none() {
                        self.open_file(frame, now);
                    }
                }
                if video_keyframe {
                    self.flush(now);
                }
                let Some(open) = &mut self.open else {
                    return;
                };
                if frame.kind == FrameKind::Audio && frame.timestamp < open.audio_from {
                    return;
                }
                let timestamp = frame.timestamp.saturating_sub(open.base);
                self.log.push(Event::Write(frame.kind, timestamp));
                self.write_out(frame.payload.len() as u64 + 15, now);
            }

            fn cut_due(&self, open: &OpenFile, frame: &MediaFrame) -> bool {
                let media_ms = u64::from(frame.timestamp.saturating_sub(open.base));
                self.cut_pending
                    || (self.rules.max_duration_s > 0
                        && media_ms >= self.rules.max_duration_s * 1000)
                    || (self.rules.max_bytes > 0 && open.bytes >= self.rules.max_bytes)
            }

            pub(super) fn fell_behind(&mut self, now: Duration) {
                self.close_file(now);
            }

            fn open_file(&mut self, first: &MediaFrame, now: Duration) {
                if self.retry_at.is_some_and(|at| now < at) {
                    return;
                }
                self.retry_at = None;
                if self.disk.fails() {
                    self.failed(now);
                    return;
                }
                self.log.push(Event::Open {
                    started_with: [
                        self.metadata.is_some(),
                        self.video.is_some(),
                        self.audio.is_some(),
                    ],
                    has_video: self.has_video(),
                });
                self.cut_pending = false;
                let composition = match first.kind {
                    FrameKind::Video => onair_flv::parse_video_tag(&first.payload)
                        .map_or(0, |tag| u32::try_from(tag.composition_time).unwrap_or(0)),
                    _ => 0,
                };
                self.open = Some(OpenFile {
                    base: first.timestamp,
                    audio_from: first.timestamp.saturating_add(composition),
                    bytes: 0,
                    failed: false,
                });
                self.write_out(50, now);
            }

            fn write_out(&mut self, len: u64, now: Duration) {
                if self.open.is_none() {
                    return;
                }
                if self.disk.fails() {
                    self.write_failed(now);
                } else if let Some(open) = &mut self.open {
                    open.bytes += len;
                }
            }

            fn flush(&mut self, now: Duration) {
                if self.open.is_none() {
                    return;
                }
                self.log.push(Event::Flush);
                if self.disk.fails() {
                    self.write_failed(now);
                }
            }

            fn write_failed(&mut self, now: Duration) {
                let Some(open) = &mut self.open else {
                    return;
                };
                open.failed = true;
                self.failed(now);
                self.close_file(now);
            }

            fn failed(&mut self, now: Duration) {
                self.retry_at = Some(now + self.rules.retry_interval);
            }

            fn close_file(&mut self, now: Duration) {
                let Some(open) = self.open.take() else {
                    return;
                };
                self.log.push(Event::Close);
                if !open.failed && self.disk.fails() {
                    self.failed(now);
                }
            }
        }
    }

    /// The server's recorder over the machine, logging as the transcription does.
    struct Driven {
        cuts: RecordCuts<Duration>,
        /// Bytes of the open file, and whether it failed.
        open: Option<(u64, bool)>,
        disk: transcribed::Disk,
        log: Vec<transcribed::Event>,
    }

    impl Driven {
        fn handle(&mut self, frame: &MediaFrame, now: Duration) {
            let bytes = self.open.map_or(0, |(bytes, _)| bytes);
            self.cuts.handle_frame(frame, bytes, now);
            self.drive(frame, now);
        }

        fn fell_behind(&mut self, now: Duration) {
            self.cuts.handle_fell_behind();
            self.drive(&audio(0), now);
        }

        fn drive(&mut self, frame: &MediaFrame, now: Duration) {
            use transcribed::Event;
            while let Some(action) = self.cuts.poll_action() {
                match action {
                    Close => {
                        let (_, failed) = self.open.take().unwrap();
                        self.log.push(Event::Close);
                        if !failed && self.disk.fails() {
                            self.cuts.handle_failed(now);
                        }
                    }
                    Open => {
                        if self.disk.fails() {
                            self.cuts.handle_failed(now);
                            continue;
                        }
                        let h = self.cuts.headers();
                        self.log.push(Event::Open {
                            started_with: [
                                h.metadata.is_some(),
                                h.video_header.is_some(),
                                h.audio_header.is_some(),
                            ],
                            has_video: h.has_video,
                        });
                        self.cuts.handle_opened();
                        self.open = Some((0, false));
                        self.write(50, now);
                    }
                    Flush => {
                        self.log.push(Event::Flush);
                        if self.disk.fails() {
                            self.fail(now);
                        }
                    }
                    Write { timestamp } => {
                        self.log.push(Event::Write(frame.kind, timestamp));
                        self.write(frame.payload.len() as u64 + 15, now);
                    }
                }
            }
        }

        fn write(&mut self, len: u64, now: Duration) {
            if self.disk.fails() {
                self.fail(now);
            } else if let Some((bytes, _)) = &mut self.open {
                *bytes += len;
            }
        }

        fn fail(&mut self, now: Duration) {
            if let Some((_, failed)) = &mut self.open {
                *failed = true;
            }
            self.cuts.handle_failed(now);
        }
    }

    #[test]
    fn decides_as_the_recorder_it_replaces() {
        let video_headers = [
            fixtures::sequence_header(fixtures::TESTSRC2_320X240, FrameKind::Video),
            fixtures::sequence_header(fixtures::TESTSRC2_1280X720, FrameKind::Video),
        ];
        let audio_headers = [
            header(FrameKind::Audio, &[0x12, 0x10]),
            header(FrameKind::Audio, &[0x11, 0x88]),
        ];
        let metadatas = [
            metadata(&[("width", Value::Number(640.0))]),
            metadata(&[("audiocodecid", Value::Number(10.0))]),
        ];
        let mut opens = 0;
        let mut closes = 0;
        for seed in 1..400u64 {
            let rules = CutRules {
                max_duration_s: seed % 3,
                max_bytes: [0, 400, 2_000][(seed / 3 % 3) as usize],
                retry_interval: Duration::from_millis(1_500),
            };
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut next = move |below: u64| rng.next() % below;
            let fail_one_in = [1_000_000, 20, 6][(seed % 5).min(2) as usize];
            let mut model = transcribed::Recorder::new(
                rules,
                transcribed::Disk::new(seed * 7 + 3, fail_one_in),
            );
            let mut driven = Driven {
                cuts: RecordCuts::new(rules),
                open: None,
                disk: transcribed::Disk::new(seed * 7 + 3, fail_one_in),
                log: Vec::new(),
            };
            let mut ts: u32 = 0;
            let mut now = Duration::ZERO;
            let audio_only = seed % 4 == 0;
            for _ in 0..300 {
                ts += [0, 20, 23, 40, 500][next(5) as usize];
                now += Duration::from_millis(next(400));
                let frame = match next(40) {
                    0 => video_headers[next(2) as usize].clone(),
                    1 => audio_headers[next(2) as usize].clone(),
                    2 => metadatas[next(2) as usize].clone(),
                    3 => {
                        model.fell_behind(now);
                        driven.fell_behind(now);
                        continue;
                    }
                    4..=7 if !audio_only => keyframe_with_cts(ts, [0, 40, 80][next(3) as usize]),
                    8..=9 if !audio_only => keyframe(ts),
                    10..=24 if !audio_only => picture(ts),
                    _ => audio(ts),
                };
                model.handle(&frame, now);
                driven.handle(&frame, now);
                assert_eq!(driven.log, model.log, "seed {seed}");
            }
            opens += model
                .log
                .iter()
                .filter(|e| matches!(e, transcribed::Event::Open { .. }))
                .count();
            closes += model
                .log
                .iter()
                .filter(|e| **e == transcribed::Event::Close)
                .count();
        }
        // The streams exercised what they are meant to.
        assert!(
            opens > 1_000 && closes > 1_000,
            "{opens} opens, {closes} closes"
        );
    }
}
