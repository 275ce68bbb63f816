//! RFC 9110 §10.1.1: `Expect`. `100-continue` asks for an interim `100` on HTTP/1.1; HTTP/1.0
//! requests' expectations are ignored; any other expectation gets `417`.

use super::*;

fn expect(version: &str, fields: &str) -> Result<bool, FramingError> {
    let input = format!("POST / {version}\r\nHost: a\r\nContent-Length: 3\r\n{fields}\r\nabc");
    match read(input.as_bytes()) {
        Outcome::Request(request) => {
            assert_eq!(request.body, b"abc");
            Ok(request.framing.expect_continue)
        }
        Outcome::Framing(error) => Err(error),
        other => panic!("{fields:?}: {other:?}"),
    }
}

#[test]
fn expectations() {
    use FramingError::UnsupportedExpectation;
    let cases: &[(&str, &str, Result<bool, FramingError>)] = &[
        ("HTTP/1.1", "", Ok(false)),
        ("HTTP/1.1", "Expect: 100-continue\r\n", Ok(true)),
        ("HTTP/1.1", "Expect: 100-Continue\r\n", Ok(true)),
        ("HTTP/1.1", "Expect:   100-continue  \r\n", Ok(true)),
        ("HTTP/1.1", "Expect:\r\n", Ok(false)),
        (
            "HTTP/1.1",
            "Expect: 100-continue\r\nExpect: 100-continue\r\n",
            Ok(true),
        ),
        (
            "HTTP/1.1",
            "Expect: 200-ok\r\n",
            Err(UnsupportedExpectation),
        ),
        (
            "HTTP/1.1",
            "Expect: 100-continue, x\r\n",
            Err(UnsupportedExpectation),
        ),
        (
            "HTTP/1.1",
            "Expect: 100-continue; a=b\r\n",
            Err(UnsupportedExpectation),
        ),
        ("HTTP/1.0", "Expect: 100-continue\r\n", Ok(false)),
        ("HTTP/1.0", "Expect: 200-ok\r\n", Ok(false)),
    ];
    for (version, fields, expected) in cases {
        assert_eq!(&expect(version, fields), expected, "{version} {fields:?}");
    }
    assert_eq!(UnsupportedExpectation.status(), 417);
    let no_body = read(b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n").request();
    assert!(!no_body.framing.expect_continue, "no body, no 100");
    let unknown = read(b"GET / HTTP/1.1\r\nHost: a\r\nExpect: x\r\n\r\n");
    assert_eq!(unknown, Outcome::Framing(UnsupportedExpectation));
}
