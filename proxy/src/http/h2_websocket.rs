//! WebSocket over HTTP/2 (RFC 8441): a client's extended `CONNECT` with `:protocol =
//! websocket`, relayed to a member that speaks WebSocket over HTTP/1.1 (RFC 6455).
//!
//! The `CONNECT` becomes a `GET` with `Connection: upgrade`, `Upgrade: websocket` and a fresh
//! `Sec-WebSocket-Key`; the member's `101` must carry the `Sec-WebSocket-Accept` that answers
//! that key, and becomes the `200` the HTTP/2 client waits for. From then on the bytes (the
//! WebSocket frames, the same in both versions) flow as for any upgrade.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, Version};

static SEC_WEBSOCKET_KEY: HeaderName = HeaderName::from_static("sec-websocket-key");
static SEC_WEBSOCKET_ACCEPT: HeaderName = HeaderName::from_static("sec-websocket-accept");
static SEC_WEBSOCKET_VERSION: HeaderName = HeaderName::from_static("sec-websocket-version");

/// RFC 6455 §1.3: appended to the key before hashing.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// An HTTP/2 `CONNECT` whose `:protocol` is `websocket`.
pub fn is_extended_connect(parts: &Parts) -> bool {
    parts.version == Version::HTTP_2
        && parts.method == Method::CONNECT
        && parts
            .extensions
            .get::<hyper::ext::Protocol>()
            .is_some_and(|protocol| protocol.as_str().eq_ignore_ascii_case("websocket"))
}

/// The HTTP/1.1 handshake made for one extended `CONNECT`.
#[derive(Debug)]
pub struct Handshake {
    key: HeaderValue,
}

/// Turns the extended `CONNECT` into the start of an HTTP/1.1 WebSocket handshake (`GET`); the
/// headers follow with [`Handshake::headers`], once hop-by-hop ones are gone.
pub fn to_http11(parts: &mut Parts) -> Handshake {
    parts.method = Method::GET;
    parts.extensions.remove::<hyper::ext::Protocol>();
    let mut nonce = [0u8; 16];
    // A key only has to be fresh, not secret: a clock-based one does if randomness fails.
    if getrandom::getrandom(&mut nonce).is_err() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        nonce = now.as_nanos().to_le_bytes();
    }
    let key = HeaderValue::from_str(&base64(&nonce)).unwrap_or(HeaderValue::from_static(""));
    Handshake { key }
}

impl Handshake {
    /// The handshake's headers towards the member.
    pub fn headers(&self, headers: &mut HeaderMap) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(SEC_WEBSOCKET_KEY.clone(), self.key.clone());
        if !headers.contains_key(&SEC_WEBSOCKET_VERSION) {
            headers.insert(
                SEC_WEBSOCKET_VERSION.clone(),
                HeaderValue::from_static("13"),
            );
        }
    }

    /// Whether the member's `101` answers this handshake's key.
    pub fn accepted_by(&self, response: &HeaderMap) -> bool {
        let expected = accept_for(self.key.as_bytes());
        response
            .get(&SEC_WEBSOCKET_ACCEPT)
            .is_some_and(|accept| accept.as_bytes() == expected.as_bytes())
    }
}

/// What the HTTP/2 client gets instead of the member's `101`: its headers, less those of
/// the HTTP/1.1 handshake.
pub fn response_headers(headers: &mut HeaderMap) {
    headers.remove(&SEC_WEBSOCKET_ACCEPT);
    headers.remove(header::UPGRADE);
    headers.remove(header::CONNECTION);
}

/// `Sec-WebSocket-Accept` for `key`: base64 of the SHA-1 of the key and the GUID.
fn accept_for(key: &[u8]) -> String {
    let mut input = key.to_vec();
    input.extend_from_slice(ACCEPT_GUID.as_bytes());
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &input);
    base64(digest.as_ref())
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_of_rfc_6455s_example_key() {
        assert_eq!(
            accept_for(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn a_fresh_key_is_16_bytes_of_base64_and_is_checked() {
        let (mut parts, ()) = http::Request::builder()
            .method(Method::CONNECT)
            .version(Version::HTTP_2)
            .uri("https://app.example/chat")
            .extension(hyper::ext::Protocol::from_static("websocket"))
            .body(())
            .unwrap()
            .into_parts();
        assert!(is_extended_connect(&parts));
        let handshake = to_http11(&mut parts);
        assert_eq!(parts.method, Method::GET);
        assert_eq!(handshake.key.len(), 24);
        let mut headers = HeaderMap::new();
        handshake.headers(&mut headers);
        assert_eq!(headers["upgrade"], "websocket");
        assert_eq!(headers["sec-websocket-version"], "13");
        let mut answer = HeaderMap::new();
        assert!(!handshake.accepted_by(&answer));
        let accept = accept_for(handshake.key.as_bytes());
        answer.insert("sec-websocket-accept", accept.parse().unwrap());
        assert!(handshake.accepted_by(&answer));
    }
}
