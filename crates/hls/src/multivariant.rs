//! The multivariant (master) playlist: one `EXT-X-STREAM-INF` per rendition.

use std::fmt::Write;

/// One rendition as the multivariant playlist lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// The media playlist's URI, relative to the multivariant playlist, query included.
    pub uri: String,
    /// Peak bits per second.
    pub bandwidth: u64,
    /// RFC 6381 codecs, e.g. `avc1.64001f,mp4a.40.2` (`onair_policy::CodecInfo::rfc6381_codecs` makes it).
    pub codecs: Option<String>,
    pub resolution: Option<(u32, u32)>,
    pub frame_rate: Option<f64>,
}

pub fn multivariant(variants: &[Variant]) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for v in variants {
        let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={}", v.bandwidth);
        if let Some(codecs) = &v.codecs {
            let _ = write!(out, ",CODECS=\"{}\"", clean(codecs));
        }
        if let Some((w, h)) = v.resolution {
            let _ = write!(out, ",RESOLUTION={w}x{h}");
        }
        if let Some(rate) = v.frame_rate.filter(|r| r.is_finite() && *r > 0.0) {
            let _ = write!(out, ",FRAME-RATE={rate:.3}");
        }
        let _ = writeln!(out, "\n{}", clean(&v.uri));
    }
    out
}

/// Nothing that would end a quoted attribute or a line.
fn clean(s: &str) -> String {
    s.chars().filter(|c| *c != '"' && !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_each_variant() {
        let text = multivariant(&[
            Variant {
                uri: "media.m3u8?s=1".into(),
                bandwidth: 2_500_000,
                codecs: Some("avc1.64001f,mp4a.40.2".into()),
                resolution: Some((1280, 720)),
                frame_rate: Some(30.0),
            },
            Variant {
                uri: "ts.m3u8".into(),
                bandwidth: 800_000,
                codecs: None,
                resolution: None,
                frame_rate: None,
            },
        ]);
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=2500000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=30.000\n\
             media.m3u8?s=1\n\
             #EXT-X-STREAM-INF:BANDWIDTH=800000\n\
             ts.m3u8\n"
        );
        let parsed = m3u8_rs::parse_master_playlist_res(text.as_bytes()).unwrap();
        assert_eq!(parsed.variants.len(), 2);
        assert_eq!(parsed.variants[0].bandwidth, 2_500_000);
        assert_eq!(
            parsed.variants[0].codecs.as_deref(),
            Some("avc1.64001f,mp4a.40.2")
        );
        assert_eq!(parsed.variants[1].uri, "ts.m3u8");
    }
}
