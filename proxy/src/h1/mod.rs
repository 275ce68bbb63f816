//! Ballast's own HTTP/1.1, sans-I/O: byte slices in, decisions out. No sockets,
//! no tokio, no buffers held between calls beyond what a caller hands in.
//!
//! [`crate::http::h1_server`] runs it on client connections: it waits for readability holding
//! no buffer, takes one while a request is read and answered, and asks these modules what the
//! bytes mean:
//!
//! - [`head`]: a request head (RFC 9112 §2–§5) parsed with `httparse`, with the framing rules
//!   that `httparse` leaves to its caller (bare CR/LF, obs-fold, size limits, target forms,
//!   `505`), into one owned, compact [`head::Head`].
//! - [`framing`]: the request's message length (RFC 9112 §6) and its connection semantics:
//!   keep-alive (§9.3), `Expect: 100-continue` (RFC 9110 §10.1.1), `Upgrade`.
//! - [`chunked`]: an incremental chunked body decoder (RFC 9112 §7.1) with bounded
//!   extensions and trailers, and the encoder for bodies Ballast frames itself.
//! - [`response`]: which responses have no body (RFC 9112 §6.3), and writing a response head.
//! - [`convert`]: a [`head::Head`] as `http` request parts.
//! - [`client`]: the member side: a request head written, a response head and its message
//!   length read back ([`crate::http::h1_client`] runs it).
//!
//! What is checked after parsing (`Host`, `CONNECT`, see [`crate::http::checks`]) is not
//! repeated here: the server converts a [`head::Head`] to `http` parts and runs the same
//! checks for HTTP/1.1 and HTTP/2.

pub mod chunked;
pub mod client;
pub mod convert;
pub mod framing;
pub mod head;
pub mod response;

#[cfg(test)]
mod tests;
