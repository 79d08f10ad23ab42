//! What onair makes from a live stream besides relaying it: HLS and LL-HLS playlists,
//! parts and segments in memory ([`hls`]), and recordings on disk ([`record`]).
//!
//! Each output reads a stream the way a viewer does, through a hub tap
//! (`onair_relay::hub::Hub::tap`), so it never makes the publisher wait and a slow disk
//! or muxer costs only itself. Each owns its settings (with `validate`), its counters
//! (read by the metrics scrape) and its tasks; the composition root starts them and
//! tells them when to stop. The next outputs (transcoding ladders, snapshots,
//! restreaming) plug in here the same way.
//!
//! Deliberately absent: HTTP (the edge serves what [`hls::Hls`] holds and lists what
//! [`record::Recordings`] wrote), webhooks (recordings report finished files through
//! [`record::RecordingObserver`]), and the store.

pub mod hls;
pub mod record;
