//! The member side over real loopback sockets: a scripted member sends exact bytes, cut where
//! the test says, and the client must read the same response however they arrive.
//!
//! The fuzz loop at the end mutates valid responses and runs each one through Ballast's
//! client and hyper's: neither may panic, and a response both accept must give the same
//! status, body and trailers (and the same as Ballast read with the bytes one at a time).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body::Frame;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::either::Either;

use super::*;
use crate::http::client_body::ClientBody;
use crate::http::h1_server::body::{self as h1_body, BodyFeed};
use crate::stats::VserverStats;

/// What a scripted member does once it has read a request head.
struct Script {
    /// Response bytes, written piece by piece (with a pause between pieces).
    pieces: Vec<Vec<u8>>,
    /// Answer as soon as the head is in, without waiting for any body.
    early: bool,
    /// Close after writing.
    close: bool,
}

impl Script {
    fn whole(bytes: &[u8]) -> Script {
        Script {
            pieces: vec![bytes.to_vec()],
            early: false,
            close: false,
        }
    }

    fn bytewise(bytes: &[u8]) -> Script {
        Script {
            pieces: bytes.iter().map(|&b| vec![b]).collect(),
            ..Script::whole(b"")
        }
    }
}

/// A member that serves one connection by `script`; it reports every byte it received.
async fn member(script: Script) -> (SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut received = Vec::new();
        let mut buf = [0u8; 4096];
        while !received.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return received,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
        if !script.early {
            // Whatever body follows, within a moment.
            while let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(30), stream.read(&mut buf)).await
            {
                if n == 0 {
                    break;
                }
                received.extend_from_slice(&buf[..n]);
            }
        }
        for piece in &script.pieces {
            if stream.write_all(piece).await.is_err() {
                break;
            }
            if script.pieces.len() > 1 {
                tokio::task::yield_now().await;
            }
        }
        if script.close {
            let _ = stream.shutdown().await;
        } else {
            // Hold the connection open until the client is done.
            let _ = stream.read(&mut buf).await;
        }
        received
    });
    (addr, task)
}

async fn connect(addr: SocketAddr) -> MemberConnection {
    let stream = TcpStream::connect(addr).await.unwrap();
    MemberConnection::new(Either::Left(stream), None)
}

/// Sends a whole request, as the proxy does: the head by reference, the body by value.
async fn send(
    conn: MemberConnection,
    request: Request<RequestBody>,
) -> Result<Response<MemberBody>, MemberError> {
    let (parts, body) = request.into_parts();
    conn.send(&parts, body).await
}

fn request(method: &str, body: ClientBody) -> Request<RequestBody> {
    let body = RequestBody::new(
        body,
        Arc::new(VserverStats::default()),
        Duration::from_secs(5),
    );
    Request::builder()
        .method(method)
        .uri("/x")
        .header("host", "app")
        .body(body)
        .unwrap()
}

fn get() -> Request<RequestBody> {
    request("GET", ClientBody::Empty)
}

/// What the client made of a response.
#[derive(Debug, PartialEq)]
struct Read {
    status: u16,
    body: Vec<u8>,
    trailers: Option<HeaderMap>,
    reusable: bool,
}

async fn read(response: Response<MemberBody>) -> Result<Read, MemberError> {
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut data = Vec::new();
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        match frame?.into_data() {
            Ok(bytes) => data.extend_from_slice(&bytes),
            Err(frame) => trailers = frame.into_trailers().ok(),
        }
    }
    Ok(Read {
        status,
        body: data,
        trailers,
        reusable: body.take_connection().is_some(),
    })
}

async fn exchange(script: Script, request: Request<RequestBody>) -> Result<Read, MemberError> {
    let (addr, _member) = member(script).await;
    let response = send(connect(addr).await, request).await?;
    read(response).await
}

const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n\
    5;ext=a\r\nhello\r\n6\r\n world\r\n0\r\nx-sum: 42\r\n\r\n";

#[tokio::test]
async fn a_chunked_response_reads_the_same_however_it_is_cut() {
    for script in [Script::whole(CHUNKED), Script::bytewise(CHUNKED)] {
        let read = exchange(script, get()).await.unwrap();
        assert_eq!(read.status, 200);
        assert_eq!(read.body, b"hello world");
        assert_eq!(read.trailers.unwrap()["x-sum"], "42");
        assert!(
            read.reusable,
            "a clean chunked response keeps its connection"
        );
    }
}

#[tokio::test]
async fn interim_responses_are_skipped_and_bodiless_ones_end_at_their_head() {
    let bytes = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
        HTTP/1.1 204 No Content\r\nContent-Length: 99\r\n\r\n";
    let read = exchange(Script::whole(bytes), get()).await.unwrap();
    assert_eq!(
        (read.status, read.body.len(), read.reusable),
        (204, 0, true)
    );
}

