//! The fixed label values metrics may carry. Every label value comes from an enum
//! here (or from a fixed enum of the rooms crate), so no series can be named after a
//! stream, a user, an address or a key.

/// How a peer talks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proto {
    Rtmp,
    Rtmps,
    Http,
    Https,
    HttpFlv,
    Ws,
    Sse,
    Hls,
}

impl Proto {
    pub(crate) const COUNT: usize = 8;

    /// Listeners: what a TCP connection is at accept.
    pub(crate) const CONNECTIONS: [Proto; 4] =
        [Proto::Rtmp, Proto::Rtmps, Proto::Http, Proto::Https];
    /// Who may publish.
    pub(crate) const PUBLISHERS: [Proto; 2] = [Proto::Rtmp, Proto::Rtmps];
    /// How viewers watch.
    /// HLS viewers are sessions, not connections.
    pub(crate) const VIEWERS: [Proto; 4] = [Proto::Rtmp, Proto::Rtmps, Proto::HttpFlv, Proto::Hls];
    /// How room members connect.
    pub(crate) const MEMBERS: [Proto; 2] = [Proto::Ws, Proto::Sse];

    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Proto::Rtmp => "rtmp",
            Proto::Rtmps => "rtmps",
            Proto::Http => "http",
            Proto::Https => "https",
            Proto::HttpFlv => "http-flv",
            Proto::Ws => "ws",
            Proto::Sse => "sse",
            Proto::Hls => "hls",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    /// RTMP or RTMPS, as the RTMP driver names its connections.
    pub(crate) fn rtmp(name: &str) -> Proto {
        if name == "rtmps" {
            Proto::Rtmps
        } else {
            Proto::Rtmp
        }
    }
}

/// Why a connection was turned away at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefuseReason {
    MaxConnections,
    MaxConnectionsPerIp,
}

impl RefuseReason {
    pub(crate) const ALL: [RefuseReason; 2] = [
        RefuseReason::MaxConnections,
        RefuseReason::MaxConnectionsPerIp,
    ];

    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            RefuseReason::MaxConnections => "max_connections",
            RefuseReason::MaxConnectionsPerIp => "max_connections_per_ip",
        }
    }
}

impl From<crate::limits::Refused> for RefuseReason {
    fn from(refused: crate::limits::Refused) -> Self {
        match refused {
            crate::limits::Refused::TooManyConnections(_) => RefuseReason::MaxConnections,
            crate::limits::Refused::TooManyFromAddress(_) => RefuseReason::MaxConnectionsPerIp,
        }
    }
}

/// Why a viewer was disconnected for not keeping up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LagReason {
    /// Skipped to a keyframe too often (`hub.viewer_max_skips_per_minute`).
    TooSlow,
    /// Its socket accepted nothing for `hub.viewer_write_timeout_ms`.
    WriteTimeout,
}

impl LagReason {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            LagReason::TooSlow => "too_slow",
            LagReason::WriteTimeout => "write_timeout",
        }
    }
}

/// Why a publish was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PublishRefusal {
    BadName,
    Unauthorized,
    AlreadyPublishing,
    TooManyStreams,
}

impl PublishRefusal {
    pub(crate) const ALL: [PublishRefusal; 4] = [
        PublishRefusal::BadName,
        PublishRefusal::Unauthorized,
        PublishRefusal::AlreadyPublishing,
        PublishRefusal::TooManyStreams,
    ];

    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            PublishRefusal::BadName => "bad_name",
            PublishRefusal::Unauthorized => "unauthorized",
            PublishRefusal::AlreadyPublishing => "already_publishing",
            PublishRefusal::TooManyStreams => "too_many_streams",
        }
    }
}

impl From<&crate::hub::PublishError> for PublishRefusal {
    fn from(error: &crate::hub::PublishError) -> Self {
        match error {
            crate::hub::PublishError::AlreadyPublishing(_) => PublishRefusal::AlreadyPublishing,
            crate::hub::PublishError::TooManyStreams(_) => PublishRefusal::TooManyStreams,
        }
    }
}
