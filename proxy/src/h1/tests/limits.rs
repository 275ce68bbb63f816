//! Head limits: `maxheaderlen` over the whole head (`414` while the request line has not
//! ended, `431` after), and at most [`head::MAX_HEADERS`] fields (`431`).

use super::*;

#[test]
fn the_head_limit_is_inclusive() {
    let input = b"GET /abc HTTP/1.1\r\nHost: a\r\n\r\n";
    let len = input.len();
    assert!(matches!(
        head::parse(input, len),
        Ok(Parsed::Complete { len: l, .. }) if l == len
    ));
    assert_eq!(head::parse(input, len - 1), Err(HeadError::HeadTooLarge));
    // A head that fits, followed by a body, is not cut by the limit.
    let mut with_body = input.to_vec();
    with_body.extend_from_slice(&[b'x'; 100]);
    assert!(matches!(
        head::parse(&with_body, len),
        Ok(Parsed::Complete { .. })
    ));
}

#[test]
fn partial_heads_at_the_limit() {
    let input = b"GET /abc HTTP/1.1\r\nHost: a\r\n\r\n";
    // Up to the limit, more may come; one byte past it, the head cannot fit.
    assert_eq!(head::parse(&input[..20], 20), Ok(Parsed::Partial));
    assert_eq!(head::parse(&input[..21], 20), Err(HeadError::HeadTooLarge));
    assert_eq!(head::parse(&input[..10], 10), Ok(Parsed::Partial));
    assert_eq!(
        head::parse(&input[..11], 10),
        Err(HeadError::RequestLineTooLong)
    );
}

#[test]
fn a_long_target_is_414_a_long_field_431() {
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(200));
    assert_eq!(
        head::parse(long_target.as_bytes(), 100),
        Err(HeadError::RequestLineTooLong)
    );
    let long_field = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "a".repeat(200)
    );
    assert_eq!(
        head::parse(long_field.as_bytes(), 100),
        Err(HeadError::HeadTooLarge)
    );
    // An error within the limit is that error, whatever lies beyond.
    let bad = format!("GET / HTTP/1.1\r\nX : y\r\n{}", "a".repeat(200));
    assert_eq!(
        head::parse(bad.as_bytes(), 100),
        Err(HeadError::WhitespaceInHeaderName)
    );
}

#[test]
fn the_field_count_is_bounded() {
    let head_with = |count: usize| {
        let mut input = String::from("GET / HTTP/1.1\r\n");
        for i in 0..count {
            input.push_str(&format!("X-{i}: {i}\r\n"));
        }
        input.push_str("\r\n");
        input
    };
    let at_limit = head_with(head::MAX_HEADERS);
    let Ok(Parsed::Complete { head, .. }) = head::parse(at_limit.as_bytes(), MAX_HEAD) else {
        panic!("{} fields fit", head::MAX_HEADERS);
    };
    assert_eq!(head.field_count(), head::MAX_HEADERS);
    assert_eq!(
        head::parse(head_with(head::MAX_HEADERS + 1).as_bytes(), MAX_HEAD),
        Err(HeadError::TooManyHeaders)
    );
}
