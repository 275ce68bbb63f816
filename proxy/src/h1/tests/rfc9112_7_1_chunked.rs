//! RFC 9112 §7.1: chunked transfer coding. Chunk sizes, extensions (§7.1.1, skipped, bounded),
//! trailers (§7.1.2, kept, bounded), CRLF after every line and every chunk's data.

use super::*;
use crate::h1::chunked::{encode_chunk, encode_end};

/// Decodes `input` whole, then one byte at a time; both must agree.
fn decode(input: &[u8]) -> Decoded {
    decode_with(input, ChunkedLimits::default())
}

fn decode_with(input: &[u8], limits: ChunkedLimits) -> Decoded {
    let whole = decode_pieces(input, limits, input.len().max(1));
    let bytewise = decode_pieces(input, limits, 1);
    assert_eq!(whole, bytewise, "{:?}", String::from_utf8_lossy(input));
    whole
}

/// Body, trailers and the bytes used, or the refusal.
type Decoded = Result<(Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>, usize), ChunkedError>;

/// An input and the body it decodes to.
type Case = (&'static [u8], Result<&'static [u8], ChunkedError>);

fn decode_pieces(input: &[u8], limits: ChunkedLimits, piece: usize) -> Decoded {
    let mut decoder = ChunkedDecoder::new(limits);
    let mut body = Vec::new();
    let mut used = 0;
    for chunk in input.chunks(piece) {
        let mut pos = 0;
        loop {
            match decoder.decode(&chunk[pos..])? {
                Step::Data(range) => {
                    body.extend_from_slice(&chunk[pos..][range.clone()]);
                    pos += range.end;
                }
                Step::NeedMore => break,
                Step::Done { consumed } => {
                    assert!(decoder.is_done());
                    assert_eq!(decoder.decoded_len(), body.len() as u64);
                    let trailers = decoder
                        .trailers()
                        .map(|(n, v)| (n.to_vec(), v.to_vec()))
                        .collect();
                    return Ok((body, trailers, used + pos + consumed));
                }
            }
        }
        used += chunk.len();
    }
    panic!(
        "the input ended inside the body: {:?}",
        String::from_utf8_lossy(input)
    );
}

fn body(input: &[u8]) -> Result<Vec<u8>, ChunkedError> {
    decode(input).map(|(body, _, _)| body)
}

