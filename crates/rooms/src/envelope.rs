//! An event encoded once, shared by every connection that sends it.

use std::sync::{Arc, OnceLock};

use bytes::{BufMut, Bytes, BytesMut};

use crate::event::{Event, EventKind, Seq};
use crate::Millis;

/// An [`Event`] with its JSON, encoded exactly once. Rooms hand out `Arc<Envelope>`:
/// every WebSocket connection sends [`ws_frame`](Envelope::ws_frame) and every SSE
/// connection sends [`sse`](Envelope::sse), both a refcount away from the same bytes.
#[derive(Debug)]
pub struct Envelope {
    event: Event,
    /// The event's seq and ts, read for every member a room offers it to.
    seq: Option<Seq>,
    ts: Millis,
    json: Bytes,
    sse: OnceLock<Bytes>,
    /// The frame header, then `json`: one allocation for both.
    ws_frame: Bytes,
}

/// Room before the JSON for the longest WebSocket frame header (RFC 6455 5.2).
const MAX_WS_HEADER: usize = 10;

impl Envelope {
    /// Encodes `event` once, as JSON inside its WebSocket frame.
    pub fn new(event: Event) -> Envelope {
        let mut buf = Vec::with_capacity(MAX_WS_HEADER + 128);
        buf.resize(MAX_WS_HEADER, 0);
        event.write_json(&mut buf);
        let header = ws_header(buf.len() - MAX_WS_HEADER);
        let start = MAX_WS_HEADER - header.len();
        buf[start..MAX_WS_HEADER].copy_from_slice(&header);
        let frame = Bytes::from(buf);
        Envelope {
            seq: event.seq(),
            ts: event.ts(),
            event,
            json: frame.slice(MAX_WS_HEADER..),
            sse: OnceLock::new(),
            ws_frame: frame.slice(start..),
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
        self.seq
    }

    /// The event's `ts`.
    pub fn ts(&self) -> Millis {
        self.ts
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

    /// The event as one complete WebSocket text frame from a server (RFC 6455 5.2: FIN,
    /// opcode 1, unmasked, the shortest length encoding, then the JSON), shared: a
    /// server's frames are not masked, so every connection sends the same bytes.
    pub fn ws_frame(&self) -> &Bytes {
        &self.ws_frame
    }
}

/// The header of a server's text frame carrying `len` bytes.
fn ws_header(len: usize) -> BytesMut {
    let mut out = BytesMut::with_capacity(MAX_WS_HEADER);
    out.put_u8(0x81);
    if len < 126 {
        out.put_u8(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.put_u8(126);
        out.put_u16(len);
    } else {
        out.put_u8(127);
        out.put_u64(len as u64);
    }
    out
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

    fn system(text_len: usize) -> Envelope {
        Envelope::new(Event::System(crate::event::SystemEvent {
            seq: Seq(1),
            ts: Millis(2),
            text: "x".repeat(text_len),
        }))
    }

    #[test]
    fn ws_frame_is_a_final_unmasked_text_frame_with_the_shortest_length() {
        for (text_len, header) in [(0, 2), (200, 4), (70_000, 10)] {
            let env = system(text_len);
            let frame = env.ws_frame();
            let len = env.json().len();
            assert_eq!(frame[0], 0x81);
            assert_eq!(&frame[header..], env.json().as_ref());
            match header {
                2 => assert_eq!(frame[1] as usize, len),
                4 => {
                    assert_eq!(frame[1], 126);
                    assert_eq!(u16::from_be_bytes([frame[2], frame[3]]) as usize, len);
                }
                _ => {
                    assert_eq!(frame[1], 127);
                    let mut n = [0; 8];
                    n.copy_from_slice(&frame[2..10]);
                    assert_eq!(u64::from_be_bytes(n) as usize, len);
                }
            }
            assert_eq!(env.ws_frame().as_ptr(), frame.as_ptr());
        }
    }
}
