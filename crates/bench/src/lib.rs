//! `onair bench`: load tools, one per subcommand.
//!
//! - `media`: publishes an FLV file in a loop at real-time pace, opens N RTMP or
//!   HTTP-FLV viewers of one stream, and reports per-viewer bitrate, time to the first
//!   video keyframe, the latency the server adds, failures, and the server's CPU and RSS.
//! - `hls`: the same publisher, N HLS viewers of the stream: low-latency ones (blocking
//!   playlist reload and the hinted part at once, as hls.js does) or plain pollers of
//!   MPEG-TS segments (nginx-rtmp); reports how soon after the frame that closes a part
//!   the part can be downloaded, failures, and the server's CPU and RSS per viewer.
//! - `rooms`: opens N WebSocket clients in one room (onair's, or a socket.io server's),
//!   sends chat at a fixed total rate from K of them, and reports deliveries per second,
//!   end-to-end latency, failures, and the server's CPU and RSS per connection.
//!
//! - `soak`: connection churn, N connect/disconnect cycles over every kind of client
//!   (publishers, viewers, room clients, stallers; clean closes and resets) while one
//!   publisher keeps a stream live; the caller checks `/metrics` before and after.
//!
//! All only talk to loopback addresses and stop by themselves: every phase has a bound.
//! Deliberately absent: decoding media, more than one stream or room per run.

mod cpus;
mod histogram;
mod hls;
mod media;
mod process;
mod report;
mod rooms;
mod rx_time;
mod soak;
mod stats;
mod window;

use std::net::SocketAddr;

use anyhow::{bail, Context};

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// N RTMP or HTTP-FLV viewers of one published stream.
    Media(media::MediaArgs),
    /// N HLS viewers of one published stream: low-latency (onair) or plain (nginx-rtmp).
    Hls(hls::HlsArgs),
    /// N WebSocket clients in one room, K of them sending chat.
    Rooms(rooms::RoomsArgs),
    /// Connection churn: N connect/disconnect cycles of every kind of client.
    Soak(soak::SoakArgs),
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Media(args) => media::run(args).await,
        BenchCommand::Hls(args) => hls::run(args).await,
        BenchCommand::Rooms(args) => rooms::run(args).await,
        BenchCommand::Soak(args) => soak::run(args).await,
    }
}

/// A progress line on stderr, tagged with the run's label when the report is JSON.
fn progress(label: &str, json: bool, message: std::fmt::Arguments<'_>) {
    if !json {
        eprintln!("bench: {message}");
    } else {
        eprintln!("bench[{label}]: {message}");
    }
}

/// The bench only loads servers on this machine.
fn require_loopback(host_port: &str) -> anyhow::Result<SocketAddr> {
    let addr: SocketAddr = host_port
        .parse()
        .with_context(|| format!("{host_port}: give a literal IP address (127.0.0.1)"))?;
    if !addr.ip().is_loopback() {
        bail!("{host_port}: the bench only talks to loopback addresses (127.0.0.1)");
    }
    Ok(addr)
}
