//! The accepting side, on a socket just accepted by a vserver with `proxyprotocol = "ENABLED"`.
//!
//! A trusted source's header is read with `peek` and then exactly its bytes are consumed, so
//! what follows (an HTTP request, a TLS ClientHello, a TCP stream) stays in the socket for the
//! layer that serves it, splice included. An untrusted source's first bytes are looked at
//! without being consumed.

use std::io;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::{Addresses, Parsed, ProxyHeaderError, parse, starts_with_signature};

/// The largest header read: v2's 16 fixed bytes and a 16-bit length of addresses and TLVs.
const MAX_HEADER: usize = 16 + 65_535;

/// Why a connection was refused before it was served; the `reason` label of
/// `ballast_proxy_protocol_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A source outside `proxyprotocoltrusted` sent a PROXY header.
    Untrusted,
    /// A trusted source sent something else first.
    Missing,
    /// A trusted source sent a PROXY header that does not parse.
    Malformed,
    /// A trusted source did not send a whole header within `clientheadertimeout`.
    Timeout,
}

impl Refusal {
    pub const ALL: [Refusal; 4] = [
        Refusal::Untrusted,
        Refusal::Missing,
        Refusal::Malformed,
        Refusal::Timeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Untrusted => "untrusted",
            Refusal::Missing => "missing",
            Refusal::Malformed => "malformed",
            Refusal::Timeout => "timeout",
        }
    }

    /// Index into per-reason counters, in the order of [`Refusal::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// What an HTTP client is told with its `400`.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Untrusted => {
                "a PROXY protocol header from a source this vserver does not trust"
            }
            Refusal::Missing => "the connection does not start with a PROXY protocol header",
            Refusal::Malformed => "malformed PROXY protocol header",
            Refusal::Timeout => "no complete PROXY protocol header in time",
        }
    }
}

/// What became of a trusted source's connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Header {
    /// The header was read and consumed.
    Read(Addresses),
    /// Refused, for this reason.
    Refused(Refusal),
    /// The source closed (or reset) the connection before sending a byte: a health check's
    /// connect, nothing to count.
    Closed,
}

/// Reads a trusted source's header within `timeout`, consuming exactly its bytes.
pub async fn read_header(stream: &mut TcpStream, timeout: Duration) -> Header {
    match tokio::time::timeout(timeout, read(stream)).await {
        Ok(Ok(header)) => header,
        Ok(Err(error)) => {
            tracing::debug!(%error, "reading a PROXY protocol header failed");
            Header::Closed
        }
        Err(_) => Header::Refused(Refusal::Timeout),
    }
}

async fn read(stream: &mut TcpStream) -> io::Result<Header> {
    let mut buf = vec![0u8; 256];
    let mut seen = 0;
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Ok(if seen == 0 {
                Header::Closed
            } else {
                Header::Refused(Refusal::Timeout)
            });
        }
        match parse(&buf[..n]) {
            Ok(Parsed::Complete { addresses, len }) => {
                stream.read_exact(&mut buf[..len]).await?;
                return Ok(Header::Read(addresses));
            }
            Err(ProxyHeaderError::NoHeader) => return Ok(Header::Refused(Refusal::Missing)),
            Err(error) => {
                tracing::debug!(%error, "refusing a malformed PROXY protocol header");
                return Ok(Header::Refused(Refusal::Malformed));
            }
            Ok(Parsed::Incomplete) if n == buf.len() && buf.len() < MAX_HEADER => {
                buf.resize((buf.len() * 4).min(MAX_HEADER), 0);
            }
            // `peek` returns at once with the same bytes until more arrive.
            Ok(Parsed::Incomplete) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
        seen = n;
    }
}

/// Looks at an untrusted source's first bytes (without consuming them), for at most
/// `timeout`: `Err(Refusal::Untrusted)` if they are a PROXY header's signature. A client that
/// sends nothing in time is left to the layer that serves it (its own timeouts apply).
pub async fn refuse_untrusted(stream: &TcpStream, timeout: Duration) -> Result<(), Refusal> {
    let look = async {
        let mut first = [0u8; 12];
        loop {
            let n = stream.peek(&mut first).await.ok()?;
            if n == 0 {
                return Some(false);
            }
            if let Some(header) = starts_with_signature(&first[..n]) {
                return Some(header);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    match tokio::time::timeout(timeout, look).await {
        Ok(Some(true)) => Err(Refusal::Untrusted),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;
    use crate::proxy_protocol::{Version, encode};

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, server)
    }

    #[tokio::test]
    async fn a_header_in_pieces_is_consumed_and_the_rest_is_left_in_the_socket() {
        let (mut client, mut server) = pair().await;
        let source: SocketAddr = "192.0.2.7:4000".parse().unwrap();
        let destination: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let header = encode(Version::V2, source, destination);
        let writer = tokio::spawn(async move {
            client.write_all(&header[..5]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            client.write_all(&header[5..]).await.unwrap();
            client.write_all(b"GET /").await.unwrap();
            client
        });
        let read = read_header(&mut server, Duration::from_secs(5)).await;
        assert_eq!(
            read,
            Header::Read(Addresses::Proxied {
                source,
                destination
            })
        );
        let _client = writer.await.unwrap();
        let mut rest = [0u8; 5];
        server.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"GET /");
    }

    #[tokio::test]
    async fn a_trusted_source_without_a_header_is_refused_and_a_silent_one_times_out() {
        let (mut client, mut server) = pair().await;
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let read = read_header(&mut server, Duration::from_secs(5)).await;
        assert_eq!(read, Header::Refused(Refusal::Missing));

        let (mut client, mut server) = pair().await;
        client
            .write_all(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n")
            .await
            .unwrap();
        let read = read_header(&mut server, Duration::from_secs(5)).await;
        assert_eq!(read, Header::Refused(Refusal::Malformed));

        let (_client, mut server) = pair().await;
        let read = read_header(&mut server, Duration::from_millis(50)).await;
        assert_eq!(read, Header::Refused(Refusal::Timeout));

        let (client, mut server) = pair().await;
        drop(client);
        let read = read_header(&mut server, Duration::from_secs(5)).await;
        assert_eq!(read, Header::Closed);
    }

    #[tokio::test]
    async fn an_untrusted_header_is_refused_and_other_bytes_pass_untouched() {
        let (mut client, server) = pair().await;
        client.write_all(b"PROXY TCP4 ").await.unwrap();
        let looked = refuse_untrusted(&server, Duration::from_secs(5)).await;
        assert_eq!(looked, Err(Refusal::Untrusted));

        let (mut client, server) = pair().await;
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        assert_eq!(
            refuse_untrusted(&server, Duration::from_secs(5)).await,
            Ok(())
        );
        let mut first = [0u8; 3];
        server.peek(&mut first).await.unwrap();
        assert_eq!(&first, b"GET");
    }
}
