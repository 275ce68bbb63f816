//! Writing one response to the client: its head, then its body as the member sends it, framed
//! by length, by chunks or by closing the connection ([`crate::h1::response`] decides which
//! fields say so).
//!
//! Small pieces are gathered before a write, so a head and a short body go out in one
//! `write`; a large data frame is written from its own buffer, never copied.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body::{Body, Frame};
use tokio::io::AsyncWrite;

use crate::h1::chunked;
use crate::h1::response::ResponseBody as Framing;

/// Frames up to this size are copied next to what waits to be written.
const GATHER: usize = 16 * 1024;

/// Why a response could not be written whole.
#[derive(Debug)]
pub enum WriteFailure {
    /// The client's connection failed.
    Client(io::Error),
    /// The member's body failed mid-response: the client sees it end early.
    Member,
}

/// One response on its way out.
#[derive(Debug)]
pub struct Writer {
    framing: Framing,
    /// Bytes to write, from `written` on.
    out: Vec<u8>,
    written: usize,
    /// A large data frame, written after `out`.
    data: Option<Bytes>,
    /// The chunk's CRLF, due after `data`.
    data_crlf: bool,
    body_done: bool,
}

impl Writer {
    /// A response whose head is `head`; `framing` says how its body is delimited.
    pub fn new(head: Vec<u8>, framing: Framing) -> Writer {
        Writer {
            body_done: framing == Framing::None,
            framing,
            out: head,
            written: 0,
            data: None,
            data_crlf: false,
        }
    }

    /// Writes the head and the body; ready when all of it was flushed.
    pub fn poll_write<IO, B>(
        &mut self,
        io: &mut IO,
        mut body: Pin<&mut B>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), WriteFailure>>
    where
        IO: AsyncWrite + Unpin,
        B: Body<Data = Bytes>,
    {
        loop {
            while !self.body_done && self.data.is_none() && self.out.len() < GATHER {
                match body.as_mut().poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => self.frame(frame),
                    Poll::Ready(None) => self.end(None),
                    Poll::Ready(Some(Err(_))) => return Poll::Ready(Err(WriteFailure::Member)),
                    Poll::Pending => break,
                }
            }
            if self.written < self.out.len() {
                let n = ready!(Pin::new(&mut *io).poll_write(cx, &self.out[self.written..]))
                    .map_err(WriteFailure::Client)?;
                if n == 0 {
                    return Poll::Ready(Err(WriteFailure::Client(io::ErrorKind::WriteZero.into())));
                }
                self.written += n;
                if self.written == self.out.len() {
                    self.out.clear();
                    self.written = 0;
                }
                continue;
            }
            if let Some(data) = &mut self.data {
                let n = ready!(Pin::new(&mut *io).poll_write(cx, data))
                    .map_err(WriteFailure::Client)?;
                if n == 0 {
                    return Poll::Ready(Err(WriteFailure::Client(io::ErrorKind::WriteZero.into())));
                }
                data.advance(n);
                if data.is_empty() {
                    self.data = None;
                    if std::mem::take(&mut self.data_crlf) {
                        self.out.extend_from_slice(b"\r\n");
                    }
                }
                continue;
            }
            // Everything so far is written: push it out, then wait for more of the body.
            ready!(Pin::new(&mut *io).poll_flush(cx)).map_err(WriteFailure::Client)?;
            return if self.body_done {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            };
        }
    }

    fn frame(&mut self, frame: Frame<Bytes>) {
        let frame = match frame.into_data() {
            Ok(data) => return self.data(data),
            Err(frame) => frame,
        };
        if let Ok(trailers) = frame.into_trailers() {
            self.end(Some(&trailers));
        }
    }

    fn data(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        let chunked = self.framing == Framing::Chunked;
        if chunked {
            self.out
                .extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        }
        if self.out.len() + data.len() <= GATHER {
            self.out.extend_from_slice(&data);
            if chunked {
                self.out.extend_from_slice(b"\r\n");
            }
        } else {
            self.data = Some(data);
            self.data_crlf = chunked;
        }
    }

    /// The body ended (with `trailers`, which only a chunked body can carry).
    fn end(&mut self, trailers: Option<&HeaderMap>) {
        self.body_done = true;
        if self.framing == Framing::Chunked {
            let fields = trailers
                .into_iter()
                .flatten()
                .map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes()));
            chunked::encode_end(fields, &mut self.out);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use http_body_util::{BodyExt, Full};

    use super::*;

    fn write_all<B: Body<Data = Bytes>>(framing: Framing, body: B) -> Vec<u8> {
        let mut writer = Writer::new(b"HEAD\r\n".to_vec(), framing);
        let mut out = Vec::new();
        let body = std::pin::pin!(body);
        let cx = &mut Context::from_waker(Waker::noop());
        match writer.poll_write(&mut out, body, cx) {
            Poll::Ready(Ok(())) => out,
            other => panic!("not written at once: {other:?}"),
        }
    }

    /// A body that has every frame ready at once.
    struct Frames(std::collections::VecDeque<Bytes>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
            Poll::Ready(self.0.pop_front().map(|data| Ok(Frame::data(data))))
        }
    }

    fn frames(parts: &[&'static [u8]]) -> Frames {
        Frames(parts.iter().map(|part| Bytes::from_static(part)).collect())
    }

    #[test]
    fn a_short_body_goes_out_with_its_head() {
        let out = write_all(Framing::Length(5), Full::new(Bytes::from_static(b"hello")));
        assert_eq!(out, b"HEAD\r\nhello");
    }

    #[test]
    fn chunks_are_framed_and_ended() {
        let out = write_all(Framing::Chunked, frames(&[b"abc", b"", b"0123456789"]));
        assert_eq!(out, b"HEAD\r\n3\r\nabc\r\na\r\n0123456789\r\n0\r\n\r\n");
    }

    #[test]
    fn trailers_end_a_chunked_body() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-sum", "7".parse().unwrap());
        let body = Full::new(Bytes::from_static(b"ab")).with_trailers(async { Some(Ok(trailers)) });
        let out = write_all(Framing::Chunked, body);
        assert_eq!(out, b"HEAD\r\n2\r\nab\r\n0\r\nx-sum: 7\r\n\r\n");
    }

    #[test]
    fn a_large_frame_is_written_whole_and_framed() {
        let big: &'static [u8] = Box::leak(vec![b'x'; GATHER + 10].into_boxed_slice());
        let out = write_all(Framing::Chunked, frames(&[big, b"end"]));
        let mut expected = format!("HEAD\r\n{:x}\r\n", big.len()).into_bytes();
        expected.extend_from_slice(big);
        expected.extend_from_slice(b"\r\n3\r\nend\r\n0\r\n\r\n");
        assert_eq!(out, expected);
        let out = write_all(Framing::UntilClose, frames(&[big]));
        assert_eq!(&out[6..], big);
    }

    #[test]
    fn a_bodiless_response_is_its_head() {
        let out = write_all(Framing::None, Full::new(Bytes::new()));
        assert_eq!(out, b"HEAD\r\n");
    }
}
