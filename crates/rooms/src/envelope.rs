//! An event encoded once, shared by every connection that sends it.

use std::sync::{Arc, OnceLock};

use bytes::{BufMut, Bytes, BytesMut};

use crate::event::{Event, EventKind, Seq};
use crate::Millis;

/// An [`Event`] with its JSON, encoded exactly once. Rooms hand out `Arc<Envelope>`:
/// every WebSocket connection sends [`json`](Envelope::json) as a text frame and every
/// SSE connection sends [`sse`](Envelope::sse), both a refcount away from the same bytes.
#[derive(Debug)]
pub struct Envelope {
    event: Event,
    json: Bytes,
    sse: OnceLock<Bytes>,
}

impl Envelope {
    /// Encodes `event`.
    pub fn new(event: Event) -> Envelope {
        let json = event.to_json_bytes();
        Envelope {
            event,
            json,
            sse: OnceLock::new(),
        }
    }

    /// Encodes `event`, ready to share.
    pub fn shared(event: Event) -> Arc<Envelope> {
        Arc::new(Envelope::new(event))
    }

    /// The event.
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// The event as compact JSON (one WebSocket text frame). Always valid UTF-8.
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// The event's `type`.
    pub fn kind(&self) -> EventKind {
        self.event.kind()
    }

    /// The event's `seq`, if kept in history.
    pub fn seq(&self) -> Option<Seq> {
        self.event.seq()
    }

    /// The event's `ts`.
    pub fn ts(&self) -> Millis {
        self.event.ts()
    }

    /// The event as one Server-Sent Events message, built on first use and then shared:
    /// `id: <seq>` (history events only, so `Last-Event-ID` resumes), `event: <type>`,
    /// `data: <json>`, blank line. Compact JSON never contains a raw newline.
    pub fn sse(&self) -> &Bytes {
        self.sse.get_or_init(|| {
            let kind = self.kind().as_str();
            let mut out = BytesMut::with_capacity(self.json.len() + kind.len() + 40);
            if let Some(seq) = self.seq() {
                out.put_slice(format!("id: {seq}\n").as_bytes());
            }
            out.put_slice(b"event: ");
            out.put_slice(kind.as_bytes());
            out.put_slice(b"\ndata: ");
            out.put_slice(&self.json);
            out.put_slice(b"\n\n");
            out.freeze()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{StreamEvent, StreamState, ViewersEvent};

    #[test]
    fn sse_frame_has_id_only_for_history_events() {
        let env = Envelope::new(Event::Stream(StreamEvent {
            seq: Seq(3),
            ts: Millis(9),
            state: StreamState::Live,
        }));
        assert_eq!(
            env.sse().as_ref(),
            b"id: 3\nevent: stream\ndata: {\"type\":\"stream\",\"seq\":3,\"ts\":9,\"state\":\"live\"}\n\n"
        );
        let env = Envelope::new(Event::Viewers(ViewersEvent {
            ts: Millis(9),
            count: 2,
        }));
        assert_eq!(
            env.sse().as_ref(),
            b"event: viewers\ndata: {\"type\":\"viewers\",\"ts\":9,\"count\":2}\n\n"
        );
    }

    #[test]
    fn bytes_are_shared_not_copied() {
        let env = Envelope::new(Event::Viewers(ViewersEvent {
            ts: Millis(1),
            count: 1,
        }));
        let a = env.json().clone();
        let b = env.json().clone();
        assert_eq!(a.as_ptr(), b.as_ptr());
        assert_eq!(env.sse().as_ptr(), env.sse().as_ptr());
    }
}
