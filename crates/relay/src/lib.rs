//! onair's media relay: one ingest in, frames out to every viewer and tap.
//!
//! What it owns: the [`hub::Hub`] of live streams (each with its GOP cache, its
//! bounded frame ring and its timestamp rebasing), the viewers reading that ring at
//! their own cursors (the rules for the cache, the rebasing, a viewer's skips and the
//! codec info are `onair_policy`'s, sans-IO; the hub holds them under its locks), the delivery groups of [`fanout`] that write many viewers'
//! sockets from one task, and the socket plumbing they use ([`read`], [`write`],
//! [`send`]). Also the async RTMP [`client`] (`onair push`, the load generator, tests),
//! and the W3C [`trace_context`] a publish carries into logs and webhooks.
//!
//! How the rest plugs in: ingest calls [`hub::Hub::publish_as`] and pushes frames;
//! protocol front ends (the RTMP connection, HTTP-FLV) seat their viewers in the
//! stream's delivery groups; taps ([`hub::Hub::tap`]: the HLS muxer, the recorder) read
//! frames in their own tasks; the one [`hub::HubObserver`] (the webhooks) hears of
//! publishes and plays; [`hub::Hub::live_changes`] tells anyone who follows.
//!
//! Deliberately absent: every decision about who may publish or play (the control
//! plane's), HTTP and its routing, storage, and metrics registries: the hub keeps
//! plain counters that whoever serves `/metrics` reads. Its dependency tree has no
//! SQLite, axum or HTTP client.

pub mod client;
mod conn_id;
pub mod fanout;
pub mod hub;
pub mod read;
pub mod send;
mod settings;
pub mod trace_context;
pub mod write;

pub use conn_id::next_conn_id;
pub use settings::HubSettings;
