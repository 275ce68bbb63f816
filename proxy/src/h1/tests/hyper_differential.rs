//! The same tricky requests through hyper's server path as Ballast ran it before it had its
//! own HTTP/1.1 server (hyper's HTTP/1.1 connection with `max_buf_size(maxheaderlen)`, then
//! [`crate::http::checks::admit`]) and through this core. Where the two differ, the difference
//! is intended and named here.
//!
//! A status is the first final status the path answers; `None` is no answer (the head never
//! ended). `Host`, `CONNECT` and the other checks of `admit` are the server's, not the core's:
//! the core's side runs them on [`crate::h1::convert::to_parts`] as the server does.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::http::checks;

async fn hyper_status(input: &[u8]) -> Option<u16> {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let service = service_fn(|request: http::Request<Incoming>| async move {
        let (mut parts, body) = request.into_parts();
        let status = match checks::admit(&mut parts, MAX_HEAD) {
            Err(error) => error.status(),
            Ok(()) => match body.collect().await {
                Ok(_) => http::StatusCode::OK,
                Err(_) => http::StatusCode::BAD_REQUEST,
            },
        };
        let mut response = http::Response::new(Full::new(Bytes::new()));
        *response.status_mut() = status;
        Ok::<_, Infallible>(response)
    });
    let connection = http1::Builder::new()
        .max_buf_size(MAX_HEAD)
        .keep_alive(true)
        // The client shuts its side down after the request: answer it all the same.
        .half_close(true)
        .serve_connection(TokioIo::new(server), service);
    let task = tokio::spawn(connection);
    let (mut reader, mut writer) = tokio::io::split(client);
    writer.write_all(input).await.expect("written");
    writer.shutdown().await.expect("shut down");
    let mut output = Vec::new();
    let read = reader.read_to_end(&mut output);
    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
    task.abort();
    String::from_utf8_lossy(&output)
        .split("\r\n")
        .filter_map(|line| {
            line.strip_prefix("HTTP/1.1 ")
                .or(line.strip_prefix("HTTP/1.0 "))
        })
        .filter_map(|rest| rest.get(..3)?.parse::<u16>().ok())
        .find(|status| *status >= 200)
}

/// The core, then the checks the hyper path runs after parsing, as the wiring will.
fn our_status(input: &[u8]) -> Option<u16> {
    match read(input) {
        Outcome::Request(request) => {
            let mut parts = crate::h1::convert::to_parts(&request.head).expect("converted");
            Some(match checks::admit(&mut parts, MAX_HEAD) {
                Ok(()) => 200,
                Err(error) => error.status().as_u16(),
            })
        }
        Outcome::Partial => None,
        Outcome::Head(error) => Some(error.status().as_u16()),
        Outcome::Framing(error) => Some(error.status().as_u16()),
        Outcome::Chunked(error) => Some(error.status().as_u16()),
    }
}

const GET: &str = "GET / HTTP/1.1\r\nHost: a\r\n";
const POST: &str = "POST / HTTP/1.1\r\nHost: a\r\n";

