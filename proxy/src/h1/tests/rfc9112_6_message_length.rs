//! RFC 9112 §6: message body length. §6.1 `Transfer-Encoding`, §6.2 `Content-Length`, §6.3
//! the order of the rules, with `Content-Length` and `Transfer-Encoding` together refused.

use super::*;

fn length(fields: &str) -> Result<BodyLength, FramingError> {
    length_of("HTTP/1.1", fields)
}

fn length_of(version: &str, fields: &str) -> Result<BodyLength, FramingError> {
    let input = format!("POST / {version}\r\nHost: a\r\n{fields}\r\n");
    match head::parse(input.as_bytes(), MAX_HEAD) {
        Ok(Parsed::Complete { head, .. }) => framing::framing(&head).map(|framing| framing.body),
        other => panic!("{fields:?}: {other:?}"),
    }
}

#[test]
fn section_6_1_transfer_encoding() {
    use FramingError::*;
    let cases: &[(&str, Result<BodyLength, FramingError>)] = &[
        ("Transfer-Encoding: chunked\r\n", Ok(BodyLength::Chunked)),
        ("Transfer-Encoding: CHUNKED\r\n", Ok(BodyLength::Chunked)),
        (
            "Transfer-Encoding:  chunked , \r\n",
            Ok(BodyLength::Chunked),
        ),
        ("Transfer-Encoding: ,chunked\r\n", Ok(BodyLength::Chunked)),
        (
            "Transfer-Encoding:\r\nTransfer-Encoding: chunked\r\n",
            Ok(BodyLength::Chunked),
        ),
        (
            "Transfer-Encoding: gzip, chunked\r\n",
            Err(UnsupportedTransferCoding),
        ),
        ("Transfer-Encoding: chunked, gzip\r\n", Err(ChunkedNotFinal)),
        (
            "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
            Err(UnsupportedTransferCoding),
        ),
        ("Transfer-Encoding: identity\r\n", Err(ChunkedNotFinal)),
        ("Transfer-Encoding: chunked;q=1\r\n", Err(ChunkedNotFinal)),
        ("Transfer-Encoding: xchunked\r\n", Err(ChunkedNotFinal)),
        ("Transfer-Encoding: \"chunked\"\r\n", Err(ChunkedNotFinal)),
        ("Transfer-Encoding: chunked, chunked\r\n", Err(ChunkedTwice)),
        (
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            Err(ChunkedTwice),
        ),
        ("Transfer-Encoding:\r\n", Err(EmptyTransferEncoding)),
        ("Transfer-Encoding: , ,\r\n", Err(EmptyTransferEncoding)),
    ];
    for (fields, expected) in cases {
        assert_eq!(&length(fields), expected, "{fields:?}");
    }
    assert_eq!(
        length_of("HTTP/1.0", "Transfer-Encoding: chunked\r\n"),
        Err(TransferEncodingInHttp10)
    );
    assert_eq!(UnsupportedTransferCoding.status(), 501);
    assert_eq!(ChunkedTwice.status(), 400);
    assert_eq!(ChunkedNotFinal.status(), 400);
}

#[test]
fn section_6_2_content_length() {
    use FramingError::*;
    let cases: &[(&str, Result<BodyLength, FramingError>)] = &[
        ("Content-Length: 5\r\n", Ok(BodyLength::Fixed(5))),
        ("Content-Length: 0\r\n", Ok(BodyLength::Empty)),
        ("Content-Length: 005\r\n", Ok(BodyLength::Fixed(5))),
        ("Content-Length: 5, 5\r\n", Ok(BodyLength::Fixed(5))),
        (
            "Content-Length: 5\r\nContent-Length: 5\r\n",
            Ok(BodyLength::Fixed(5)),
        ),
        (
            "Content-Length: 5,5\r\ncontent-length: 5\r\n",
            Ok(BodyLength::Fixed(5)),
        ),
        (
            "Content-Length: 18446744073709551615\r\n",
            Ok(BodyLength::Fixed(u64::MAX)),
        ),
        (
            "Content-Length: 18446744073709551616\r\n",
            Err(InvalidContentLength),
        ),
        (
            "Content-Length: 99999999999999999999999\r\n",
            Err(InvalidContentLength),
        ),
        (
            "Content-Length: 5\r\nContent-Length: 6\r\n",
            Err(DifferingContentLengths),
        ),
        ("Content-Length: 5, 6\r\n", Err(DifferingContentLengths)),
        ("Content-Length: -1\r\n", Err(InvalidContentLength)),
        ("Content-Length: +5\r\n", Err(InvalidContentLength)),
        ("Content-Length: 0x5\r\n", Err(InvalidContentLength)),
        ("Content-Length: 5 5\r\n", Err(InvalidContentLength)),
        ("Content-Length: 5.0\r\n", Err(InvalidContentLength)),
        ("Content-Length: five\r\n", Err(InvalidContentLength)),
        ("Content-Length:\r\n", Err(InvalidContentLength)),
        ("Content-Length: 5,\r\n", Err(InvalidContentLength)),
        ("Content-Length: ,5\r\n", Err(InvalidContentLength)),
        ("Content-Length: \u{663}\r\n", Err(InvalidContentLength)),
    ];
    for (fields, expected) in cases {
        assert_eq!(&length(fields), expected, "{fields:?}");
    }
}

#[test]
fn section_6_3_length_rules() {
    use FramingError::*;
    assert_eq!(length(""), Ok(BodyLength::Empty), "neither: no body");
    assert_eq!(length_of("HTTP/1.0", ""), Ok(BodyLength::Empty));
    for fields in [
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
    ] {
        assert_eq!(
            length(fields),
            Err(ContentLengthAndTransferEncoding),
            "{fields:?}"
        );
    }
    // A coding list that does not end in chunked answers 400 before the pair is looked at;
    // one Ballast does not take, 501.
    assert_eq!(
        length("Transfer-Encoding: gzip\r\nContent-Length: 5\r\n"),
        Err(ChunkedNotFinal)
    );
    assert_eq!(
        length("Transfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n"),
        Err(UnsupportedTransferCoding)
    );
    assert_eq!(ContentLengthAndTransferEncoding.status(), 400);
}

#[test]
fn bodies_are_read_by_their_length() {
    let input = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloEXTRA";
    let request = read(input).request();
    assert_eq!(request.body, b"hello");
    assert_eq!(request.consumed, input.len() - "EXTRA".len());
    assert_eq!(
        read(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhell"),
        Outcome::Partial
    );
    let chunked =
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nX";
    let request = read(chunked).request();
    assert_eq!(request.body, b"hello");
    assert_eq!(request.consumed, chunked.len() - 1);
}
