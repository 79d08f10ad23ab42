//! RTMP viewers.

use onair_relay::client::{ClientError, RtmpUrl};
use onair_rtmp::{ClientEvent, MediaKind};
use tokio::time::timeout;

use super::rtmp_conn::RtmpConn;
use super::viewer::{Receiver, State, ViewerError};
use super::CONNECT_TIMEOUT;

/// Read buffer of each RTMP viewer.
pub(super) const VIEWER_READ_BUF: usize = 16 << 10;

pub(super) async fn play_rtmp(url: &RtmpUrl, rx: &mut Receiver) -> Result<(), ViewerError> {
    let mut client = timeout(CONNECT_TIMEOUT, async {
        let mut client = RtmpConn::connect(url, VIEWER_READ_BUF).await?;
        client.play(&url.name).await?;
        Ok::<_, ClientError>(client)
    })
    .await
    .map_err(|_| ViewerError::Timeout)??;
    rx.stats.set_state(State::Playing);
    client.stamp_arrivals()?;
    loop {
        match client.next_event().await? {
            ClientEvent::Media { kind, payload, .. } => {
                rx.arrived = client.arrived;
                rx.on_frame(kind == MediaKind::Video, &payload)
            }
            ClientEvent::StreamEnded => return Err(ViewerError::Ended),
            _ => {}
        }
    }
}
