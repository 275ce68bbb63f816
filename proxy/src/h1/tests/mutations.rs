//! A deterministic fuzz loop (no fuzzing crate: a xorshift PRNG, the same cases every run).
//! Valid requests are mutated (byte flips, insertions, deletions, duplicated lines, spliced
//! framing fields, truncation) and every mutant must:
//!
//! - not panic;
//! - read the same whether its bytes arrive all at once, cut at one position (every position
//!   for some mutants), cut at random positions, or one byte at a time;
//! - when accepted, be unambiguous: the request re-serialized with its decoded body (chunked
//!   again when it was chunked) reads back to the same head, framing, body and trailers, and
//!   uses exactly the re-serialized bytes;
//! - when accepted, convert to `http` types (the target to a `Uri`, every field to a
//!   `HeaderName` and `HeaderValue`), as the wiring will.

use super::*;
use crate::h1::chunked::{encode_chunk, encode_end};

const SEEDS: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n",
    b"GET /p/a?q=1&r=%20 HTTP/1.1\r\nHost: a.test\r\nAccept: */*\r\nConnection: close\r\n\r\n",
    b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n3\r\nabc\r\n0\r\nX-T: v\r\n\r\n",
    b"PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2, 2\r\n\r\nok",
    b"GET http://a.test/x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"\r\nOPTIONS * HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
];

/// Bytes that matter to HTTP/1.1 framing, drawn more often than the others.
const INTERESTING: &[u8] = b"\r\n \t:;,=\"0159aAfFzZ-+/?#*\x00\x7f\xff\x80";

const SNIPPETS: &[&[u8]] = &[
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip, chunked\r\n",
    b"Content-Length: 3\r\n",
    b"Content-Length: 0\r\n",
    b"Content-Length: 3, 4\r\n",
    b"Connection: close\r\n",
    b"Expect: 100-continue\r\n",
    b"0\r\n\r\n",
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b"HTTP/1.0",
];

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        if self.below(3) == 0 {
            self.next() as u8
        } else {
            INTERESTING[self.below(INTERESTING.len())]
        }
    }
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    let at = rng.below(input.len() + 1);
    match rng.below(7) {
        0 if at < input.len() => input[at] = rng.byte(),
        1 => input.insert(at, rng.byte()),
        2 if at < input.len() => {
            input.remove(at);
        }
        3 => {
            // Duplicate the line that holds `at`.
            let start = input[..at]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let end = input[at..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(input.len(), |i| at + i + 1);
            let line = input[start..end].to_vec();
            input.splice(end..end, line);
        }
        4 => {
            // Splice a snippet at a line start.
            let start = input[..at]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let snippet = SNIPPETS[rng.below(SNIPPETS.len())];
            input.splice(start..start, snippet.iter().copied());
        }
        5 => input.truncate(at),
        _ => {
            let snippet = SNIPPETS[rng.below(SNIPPETS.len())];
            input.splice(at..at, snippet.iter().copied());
        }
    }
}

