use std::fmt;

/// App names that belong to the server's own HTTP routes and can never name a stream.
pub const RESERVED_APPS: &[&str] = &[
    "api", "ws", "sse", "watch", "admin", "assets", "metrics", "healthz", "readyz",
];

const MAX_SEGMENT_LEN: usize = 64;

/// Why a string is not a valid `{app}/{name}` stream path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("{what} is longer than {MAX_SEGMENT_LEN} characters")]
    TooLong { what: &'static str },
    #[error("{what} contains a character outside [A-Za-z0-9_-]")]
    BadCharacter { what: &'static str },
    #[error("app name {0:?} is reserved")]
    ReservedApp(String),
    #[error("expected app/name")]
    MissingSlash,
}

/// A stream's name, `{app}/{name}`, each part `[A-Za-z0-9_-]{1,64}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamPath {
    app: String,
    name: String,
}

impl StreamPath {
    pub fn new(app: &str, name: &str) -> Result<Self, PathError> {
        check_segment(app, "app")?;
        check_segment(name, "stream name")?;
        if RESERVED_APPS.contains(&app) {
            return Err(PathError::ReservedApp(app.to_owned()));
        }
        Ok(Self {
            app: app.to_owned(),
            name: name.to_owned(),
        })
    }

    /// Parses `app/name`.
    pub fn parse(path: &str) -> Result<Self, PathError> {
        let (app, name) = path.split_once('/').ok_or(PathError::MissingSlash)?;
        Self::new(app, name)
    }

    pub fn app(&self) -> &str {
        &self.app
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for StreamPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.app, self.name)
    }
}

fn check_segment(segment: &str, what: &'static str) -> Result<(), PathError> {
    if segment.is_empty() {
        return Err(PathError::Empty { what });
    }
    if segment.len() > MAX_SEGMENT_LEN {
        return Err(PathError::TooLong { what });
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    if !segment.bytes().all(allowed) {
        return Err(PathError::BadCharacter { what });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_paths() {
        let path = StreamPath::parse("live/demo_1-x").unwrap();
        assert_eq!(path.app(), "live");
        assert_eq!(path.name(), "demo_1-x");
        assert_eq!(path.to_string(), "live/demo_1-x");
    }

    #[test]
    fn rejects_bad_paths() {
        assert_eq!(StreamPath::parse("live"), Err(PathError::MissingSlash));
        assert!(matches!(
            StreamPath::parse("live/"),
            Err(PathError::Empty { .. })
        ));
        assert!(matches!(
            StreamPath::parse("live/a.b"),
            Err(PathError::BadCharacter { .. })
        ));
        assert!(matches!(
            StreamPath::parse("live/a/b"),
            Err(PathError::BadCharacter { .. })
        ));
        assert!(matches!(
            StreamPath::parse("api/x"),
            Err(PathError::ReservedApp(_))
        ));
        let long = "a".repeat(65);
        assert!(matches!(
            StreamPath::new("live", &long),
            Err(PathError::TooLong { .. })
        ));
        assert!(StreamPath::new("live", &"a".repeat(64)).is_ok());
    }
}
