//! The file descriptor budget.
//!
//! At start Ballast raises its soft `RLIMIT_NOFILE` to the hard limit (as HAProxy does), and
//! unless `[ballast] maxconn` is set, derives the connection limit from it:
//!
//! ```text
//! maxconn = (RLIMIT_NOFILE - 256) / 3
//! ```
//!
//! 256 descriptors stay free for Ballast itself (listeners, monitor probes, the SNMP socket,
//! the admin API and `/metrics`, config and certificate files, idle keep-alive connections to
//! members), and each client connection is budgeted three: its own socket, one to a member,
//! and on average one for `splice` pipes. Each is held to it: at most `maxconn` client
//! connections, at most `maxconn` HTTP requests in flight (HTTP/2 carries many on one client
//! connection, and each holds a member connection; see [`crate::http::serve`]), and at most
//! `maxconn / 4` `TCP` relays with pipes, four descriptors each (the others copy, see
//! [`crate::l4`]).

use std::io;

use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit, setrlimit};

/// Descriptors kept free for everything that is not a client connection.
pub const RESERVED_FDS: u64 = 256;
/// Descriptors budgeted per client connection.
pub const FDS_PER_CONNECTION: u64 = 3;

/// The descriptor limit before and after [`raise_nofile_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    pub before: u64,
    pub now: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (an unlimited hard limit: to the kernel's
/// `fs.nr_open`, the most a process can have).
pub fn raise_nofile_limit() -> io::Result<NofileLimit> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let target = if hard == RLIM_INFINITY {
        nr_open().unwrap_or(soft)
    } else {
        hard
    };
    if soft < target {
        setrlimit(Resource::RLIMIT_NOFILE, target, hard)?;
    }
    Ok(NofileLimit {
        before: soft,
        now: target.max(soft),
    })
}

fn nr_open() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The soft `RLIMIT_NOFILE` now (1024 if it cannot be read).
pub fn nofile_limit() -> u64 {
    getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft)
}

/// `maxconn` when the config leaves it out: see the module docs.
pub fn default_max_conn(nofile: u64) -> u64 {
    (nofile.saturating_sub(RESERVED_FDS) / FDS_PER_CONNECTION).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_max_conn_keeps_the_reserve_and_budgets_three_per_connection() {
        assert_eq!(default_max_conn(20_000), (20_000 - 256) / 3);
        assert_eq!(default_max_conn(1024), 256);
        assert_eq!(default_max_conn(100), 1);
    }
}