/// The request `request` describes, framed as it was framed.
fn reserialize(request: &Request) -> Vec<u8> {
    let head = &request.head;
    let mut out = Vec::new();
    out.extend_from_slice(head.method());
    out.push(b' ');
    out.extend_from_slice(head.target());
    out.push(b' ');
    out.extend_from_slice(head.version().as_str().as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in head.fields() {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    match request.framing.body {
        BodyLength::Empty => {}
        BodyLength::Fixed(_) => out.extend_from_slice(&request.body),
        BodyLength::Chunked => {
            encode_chunk(&request.body, &mut out);
            let trailers = request
                .trailers
                .iter()
                .map(|(name, value)| (name.as_slice(), value.as_slice()));
            encode_end(trailers, &mut out);
        }
    }
    out
}

/// A head's method, target, version and fields.
type Parts = (Vec<u8>, Vec<u8>, head::Version, Vec<(String, String)>);

fn parts(head: &Head) -> Parts {
    (
        head.method().to_vec(),
        head.target().to_vec(),
        head.version(),
        fields(head),
    )
}

fn check_accepted(input: &[u8], request: &Request) {
    assert!(request.consumed <= input.len());
    if let BodyLength::Fixed(len) = request.framing.body {
        assert_eq!(request.body.len() as u64, len);
    }
    let again = reserialize(request);
    let reread = read(&again);
    let Outcome::Request(reread) = reread else {
        panic!(
            "{:?} was accepted, its re-serialization {:?} reads as {reread:?}",
            String::from_utf8_lossy(input),
            String::from_utf8_lossy(&again)
        );
    };
    assert_eq!(parts(&reread.head), parts(&request.head));
    assert_eq!(reread.framing, request.framing);
    assert_eq!(reread.body, request.body);
    assert_eq!(reread.trailers, request.trailers);
    assert_eq!(reread.consumed, again.len());
    let head = &request.head;
    assert!(
        http::Uri::try_from(head.target()).is_ok(),
        "target {:?} accepted but not a Uri",
        String::from_utf8_lossy(head.target())
    );
    assert!(crate::h1::convert::to_parts(head).is_ok(), "{head:?}");
}

fn check(rng: &mut Rng, input: &[u8], every_cut: bool) -> Outcome {
    let whole = read(input);
    let context = || format!("{:?}", String::from_utf8_lossy(input));
    let cut = rng.below(input.len() + 1);
    assert_eq!(
        read_split(input, MAX_HEAD, &[cut]),
        whole,
        "cut at {cut}: {}",
        context()
    );
    let cuts: Vec<usize> = (0..rng.below(6))
        .map(|_| rng.below(input.len() + 1))
        .collect();
    assert_eq!(
        read_split(input, MAX_HEAD, &cuts),
        whole,
        "cuts {cuts:?}: {}",
        context()
    );
    if every_cut {
        for cut in 0..=input.len() {
            assert_eq!(
                read_split(input, MAX_HEAD, &[cut]),
                whole,
                "cut at {cut}: {}",
                context()
            );
        }
        let bytewise: Vec<usize> = (1..input.len()).collect();
        assert_eq!(
            read_split(input, MAX_HEAD, &bytewise),
            whole,
            "bytewise: {}",
            context()
        );
    }
    // A small head limit, so that the limit paths see mutants too.
    let limit = 24 + rng.below(40);
    assert_eq!(
        read_split(input, limit, &[cut]),
        read(input).limited(input, limit),
        "limit {limit}: {}",
        context()
    );
    if let Outcome::Request(request) = &whole {
        check_accepted(input, request);
    }
    whole
}

impl Outcome {
    /// What the whole input reads as under a `limit` on the head, read at once.
    fn limited(self, input: &[u8], limit: usize) -> Outcome {
        read_split(input, limit, &[])
    }
}

#[test]
fn mutated_requests_read_the_same_in_any_split_and_unambiguously() {
    // `H1_FUZZ_SEED` and `H1_FUZZ_ROUNDS` run other and longer loops by hand.
    let number = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let mut rng = Rng(number("H1_FUZZ_SEED").unwrap_or(0x9e37_79b9_7f4a_7c15));
    let mut accepted = 0;
    let mut refused = 0;
    let mut partial = 0;
    let rounds = number("H1_FUZZ_ROUNDS").map_or(10_000, |n| n as usize);
    for round in 0..rounds {
        let mut input = SEEDS[round % SEEDS.len()].to_vec();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut rng, &mut input);
        }
        match check(&mut rng, &input, round % 16 == 0) {
            Outcome::Request(_) => accepted += 1,
            Outcome::Partial => partial += 1,
            _ => refused += 1,
        }
    }
    eprintln!("accepted {accepted}, refused {refused}, partial {partial}");
    // The mix stays meaningful: mutants of every kind.
    assert!(accepted > rounds / 20, "accepted {accepted}");
    assert!(refused > rounds / 10, "refused {refused}");
    assert!(partial > 0, "partial {partial}");
}

