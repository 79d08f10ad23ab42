//! Mute and ban lists (one pair per room, one global pair).

use std::collections::HashMap;

use crate::{Error, Identity, Millis};

/// Mutes (may read, may not send) and bans (may not join) by user id, each with an
/// optional expiry. Anonymous connections have no id and are not listed here: keeping
/// them out is the transport's job (by address) or the `anonymous_can_send` setting's.
#[derive(Debug, Clone)]
pub struct Moderation {
    max_entries: usize,
    mutes: HashMap<String, Option<Millis>>,
    bans: HashMap<String, Option<Millis>>,
}

fn active(until: Option<Millis>, now: Millis) -> bool {
    until.is_none_or(|t| now < t)
}

impl Moderation {
    /// Empty lists of at most `max_entries` each.
    pub fn new(max_entries: usize) -> Moderation {
        Moderation {
            max_entries,
            mutes: HashMap::new(),
            bans: HashMap::new(),
        }
    }

    fn add(
        list: &mut HashMap<String, Option<Millis>>,
        name: &'static str,
        max: usize,
        user_id: &str,
        until: Option<Millis>,
        now: Millis,
    ) -> Result<(), Error> {
        if !list.contains_key(user_id) && list.len() >= max {
            list.retain(|_, &mut u| active(u, now));
            if list.len() >= max {
                return Err(Error::ListFull { list: name, max });
            }
        }
        list.insert(user_id.to_owned(), until);
        Ok(())
    }

    /// Mutes `user_id` until `until` (`None`: until unmuted). Replaces an earlier mute.
    pub fn mute(&mut self, user_id: &str, until: Option<Millis>, now: Millis) -> Result<(), Error> {
        Self::add(
            &mut self.mutes,
            "mute",
            self.max_entries,
            user_id,
            until,
            now,
        )
    }

    /// Lifts a mute; false if there was none.
    pub fn unmute(&mut self, user_id: &str) -> bool {
        self.mutes.remove(user_id).is_some()
    }

    /// Bans `user_id` until `until` (`None`: until unbanned). Replaces an earlier ban.
    pub fn ban(&mut self, user_id: &str, until: Option<Millis>, now: Millis) -> Result<(), Error> {
        Self::add(&mut self.bans, "ban", self.max_entries, user_id, until, now)
    }

    /// Lifts a ban; false if there was none.
    pub fn unban(&mut self, user_id: &str) -> bool {
        self.bans.remove(user_id).is_some()
    }

    /// Muted at `now`: `Some(until)`.
    pub fn muted(&self, user_id: &str, now: Millis) -> Option<Option<Millis>> {
        self.mutes.get(user_id).copied().filter(|&u| active(u, now))
    }

    /// Banned at `now`: `Some(until)`.
    pub fn banned(&self, user_id: &str, now: Millis) -> Option<Option<Millis>> {
        self.bans.get(user_id).copied().filter(|&u| active(u, now))
    }

    /// `Err(Banned)` when `identity` may not join.
    pub fn check_join(&self, identity: &Identity, now: Millis) -> Result<(), Error> {
        match identity.user_id().and_then(|id| self.banned(id, now)) {
            Some(until) => Err(Error::Banned { until }),
            None => Ok(()),
        }
    }

    /// `Err(Muted)` when the user with this id may not send.
    pub fn check_send(&self, user_id: &str, now: Millis) -> Result<(), Error> {
        match self.muted(user_id, now) {
            Some(until) => Err(Error::Muted { until }),
            None => Ok(()),
        }
    }

    /// Mutes in force at `now`, for a REST listing.
    pub fn mutes(&self, now: Millis) -> impl Iterator<Item = (&str, Option<Millis>)> {
        self.mutes
            .iter()
            .filter(move |(_, &u)| active(u, now))
            .map(|(id, &u)| (id.as_str(), u))
    }

    /// Bans in force at `now`, for a REST listing.
    pub fn bans(&self, now: Millis) -> impl Iterator<Item = (&str, Option<Millis>)> {
        self.bans
            .iter()
            .filter(move |(_, &u)| active(u, now))
            .map(|(id, &u)| (id.as_str(), u))
    }

    /// Forgets expired entries.
    pub fn expire(&mut self, now: Millis) {
        self.mutes.retain(|_, &mut u| active(u, now));
        self.bans.retain(|_, &mut u| active(u, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorCode, Role, User};

    fn alice() -> Identity {
        User::new("alice", "Alice", Role::Viewer).into()
    }

    #[test]
    fn mute_with_and_without_expiry() {
        let mut m = Moderation::new(10);
        m.mute("alice", Some(Millis(1000)), Millis(0)).unwrap();
        assert_eq!(
            m.check_send("alice", Millis(999)),
            Err(Error::Muted {
                until: Some(Millis(1000))
            })
        );
        assert_eq!(m.check_send("alice", Millis(1000)), Ok(()));
        m.mute("bob", None, Millis(0)).unwrap();
        assert_eq!(
            m.check_send("bob", Millis(u64::MAX)).unwrap_err().code(),
            ErrorCode::Muted
        );
        assert!(m.unmute("bob"));
        assert!(!m.unmute("bob"));
        assert_eq!(m.check_send("bob", Millis(0)), Ok(()));
    }

    #[test]
    fn bans_keep_users_out_but_not_anonymous_connections() {
        let mut m = Moderation::new(10);
        m.ban("alice", None, Millis(0)).unwrap();
        assert_eq!(
            m.check_join(&alice(), Millis(5)),
            Err(Error::Banned { until: None })
        );
        assert_eq!(m.check_join(&Identity::Anonymous, Millis(5)), Ok(()));
        assert_eq!(m.bans(Millis(5)).count(), 1);
        assert!(m.unban("alice"));
        assert_eq!(m.check_join(&alice(), Millis(5)), Ok(()));
    }

    #[test]
    fn lists_are_bounded_and_expired_entries_make_room() {
        let mut m = Moderation::new(2);
        m.mute("a", Some(Millis(100)), Millis(0)).unwrap();
        m.mute("b", None, Millis(0)).unwrap();
        assert_eq!(
            m.mute("c", None, Millis(50)),
            Err(Error::ListFull {
                list: "mute",
                max: 2
            })
        );
        // Re-muting someone listed is always possible.
        m.mute("b", Some(Millis(500)), Millis(50)).unwrap();
        // After a's mute expires, c fits.
        m.mute("c", None, Millis(100)).unwrap();
        assert_eq!(m.mutes(Millis(100)).count(), 2);
        m.expire(Millis(1000));
        assert_eq!(m.mutes(Millis(1000)).count(), 1);
    }
}
