//! Recording names: `{app}/{name}/{UTC start}[-{n}].{ext}` under the recordings
//! directory, e.g. `live/demo/20261124T031500Z.flv`, and the id the REST API names it
//! by, the same parts joined with dots: `live.demo.20261124T031500Z.flv`.
//!
//! An id is parsed back by a strict grammar (stream path characters, a UTC stamp, a
//! small counter, a known extension), so no id can name anything outside its stream's
//! directory: there is no `/`, no `..`, nothing else to interpret.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use onair_media::StreamPath;

use super::settings::RecordFormat;

/// Largest `-{n}` suffix tried when files start within the same second.
pub(crate) const MAX_SUFFIX: u32 = 999;

const STAMP_LEN: usize = "20261124T031500Z".len();
const SECONDS_PER_DAY: u64 = 86_400;

/// Where one recording lives, relative to the recordings directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordingName {
    stream: StreamPath,
    /// Unix seconds of the UTC stamp.
    started_at: u64,
    /// 0: no suffix.
    suffix: u32,
    format: RecordFormat,
}

impl RecordingName {
    pub fn new(stream: StreamPath, started: SystemTime, suffix: u32, format: RecordFormat) -> Self {
        let started_at = started
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        Self {
            stream,
            started_at,
            suffix,
            format,
        }
    }

    /// The name of the file `file` in the directory of `app`/`name`, if it is one a
    /// recorder writes.
    pub fn from_file(app: &str, name: &str, file: &str) -> Option<Self> {
        let stream = StreamPath::new(app, name).ok()?;
        let (stem, extension) = file.rsplit_once('.')?;
        let format = RecordFormat::ALL
            .into_iter()
            .find(|f| f.extension() == extension)?;
        let (stamp, suffix) = match stem.split_once('-') {
            Some((stamp, suffix)) => (stamp, parse_suffix(suffix)?),
            None => (stem, 0),
        };
        Some(Self {
            stream,
            started_at: parse_stamp(stamp)?,
            suffix,
            format,
        })
    }

    /// Parses an id as [`id`](Self::id) makes it.
    pub fn from_id(id: &str) -> Option<Self> {
        let mut parts = id.split('.');
        let (app, name, stem, extension) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        Self::from_file(app, name, &format!("{stem}.{extension}"))
    }

    pub fn id(&self) -> String {
        format!(
            "{}.{}.{}",
            self.stream.app(),
            self.stream.name(),
            self.file_name()
        )
    }

    pub fn file_name(&self) -> String {
        let stamp = utc_stamp(self.started_at);
        let extension = self.format.extension();
        match self.suffix {
            0 => format!("{stamp}.{extension}"),
            n => format!("{stamp}-{n}.{extension}"),
        }
    }

    /// `{app}/{name}/{file}`.
    pub fn relative_path(&self) -> PathBuf {
        PathBuf::from(self.stream.app())
            .join(self.stream.name())
            .join(self.file_name())
    }

    pub fn stream(&self) -> &StreamPath {
        &self.stream
    }

    pub fn started_at(&self) -> u64 {
        self.started_at
    }

    pub fn format(&self) -> RecordFormat {
        self.format
    }

    /// The same start with the next suffix (`-2` after none), or `None` past
    /// [`MAX_SUFFIX`].
    pub fn next_suffix(&self) -> Option<Self> {
        (self.suffix < MAX_SUFFIX).then(|| Self {
            suffix: self.suffix.max(1) + 1,
            ..self.clone()
        })
    }
}

fn parse_suffix(text: &str) -> Option<u32> {
    let digits_only =
        !text.is_empty() && text.len() <= 3 && text.bytes().all(|b| b.is_ascii_digit());
    let n: u32 = text.parse().ok().filter(|_| digits_only)?;
    // `-1` and leading zeros are never written, so they never name a file.
    (n >= 2 && !text.starts_with('0')).then_some(n)
}