/// `(what, request, hyper's answer, ours)`; a differing pair is an intended difference.
fn cases() -> Vec<(&'static str, String, Option<u16>, Option<u16>)> {
    let many_fields: String = (0..101).map(|i| format!("X-{i}: {i}\r\n")).collect();
    vec![
        ("plain GET", format!("{GET}\r\n"), Some(200), Some(200)),
        (
            "no Host",
            "GET / HTTP/1.1\r\n\r\n".into(),
            Some(400),
            Some(400),
        ),
        (
            "no Host in HTTP/1.0",
            "GET / HTTP/1.0\r\n\r\n".into(),
            Some(200),
            Some(200),
        ),
        (
            "two Hosts",
            format!("{GET}Host: b\r\n\r\n"),
            Some(400),
            Some(400),
        ),
        (
            "CONNECT",
            "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n".into(),
            Some(405),
            Some(405),
        ),
        (
            "absolute-form",
            "GET http://a/x HTTP/1.1\r\nHost: b\r\n\r\n".into(),
            Some(200),
            Some(200),
        ),
        // RFC 9110 §4.2.4: user information in an http URI: the core refuses the target,
        // `admit` the authority that would become `Host`.
        (
            "userinfo in the target",
            "GET http://u@a/x HTTP/1.1\r\nHost: a\r\n\r\n".into(),
            Some(400),
            Some(400),
        ),
        (
            "empty line before the request line",
            format!("\r\n{GET}\r\n"),
            Some(200),
            Some(200),
        ),
        // §2.2: hyper (httparse) takes a bare LF; the core refuses every bare LF.
        (
            "bare LF line endings",
            "GET / HTTP/1.1\nHost: a\n\n".into(),
            Some(200),
            Some(400),
        ),
        (
            "bare LF after one field",
            format!("{GET}X: y\n\r\n"),
            Some(200),
            Some(400),
        ),
        (
            "bare CR",
            format!("{GET}X: a\rb\r\n\r\n"),
            Some(400),
            Some(400),
        ),
        (
            "obs-fold",
            format!("{GET}X: a\r\n b\r\n\r\n"),
            Some(400),
            Some(400),
        ),
        (
            "space before the colon",
            format!("{GET}X : a\r\n\r\n"),
            Some(400),
            Some(400),
        ),
        (
            "NUL in a value",
            format!("{GET}X: a\0b\r\n\r\n"),
            Some(400),
            Some(400),
        ),
        (
            "101 fields",
            format!("{GET}{many_fields}\r\n"),
            Some(431),
            Some(431),
        ),
        (
            "head over maxheaderlen",
            format!("{GET}X: {}\r\n\r\n", "a".repeat(MAX_HEAD)),
            Some(431),
            Some(431),
        ),
        // A request line over the limit: 414 here (nginx and HAProxy answer 414 too).
        (
            "target over maxheaderlen",
            format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(MAX_HEAD)),
            Some(431),
            Some(414),
        ),
        // §3.2: a fragment is not part of a request target; hyper drops it.
        (
            "fragment in the target",
            "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n".into(),
            Some(200),
            Some(400),
        ),
        // Only visible ASCII in a target; hyper takes UTF-8.
        (
            "UTF-8 in the target",
            "GET /caf\u{e9} HTTP/1.1\r\nHost: a\r\n\r\n".into(),
            Some(200),
            Some(400),
        ),
        // §2.3: hyper answers 400 to any version but 1.0 and 1.1; the core 505 to HTTP/x.y.
        (
            "HTTP/2.0",
            "GET / HTTP/2.0\r\nHost: a\r\n\r\n".into(),
            Some(400),
            Some(505),
        ),
        (
            "HTTP/1.2",
            "GET / HTTP/1.2\r\nHost: a\r\n\r\n".into(),
            Some(400),
            Some(505),
        ),
        (
            "garbage version",
            "GET / HTXP/1.1\r\nHost: a\r\n\r\n".into(),
            Some(400),
            Some(400),
        ),
        // §6.1
        (
            "chunked",
            format!("{POST}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
            Some(200),
            Some(200),
        ),
        (
            "gzip, chunked",
            format!("{POST}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
            Some(501),
            Some(501),
        ),
        // A list that does not end in chunked: 400 from both (§6.1).
        (
            "chunked, gzip",
            format!("{POST}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"),
            Some(400),
            Some(400),
        ),
        // chunked applied twice: hyper looks at the last coding only.
        (
            "chunked, chunked",
            format!("{POST}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"),
            Some(200),
            Some(400),
        ),
        (
            "TE in HTTP/1.0",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".into(),
            Some(400),
            Some(400),
        ),
        // §6.3: hyper drops Content-Length and goes by Transfer-Encoding; the core refuses.
        (
            "CL and TE",
            format!(
                "{POST}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            ),
            Some(200),
            Some(400),
        ),
        (
            "TE and CL",
            format!(
                "{POST}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            ),
            Some(200),
            Some(400),
        ),
        // §6.2
        (
            "Content-Length",
            format!("{POST}Content-Length: 3\r\n\r\nabc"),
            Some(200),
            Some(200),
        ),
        (
            "CL repeated",
            format!("{POST}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc"),
            Some(200),
            Some(200),
        ),
        // RFC 9110 §8.6 lets a recipient take a list of one repeated value; hyper refuses it.
        (
            "CL list of one value",
            format!("{POST}Content-Length: 3, 3\r\n\r\nabc"),
            Some(400),
            Some(200),
        ),
        (
            "CL differing",
            format!("{POST}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
            Some(400),
            Some(400),
        ),
        (
            "CL signed",
            format!("{POST}Content-Length: +3\r\n\r\nabc"),
            Some(400),
            Some(400),
        ),
        (
            "CL overflow",
            format!("{POST}Content-Length: 99999999999999999999\r\n\r\n"),
            Some(400),
            Some(400),
        ),
        // The core waits for the rest; the connection loop answers the early end of input.
        (
            "CL short body",
            format!("{POST}Content-Length: 5\r\n\r\nabc"),
            Some(400),
            None,
        ),
        // §7.1
        (
            "chunk extension",
            format!("{POST}Transfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n0\r\n\r\n"),
            Some(200),
            Some(200),
        ),
        (
            "bad chunk size",
            format!("{POST}Transfer-Encoding: chunked\r\n\r\nz\r\nabc\r\n0\r\n\r\n"),
            Some(400),
            Some(400),
        ),
        (
            "chunk data without CRLF",
            format!("{POST}Transfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n"),
            Some(400),
            Some(400),
        ),
        (
            "bare LF after a chunk size",
            format!("{POST}Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n"),
            Some(400),
            Some(400),
        ),
        // Whitespace after a size is only BWS before an extension (§7.1.1); hyper takes it.
        (
            "space after a chunk size",
            format!("{POST}Transfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n"),
            Some(200),
            Some(400),
        ),
        (
            "trailers",
            format!("{POST}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX: y\r\n\r\n"),
            Some(200),
            Some(200),
        ),
        // RFC 9110 §10.1.1: hyper ignores an expectation it does not know.
        (
            "Expect: 100-continue",
            format!("{POST}Expect: 100-continue\r\nContent-Length: 3\r\n\r\nabc"),
            Some(200),
            Some(200),
        ),
        (
            "unknown expectation",
            format!("{POST}Expect: 200-ok\r\nContent-Length: 3\r\n\r\nabc"),
            Some(200),
            Some(417),
        ),
        ("head never ends", format!("{GET}X: y\r\n"), None, None),
    ]
}

#[tokio::test]
async fn hyper_and_the_core_answer_as_documented() {
    let mut mismatches = Vec::new();
    for (what, request, hyper, ours) in cases() {
        let got_hyper = hyper_status(request.as_bytes()).await;
        let got_ours = our_status(request.as_bytes());
        if (got_hyper, got_ours) != (hyper, ours) {
            mismatches.push(format!(
                "{what}: hyper {got_hyper:?} (table {hyper:?}), core {got_ours:?} (table {ours:?})"
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
