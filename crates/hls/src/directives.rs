//! The delivery directives of a playlist request (RFC 8216bis 6.2.5):
//! `_HLS_msn`, `_HLS_part` and `_HLS_skip`.

/// What a playlist request's query asks of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Directives {
    pub msn: Option<u64>,
    pub part: Option<u32>,
    /// `_HLS_skip=YES` or `v2` (date ranges are never skipped: there are none).
    pub skip: bool,
}

impl Directives {
    /// Reads the directives from a raw query string; other parameters are ignored.
    /// An error is a reason for a 400: `_HLS_part` without `_HLS_msn`, or a value
    /// that is not a plain decimal number.
    pub fn parse(query: &str) -> Result<Self, &'static str> {
        let mut directives = Self::default();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "_HLS_msn" => {
                    directives.msn = Some(number(value).ok_or("_HLS_msn is not a number")?)
                }
                "_HLS_part" => {
                    directives.part = Some(number(value).ok_or("_HLS_part is not a number")?)
                }
                "_HLS_skip" => directives.skip = matches!(value, "YES" | "v2"),
                _ => {}
            }
        }
        if directives.part.is_some() && directives.msn.is_none() {
            return Err("_HLS_part without _HLS_msn");
        }
        Ok(directives)
    }

    /// Whether the request asks to be held until the playlist has something newer.
    pub fn blocks(&self) -> bool {
        self.msn.is_some()
    }
}

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
    fn parses_directives_among_other_params() {
        let d = Directives::parse("sig=abc&_HLS_msn=12&_HLS_part=3&_HLS_skip=YES&s=1").unwrap();
        assert_eq!(
            d,
            Directives {
                msn: Some(12),
                part: Some(3),
                skip: true
            }
        );
        assert!(d.blocks());
        assert_eq!(Directives::parse("").unwrap(), Directives::default());
        assert!(Directives::parse("_HLS_skip=v2").unwrap().skip);
        assert!(!Directives::parse("_HLS_skip=NO").unwrap().skip);
        assert!(Directives::parse("_HLS_msn=4").unwrap().part.is_none());
    }

    #[test]
    fn refuses_part_without_msn_and_bad_numbers() {
        assert_eq!(
            Directives::parse("_HLS_part=1"),
            Err("_HLS_part without _HLS_msn")
        );
        assert!(Directives::parse("_HLS_msn=-1").is_err());
        assert!(Directives::parse("_HLS_msn=+1").is_err());
        assert!(Directives::parse("_HLS_msn=").is_err());
        assert!(Directives::parse("_HLS_msn=99999999999999999999999").is_err());
        assert!(Directives::parse("_HLS_msn=1&_HLS_part=4294967296").is_err());
    }
}