#[test]
fn the_seeds_are_accepted_in_every_split() {
    let mut rng = Rng(1);
    for seed in SEEDS {
        let outcome = check(&mut rng, seed, true);
        assert!(matches!(outcome, Outcome::Request(_)), "{outcome:?}");
    }
}

/// Bytes a chunked body is made of, drawn more often than the others.
const CHUNKED_BYTES: &[u8] = b"0123456789abcdefABCDEF;= \t\r\n\r\n\r\nxX:\"\x00\xff";

/// Random bodies from the chunked alphabet, fed to the decoder at once, one byte at a time and
/// in random pieces: the same data, trailers, end and error every time.
#[test]
fn random_chunked_bodies_decode_the_same_in_any_split() {
    let mut rng = Rng(0x5eed);
    let limits = ChunkedLimits {
        max_line_len: 12,
        max_trailer_len: 40,
        max_trailers: 3,
    };
    let mut ended = 0;
    for round in 0..4000 {
        let len = rng.below(48);
        let mut input: Vec<u8> = (0..len)
            .map(|_| CHUNKED_BYTES[rng.below(CHUNKED_BYTES.len())])
            .collect();
        if round % 3 == 0 {
            // Start from a valid body so that more inputs get far.
            let mut valid = b"3;e\r\nabc\r\n0\r\nT: v\r\n\r\n".to_vec();
            mutate(&mut rng, &mut valid);
            input = valid;
        }
        let whole = feed(&input, limits, &[]);
        let bytewise: Vec<usize> = (1..input.len()).collect();
        assert_eq!(feed(&input, limits, &bytewise), whole, "{input:?}");
        let cuts: Vec<usize> = (0..rng.below(5))
            .map(|_| rng.below(input.len() + 1))
            .collect();
        assert_eq!(
            feed(&input, limits, &cuts),
            whole,
            "{input:?} cut at {cuts:?}"
        );
        if matches!(whole, Ok(Some(_))) {
            ended += 1;
        }
    }
    assert!(ended > 100, "ended {ended}");
}

/// Data, trailers and the bytes used once the body ended (`None` if it has not).
type Fed = Result<Option<(Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>, usize)>, ChunkedError>;

fn feed(input: &[u8], limits: ChunkedLimits, cuts: &[usize]) -> Fed {
    let mut bounds: Vec<usize> = cuts.to_vec();
    bounds.push(0);
    bounds.push(input.len());
    bounds.sort_unstable();
    bounds.dedup();
    let mut decoder = ChunkedDecoder::new(limits);
    let mut data = Vec::new();
    for piece in bounds.windows(2) {
        let (start, end) = (piece[0], piece[1]);
        let mut pos = start;
        loop {
            match decoder.decode(&input[pos..end])? {
                Step::Data(range) => {
                    data.extend_from_slice(&input[pos..end][range.clone()]);
                    pos += range.end;
                }
                Step::NeedMore => break,
                Step::Done { consumed } => {
                    let trailers = decoder
                        .trailers()
                        .map(|(name, value)| (name.to_vec(), value.to_vec()))
                        .collect();
                    return Ok(Some((data, trailers, pos + consumed)));
                }
            }
        }
    }
    Ok(None)
}

#[test]
fn sizes() {
    // What a parsed request costs while it is served, besides its two heap blocks.
    assert!(
        std::mem::size_of::<Head>() <= 64,
        "{}",
        std::mem::size_of::<Head>()
    );
    assert!(std::mem::size_of::<ChunkedDecoder>() <= 128);
    eprintln!(
        "Head {} B, ChunkedDecoder {} B, Framing {} B",
        std::mem::size_of::<Head>(),
        std::mem::size_of::<ChunkedDecoder>(),
        std::mem::size_of::<Framing>()
    );
}
