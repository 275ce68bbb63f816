//! RFC 9112 §2.2: message parsing. CRLF ends every line; a bare CR or LF is refused (§2.2
//! allows a server to take a bare LF; Ballast does not, see [`crate::h1::head`]); empty lines
//! before the request line are skipped.

use super::*;

#[test]
fn line_endings() {
    let cases: &[(&str, &[u8], Result<(), HeadError>)] = &[
        ("crlf", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Ok(())),
        (
            "bare LF ends the request line",
            b"GET / HTTP/1.1\nHost: a\r\n\r\n",
            Err(HeadError::BareLineEnding),
        ),
        (
            "bare LF ends a field",
            b"GET / HTTP/1.1\r\nHost: a\n\r\n",
            Err(HeadError::BareLineEnding),
        ),
        (
            "bare LF ends the head",
            b"GET / HTTP/1.1\r\nHost: a\r\n\n",
            Err(HeadError::BareLineEnding),
        ),
        (
            "all bare LF",
            b"GET / HTTP/1.1\nHost: a\n\n",
            Err(HeadError::BareLineEnding),
        ),
        (
            "bare CR in the request line",
            b"GET /\r HTTP/1.1\r\nHost: a\r\n\r\n",
            Err(HeadError::BareLineEnding),
        ),
        (
            "bare CR in a value",
            b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
            Err(HeadError::BareLineEnding),
        ),
        (
            "bare CR ends a field",
            b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
            Err(HeadError::BareLineEnding),
        ),
        (
            "CR CR LF",
            b"GET / HTTP/1.1\r\nHost: a\r\r\n\r\n",
            Err(HeadError::BareLineEnding),
        ),
        (
            "an empty line before the request line",
            b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            Ok(()),
        ),
        (
            "two empty lines before",
            b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            Ok(()),
        ),
        (
            "a bare LF before",
            b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            Err(HeadError::BareLineEnding),
        ),
    ];
    for (name, input, expected) in cases {
        let got = head::parse(input, MAX_HEAD).map(|parsed| match parsed {
            Parsed::Complete { len, .. } => assert_eq!(len, input.len(), "{name}"),
            Parsed::Partial => panic!("{name}: partial"),
        });
        assert_eq!(&got, expected, "{name}");
    }
}

#[test]
fn a_head_not_yet_ended_is_partial_at_every_length() {
    let input = b"\r\nGET /a?b HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n";
    for end in 0..input.len() {
        assert_eq!(
            head::parse(&input[..end], MAX_HEAD),
            Ok(Parsed::Partial),
            "after {end} bytes"
        );
    }
    assert!(matches!(
        head::parse(input, MAX_HEAD),
        Ok(Parsed::Complete { len, .. }) if len == input.len()
    ));
}

#[test]
fn the_head_keeps_its_bytes_and_parts() {
    let input = b"POST /x?y=1 HTTP/1.0\r\nHost: a.test\r\nX-Empty:\r\nX-Pad: \t v w \t\r\n\r\nbody";
    let Ok(Parsed::Complete { head, len }) = head::parse(input, MAX_HEAD) else {
        panic!("complete");
    };
    assert_eq!(len, input.len() - 4);
    assert_eq!(head.as_bytes(), &input[..len]);
    assert_eq!(head.method(), b"POST");
    assert!(head.is_method("POST"));
    assert_eq!(head.target(), b"/x?y=1");
    assert_eq!(head.version(), head::Version::Http10);
    assert_eq!(head.field_count(), 3);
    assert_eq!(
        fields(&head),
        [
            ("Host".into(), "a.test".into()),
            ("X-Empty".into(), String::new()),
            ("X-Pad".into(), "v w".into()),
        ]
    );
    assert_eq!(head.values("host").collect::<Vec<_>>(), [b"a.test"]);
    assert_eq!(head.values("HOST").count(), 1);
}