#[test]
fn chunk_sizes_and_data() {
    use ChunkedError::*;
    let cases: &[Case] = &[
        (b"0\r\n\r\n", Ok(b"")),
        (b"5\r\nhello\r\n0\r\n\r\n", Ok(b"hello")),
        (
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            Ok(b"hello world"),
        ),
        (b"A\r\n0123456789\r\n0\r\n\r\n", Ok(b"0123456789")),
        (b"a\r\n0123456789\r\n0\r\n\r\n", Ok(b"0123456789")),
        (b"0005\r\nhello\r\n000\r\n\r\n", Ok(b"hello")),
        (b"5\r\nhe\r\nl\r\n0\r\n\r\n", Ok(b"he\r\nl")),
        (b"\r\n", Err(InvalidChunkSize)),
        (b"g\r\n", Err(InvalidChunkSize)),
        (b"-5\r\n", Err(InvalidChunkSize)),
        (b"+5\r\n", Err(InvalidChunkSize)),
        (b"0x5\r\n", Err(InvalidChunkSize)),
        (b" 5\r\n", Err(InvalidChunkSize)),
        (b"5 \r\nhello\r\n0\r\n\r\n", Err(InvalidExtension)),
        (b"10000000000000000\r\n", Err(ChunkSizeOverflow)),
        (b"5\nhello\r\n0\r\n\r\n", Err(InvalidChunkSize)),
        (b"5\r\rhello", Err(MissingCrlf)),
        (b"5\r\nhelloX\r\n0\r\n\r\n", Err(MissingCrlf)),
        (b"5\r\nhello\n0\r\n\r\n", Err(MissingCrlf)),
        (b"5\r\nhello\r\r0\r\n\r\n", Err(MissingCrlf)),
        (b"0\r\n\n", Err(MissingCrlf)),
        (b"0\r\n\r\r", Err(MissingCrlf)),
    ];
    for (input, expected) in cases {
        assert_eq!(
            body(input).as_deref().map_err(|e| *e),
            expected.as_ref().map(|b| &b[..]).map_err(|e| *e),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn the_largest_chunk_size_is_taken() {
    let mut decoder = ChunkedDecoder::new(ChunkedLimits::default());
    assert_eq!(
        decoder.decode(b"ffffffffffffffff\r\nab"),
        Ok(Step::Data(18..20))
    );
    assert_eq!(decoder.decoded_len(), 2);
}

#[test]
fn section_7_1_1_extensions_are_skipped_and_bounded() {
    use ChunkedError::*;
    let cases: &[Case] = &[
        (b"5;a=b\r\nhello\r\n0\r\n\r\n", Ok(b"hello")),
        (b"5;a\r\nhello\r\n0;last\r\n\r\n", Ok(b"hello")),
        (b"5 ;a=\"q s\"\r\nhello\r\n0\r\n\r\n", Ok(b"hello")),
        (b"5\t; a = b ; c\r\nhello\r\n0\r\n\r\n", Ok(b"hello")),
        (b"5;\xff\r\nhello\r\n0\r\n\r\n", Ok(b"hello")),
        (b"5;a\x00\r\nhello\r\n0\r\n\r\n", Err(InvalidExtension)),
        (b"5;a\nhello\r\n0\r\n\r\n", Err(InvalidExtension)),
        (b"5 x\r\nhello\r\n0\r\n\r\n", Err(InvalidExtension)),
    ];
    for (input, expected) in cases {
        assert_eq!(
            body(input).as_deref().map_err(|e| *e),
            expected.as_ref().map(|b| &b[..]).map_err(|e| *e),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    let limits = ChunkedLimits {
        max_line_len: 8,
        ..ChunkedLimits::default()
    };
    assert!(decode_with(b"5;abcdef\r\nhello\r\n0\r\n\r\n", limits).is_ok());
    assert_eq!(
        decode_with(b"5;abcdefg\r\nhello\r\n0\r\n\r\n", limits),
        Err(LineTooLong)
    );
    assert_eq!(
        decode_with(b"000000005\r\nhello\r\n0\r\n\r\n", limits),
        Err(LineTooLong),
        "leading zeros count"
    );
    // The limit is per line.
    assert!(
        decode_with(
            b"1;abcdef\r\nh\r\n1;abcdef\r\ni\r\n0;abcdef\r\n\r\n",
            limits
        )
        .is_ok()
    );
}

#[test]
fn section_7_1_2_trailers_are_kept_and_bounded() {
    use ChunkedError::*;
    let (body, trailers, used) =
        decode(b"5\r\nhello\r\n0\r\nX-Sum: 1 \r\nX-Other:two\r\n\r\nNEXT").expect("decoded");
    assert_eq!(body, b"hello");
    assert_eq!(
        trailers,
        [
            (b"X-Sum".to_vec(), b"1".to_vec()),
            (b"X-Other".to_vec(), b"two".to_vec())
        ]
    );
    assert_eq!(used, 39);
    let cases: &[(&[u8], ChunkedError)] = &[
        (b"0\r\nX: a\r\n b\r\n\r\n", ObsFoldInTrailer),
        (b"0\r\nX : a\r\n\r\n", InvalidTrailer),
        (b"0\r\nX\r\n\r\n", InvalidTrailer),
        (b"0\r\nX: a\x00\r\n\r\n", InvalidTrailer),
        (b"0\r\nX: a\n\r\n", MissingCrlf),
        (b"0\r\nX: a\rb\r\n\r\n", MissingCrlf),
    ];
    for (input, expected) in cases {
        assert_eq!(
            decode(input).map(|_| ()),
            Err(*expected),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    let limits = ChunkedLimits {
        max_trailer_len: 12,
        max_trailers: 2,
        ..ChunkedLimits::default()
    };
    // "A: 1\r\nB: 2\r\n" + the empty line is 14 bytes; "A: 1\r\nB:\r\n\r\n" is 12.
    assert!(decode_with(b"0\r\nA: 1\r\nB:\r\n\r\n", limits).is_ok());
    assert_eq!(
        decode_with(b"0\r\nA: 1\r\nB: 2\r\n\r\n", limits),
        Err(TrailersTooLarge)
    );
    assert_eq!(
        decode_with(
            b"0\r\nA:\r\nB:\r\nC:\r\n\r\n",
            ChunkedLimits {
                max_trailer_len: 100,
                ..limits
            }
        ),
        Err(TooManyTrailers)
    );
}

#[test]
fn a_failed_decoder_stays_failed_and_a_done_one_takes_nothing() {
    let mut decoder = ChunkedDecoder::new(ChunkedLimits::default());
    assert_eq!(decoder.decode(b"z"), Err(ChunkedError::InvalidChunkSize));
    assert_eq!(
        decoder.decode(b"0\r\n\r\n"),
        Err(ChunkedError::InvalidChunkSize)
    );
    let mut decoder = ChunkedDecoder::new(ChunkedLimits::default());
    assert_eq!(
        decoder.decode(b"0\r\n\r\nGET"),
        Ok(Step::Done { consumed: 5 })
    );
    assert_eq!(decoder.decode(b"GET"), Ok(Step::Done { consumed: 0 }));
    assert_eq!(decoder.decode(b""), Ok(Step::Done { consumed: 0 }));
    let mut decoder = ChunkedDecoder::new(ChunkedLimits::default());
    assert_eq!(decoder.decode(b""), Ok(Step::NeedMore));
}

#[test]
fn the_encoder_frames_what_the_decoder_reads() {
    let mut out = Vec::new();
    encode_chunk(b"hello", &mut out);
    encode_chunk(b"", &mut out);
    encode_chunk(&[b'x'; 300], &mut out);
    encode_end([(&b"X-Sum"[..], &b"1"[..])], &mut out);
    assert!(out.starts_with(b"5\r\nhello\r\n12c\r\n"));
    let (body, trailers, used) = decode(&out).expect("decoded");
    assert_eq!(body.len(), 305);
    assert_eq!(trailers, [(b"X-Sum".to_vec(), b"1".to_vec())]);
    assert_eq!(used, out.len());
}
