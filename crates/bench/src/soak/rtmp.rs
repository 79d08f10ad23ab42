//! RTMP cycles: a short-lived publisher, and a viewer of the long-lived stream.

use onair_media::FrameKind;
use onair_relay::client::RtmpUrl;
use onair_rtmp::{ClientEvent, MediaKind};

use super::super::media::rtmp_conn::RtmpConn;
use super::kind::Leave;
use super::{Outcome, Target};

/// Read buffer of each churn connection.
const READ_BUF: usize = 16 << 10;

/// Publishes the start of the file to `NAME-p{i}`, then leaves.
pub(super) async fn publish(i: u64, target: &Target, leave: Leave) -> Result<Outcome, String> {
    let url = RtmpUrl {
        name: format!("{}-p{i}", target.name()),
        ..target.rtmp.clone()
    };
    let mut conn = RtmpConn::connect(&url, READ_BUF)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    conn.publish(&url.name)
        .await
        .map_err(|e| format!("publish: {e}"))?;
    for tag in &target.churn_tags {
        match tag.kind {
            FrameKind::Script => conn.send_metadata(&tag.payload),
            FrameKind::Audio => conn.send_media(MediaKind::Audio, tag.timestamp, &tag.payload),
            FrameKind::Video => conn.send_media(MediaKind::Video, tag.timestamp, &tag.payload),
        }
    }
    conn.flush().await.map_err(|e| format!("send: {e}"))?;
    finish(conn, leave).await
}

/// Plays the long-lived stream until its first video frame, then leaves.
pub(super) async fn play(target: &Target, leave: Leave) -> Result<Outcome, String> {
    let mut conn = RtmpConn::connect(&target.rtmp, READ_BUF)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    conn.play(target.name())
        .await
        .map_err(|e| format!("play: {e}"))?;
    loop {
        match conn.next_event().await.map_err(|e| format!("play: {e}"))? {
            ClientEvent::Media {
                kind: MediaKind::Video,
                ..
            } => break,
            ClientEvent::StreamEnded => return Err("the stream ended".to_owned()),
            _ => {}
        }
    }
    finish(conn, leave).await
}

async fn finish(conn: RtmpConn, leave: Leave) -> Result<Outcome, String> {
    match leave {
        Leave::Clean => conn.close().await.map_err(|e| format!("close: {e}"))?,
        Leave::Abrupt => conn.reset(),
    }
    Ok(Outcome::Done)
}
