//! Turning what an RTMP client sends (connect's `app`, publish/play's stream name)
//! into a [`StreamPath`] and the query string that rides along.

use onair_media::{PathError, StreamPath};

/// `app` as sent in `connect` (`live`, `live/`, `live?x=1`) with the query dropped.
pub fn normalize_app(app: &str) -> &str {
    let app = app.split('?').next().unwrap_or_default();
    app.trim_end_matches('/')
}

/// The query a client put on connect's `app` (`live?x=1`), else on its `tcUrl`
/// (`rtmp://host/live?x=1`); empty when neither has one.
pub fn connect_query<'a>(app: &'a str, tc_url: Option<&'a str>) -> &'a str {
    let query = |text: &'a str| text.split_once('?').map(|(_, query)| query);
    query(app)
        .filter(|q| !q.is_empty())
        .or_else(|| tc_url.and_then(query))
        .unwrap_or_default()
}

/// Splits a publish/play name like `demo?key=K` into the stream path and its query.
pub fn stream_path<'a>(app: &str, name: &'a str) -> Result<(StreamPath, &'a str), PathError> {
    let (name, query) = name.split_once('?').unwrap_or((name, ""));
    Ok((StreamPath::new(app, name)?, query))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_what_encoders_send() {
        assert_eq!(normalize_app("live"), "live");
        assert_eq!(normalize_app("live/"), "live");
        assert_eq!(normalize_app("live?vhost=x"), "live");
        let (path, query) = stream_path("live", "demo?key=abc").unwrap();
        assert_eq!(path.to_string(), "live/demo");
        assert_eq!(query, "key=abc");
        assert!(stream_path("live", "a/b").is_err());
        assert!(stream_path("live", "").is_err());
    }

    #[test]
    fn connect_query_from_app_or_tc_url() {
        assert_eq!(connect_query("live?a=1", Some("rtmp://h/live?b=2")), "a=1");
        assert_eq!(connect_query("live", Some("rtmp://h/live?b=2")), "b=2");
        assert_eq!(connect_query("live?", Some("rtmp://h/live?b=2")), "b=2");
        assert_eq!(connect_query("live", Some("rtmp://h/live")), "");
        assert_eq!(connect_query("live", None), "");
    }
}
