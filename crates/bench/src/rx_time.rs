//! When data reached a client's socket, from the kernel (`SO_TIMESTAMPNS`); used by
//! the media bench's viewers and the rooms bench's clients.
//!
//! The latency a server adds ends when its bytes arrive at the client, not when the
//! bench gets round to reading them: with a thousand viewers on one core, the last
//! one is read milliseconds after the first, whatever the server did. The kernel
//! stamps each segment as it is queued on the socket; a read reports the stamp of the
//! newest segment it took. A media server writes a frame (with the audio around it) in
//! one go, and the bench reads far more often than frames come, so a read is one write.

use std::io::{self, IoSliceMut};
use std::os::fd::AsRawFd;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags};
use nix::sys::time::TimeSpec;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Asks the kernel to stamp the data this socket receives.
pub(super) fn enable(socket: &TcpStream) -> io::Result<()> {
    setsockopt(socket, sockopt::ReceiveTimestampns, &true).map_err(io::Error::from)
}

/// Reads into `buf`: the byte count (0 at end of stream) and, when the socket stamps
/// its data, the instant the newest of it arrived.
pub(super) async fn read(
    socket: &TcpStream,
    buf: &mut [u8],
) -> io::Result<(usize, Option<Instant>)> {
    loop {
        socket.readable().await?;
        match socket.try_io(Interest::READABLE, || receive(socket, buf)) {
            Ok((n, stamp)) => return Ok((n, stamp.and_then(to_instant))),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            Err(error) => return Err(error),
        }
    }
}

/// One non-blocking `recvmsg` into `buf` (run it inside `try_io`): the byte count and
/// the kernel's stamp of the newest data it took, if the socket stamps.
pub(super) fn receive(socket: &TcpStream, buf: &mut [u8]) -> io::Result<(usize, Option<TimeSpec>)> {
    let mut control = nix::cmsg_space!(TimeSpec);
    let mut iov = [IoSliceMut::new(buf)];
    let message = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::empty(),
    )
    .map_err(io::Error::from)?;
    let stamp = message.cmsgs().ok().and_then(|mut cmsgs| {
        cmsgs.find_map(|cmsg| match cmsg {
            ControlMessageOwned::ScmTimestampns(stamp) => Some(stamp),
            _ => None,
        })
    });
    Ok((message.bytes, stamp))
}

/// A wall-clock stamp as microseconds since the Unix epoch.
pub(super) fn to_unix_micros(stamp: TimeSpec) -> Option<u64> {
    let secs = u64::try_from(stamp.tv_sec()).ok()?;
    let micros = u64::try_from(stamp.tv_nsec()).ok()? / 1000;
    secs.checked_mul(1_000_000)?.checked_add(micros)
}

/// A wall-clock stamp as an `Instant`, by its age now.
fn to_instant(stamp: TimeSpec) -> Option<Instant> {
    let secs = u64::try_from(stamp.tv_sec()).ok()?;
    let nanos = u32::try_from(stamp.tv_nsec()).ok()?;
    let at = SystemTime::UNIX_EPOCH + Duration::new(secs, nanos);
    let age = SystemTime::now().duration_since(at).unwrap_or_default();
    Instant::now().checked_sub(age)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_read_carries_the_time_its_data_arrived() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        enable(&client).unwrap();
        // The kernel switches stamping on a moment after the first socket asks (a
        // deferred static key): the first segments may come unstamped.
        for _ in 0..100 {
            let written = Instant::now();
            server.write_all(b"frame").await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            let read_at = Instant::now();
            let mut buf = [0u8; 64];
            let (n, arrived) = read(&client, &mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"frame");
            let Some(arrived) = arrived else {
                continue;
            };
            // Stamped when it arrived (after the write), not when it was read; the
            // millisecond allows for converting the wall-clock stamp.
            assert!(arrived + Duration::from_millis(1) >= written);
            assert!(arrived < read_at);
            return;
        }
        panic!("the kernel never stamped the data");
    }

    #[test]
    fn a_stamp_in_unix_micros() {
        let stamp = TimeSpec::new(1_700_000_000, 123_456_789);
        assert_eq!(to_unix_micros(stamp), Some(1_700_000_000_123_456));
        assert_eq!(to_unix_micros(TimeSpec::new(-1, 0)), None);
    }
}
