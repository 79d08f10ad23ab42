//! HLS viewers are sessions, not connections: a player fetches a playlist every part
//! or segment, on whatever connection it likes. The multivariant playlist hands each
//! player a session id that rides on every URI below it; a session counts as a viewer
//! until it has fetched nothing for `hls.session_timeout_ms`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::Rng;

/// A session id as it appears in URIs (`session=` query parameter).
pub type SessionId = u64;

#[derive(Debug)]
pub(super) struct Sessions {
    last_seen: HashMap<SessionId, Instant>,
    max: usize,
}

impl Sessions {
    pub fn new(max: usize) -> Self {
        Self {
            last_seen: HashMap::new(),
            max,
        }
    }

    /// A fresh id, counted from `now` when there is room (past `max` the player still
    /// plays, it just is not counted).
    pub fn start(&mut self, now: Instant) -> SessionId {
        let id = rand::thread_rng().gen_range(1..=u64::MAX);
        self.touch(id, now);
        id
    }

    /// The player behind `id` fetched something. An unknown id (an old one, or one
    /// made up) starts counting too, within the bound.
    pub fn touch(&mut self, id: SessionId, now: Instant) {
        if let Some(seen) = self.last_seen.get_mut(&id) {
            *seen = now;
        } else if self.last_seen.len() < self.max {
            self.last_seen.insert(id, now);
        }
    }

    /// Forgets sessions idle for `timeout`; returns how many remain.
    pub fn expire(&mut self, now: Instant, timeout: Duration) -> usize {
        self.last_seen
            .retain(|_, seen| now.saturating_duration_since(*seen) < timeout);
        self.last_seen.len()
    }

    #[cfg(test)]
    pub fn count(&self) -> usize {
        self.last_seen.len()
    }
}

/// The session id in a query string, if any.
pub fn session_in(query: &str) -> Option<SessionId> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "session")
        .and_then(|(_, value)| u64::from_str_radix(&value, 16).ok())
        .filter(|&id| id != 0)
}

pub fn session_param(id: SessionId) -> String {
    format!("session={id:x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_when_idle_and_stay_while_polled() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(20);
        let mut sessions = Sessions::new(10);
        let a = sessions.start(t0);
        let b = sessions.start(t0);
        assert_ne!(a, b);
        sessions.touch(a, t0 + Duration::from_secs(15));
        assert_eq!(sessions.expire(t0 + Duration::from_secs(25), timeout), 1);
        assert_eq!(sessions.expire(t0 + Duration::from_secs(35), timeout), 0);
    }

    #[test]
    fn the_count_is_bounded() {
        let now = Instant::now();
        let mut sessions = Sessions::new(2);
        for _ in 0..5 {
            sessions.start(now);
        }
        sessions.touch(77, now);
        assert_eq!(sessions.count(), 2);
    }

    #[test]
    fn ids_round_trip_through_the_query() {
        let id = 0xdead_beef_u64;
        let query = format!("expires=1&{}&sig=ab", session_param(id));
        assert_eq!(session_in(&query), Some(id));
        assert_eq!(session_in("session=zz"), None);
        assert_eq!(session_in("session=0"), None);
        assert_eq!(session_in(""), None);
    }
}
