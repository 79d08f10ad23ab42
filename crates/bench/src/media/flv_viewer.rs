//! HTTP-FLV viewers: a plain HTTP/1.1 GET, then FLV tags out of the (possibly
//! chunked) body.

use std::net::SocketAddr;

use onair_media::FrameKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::chunked::ChunkedDecoder;
use super::viewer::{Receiver, State, ViewerError};
use super::{CONNECT_TIMEOUT, MAX_TAG_SIZE};
use crate::rx_time;

/// Largest HTTP response head accepted.
pub(crate) const MAX_HTTP_HEAD: usize = 16 << 10;
/// Read buffer of each HTTP-FLV viewer.
pub(super) const HTTP_READ_BUF: usize = 16 << 10;

pub(super) async fn play_http(
    addr: SocketAddr,
    path: &str,
    rx: &mut Receiver,
) -> Result<(), ViewerError> {
    let mut buf = vec![0u8; HTTP_READ_BUF];
    let (socket, body_start, chunked) = timeout(CONNECT_TIMEOUT, async {
        let mut socket = TcpStream::connect(addr).await?;
        socket.set_nodelay(true)?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: onair-bench\r\nAccept: */*\r\n\r\n"
        );
        socket.write_all(request.as_bytes()).await?;
        let mut head = Vec::new();
        loop {
            let n = socket.read(&mut buf).await?;
            if n == 0 {
                return Err(ViewerError::Http("closed before the response head".into()));
            }
            head.extend_from_slice(buf.get(..n).unwrap_or_default());
            if let Some(end) = find(&head, b"\r\n\r\n") {
                let chunked = parse_response_head(head.get(..end).unwrap_or_default())?;
                let body = head.get(end + 4..).unwrap_or_default().to_vec();
                return Ok((socket, body, chunked));
            }
            if head.len() > MAX_HTTP_HEAD {
                return Err(ViewerError::Http("response head too long".into()));
            }
        }
    })
    .await
    .map_err(|_| ViewerError::Timeout)??;
    rx.stats.set_state(State::Playing);
    rx_time::enable(&socket)?;
    let mut body = HttpFlvBody::new(chunked);
    body.feed(&body_start, rx)?;
    loop {
        let (n, arrived) = rx_time::read(&socket, &mut buf).await?;
        if n == 0 {
            return Err(ViewerError::Ended);
        }
        rx.arrived = arrived;
        body.feed(buf.get(..n).unwrap_or_default(), rx)?;
        if body.done() {
            return Err(ViewerError::Ended);
        }
    }
}

/// The body of an HTTP-FLV response: transfer decoding, then FLV tags.
pub(super) struct HttpFlvBody {
    chunked: Option<ChunkedDecoder>,
    flv: onair_flv::FlvReader,
}

impl HttpFlvBody {
    fn new(chunked: bool) -> Self {
        Self {
            chunked: chunked.then(ChunkedDecoder::default),
            flv: onair_flv::FlvReader::new(MAX_TAG_SIZE),
        }
    }

    fn feed(&mut self, data: &[u8], rx: &mut Receiver) -> Result<(), ViewerError> {
        match &mut self.chunked {
            Some(decoder) => {
                let flv = &mut self.flv;
                decoder
                    .decode(data, |part| flv.push(part))
                    .map_err(|e| ViewerError::Http(e.to_string()))?;
            }
            None => self.flv.push(data),
        }
        while let Some(tag) = self.flv.next_tag()? {
            if tag.kind != FrameKind::Script || !tag.payload.is_empty() {
                rx.on_frame(tag.kind == FrameKind::Video, &tag.payload);
            }
        }
        Ok(())
    }

    fn done(&self) -> bool {
        self.chunked.as_ref().is_some_and(ChunkedDecoder::done)
    }
}

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Checks the status is 200; returns whether the body is chunked.
pub(crate) fn parse_response_head(head: &[u8]) -> Result<bool, ViewerError> {
    let text =
        std::str::from_utf8(head).map_err(|_| ViewerError::Http("head is not UTF-8".into()))?;
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let code = status.split(' ').nth(1).unwrap_or_default();
    if !status.starts_with("HTTP/1.") || code != "200" {
        return Err(ViewerError::Http(format!("status {status:?}")));
    }
    Ok(lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_response_heads() {
        let head = b"HTTP/1.1 200 OK\r\ncontent-type: video/x-flv\r\ntransfer-encoding: chunked";
        assert!(parse_response_head(head).unwrap());
        assert!(!parse_response_head(b"HTTP/1.0 200 OK\r\nContent-Type: video/x-flv").unwrap());
        assert!(parse_response_head(b"HTTP/1.1 404 Not Found\r\n").is_err());
    }
}
