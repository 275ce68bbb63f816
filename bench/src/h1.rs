//! Just enough HTTP/1.1 response parsing for the load generator: the status, how the body is
//! framed, and where a chunked body ends. No allocation; the generator calls this on its read
//! buffer after every read.

use anyhow::{Result, bail};

/// How the body after the head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
    /// No length: the body runs until the server closes (HTTP/1.0 style).
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// Bytes of status line + headers + the blank line.
    pub len: usize,
    pub framing: Framing,
    /// `Connection: close`: the server will close after this response.
    pub close: bool,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &bytes[start..end.max(start)]
}

fn parse_u64(digits: &[u8], radix: u32) -> Result<u64> {
    let text = std::str::from_utf8(digits)?;
    Ok(u64::from_str_radix(text, radix)?)
}

/// The response head at the start of `buf`, or `None` if it is not complete yet.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > 64 * 1024 {
            bail!("response head over 64 KiB");
        }
        return Ok(None);
    };
    let head = &buf[..end];
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = lines.next().unwrap_or_default();
    if !status_line.starts_with(b"HTTP/1.") || status_line.len() < 12 {
        bail!("bad status line {:?}", String::from_utf8_lossy(status_line));
    }
    let http10 = status_line.starts_with(b"HTTP/1.0");
    let status = parse_u64(&status_line[9..12], 10)? as u16;
    let mut framing = None;
    let mut close = http10;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            bail!("header without `:`");
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"content-length") {
            if framing != Some(Framing::Chunked) {
                framing = Some(Framing::Length(parse_u64(value, 10)?));
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if value.len() >= 7 && value[value.len() - 7..].eq_ignore_ascii_case(b"chunked") {
                framing = Some(Framing::Chunked);
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            if value.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if value.eq_ignore_ascii_case(b"keep-alive") {
                close = false;
            }
        }
    }
    let framing = match framing {
        Some(framing) => framing,
        // 1xx, 204 and 304 have no body.
        None if status < 200 || status == 204 || status == 304 => Framing::Length(0),
        None => Framing::UntilClose,
    };
    Ok(Some(Head {
        status,
        len: end + 4,
        framing,
        close,
    }))
}

/// Length of the complete chunked body at the start of `buf` (chunks, last chunk, trailers and
/// the final CRLF), or `None` if more bytes are needed.
pub fn chunked_len(buf: &[u8]) -> Result<Option<usize>> {
    let mut at = 0;
    loop {
        let Some(eol) = find(&buf[at..], b"\r\n") else {
            return Ok(None);
        };
        let line = &buf[at..at + eol];
        let size_text = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = parse_u64(trim(size_text), 16)? as usize;
        at += eol + 2;
        if size == 0 {
            // Trailers, each ending in CRLF, then an empty line.
            loop {
                let Some(eol) = find(&buf[at..], b"\r\n") else {
                    return Ok(None);
                };
                at += eol + 2;
                if eol == 0 {
                    return Ok(Some(at));
                }
            }
        }
        if buf.len() < at + size + 2 {
            return Ok(None);
        }
        if &buf[at + size..at + size + 2] != b"\r\n" {
            bail!("chunk not followed by CRLF");
        }
        at += size + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_head() {
        let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 19\r\ndate: x\r\n\r\nhello from backend\n";
        let head = parse_head(resp).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.framing, Framing::Length(19));
        assert_eq!(&resp[head.len..], b"hello from backend\n");
        assert!(!head.close);
        // Incomplete heads need more bytes.
        assert_eq!(parse_head(&resp[..20]).unwrap(), None);
    }

    #[test]
    fn chunked_close_and_errors() {
        let head =
            parse_head(b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!(head.status, 503);
        assert_eq!(head.framing, Framing::Chunked);
        assert!(head.close);
        let h10 = parse_head(b"HTTP/1.0 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!(h10.framing, Framing::UntilClose);
        assert!(h10.close);
        let no_body = parse_head(b"HTTP/1.1 204 No Content\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(no_body.framing, Framing::Length(0));
        assert!(parse_head(b"SSH-2.0-x\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n").is_err());
    }

    #[test]
    fn chunked_bodies() {
        let body = b"5\r\nhello\r\n8;ext=1\r\n backend\r\n0\r\n\r\nNEXT";
        assert_eq!(chunked_len(body).unwrap(), Some(body.len() - 4));
        for cut in 0..body.len() - 4 {
            assert_eq!(chunked_len(&body[..cut]).unwrap(), None, "cut at {cut}");
        }
        let trailers = b"0\r\nx-trailer: 1\r\n\r\n";
        assert_eq!(chunked_len(trailers).unwrap(), Some(trailers.len()));
        assert!(chunked_len(b"zz\r\n").is_err());
        assert!(chunked_len(b"2\r\nabXY").is_err());
    }
}
