//! When data reached a viewer's socket, from the kernel (`SO_TIMESTAMPNS`).
//!
//! The latency a server adds ends when its bytes arrive at the viewer, not when the
//! bench gets round to reading them: with a thousand viewers on one core, the last
//! one is read milliseconds after the first, whatever the server did. The kernel
//! stamps each segment as it is queued on the socket; a read reports the stamp of the
//! newest segment it took. A server writes a frame (with the audio around it) in one
//! go, and the bench reads far more often than frames come, so a read is one write.

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
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            result => return result,
        }
    }
}

fn receive(socket: &TcpStream, buf: &mut [u8]) -> io::Result<(usize, Option<Instant>)> {
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
    Ok((message.bytes, stamp.and_then(to_instant)))
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
}
