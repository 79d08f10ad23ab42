//! The names under which the server serves init segments, segments and parts, and
//! their parsing back from a request path's last component.

/// A part: the media sequence number of its parent segment and its index in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartId {
    pub msn: u64,
    pub part: u32,
}

/// What a resource name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// `init{version}.mp4`
    Init(u32),
    /// `seg{msn}.m4s`
    Segment(u64),
    /// `part{msn}.{part}.m4s`
    Part(PartId),
}

pub fn init_uri(version: u32) -> String {
    format!("init{version}.mp4")
}

pub fn segment_uri(msn: u64) -> String {
    format!("seg{msn}.m4s")
}

pub fn part_uri(id: PartId) -> String {
    format!("part{}.{}.m4s", id.msn, id.part)
}

/// The name of an MPEG-TS segment of the legacy rendition.
pub fn ts_segment_uri(msn: u64) -> String {
    format!("seg{msn}.ts")
}

/// Parses `init0.mp4`, `seg12.m4s` or `part12.3.m4s`. Anything else, including
/// numbers with signs, leading `+`, or that overflow, is `None`.
pub fn parse_resource(name: &str) -> Option<Resource> {
    if let Some(version) = name
        .strip_prefix("init")
        .and_then(|s| s.strip_suffix(".mp4"))
    {
        return number(version).map(Resource::Init);
    }
    if let Some(msn) = name
        .strip_prefix("seg")
        .and_then(|s| s.strip_suffix(".m4s"))
    {
        return number(msn).map(Resource::Segment);
    }
    let rest = name.strip_prefix("part")?.strip_suffix(".m4s")?;
    let (msn, part) = rest.split_once('.')?;
    Some(Resource::Part(PartId {
        msn: number(msn)?,
        part: number(part)?,
    }))
}

/// Parses `seg12.ts`, the name of an MPEG-TS segment.
pub fn parse_ts_segment(name: &str) -> Option<u64> {
    number(name.strip_prefix("seg")?.strip_suffix(".ts")?)
}

/// Plain ASCII digits only (`str::parse` would also take a leading `+`).
fn number<T: std::str::FromStr>(digits: &str) -> Option<T> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_resource(&init_uri(3)), Some(Resource::Init(3)));
        assert_eq!(
            parse_resource(&segment_uri(12)),
            Some(Resource::Segment(12))
        );
        let id = PartId { msn: 12, part: 3 };
        assert_eq!(part_uri(id), "part12.3.m4s");
        assert_eq!(parse_resource("part12.3.m4s"), Some(Resource::Part(id)));
        assert_eq!(parse_ts_segment(&ts_segment_uri(7)), Some(7));
    }

    #[test]
    fn rejects_malformed_names() {
        for name in [
            "",
            "init.mp4",
            "init+1.mp4",
            "init-1.mp4",
            "seg.m4s",
            "seg1.ts",
            "seg99999999999999999999999.m4s",
            "part1.m4s",
            "part1..m4s",
            "part.1.m4s",
            "part1.2.3.m4s",
            "part1.99999999999.m4s",
            "index.m3u8",
            "seg1.m4s/",
        ] {
            assert_eq!(parse_resource(name), None, "{name}");
        }
        assert_eq!(parse_ts_segment("seg1.m4s"), None);
        assert_eq!(parse_ts_segment("seg.ts"), None);
    }
}