/// `YYYYMMDDTHHMMSSZ` of Unix seconds `secs`.
fn utc_stamp(secs: u64) -> String {
    let (days, rest) = (secs / SECONDS_PER_DAY, secs % SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Unix seconds of a stamp as [`utc_stamp`] writes it.
fn parse_stamp(stamp: &str) -> Option<u64> {
    let bytes = stamp.as_bytes();
    if bytes.len() != STAMP_LEN || bytes.get(8) != Some(&b'T') || bytes.get(15) != Some(&b'Z') {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u64> {
        let digits = stamp.get(range)?;
        digits
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| digits.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
    let (hour, minute, second) = (number(9..11)?, number(11..13)?, number(13..15)?);
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second;
    // A day past the month's end (20260231) is not a stamp this code wrote.
    (utc_stamp(secs) == stamp).then_some(secs)
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm,
/// for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a date on or after it.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let yoe = year - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).saturating_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn stamps_are_utc_and_read_back() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(1_795_490_100), "20261124T031500Z");
        assert_eq!(utc_stamp(951_782_400), "20000229T000000Z");
        for secs in [0, 59, 86_399, 951_782_400, 1_700_000_000, 4_102_444_800] {
            assert_eq!(parse_stamp(&utc_stamp(secs)), Some(secs), "{secs}");
        }
        for bad in [
            "20261124T031500",
            "20261124 031500Z",
            "20261324T031500Z",
            "20260231T000000Z",
            "20261124T241500Z",
            "2026112AT031500Z",
            "+0261124T031500Z",
            "19691231T235959Z",
        ] {
            assert_eq!(parse_stamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn ids_and_file_names_round_trip() {
        let stream = StreamPath::parse("live/demo_1").unwrap();
        let first = RecordingName::new(stream, at(1_795_490_100), 0, RecordFormat::Flv);
        assert_eq!(first.file_name(), "20261124T031500Z.flv");
        assert_eq!(first.id(), "live.demo_1.20261124T031500Z.flv");
        assert_eq!(
            first.relative_path(),
            PathBuf::from("live/demo_1/20261124T031500Z.flv")
        );
        let second = first.next_suffix().unwrap();
        assert_eq!(second.id(), "live.demo_1.20261124T031500Z-2.flv");
        for name in [&first, &second] {
            assert_eq!(RecordingName::from_id(&name.id()).as_ref(), Some(name));
            assert_eq!(
                RecordingName::from_file("live", "demo_1", &name.file_name()).as_ref(),
                Some(name)
            );
        }
        let mp4 = RecordingName::new(first.stream().clone(), at(0), 0, RecordFormat::Fmp4);
        assert_eq!(mp4.id(), "live.demo_1.19700101T000000Z.mp4");
        let mut last = first.clone();
        while let Some(next) = last.next_suffix() {
            last = next;
        }
        assert_eq!(last.suffix, MAX_SUFFIX);
        assert_eq!(RecordingName::from_id(&last.id()), Some(last));
    }

    #[test]
    fn ids_that_could_reach_elsewhere_are_refused() {
        for bad in [
            "",
            "..",
            "../../etc/passwd",
            "live.demo..flv",
            "live.demo.20261124T031500Z.flv.flv",
            "live/demo.20261124T031500Z.flv",
            "live.de/mo.20261124T031500Z.flv",
            "live.demo.20261124T031500Z/..flv",
            "live.demo.20261124T031500Z.txt",
            "live.demo.20261124T031500Z-1.flv",
            "live.demo.20261124T031500Z-02.flv",
            "live.demo.20261124T031500Z-1000.flv",
            "live.demo.20261124T031500Z-.flv",
            "api.demo.20261124T031500Z.flv",
            "live..20261124T031500Z.flv",
            ".demo.20261124T031500Z.flv",
            "live.demo.20261124T031500Z",
            "live.demo.x.flv",
            "live.d%2e.20261124T031500Z.flv",
        ] {
            assert_eq!(RecordingName::from_id(bad), None, "{bad}");
        }
        assert_eq!(
            RecordingName::from_file("live", "..", "20261124T031500Z.flv"),
            None
        );
        assert_eq!(RecordingName::from_file("live", "demo", "x.flv.part"), None);
    }
}
