//! The kinds of connect/disconnect cycle the soak spreads its cycles over.

use serde::Serialize;

/// How a client leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Leave {
    /// The protocol's own goodbye (deleteStream, a Close frame), then FIN.
    Clean,
    /// SO_LINGER 0 and drop: the server sees a reset.
    Abrupt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Kind {
    /// Publishes a few tags to a stream of its own, then leaves.
    RtmpPublishClean,
    RtmpPublishAbrupt,
    /// Plays the long-lived stream until the first video frame, then leaves.
    RtmpPlayClean,
    RtmpPlayAbrupt,
    /// GET of the long-lived stream's `.flv` until FLV bytes arrive, then leaves.
    FlvPlayClean,
    FlvPlayAbrupt,
    /// Joins a room until the `welcome` event, then leaves.
    WsAnonymousClean,
    WsAnonymousAbrupt,
    /// Joins with a chat token (when the run has one), sends one chat, then leaves.
    WsTokenClean,
    WsTokenAbrupt,
    /// A malformed token: the server must refuse it (401 or close 4001).
    WsBadToken,
    /// Subscribes until the `welcome` event, then leaves.
    SseClean,
    SseAbrupt,
    /// C0 and half of C1, then nothing: waits for the server's handshake timeout.
    StallRtmpHandshake,
    /// Half an HTTP request head, then nothing.
    StallHttpHead,
    /// TCP connect to the RTMP port, then nothing.
    StallRtmpSilent,
    /// TCP connect to the HTTP port, then nothing.
    StallHttpSilent,
    /// One whole request on a kept-alive connection, then half of the next head.
    StallHttpKeepAlive,
}

impl Kind {
    pub(super) const ALL: [Kind; 18] = [
        Kind::RtmpPublishClean,
        Kind::RtmpPublishAbrupt,
        Kind::RtmpPlayClean,
        Kind::RtmpPlayAbrupt,
        Kind::FlvPlayClean,
        Kind::FlvPlayAbrupt,
        Kind::WsAnonymousClean,
        Kind::WsAnonymousAbrupt,
        Kind::WsTokenClean,
        Kind::WsTokenAbrupt,
        Kind::WsBadToken,
        Kind::SseClean,
        Kind::SseAbrupt,
        Kind::StallRtmpHandshake,
        Kind::StallHttpHead,
        Kind::StallRtmpSilent,
        Kind::StallHttpSilent,
        Kind::StallHttpKeepAlive,
    ];

    /// The kind of cycle number `i`: round-robin, so every kind gets its share.
    pub(super) fn of_cycle(i: u64) -> Kind {
        let len = Self::ALL.len() as u64;
        Self::ALL
            .get(usize::try_from(i % len).unwrap_or(0))
            .copied()
            .unwrap_or(Kind::RtmpPlayClean)
    }

    /// How a cycle of this kind leaves; stallers alternate so both are covered.
    pub(super) fn leave(self) -> Leave {
        match self {
            Kind::RtmpPublishAbrupt
            | Kind::RtmpPlayAbrupt
            | Kind::FlvPlayAbrupt
            | Kind::WsAnonymousAbrupt
            | Kind::WsTokenAbrupt
            | Kind::SseAbrupt
            | Kind::StallHttpHead
            | Kind::StallRtmpSilent => Leave::Abrupt,
            _ => Leave::Clean,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_cover_every_kind_and_both_ways_of_leaving() {
        let kinds: std::collections::BTreeSet<Kind> = (0..18).map(Kind::of_cycle).collect();
        assert_eq!(kinds.len(), Kind::ALL.len());
        assert!(Kind::ALL.iter().any(|k| k.leave() == Leave::Abrupt));
        assert!(Kind::ALL.iter().any(|k| k.leave() == Leave::Clean));
    }
}
