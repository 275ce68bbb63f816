//! What an HTTP/1.1 client connection runs over, and what it becomes after a `101`.
//!
//! [`ClientIo::poll_readable`] is what lets an idle keep-alive connection hold no buffer: a
//! plain TCP stream reports readability without reading. A TLS stream keeps decrypted bytes
//! of its own, which readiness of the socket below would not show: it cannot tell, and is
//! waited on with a read into a buffer.
//!
//! [`Upgraded`] is the connection handed to a tunnel after a `101`: the bytes the client sent
//! after its handshake (already in the read buffer) come first, then the stream.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::server::TlsStream;

/// A client connection's byte stream.
pub trait ClientIo: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Ready when a read would find bytes (or the end), without reading anything; `None`
    /// when this stream cannot tell without a read.
    fn poll_readable(&self, cx: &mut Context<'_>) -> Option<Poll<io::Result<()>>>;
}

impl ClientIo for TcpStream {
    fn poll_readable(&self, cx: &mut Context<'_>) -> Option<Poll<io::Result<()>>> {
        Some(self.poll_read_ready(cx))
    }
}

impl ClientIo for TlsStream<TcpStream> {
    fn poll_readable(&self, _cx: &mut Context<'_>) -> Option<Poll<io::Result<()>>> {
        None
    }
}

/// Any byte stream a tunnel can relay.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// The client connection after it switched protocols.
pub struct Upgraded {
    /// Bytes read past the handshake, relayed first.
    early: BytesMut,
    io: Box<dyn Stream>,
}

impl std::fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgraded")
            .field("early", &self.early.len())
            .finish_non_exhaustive()
    }
}

impl Upgraded {
    pub fn new(io: Box<dyn Stream>, early: BytesMut) -> Upgraded {
        Upgraded { early, io }
    }
}

/// Where the connection goes once the `101` is written.
pub type UpgradeSender = oneshot::Sender<Upgraded>;

/// What a tunnel waits on for the client's side of an HTTP/1.1 upgrade (a request extension,
/// so it can be cloned; the first to take it has it).
#[derive(Debug, Clone)]
pub struct PendingUpgrade(Arc<Mutex<Option<oneshot::Receiver<Upgraded>>>>);

impl PendingUpgrade {
    pub fn new() -> (UpgradeSender, PendingUpgrade) {
        let (sender, receiver) = oneshot::channel();
        (sender, PendingUpgrade(Arc::new(Mutex::new(Some(receiver)))))
    }

    /// The client's connection, once the `101` went out; an error if the connection ended
    /// first, or another copy took it.
    pub async fn take(self) -> io::Result<Upgraded> {
        let receiver = self.0.lock().ok().and_then(|mut slot| slot.take());
        let gone = || {
            io::Error::new(
                io::ErrorKind::NotConnected,
                "the client connection ended before switching",
            )
        };
        receiver.ok_or_else(gone)?.await.map_err(|_| gone())
    }
}

impl AsyncRead for Upgraded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.early.is_empty() {
            let n = self.early.len().min(buf.remaining());
            buf.put_slice(&self.early[..n]);
            self.early.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
