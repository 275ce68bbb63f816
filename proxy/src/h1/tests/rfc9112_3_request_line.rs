//! RFC 9112 §3: the request line. Method a token, one SP each side of the target, the four
//! target forms (§3.2), and the version (§2.3): 1.0 and 1.1 only, another `HTTP/x.y` `505`.

use super::*;

fn parse_line(line: &str) -> Result<(), HeadError> {
    let input = format!("{line}\r\nHost: a\r\n\r\n");
    head::parse(input.as_bytes(), MAX_HEAD).map(|parsed| {
        assert!(matches!(parsed, Parsed::Complete { .. }), "{line}: partial");
    })
}

#[test]
fn request_lines() {
    use HeadError::*;
    let cases: &[(&str, Result<(), HeadError>)] = &[
        ("GET / HTTP/1.1", Ok(())),
        ("GET / HTTP/1.0", Ok(())),
        ("PURGE /cache HTTP/1.1", Ok(())),
        ("GET /a/b?c=d&e=%20 HTTP/1.1", Ok(())),
        ("GET /{\"json\"} HTTP/1.1", Ok(())),
        ("GET http://a.test/x HTTP/1.1", Ok(())),
        ("GET http://a.test HTTP/1.1", Ok(())),
        ("GET https://a.test:8443?q HTTP/1.1", Ok(())),
        ("OPTIONS * HTTP/1.1", Ok(())),
        ("CONNECT a.test:443 HTTP/1.1", Ok(())),
        // Methods
        ("G(T / HTTP/1.1", Err(InvalidMethod)),
        ("GE\u{0}T / HTTP/1.1", Err(InvalidMethod)),
        (" GET / HTTP/1.1", Err(InvalidMethod)),
        // Delimiters
        ("GET  / HTTP/1.1", Err(InvalidTarget)),
        ("GET /  HTTP/1.1", Err(MalformedRequestLine)),
        ("GET\t/ HTTP/1.1", Err(InvalidMethod)),
        ("GET / HTTP/1.1 ", Err(MalformedRequestLine)),
        ("GET /", Err(InvalidTarget)),
        // Targets
        ("GET * HTTP/1.1", Err(InvalidTarget)),
        ("GET a.test:443 HTTP/1.1", Err(InvalidTarget)),
        ("CONNECT user@a.test:443 HTTP/1.1", Err(InvalidTarget)),
        ("GET /a#frag HTTP/1.1", Err(InvalidTarget)),
        ("GET /a<b HTTP/1.1", Err(InvalidTarget)),
        ("GET /a`b HTTP/1.1", Err(InvalidTarget)),
        ("GET /a?\"b HTTP/1.1", Err(InvalidTarget)),
        ("GET /caf\u{e9} HTTP/1.1", Err(InvalidTarget)),
        ("GET /a\u{7f} HTTP/1.1", Err(InvalidTarget)),
        ("GET http:/a HTTP/1.1", Err(InvalidTarget)),
        ("GET http:// HTTP/1.1", Err(InvalidTarget)),
        ("GET 1http://a/ HTTP/1.1", Err(InvalidTarget)),
        ("GET http://a b/ HTTP/1.1", Err(MalformedRequestLine)),
        // Versions (RFC 9112 §2.3)
        ("GET / HTTP/2.0", Err(UnsupportedVersion)),
        ("GET / HTTP/3", Err(UnsupportedVersion)),
        ("GET / HTTP/0.9", Err(UnsupportedVersion)),
        ("GET / HTTP/1.2", Err(UnsupportedVersion)),
        ("GET / HTTP/1.10", Err(MalformedRequestLine)),
        ("GET / http/1.1", Err(MalformedRequestLine)),
        ("GET / HTTP/1", Err(MalformedRequestLine)),
        ("GET / HTTPS/1.1", Err(MalformedRequestLine)),
        ("GET / FTP/1.1", Err(MalformedRequestLine)),
    ];
    for (line, expected) in cases {
        assert_eq!(&parse_line(line), expected, "{line:?}");
    }
}

#[test]
fn statuses() {
    assert_eq!(HeadError::UnsupportedVersion.status(), 505);
    assert_eq!(HeadError::RequestLineTooLong.status(), 414);
    assert_eq!(HeadError::HeadTooLarge.status(), 431);
    assert_eq!(HeadError::TooManyHeaders.status(), 431);
    assert_eq!(HeadError::ObsFold.status(), 400);
    assert_eq!(HeadError::InvalidTarget.status(), 400);
}
