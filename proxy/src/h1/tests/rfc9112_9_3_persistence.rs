//! RFC 9112 §9.3: persistence. HTTP/1.1 keeps the connection unless `close` is named;
//! HTTP/1.0 closes unless `keep-alive` is named (§9.3, and RFC 7230 Appendix A.1.2). Also
//! `Upgrade` (RFC 9110 §7.8), requested only with `Connection: upgrade` on HTTP/1.1.

use super::*;

fn framing_of(version: &str, fields: &str) -> Framing {
    let input = format!("GET / {version}\r\nHost: a\r\n{fields}\r\n");
    let request = read(input.as_bytes()).request();
    assert_eq!(request.consumed, input.len());
    request.framing
}

#[test]
fn keep_alive() {
    let cases: &[(&str, &str, bool)] = &[
        ("HTTP/1.1", "", true),
        ("HTTP/1.1", "Connection: close\r\n", false),
        ("HTTP/1.1", "Connection: CLOSE\r\n", false),
        ("HTTP/1.1", "Connection: keep-alive, close\r\n", false),
        ("HTTP/1.1", "Connection: x-custom ,  close\r\n", false),
        (
            "HTTP/1.1",
            "Connection: keep-alive\r\nConnection: close\r\n",
            false,
        ),
        (
            "HTTP/1.1",
            "Connection: close\r\nConnection: keep-alive\r\n",
            false,
        ),
        ("HTTP/1.1", "Connection: closed\r\n", true),
        ("HTTP/1.1", "Connection: keep-alive\r\n", true),
        ("HTTP/1.1", "Connection: upgrade\r\n", true),
        ("HTTP/1.0", "", false),
        ("HTTP/1.0", "Connection: keep-alive\r\n", true),
        ("HTTP/1.0", "Connection: Keep-Alive\r\n", true),
        ("HTTP/1.0", "Connection: te, keep-alive\r\n", true),
        ("HTTP/1.0", "Connection: keep-alive, close\r\n", false),
        (
            "HTTP/1.0",
            "Connection: keep-alive\r\nConnection: close\r\n",
            false,
        ),
        ("HTTP/1.0", "Keep-Alive: timeout=5\r\n", false),
    ];
    for (version, fields, expected) in cases {
        assert_eq!(
            framing_of(version, fields).keep_alive,
            *expected,
            "{version} {fields:?}"
        );
    }
}

#[test]
fn upgrade() {
    let cases: &[(&str, &str, bool)] = &[
        (
            "HTTP/1.1",
            "Connection: upgrade\r\nUpgrade: websocket\r\n",
            true,
        ),
        (
            "HTTP/1.1",
            "Connection: keep-alive, Upgrade\r\nUpgrade: h2c\r\n",
            true,
        ),
        ("HTTP/1.1", "Upgrade: websocket\r\n", false),
        ("HTTP/1.1", "Connection: upgrade\r\n", false),
        (
            "HTTP/1.0",
            "Connection: upgrade\r\nUpgrade: websocket\r\n",
            false,
        ),
    ];
    for (version, fields, expected) in cases {
        assert_eq!(
            framing_of(version, fields).upgrade,
            *expected,
            "{version} {fields:?}"
        );
    }
}
