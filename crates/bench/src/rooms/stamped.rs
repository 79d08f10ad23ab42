//! A room client's TCP stream that remembers when the data of its latest read reached
//! the socket (the kernel's receive stamp, see `rx_time`), so latency ends there and
//! not when the bench's task gets round to the message.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

use super::client::unix_micros;
use crate::rx_time;

#[derive(Debug)]
pub(super) struct Stamped {
    socket: TcpStream,
    /// When the newest data of the latest read arrived, unix µs (0 before any read).
    last_arrival: u64,
}

impl Stamped {
    /// Wraps `socket` and asks the kernel to stamp what it receives.
    pub(super) fn new(socket: TcpStream) -> io::Result<Self> {
        rx_time::enable(&socket)?;
        Ok(Self {
            socket,
            last_arrival: 0,
        })
    }

    /// When the newest data of the latest read that returned bytes reached the socket,
    /// in unix microseconds (comparable with [`unix_micros`]); the time of that read
    /// when the kernel gave no stamp.
    pub(super) fn last_arrival_micros(&self) -> u64 {
        self.last_arrival
    }
}

impl AsyncRead for Stamped {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            ready!(this.socket.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let socket = &this.socket;
            match socket.try_io(Interest::READABLE, || rx_time::receive(socket, unfilled)) {
                Ok((n, stamp)) => {
                    if n > 0 {
                        this.last_arrival = stamp
                            .and_then(rx_time::to_unix_micros)
                            .unwrap_or_else(unix_micros);
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // Readiness was stale; `try_io` cleared it, so the next poll registers.
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
    }
}

impl AsyncWrite for Stamped {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().socket).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().socket).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().socket).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().socket).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn pair() -> (Stamped, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (Stamped::new(client).unwrap(), server)
    }

    #[tokio::test]
    async fn a_read_remembers_when_its_data_arrived() {
        let (mut stamped, mut server) = pair().await;
        assert_eq!(stamped.last_arrival_micros(), 0);
        // The kernel switches stamping on a moment after the first socket asks (a
        // deferred static key): the first segments may come unstamped, and then the
        // stamp is the read's own time, after the sleep.
        for _ in 0..100 {
            let written = unix_micros();
            server.write_all(b"chat").await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            let read_at = unix_micros();
            let mut buf = [0u8; 64];
            let n = stamped.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"chat");
            let arrived = stamped.last_arrival_micros();
            assert!(arrived >= written, "{arrived} before the write {written}");
            assert!(arrived <= unix_micros(), "{arrived} in the future");
            if arrived < read_at {
                // Stamped when it arrived, not when it was read.
                return;
            }
        }
        panic!("the kernel never stamped the data");
    }

    #[tokio::test]
    async fn writes_pass_through() {
        let (mut stamped, mut server) = pair().await;
        stamped.write_all(b"hello").await.unwrap();
        stamped.flush().await.unwrap();
        let mut buf = [0u8; 5];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");
        stamped.shutdown().await.unwrap();
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        // No read yet: nothing stamped.
        assert_eq!(stamped.last_arrival_micros(), 0);
    }
}
