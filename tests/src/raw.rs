//! Raw sockets for input no well-behaved client would send: write bytes, read whatever comes
//! back until the peer closes (or a deadline), and pick the status out of it.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What came back on a raw connection.
#[derive(Debug, Clone)]
pub struct RawReply {
    /// Every byte read.
    pub data: Vec<u8>,
    /// The peer closed the connection (EOF or reset) before the deadline.
    pub closed: bool,
}

impl RawReply {
    /// The status code of the first response, if one arrived.
    pub fn status(&self) -> Option<u16> {
        status_code(&self.data)
    }

    /// How many HTTP responses (status lines) arrived.
    pub fn responses(&self) -> usize {
        self.text().matches("HTTP/1.1 ").count()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// Connects to `addr`, writes `bytes`, and reads until the peer closes or `timeout` passes.
pub async fn exchange(
    addr: SocketAddr,
    bytes: &[u8],
    timeout: Duration,
) -> std::io::Result<RawReply> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(bytes).await?;
    Ok(read_until_closed(&mut stream, timeout).await)
}

/// Reads until EOF, a reset, or `timeout`.
pub async fn read_until_closed(stream: &mut TcpStream, timeout: Duration) -> RawReply {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut data = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return RawReply { data, closed: true },
            Ok(Ok(n)) => data.extend_from_slice(&buffer[..n]),
            Err(_) => {
                return RawReply {
                    data,
                    closed: false,
                };
            }
        }
    }
}

/// The status code of `HTTP/1.x NNN ...` at the start of `data`.
pub fn status_code(data: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(data.get(..12)?).ok()?;
    let rest = text.strip_prefix("HTTP/1.")?;
    rest.get(2..5)?.parse().ok()
}
