//! W3C Trace Context (`traceparent`): taken from an HTTP request when valid, started
//! afresh otherwise (an RTMP connection has no headers), and passed on to the webhook
//! requests a connection causes, with the same trace id and a new parent id.
//!
//! Deliberately absent: `tracestate` and span export; onair only carries the trace id
//! through so a platform can join its own traces with onair's log lines.

use std::fmt;

/// The header's name.
pub const TRACEPARENT: &str = "traceparent";

/// One `traceparent`: version 00, a 16-byte trace id, an 8-byte parent id, flags.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

impl TraceContext {
    /// A new trace: random trace and parent ids, not sampled.
    pub fn new_root() -> Self {
        let mut trace_id = [0u8; 16];
        rand::Rng::fill(&mut rand::thread_rng(), &mut trace_id[..]);
        // An all-zero id is invalid; with 128 random bits it will not happen, but be sure.
        trace_id[15] |= 1;
        Self {
            trace_id,
            parent_id: random_parent_id(),
            flags: 0,
        }
    }

    /// Parses a `traceparent` header value. Version 00 must be exactly
    /// `00-{32 hex}-{16 hex}-{2 hex}`; a later version may append fields (the spec's
    /// forward compatibility). All-zero ids and version ff are invalid.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let bytes = value.as_bytes();
        if bytes.len() < 55 || !value.is_ascii() {
            return None;
        }
        let version = hex_byte(&value[0..2])?;
        if version == 0xff || (version == 0 && bytes.len() != 55) {
            return None;
        }
        if bytes.len() > 55 && bytes[55] != b'-' {
            return None;
        }
        if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return None;
        }
        let mut trace_id = [0u8; 16];
        for (i, byte) in trace_id.iter_mut().enumerate() {
            *byte = hex_byte(&value[3 + 2 * i..5 + 2 * i])?;
        }
        let mut parent_id = [0u8; 8];
        for (i, byte) in parent_id.iter_mut().enumerate() {
            *byte = hex_byte(&value[36 + 2 * i..38 + 2 * i])?;
        }
        let flags = hex_byte(&value[53..55])?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// The same trace with a new parent id: what onair sends on a request it makes.
    pub fn child(&self) -> Self {
        Self {
            parent_id: random_parent_id(),
            ..*self
        }
    }

    /// The trace id, 32 lowercase hex digits (the `trace_id` log field).
    pub fn trace_id(&self) -> String {
        hex(&self.trace_id)
    }

    /// The header value, always version 00.
    pub fn header_value(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.parent_id),
            self.flags
        )
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.header_value())
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceContext({self})")
    }
}

fn random_parent_id() -> [u8; 8] {
    let mut id = [0u8; 8];
    rand::Rng::fill(&mut rand::thread_rng(), &mut id[..]);
    id[7] |= 1;
    id
}

/// Two lowercase hex digits (the spec allows no uppercase).
fn hex_byte(text: &str) -> Option<u8> {
    let lower = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
    if text.len() != 2 || !text.bytes().all(lower) {
        return None;
    }
    u8::from_str_radix(text, 16).ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_spec_example_and_writes_it_back() {
        let trace = TraceContext::parse(EXAMPLE).unwrap();
        assert_eq!(trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(trace.header_value(), EXAMPLE);
    }

    #[test]
    fn a_child_keeps_the_trace_and_changes_the_parent() {
        let trace = TraceContext::parse(EXAMPLE).unwrap();
        let child = trace.child();
        assert_eq!(child.trace_id(), trace.trace_id());
        assert_ne!(child.header_value(), trace.header_value());
        assert!(child.header_value().ends_with("-01"));
        assert_eq!(TraceContext::parse(&child.header_value()), Some(child));
    }

    #[test]
    fn new_roots_are_valid_and_distinct() {
        let (a, b) = (TraceContext::new_root(), TraceContext::new_root());
        assert_ne!(a.trace_id(), b.trace_id());
        assert_eq!(TraceContext::parse(&a.header_value()), Some(a));
    }

    #[test]
    fn refuses_malformed_values() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0é",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_later_version_may_add_fields() {
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes";
        assert!(TraceContext::parse(later).is_some());
        assert!(TraceContext::parse(&later.replace("01-w", "01w")).is_none());
    }
}