#[tokio::test]
async fn a_body_until_close_is_read_whole_and_the_connection_is_not_kept() {
    let script = Script {
        close: true,
        ..Script::whole(b"HTTP/1.1 200 OK\r\n\r\nall of it")
    };
    let read = exchange(script, get()).await.unwrap();
    assert_eq!(
        (read.body.as_slice(), read.reusable),
        (&b"all of it"[..], false)
    );
}

#[tokio::test]
async fn a_body_cut_short_is_an_error_not_a_shorter_body() {
    for bytes in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
    ] {
        let script = Script {
            close: true,
            ..Script::whole(bytes)
        };
        let error = exchange(script, get()).await.unwrap_err();
        assert!(matches!(error, MemberError::Truncated), "{error}");
    }
    let script = Script {
        close: true,
        ..Script::whole(b"HTTP/1.1 200 OK\r\nContent-Le")
    };
    let error = exchange(script, get()).await.unwrap_err();
    assert!(matches!(error, MemberError::TruncatedHead), "{error}");
}

#[tokio::test]
async fn a_member_that_closes_without_answering_can_be_retried() {
    let script = Script {
        close: true,
        ..Script::whole(b"")
    };
    let error = exchange(script, get()).await.unwrap_err();
    assert!(error.closed_early(), "{error}");
    let script = Script {
        close: true,
        ..Script::whole(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n")
    };
    let error = exchange(script, get()).await.unwrap_err();
    assert!(
        !error.closed_early(),
        "a malformed answer is not retried: {error}"
    );
}

#[tokio::test]
async fn the_request_goes_out_framed_by_ballast_with_only_its_announced_trailers() {
    let (feed, body) = h1_body::channel(None);
    let mut request = request("POST", ClientBody::Http1(body));
    request
        .headers_mut()
        .insert("trailer", "x-sum".parse().unwrap());
    let (addr, member) = member(Script::whole(
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    ))
    .await;
    let feeding = tokio::spawn(feed_body(
        feed,
        vec![Frame::data(Bytes::from_static(b"abc")), {
            let mut trailers = HeaderMap::new();
            trailers.insert("x-sum", "1".parse().unwrap());
            trailers.insert("x-secret", "2".parse().unwrap());
            Frame::trailers(trailers)
        }],
    ));
    let read = read(send(connect(addr).await, request).await.unwrap())
        .await
        .unwrap();
    feeding.await.unwrap();
    assert!(read.reusable);
    let received = String::from_utf8(member.await.unwrap()).unwrap();
    assert!(
        received.starts_with("POST /x HTTP/1.1\r\nhost: app\r\ntrailer: x-sum\r\n"),
        "{received}"
    );
    assert!(
        received.ends_with("transfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-sum: 1\r\n\r\n"),
        "{received}"
    );
}

async fn feed_body(feed: BodyFeed, frames: Vec<Frame<Bytes>>) {
    let count = frames.len();
    for (i, frame) in frames.into_iter().enumerate() {
        std::future::poll_fn(|cx| feed.poll_room(cx)).await;
        feed.give(frame, i + 1 == count);
    }
}

#[tokio::test]
async fn an_early_answer_stops_the_body_and_the_connection() {
    let (feed, body) = h1_body::channel(Some(1_000_000));
    let request = request("PUT", ClientBody::Http1(body));
    let script = Script {
        early: true,
        ..Script::whole(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 3\r\n\r\nbig")
    };
    let (addr, _member) = member(script).await;
    let feeding = tokio::spawn(async move {
        std::future::poll_fn(|cx| feed.poll_room(cx)).await;
        feed.give(Frame::data(Bytes::from_static(b"first")), false);
        // The rest of the body never comes: the member has answered.
        feed
    });
    let response = tokio::time::timeout(Duration::from_secs(5), send(connect(addr).await, request))
        .await
        .expect("the early answer was not read while the body was pending")
        .unwrap();
    let read = read(response).await.unwrap();
    assert_eq!((read.status, read.body.as_slice()), (413, &b"big"[..]));
    assert!(
        !read.reusable,
        "half a body went out: the member would misread what follows"
    );
    drop(feeding.await);
}

#[tokio::test]
async fn an_idle_connection_the_member_closed_is_not_used_again() {
    let script = Script {
        close: true,
        ..Script::whole(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    };
    let (addr, member) = member(script).await;
    let mut body = send(connect(addr).await, get()).await.unwrap().into_body();
    while body.frame().await.is_some() {}
    let mut conn = body.take_connection().expect("a clean response");
    member.await.unwrap();
    // The member's FIN is in flight on loopback for a moment at most.
    for _ in 0..100 {
        if !conn.is_usable() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("a connection the member closed was still taken as usable");
}

#[tokio::test]
async fn a_connection_the_member_sent_unasked_bytes_on_is_not_used_again() {
    // The stray byte comes after the response: it may be in before the body ends (the
    // connection is not given back) or only after (the check when it is next taken finds it).
    let script = Script {
        pieces: vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
            b"x".to_vec(),
        ],
        ..Script::whole(b"")
    };
    let (addr, _member) = member(script).await;
    let mut body = send(connect(addr).await, get()).await.unwrap().into_body();
    while body.frame().await.is_some() {}
    let Some(mut conn) = body.take_connection() else {
        return;
    };
    for _ in 0..100 {
        if !conn.is_usable() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("a connection with an unasked byte pending was still taken as usable");
}

/// The member's response bytes through Ballast's client, all at once or a byte at a time.
async fn ours(bytes: &[u8], bytewise: bool) -> Option<Read> {
    let script = Script {
        close: true,
        ..if bytewise {
            Script::bytewise(bytes)
        } else {
            Script::whole(bytes)
        }
    };
    let read = tokio::time::timeout(Duration::from_secs(5), exchange(script, get())).await;
    read.expect("Ballast's client hung").ok()
}

/// The same through hyper's HTTP/1.1 client.
async fn hypers(bytes: &[u8]) -> Option<Read> {
    let script = Script {
        close: true,
        ..Script::whole(bytes)
    };
    let (addr, _member) = member(script).await;
    let stream = TcpStream::connect(addr).await.unwrap();
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.ok()?;
    tokio::spawn(conn);
    let request = Request::get("/x")
        .header("host", "app")
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), send.send_request(request))
        .await
        .ok()?
        .ok()?;
    let status = response.status().as_u16();
    let collected = response.into_body().collect().await.ok()?;
    let trailers = collected.trailers().cloned();
    Some(Read {
        status,
        body: collected.to_bytes().to_vec(),
        trailers,
        reusable: false,
    })
}

const SEEDS: &[&[u8]] = &[
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    CHUNKED,
    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nno",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc",
    b"HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n\r\n",
];

const SNIPPETS: &[&[u8]] = &[
    b"Transfer-Encoding: chunked\r\n",
    b"Content-Length: 3\r\n",
    b"Content-Length: 3, 4\r\n",
    b"Connection: close\r\n",
    b"0\r\n\r\n",
    b"\r\n",
    b"\n",
    b" ",
];

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1) as u64) as usize
    }
}

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..=rng.below(2) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(8) {
            0 if at < bytes.len() => bytes[at] = b"\r\n :;0aZ\x00\xff"[rng.below(10)],
            1 if at < bytes.len() => {
                bytes.remove(at);
            }
            2 => {
                let snippet = SNIPPETS[rng.below(SNIPPETS.len())];
                bytes.splice(at..at, snippet.iter().copied());
            }
            3 => bytes.truncate(at.max(seed.len() / 2)),
            _ if at < bytes.len() => {
                // A byte of a field value or of the body: framing must not change.
                let at = at.max(seed.len() / 3);
                if at < bytes.len() && bytes[at].is_ascii_alphanumeric() {
                    bytes[at] = b"aZ0 \t\x80"[rng.below(6)];
                }
            }
            _ => {}
        }
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_responses_read_as_hyper_reads_them_when_both_take_them() {
    let mut rng = Rng(0x05ee_dba1_1a57);
    let (mut both, mut only_ours, mut only_hypers) = (0, 0, 0);
    for case in 0..240 {
        let seed = SEEDS[case % SEEDS.len()];
        let bytes = mutate(seed, &mut rng);
        let shown = String::from_utf8_lossy(&bytes).into_owned();
        let (whole, bytewise, hyper) =
            tokio::join!(ours(&bytes, false), ours(&bytes, true), hypers(&bytes));
        // Bytes past the response's end are seen when the body ends only if they are in by
        // then (read whole, they always are): a byte at a time, the connection may come back
        // and be refused when next taken instead (the test above). Nothing else may differ.
        let reusable = |read: &Option<Read>| read.as_ref().is_some_and(|read| read.reusable);
        assert!(
            !reusable(&whole) || reusable(&bytewise),
            "reusable whole, not when cut: {shown:?}"
        );
        let framed = |read: Option<Read>| read.map(|read| (read.status, read.body, read.trailers));
        let (whole, bytewise) = (framed(whole), framed(bytewise));
        assert_eq!(whole, bytewise, "read differently when cut: {shown:?}");
        match (whole, hyper) {
            (Some((status, body, trailers)), Some(hyper)) => {
                both += 1;
                assert_eq!(status, hyper.status, "{shown:?}");
                assert_eq!(body, hyper.body, "bodies differ: {shown:?}");
                assert_eq!(trailers.is_some(), hyper.trailers.is_some(), "{shown:?}");
            }
            (Some(_), None) => only_ours += 1,
            (None, Some(_)) => only_hypers += 1,
            (None, None) => {}
        }
    }
    // The loop must exercise both outcomes, or it proves nothing.
    eprintln!("read by both: {both}, only by Ballast: {only_ours}, only by hyper: {only_hypers}");
    assert!(both >= 60, "only {both} mutants were read by both");
    assert!(only_ours + only_hypers < 240, "{only_ours} / {only_hypers}");
}
