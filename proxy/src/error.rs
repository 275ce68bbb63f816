//! Which side of an exchange failed: the client, the member, or Ballast itself.
//!
//! Only a member's own failures count against it (passive health detection, its error
//! counters, its response time). A socket Ballast cannot create because the process ran out of
//! file descriptors or memory is Ballast's failure, never the member's, and
//! [`is_local_exhaustion`] tells the two apart.

use std::fmt;
use std::io;

use nix::errno::Errno;

/// The party whose failure ended an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The client sent something wrong, too slowly, or went away.
    Client,
    /// The member refused, hung up, or was too slow.
    Member,
    /// Ballast itself: out of local resources, or nothing configured to serve the request.
    Ballast,
}

impl Side {
    /// The name in metric labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Member => "member",
            Side::Ballast => "ballast",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `error` means that this process is out of a local resource (file descriptors,
/// socket buffers, memory), so that a socket could not even be created: `EMFILE`, `ENFILE`,
/// `ENOBUFS` or `ENOMEM`. Such a failure says nothing about the peer and must not count
/// against it.
pub fn is_local_exhaustion(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error().map(Errno::from_raw),
        Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_and_memory_exhaustion_are_local() {
        for errno in [Errno::EMFILE, Errno::ENFILE, Errno::ENOBUFS, Errno::ENOMEM] {
            let error = io::Error::from_raw_os_error(errno as i32);
            assert!(is_local_exhaustion(&error), "{errno} is local");
        }
    }

    #[test]
    fn a_peer_refusing_or_timing_out_is_not_local() {
        for errno in [Errno::ECONNREFUSED, Errno::ETIMEDOUT, Errno::EHOSTUNREACH] {
            let error = io::Error::from_raw_os_error(errno as i32);
            assert!(!is_local_exhaustion(&error), "{errno} is the peer's");
        }
        let timed_out = io::Error::new(io::ErrorKind::TimedOut, "connect timed out after 1s");
        assert!(!is_local_exhaustion(&timed_out));
    }
}
