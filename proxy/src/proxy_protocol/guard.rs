//! A `TCP` vserver's refusal of a PROXY header from an untrusted source.
//!
//! A TCP client need not speak first (SMTP, MySQL and the like wait for the server's
//! greeting), so its first bytes cannot be awaited before connecting to a member. Instead the
//! client stream is wrapped: its first bytes are held back until they either are a PROXY
//! header's signature (the read fails: the relay ends and both connections close) or cannot
//! be one (they go on, and everything after passes straight through).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::starts_with_signature;

/// The longest signature (v2's).
const SIGNATURE_LEN: usize = 12;

/// A client stream whose first bytes must not be a PROXY header.
pub struct RefuseHeader<IO> {
    inner: IO,
    held: [u8; SIGNATURE_LEN],
    /// Bytes in `held`.
    len: usize,
    /// Bytes of `held` already handed on; `None` while undecided.
    passed: Option<usize>,
    /// Called once, when a header is refused.
    on_refused: Option<Box<dyn FnOnce() + Send>>,
}

impl<IO> std::fmt::Debug for RefuseHeader<IO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefuseHeader")
            .field("held", &&self.held[..self.len])
            .field("passed", &self.passed)
            .finish_non_exhaustive()
    }
}

impl<IO> RefuseHeader<IO> {
    pub fn new(inner: IO, on_refused: impl FnOnce() + Send + 'static) -> RefuseHeader<IO> {
        RefuseHeader {
            inner,
            held: [0; SIGNATURE_LEN],
            len: 0,
            passed: None,
            on_refused: Some(Box::new(on_refused)),
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for RefuseHeader<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match this.passed {
                Some(passed) if passed < this.len => {
                    let n = (this.len - passed).min(buf.remaining());
                    buf.put_slice(&this.held[passed..passed + n]);
                    this.passed = Some(passed + n);
                    return Poll::Ready(Ok(()));
                }
                Some(_) => return Pin::new(&mut this.inner).poll_read(cx, buf),
                None => {
                    let mut more = ReadBuf::new(&mut this.held[this.len..]);
                    match Pin::new(&mut this.inner).poll_read(cx, &mut more) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                        Poll::Ready(Ok(())) => {}
                    }
                    let n = more.filled().len();
                    this.len += n;
                    let decided = if n == 0 {
                        // The client closed: what it sent goes on, then the end.
                        Some(false)
                    } else {
                        starts_with_signature(&this.held[..this.len])
                    };
                    match decided {
                        Some(true) => {
                            if let Some(on_refused) = this.on_refused.take() {
                                on_refused();
                            }
                            return Poll::Ready(Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                "a PROXY protocol header from an untrusted source",
                            )));
                        }
                        Some(false) => {
                            this.passed = Some(0);
                            if n == 0 && this.len == 0 {
                                return Poll::Ready(Ok(()));
                            }
                        }
                        None => {}
                    }
                }
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for RefuseHeader<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn read_through(chunks: &[&[u8]]) -> (io::Result<Vec<u8>>, bool) {
        let (mut writer, reader) = tokio::io::duplex(64);
        let refused = Arc::new(AtomicBool::new(false));
        let flag = refused.clone();
        let mut guarded = RefuseHeader::new(reader, move || flag.store(true, Relaxed));
        let chunks: Vec<Vec<u8>> = chunks.iter().map(|c| c.to_vec()).collect();
        tokio::spawn(async move {
            for chunk in chunks {
                writer.write_all(&chunk).await.unwrap();
                tokio::task::yield_now().await;
            }
        });
        let mut out = Vec::new();
        let result = guarded.read_to_end(&mut out).await.map(|_| out);
        (result, refused.load(Relaxed))
    }

    #[tokio::test]
    async fn ordinary_first_bytes_pass_whole_even_in_pieces() {
        let (read, refused) = read_through(&[b"PR", b"INT hello", b" world"]).await;
        assert_eq!(read.unwrap(), b"PRINT hello world");
        assert!(!refused);
        let (read, _) = read_through(&[b"\r\n"]).await;
        assert_eq!(read.unwrap(), b"\r\n");
        let (read, _) = read_through(&[]).await;
        assert_eq!(read.unwrap(), b"");
    }

    #[tokio::test]
    async fn a_header_fails_the_read_and_is_counted() {
        let (read, refused) = read_through(&[b"PRO", b"XY TCP4 1.2.3.4"]).await;
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert!(refused);
        let (read, refused) = read_through(&[b"\r\n\r\n\0\r\nQUIT\n\x21"]).await;
        assert!(read.is_err());
        assert!(refused);
    }
}
