//! End-to-end test harness for Ballast: the real `ballast` binary as a child process, real
//! backends and real clients, all on 127.0.0.0/8 with free ports.
//!
//! The tests themselves live in `tests/tests/*.rs`, one file per theme (distribution, health,
//! drain, reload, TLS, bad input, `ballast check`, shutdown). They are integration tests of the
//! root `ballast` package (listed in its `Cargo.toml`), so `cargo test` builds the binary first
//! and tells each test its path; each file names it once:
//!
//! ```text
//! const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));
//! let ballast = BALLAST.start(&config).await;
//! ```
//!
//! This crate only holds what they share:
//!
//! - [`addrs`]: distinct loopback addresses per test ([`Net`]) and [`free_port`].
//! - [`ballast`]: [`Binary`], the binary under test: [`Binary::start`] runs
//!   `ballast run --config FILE --log-format json` and gives a [`Ballast`], which keeps every
//!   JSON log line, waits for events (`ballast ready`, `config reloaded`, `member state changed`
//!   ...), sends signals, and kills the process on drop; [`Binary::check`] runs `ballast check`.
//! - [`backend`]: [`Backend`], an in-process hyper HTTP/1.1 + h2c server that answers with its
//!   name (and `/slow`, `/healthz`, `/echo-headers`, `/truncate`), counts requests and can be
//!   stopped and restarted on the same address; [`EchoBackend`], a TCP echo server for L4.
//! - [`client`]: [`H1`] and [`H2`] clients over any stream (plain, TLS, bound to a source
//!   address), one-shot [`get`], and [`Load`], a steady keep-alive load that counts failures.
//! - [`raw`]: raw-socket helpers for malformed input: write bytes, read what comes back.
//! - [`certs`]: self-signed certificates ([`TestCert`]) and rustls client configs.
//! - [`files`]: [`TempDir`], a directory removed on drop.
//! - [`l4peers`]: real HAProxy in front of Ballast and nginx behind it, for the PROXY protocol.
//! - [`nitro`]: [`nitro::Nitro`], a client for the NITRO-like admin API.
//! - [`demo`]: `ballast demo` as a child process, its config on a test's own addresses.
//! - [`prom`]: scraping `/metrics` and checking it with `promtool` and a strict OpenMetrics parser.
//! - [`snmpd`]: a real net-snmp `snmpd` with a community and an SNMPv3 authPriv user.
//! - [`tls_backend`]: a real OpenSSL TLS member (Python `ssl`), HTTP or echo, mTLS optional.
//! - [`websocket`]: a Python `websockets` echo server and client.
//!
//! Every helper waits on a condition with a deadline (never a bare sleep), and everything a test
//! starts is stopped when its handle drops.
//!
//! Run them with `cargo test -p ballast` (one file: `--test reload`); `BALLAST_BIN=PATH` runs
//! them against another build.

pub mod addrs;
pub mod autoscale;
pub mod backend;
pub mod ballast;
pub mod certs;
pub mod client;
pub mod demo;
pub mod files;
pub mod l4peers;
pub mod nitro;
pub mod prom;
pub mod raw;
pub mod snmpd;
pub mod tls_backend;
pub mod websocket;

pub use addrs::{Net, free_port};
pub use backend::{Backend, EchoBackend};
pub use ballast::{Ballast, Binary, Reload, field, is_event, member_state_changed};
pub use certs::{TestCa, TestCert};
pub use client::{H1, H2, Load, LoadReport, Reply, fetch_all, get, tally};
pub use files::TempDir;

use std::time::Duration;

/// The `[ballast]` section every test config starts with: two workers (the test machine is
/// small and shared) and a short shutdown timeout.
pub const BALLAST_SECTION: &str = "[ballast]\nworkers = 2\nshutdowntimeout = \"5s\"\n\n";

/// Raises this process's soft file descriptor limit to its hard limit, for tests that hold
/// thousands of sockets open.
pub fn raise_nofile_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit to the hard limit");
    }
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes; returns whether it held.
pub async fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `members = [{ ip = "...", port = ... }, ...]` for a servicegroup, all with weight 1.
pub fn members_toml(members: &[std::net::SocketAddr]) -> String {
    let weighted: Vec<_> = members.iter().map(|&addr| (addr, 1)).collect();
    weighted_members_toml(&weighted)
}

/// `members = [...]` with a weight per member.
pub fn weighted_members_toml(members: &[(std::net::SocketAddr, u32)]) -> String {
    let entries: Vec<String> = members
        .iter()
        .map(|(addr, weight)| {
            format!(
                "{{ ip = \"{}\", port = {}, weight = {weight} }}",
                addr.ip(),
                addr.port()
            )
        })
        .collect();
    format!("members = [{}]", entries.join(", "))
}

/// A whole config: one servicegroup `pool` (type `HTTP`, or `TCP` for `TCP`/`SSL_TCP`
/// vservers) with `members` (a `members = [...]` line) and one vserver `web` of `servicetype`
/// on `vserver` using `lbmethod`. `extra` is appended (monitors, `[httpprofile]` ...).
pub fn single_vserver_config(
    vserver: std::net::SocketAddr,
    servicetype: &str,
    lbmethod: &str,
    members: &str,
    extra: &str,
) -> String {
    let group_type = match servicetype {
        "TCP" | "SSL_TCP" => "TCP",
        _ => "HTTP",
    };
    format!(
        r#"{BALLAST_SECTION}[[servicegroup]]
servicegroupname = "pool"
servicetype = "{group_type}"
{members}

[[lbvserver]]
name = "web"
servicetype = "{servicetype}"
ipv46 = "{ip}"
port = {port}
lbmethod = "{lbmethod}"
servicegroupname = "pool"

{extra}
"#,
        ip = vserver.ip(),
        port = vserver.port(),
    )
}
