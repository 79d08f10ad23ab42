//! Who is on the other end of a connection.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// What a signed-in user may do beyond reading and sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An ordinary member of the audience.
    #[default]
    Viewer,
    /// Exempt from slow mode; never sampled away.
    Moderator,
    /// The person streaming; exempt from slow mode; never sampled away.
    Streamer,
}

impl Role {
    /// `viewer`, `moderator` or `streamer`, as in tokens and events.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Moderator => "moderator",
            Role::Streamer => "streamer",
        }
    }

    /// Reads the name used in tokens (`viewer`, `moderator`, `streamer`).
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "viewer" => Some(Role::Viewer),
            "moderator" => Some(Role::Moderator),
            "streamer" => Some(Role::Streamer),
            _ => None,
        }
    }

    /// Moderators and streamers: exempt from slow mode and always delivered.
    pub const fn is_privileged(self) -> bool {
        matches!(self, Role::Moderator | Role::Streamer)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signed-in user, as a chat token names them. Serialized in events as
/// `{"id": "…", "name": "…", "role": "viewer"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct User {
    /// Stable identifier (the token's `sub`); rate limits, mutes and bans key on it.
    /// Shared: every event a user sends carries a copy of its `User`.
    pub id: Arc<str>,
    /// Display name.
    pub name: Arc<str>,
    /// What the user may do.
    #[serde(default)]
    pub role: Role,
}

impl User {
    /// A user with the given id, display name and role.
    pub fn new(id: impl Into<Arc<str>>, name: impl Into<Arc<str>>, role: Role) -> User {
        User {
            id: id.into(),
            name: name.into(),
            role,
        }
    }
}

/// A connection's identity: a signed-in [`User`] or nobody in particular.
///
/// Anonymous connections may always read. Whether they may send is
/// [`RoomSettings::anonymous_can_send`](crate::RoomSettings::anonymous_can_send); when they
/// may, their messages are signed `{"id": "anon:<conn id>", "name": "anonymous", "role": "viewer"}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Identity {
    /// No token.
    #[default]
    Anonymous,
    /// A verified token.
    User(User),
}

impl Identity {
    /// The user, unless anonymous.
    pub fn user(&self) -> Option<&User> {
        match self {
            Identity::Anonymous => None,
            Identity::User(user) => Some(user),
        }
    }

    /// The user's id, unless anonymous.
    pub fn user_id(&self) -> Option<&str> {
        self.user().map(|u| &*u.id)
    }

    /// The user's role; anonymous connections count as viewers.
    pub fn role(&self) -> Role {
        self.user().map_or(Role::Viewer, |u| u.role)
    }
}

impl From<User> for Identity {
    fn from(user: User) -> Identity {
        Identity::User(user)
    }
}

/// The server's number for one connection (WebSocket or SSE), unique while it is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The user an anonymous connection's messages are signed with, when anonymous sending is on.
pub(crate) fn anonymous_user(conn: ConnId) -> User {
    User::new(format!("anon:{}", conn.0), "anonymous", Role::Viewer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in [Role::Viewer, Role::Moderator, Role::Streamer] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("admin"), None);
        assert!(!Role::Viewer.is_privileged());
        assert!(Role::Moderator.is_privileged());
        assert!(Role::Streamer.is_privileged());
    }

    #[test]
    fn user_json_shape() {
        let user = User::new("u1", "Alice", Role::Moderator);
        assert_eq!(
            serde_json::to_string(&user).unwrap(),
            r#"{"id":"u1","name":"Alice","role":"moderator"}"#
        );
    }

    #[test]
    fn anonymous_is_a_viewer_without_id() {
        let anon = Identity::Anonymous;
        assert_eq!(anon.user_id(), None);
        assert_eq!(anon.role(), Role::Viewer);
        assert_eq!(&*anonymous_user(ConnId(7)).id, "anon:7");
    }
}
