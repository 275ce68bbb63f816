//! The HTTP data plane (`HTTP` and `SSL` vservers).
//!
//! - [`serve`]: one client connection, HTTP/1.1 or HTTP/2, with the `[httpprofile]` limits.
//! - [`proxy`]: one request: pick a member, forward, retry connect failures, map errors to
//!   `502`/`503`/`504`.
//! - [`pool`]: keep-alive HTTP/1.1 connections to each member.
//! - [`body`]: streaming bodies that count bytes and release the member when the response ends.
//! - [`headers`]: hop-by-hop removal and `X-Forwarded-*`.

pub mod body;
pub mod headers;
pub mod pool;
pub mod proxy;
pub mod serve;
