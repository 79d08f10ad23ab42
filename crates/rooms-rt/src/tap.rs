//! A look at every event a room broadcasts, for the webhooks. The tap runs inline,
//! under the room's lock, so it must filter cheaply and only hand events off.

use std::fmt;
use std::sync::Arc;

use onair_rooms::Envelope;

type TapFn = dyn Fn(&str, &Arc<Envelope>) + Send + Sync;

/// Called with the room's key (`app/name`) and each event it broadcasts.
#[derive(Clone)]
pub struct EventTap(Arc<TapFn>);

impl EventTap {
    pub fn new(tap: impl Fn(&str, &Arc<Envelope>) + Send + Sync + 'static) -> Self {
        Self(Arc::new(tap))
    }

    pub(crate) fn call(&self, room: &str, event: &Arc<Envelope>) {
        (self.0)(room, event);
    }
}

impl fmt::Debug for EventTap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventTap(..)")
    }
}
