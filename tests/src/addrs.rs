//! Loopback addresses and ports that parallel tests do not share.
//!
//! Linux routes all of 127.0.0.0/8 to `lo`, so each test takes its own /24 ([`Net`]):
//! `127.A.B.0/24` with `A` from the process id and `B` from a per-process counter. Members that
//! a test must tell apart get distinct addresses in it (`.1`, `.2`, ...), and SOURCEIPHASH
//! clients bind their sockets to others (`.100`, ...).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

/// A /24 inside 127.0.0.0/8 that belongs to one test.
#[derive(Debug, Clone, Copy)]
pub struct Net {
    a: u8,
    b: u8,
}

static NEXT_NET: AtomicU32 = AtomicU32::new(0);

impl Net {
    /// A fresh /24: `127.A.B.0` with `A` in 10..250 (from the pid) and `B` counting up.
    pub fn new() -> Net {
        let a = 10 + (std::process::id() % 240) as u8;
        let b = (NEXT_NET.fetch_add(1, Ordering::Relaxed) % 250 + 1) as u8;
        Net { a, b }
    }

    /// `127.A.B.host`.
    pub fn ip(&self, host: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, self.a, self.b, host))
    }

    /// `127.A.B.host` with a port that was free a moment ago.
    pub fn free_addr(&self, host: u8) -> SocketAddr {
        let ip = self.ip(host);
        SocketAddr::new(ip, free_port(ip))
    }
}

impl Default for Net {
    fn default() -> Self {
        Net::new()
    }
}

/// A port that is free on `ip` right now: bind `ip:0`, read the port, close the socket.
pub fn free_port(ip: IpAddr) -> u16 {
    let listener = TcpListener::bind(SocketAddr::new(ip, 0))
        .unwrap_or_else(|error| panic!("cannot bind {ip}:0 to find a free port: {error}"));
    listener
        .local_addr()
        .expect("a bound listener has a local address")
        .port()
}
