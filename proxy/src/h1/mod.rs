//! Ballast's own HTTP/1.1 request path, sans-I/O: byte slices in, decisions out. No sockets,
//! no tokio, no buffers held between calls beyond what a caller hands in.
//!
//! Groundwork for issue 13 (hyper keeps two 8 KiB buffers per idle keep-alive connection); it
//! is **not wired in yet**: the client side still goes through hyper ([`crate::http::serve`]).
//! The later connection loop waits for readability holding no buffer, takes a pooled buffer
//! while a request is read, and asks these modules what the bytes mean:
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
//!
//! What the hyper path checks after parsing (`Host`, `CONNECT`, see [`crate::http::checks`])
//! is not repeated here: the wiring converts a [`head::Head`] to `http` parts and runs
//! the same checks.
//!
//! What wiring it in still needs:
//!
//! - The connection loop: wait for readability holding no buffer, take a pooled one, read
//!   until [`head::Parsed::Complete`] under `clientheadertimeout`, answer a refusal's status
//!   with `Connection: close` ([`response::write_head`]) and close; graceful shutdown between
//!   requests; give the buffer back only when no pipelined bytes are left in it.
//! - [`convert::to_parts`], then [`crate::http::checks::admit`] and the existing exchange,
//!   with the body as an `http_body::Body` read by its [`framing::BodyLength`] (a
//!   [`chunked::ChunkedDecoder`] or a count), `100 Continue` written when that body is first
//!   polled.
//! - The response: [`response::has_no_body`], [`response::write_head`], the body framed by
//!   length or [`chunked::encode_chunk`]; keep-alive from the request's [`framing::Framing`]
//!   and the exchange's outcome.
//! - `Upgrade`: hand the raw connection to the tunnel of [`crate::http::upgrade`] after a
//!   `101` (today it comes from `hyper::upgrade`); the access log and head-error metrics as
//!   [`crate::http::serve`] records them.

pub mod chunked;
pub mod convert;
pub mod framing;
pub mod head;
pub mod response;

#[cfg(test)]
mod tests;
