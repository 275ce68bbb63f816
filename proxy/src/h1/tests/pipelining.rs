//! RFC 9112 §9.3.2: pipelining. Requests in one buffer are read one after the other; each
//! says exactly how many bytes it used.

use super::*;

#[test]
fn pipelined_requests_parse_one_after_the_other() {
    let first = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n".as_slice();
    let second = b"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc".as_slice();
    let third = b"POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2;x\r\nde\r\n0\r\nT: 1\r\n\r\n".as_slice();
    let fourth = b"GET /4 HTTP/1.0\r\n\r\n".as_slice();
    let buffer = [first, second, third, fourth].concat();
    let mut at = 0;
    let mut read_back = Vec::new();
    while at < buffer.len() {
        let request = read(&buffer[at..]).request();
        read_back.push((
            String::from_utf8_lossy(request.head.target()).into_owned(),
            request.body.clone(),
            request.consumed,
        ));
        at += request.consumed;
    }
    assert_eq!(at, buffer.len());
    assert_eq!(
        read_back,
        [
            ("/1".to_string(), Vec::new(), first.len()),
            ("/2".to_string(), b"abc".to_vec(), second.len()),
            ("/3".to_string(), b"de".to_vec(), third.len()),
            ("/4".to_string(), Vec::new(), fourth.len()),
        ]
    );
}

#[test]
fn a_pipelined_buffer_split_anywhere_reads_the_same() {
    let buffer = b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
    let whole = read(buffer);
    for cut in 0..=buffer.len() {
        assert_eq!(read_split(buffer, MAX_HEAD, &[cut]), whole, "cut at {cut}");
    }
    let Outcome::Request(request) = whole else {
        panic!("a request");
    };
    assert_eq!(&buffer[request.consumed..], b"GET /b HTTP/1.1\r\n\r\n");
}
