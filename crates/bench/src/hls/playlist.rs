//! Just enough of an m3u8 reader for the bench: the multivariant playlist's first
//! variant, and a media playlist's target duration, map, preload hint and segments.

/// The first variant URI of a multivariant playlist.
pub(super) fn first_variant(text: &str) -> Option<&str> {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
}

#[derive(Debug, Default, PartialEq)]
pub(super) struct MediaPlaylist {
    pub(super) target_duration_secs: f64,
    pub(super) map_uri: Option<String>,
    pub(super) preload_hint: Option<String>,
    /// The `EXT-X-PART` URIs, in order.
    pub(super) parts: Vec<String>,
    pub(super) segments: Vec<Segment>,
}

#[derive(Debug, PartialEq)]
pub(super) struct Segment {
    pub(super) msn: u64,
    pub(super) duration_secs: f64,
    pub(super) uri: String,
}

pub(super) fn parse_media(text: &str) -> Option<MediaPlaylist> {
    if !text.trim_start().starts_with("#EXTM3U") {
        return None;
    }
    let mut playlist = MediaPlaylist::default();
    let mut msn = 0u64;
    let mut duration = None;
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            playlist.target_duration_secs = v.parse().ok()?;
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            msn = v.parse().ok()?;
        } else if let Some(v) = line.strip_prefix("#EXT-X-MAP:") {
            playlist.map_uri = attribute(v, "URI").map(str::to_owned);
        } else if let Some(v) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
            if attribute(v, "TYPE") == Some("PART") {
                playlist.preload_hint = attribute(v, "URI").map(str::to_owned);
            }
        } else if let Some(v) = line.strip_prefix("#EXT-X-PART:") {
            playlist
                .parts
                .extend(attribute(v, "URI").map(str::to_owned));
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            duration = v.split(',').next().and_then(|d| d.trim().parse().ok());
        } else if !line.is_empty() && !line.starts_with('#') {
            playlist.segments.push(Segment {
                msn,
                duration_secs: duration.take().unwrap_or(0.0),
                uri: line.to_owned(),
            });
            msn += 1;
        }
    }
    Some(playlist)
}

/// The value of `name` in an attribute list (`A=1,URI="x"`), quotes removed.
fn attribute<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = list;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let (value, after) = quoted.split_once('"')?;
            (value, after.strip_prefix(',').unwrap_or(after))
        } else {
            after.split_once(',').unwrap_or((after, ""))
        };
        if key.trim() == name {
            return Some(value);
        }
        rest = next;
    }
    None
}

/// The (media sequence number, part index) of onair's `part{MSN}.{I}.m4s` URI.
pub(super) fn part_position(uri: &str) -> Option<(u64, u64)> {
    let path = uri.split('?').next()?;
    let name = path.rsplit('/').next()?;
    let (msn, index) = name
        .strip_prefix("part")?
        .strip_suffix(".m4s")?
        .split_once('.')?;
    Some((msn.parse().ok()?, index.parse().ok()?))
}

/// `uri` (relative, absolute-path or `http://host/…`) as a path and query against the
/// playlist at `base` (a path).
pub(super) fn resolve(base: &str, uri: &str) -> String {
    if let Some(rest) = uri
        .strip_prefix("http://")
        .or_else(|| uri.strip_prefix("https://"))
    {
        return rest
            .find('/')
            .map_or("/".to_owned(), |i| rest[i..].to_owned());
    }
    if uri.starts_with('/') {
        return uri.to_owned();
    }
    let base = base.split('?').next().unwrap_or(base);
    let dir = base.rfind('/').map_or("/", |i| &base[..=i]);
    format!("{dir}{uri}")
}

/// A blocking playlist reload: `path?_HLS_msn=M&_HLS_part=P` plus the playlist's own
/// query (the session).
pub(super) fn blocking_reload(playlist: &str, (msn, part): (u64, u64)) -> String {
    let (path, query) = playlist.split_once('?').unwrap_or((playlist, ""));
    let mut uri = format!("{path}?_HLS_msn={msn}&_HLS_part={part}");
    if !query.is_empty() {
        uri.push('&');
        uri.push_str(query);
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    const LL: &str = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:1\n\
        #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6.0,PART-HOLD-BACK=0.6\n\
        #EXT-X-PART-INF:PART-TARGET=0.2\n#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n\
        #EXT-X-MAP:URI=\"init0.mp4?session=ab\"\n\
        #EXT-X-PROGRAM-DATE-TIME:2026-11-01T00:00:00.000Z\n#EXTINF:1.000,\nseg7.m4s?session=ab\n\
        #EXT-X-PART:DURATION=0.200,URI=\"part8.0.m4s?session=ab\",INDEPENDENT=YES\n#EXTINF:1.001,\nseg8.m4s?session=ab\n\
        #EXT-X-PART:DURATION=0.200,URI=\"part9.0.m4s?session=ab\",INDEPENDENT=YES\n\
        #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part9.1.m4s?session=ab\"\n";

    #[test]
    fn reads_a_low_latency_media_playlist() {
        let p = parse_media(LL).unwrap();
        assert_eq!(p.target_duration_secs, 1.0);
        assert_eq!(p.map_uri.as_deref(), Some("init0.mp4?session=ab"));
        assert_eq!(p.preload_hint.as_deref(), Some("part9.1.m4s?session=ab"));
        assert_eq!(
            p.parts,
            ["part8.0.m4s?session=ab", "part9.0.m4s?session=ab"]
        );
        assert_eq!(p.segments.len(), 2);
        assert_eq!(
            p.segments[1],
            Segment {
                msn: 8,
                duration_secs: 1.001,
                uri: "seg8.m4s?session=ab".to_owned()
            }
        );
        assert_eq!(part_position("part9.1.m4s?session=ab"), Some((9, 1)));
        assert_eq!(part_position("/live/x/part12.0.m4s"), Some((12, 0)));
        assert_eq!(part_position("seg9.m4s"), None);
        assert_eq!(parse_media("<html>"), None);
    }

    #[test]
    fn resolves_uris_and_builds_blocking_reloads() {
        assert_eq!(
            first_variant("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nstream.m3u8?session=ab\n"),
            Some("stream.m3u8?session=ab")
        );
        let variant = resolve("/live/x/index.m3u8", "stream.m3u8?session=ab");
        assert_eq!(variant, "/live/x/stream.m3u8?session=ab");
        assert_eq!(
            resolve(&variant, "part1.2.m4s?session=ab"),
            "/live/x/part1.2.m4s?session=ab"
        );
        assert_eq!(resolve("/x.m3u8", "/a/b.ts"), "/a/b.ts");
        assert_eq!(resolve("/x.m3u8", "http://127.0.0.1:1/a.ts"), "/a.ts");
        assert_eq!(resolve("/bench.m3u8", "bench-3.ts"), "/bench-3.ts");
        assert_eq!(
            blocking_reload(&variant, (9, 1)),
            "/live/x/stream.m3u8?_HLS_msn=9&_HLS_part=1&session=ab"
        );
        assert_eq!(
            blocking_reload("/s.m3u8", (1, 0)),
            "/s.m3u8?_HLS_msn=1&_HLS_part=0"
        );
    }
}
