//! RFC 9112 §5: field syntax. No whitespace between name and colon (§5.1), obs-fold refused
//! (§5.2), names are tokens and values HTAB/SP/VCHAR/obs-text (RFC 9110 §5.5).

use super::*;

type Fields = Result<Vec<(String, String)>, HeadError>;

fn parse_field(line: &[u8]) -> Fields {
    let mut input = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    input.extend_from_slice(line);
    input.extend_from_slice(b"\r\n\r\n");
    match head::parse(&input, MAX_HEAD)? {
        Parsed::Complete { head, .. } => Ok(fields(&head)[1..].to_vec()),
        Parsed::Partial => panic!("{line:?}: partial"),
    }
}

#[test]
fn fields_syntax() {
    use HeadError::*;
    let ok = |name: &str, value: &str| Ok(vec![(name.to_string(), value.to_string())]);
    let cases: &[(&[u8], Fields)] = &[
        (b"X: y", ok("X", "y")),
        (b"X:y", ok("X", "y")),
        (b"X:   y  ", ok("X", "y")),
        (b"X:\ty\t", ok("X", "y")),
        (b"X: a b\tc", ok("X", "a b\tc")),
        (b"X:", ok("X", "")),
        (b"X: \xe9t\xe9", ok("X", "\u{fffd}t\u{fffd}")),
        (
            b"!#$%&'*+-.^_`|~09azAZ: y",
            ok("!#$%&'*+-.^_`|~09azAZ", "y"),
        ),
        // §5.1: no whitespace between the name and the colon.
        (b"X : y", Err(WhitespaceInHeaderName)),
        (b"X\t: y", Err(WhitespaceInHeaderName)),
        (b"X Y: z", Err(WhitespaceInHeaderName)),
        // §5.2: obs-fold.
        (b"X: y\r\n z", Err(ObsFold)),
        (b"X: y\r\n\tz", Err(ObsFold)),
        (b" X: y", Err(ObsFold)),
        // Names
        (b": y", Err(InvalidHeaderName)),
        (b"X(: y", Err(InvalidHeaderName)),
        (b"X\x00: y", Err(InvalidHeaderName)),
        (b"X\xc3\xa9: y", Err(InvalidHeaderName)),
        (b"no colon", Err(WhitespaceInHeaderName)),
        (b"nocolon", Err(InvalidHeaderName)),
        // Values
        (b"X: a\x00b", Err(InvalidHeaderValue)),
        (b"X: a\x01b", Err(InvalidHeaderValue)),
        (b"X: a\x7fb", Err(InvalidHeaderValue)),
        (b"X: a\x0bb", Err(InvalidHeaderValue)),
    ];
    for (line, expected) in cases {
        assert_eq!(
            &parse_field(line),
            expected,
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
}
