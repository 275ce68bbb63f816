//! The HTTP data plane (`HTTP` and `SSL` vservers).
//!
//! - [`serve`]: one client connection, HTTP/1.1 or HTTP/2, with the `[httpprofile]` limits;
//!   [`h1_server`]: Ballast's own HTTP/1.1 server side; [`idle`]: the idle timeout of HTTP/2
//!   connections.
//! - [`checks`]: what a request must satisfy before any member sees it (`Host`, transfer
//!   codings, `CONNECT`, the exact `maxheaderlen`).
//! - [`proxy`]: one request: pick a member, forward, retry connect failures.
//! - [`error`]: every way an exchange ends without a member's response: which side failed,
//!   the status and generic body the client gets, whether a retry is safe.
//! - [`upload`]: a request body's progress, for blame, `svrtimeout` and response times.
//! - [`h1_client`]: Ballast's own HTTP/1.1 client side: a request on a member connection,
//!   its response read by the task that serves the client.
//! - [`pool`]: keep-alive HTTP/1.1 connections to each member.
//!   [`private`]: the member connection a client connection keeps for itself alone (groups
//!   that send PROXY protocol headers).
//! - [`body`]: streaming bodies that count bytes and release the member when the response ends;
//!   [`client_body`]: a request body as HTTP/1.1 or HTTP/2 delivers it.
//! - [`headers`]: hop-by-hop removal and `X-Forwarded-*`.
//! - [`upgrade`]: `Upgrade` (WebSocket) pass-through: a `101` from the member opens a tunnel;
//!   [`h2_websocket`]: WebSocket over HTTP/2 (RFC 8441) made an HTTP/1.1 upgrade.

pub mod body;
pub mod checks;
pub mod client_body;
pub mod error;
pub mod h1_client;
pub mod h1_server;
pub mod h2_websocket;
pub mod headers;
pub mod idle;
pub mod pool;
pub mod private;
pub mod proxy;
pub mod serve;
pub mod upgrade;
pub mod upload;
