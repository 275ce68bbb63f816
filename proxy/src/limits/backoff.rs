//! Accept loops out of file descriptors: back off instead of spinning, and say so once.
//!
//! When `accept` fails with `EMFILE` (or `ENFILE`, `ENOBUFS`, `ENOMEM`) the connection stays in
//! the kernel's queue, so retrying at once only burns CPU. [`AcceptBackoff`] pauses 10 ms,
//! doubling to 1 s, and logs one warning when an episode starts and one, with the count of
//! failed accepts and how long it lasted, when accepting works again.

use std::io;
use std::time::Duration;

use tokio::time::Instant;

/// Episodes of one accept loop failing for want of local resources.
#[derive(Debug)]
pub struct AcceptBackoff {
    /// What listens, for the log: `lbvserver web`, `metrics`...
    listener: String,
    /// Failed accepts in this episode (0: none under way).
    failures: u64,
    since: Option<Instant>,
}

impl AcceptBackoff {
    const FIRST_PAUSE: Duration = Duration::from_millis(10);
    const LONGEST_PAUSE: Duration = Duration::from_secs(1);

    pub fn new(listener: String) -> AcceptBackoff {
        AcceptBackoff {
            listener,
            failures: 0,
            since: None,
        }
    }

    /// Counts a failed accept; logs the first of an episode. Returns how long to pause.
    pub fn failed(&mut self, error: &io::Error) -> Duration {
        if self.failures == 0 {
            self.since = Some(Instant::now());
            tracing::warn!(listener = %self.listener, %error, "cannot accept connections: Ballast is out of file descriptors or memory; backing off until it can");
        }
        self.failures += 1;
        let doublings = (self.failures - 1).min(7) as u32;
        (Self::FIRST_PAUSE * 2u32.pow(doublings)).min(Self::LONGEST_PAUSE)
    }

    /// Ends an episode (if one was under way), logging how many accepts failed and how long
    /// it lasted.
    pub fn recovered(&mut self) {
        if self.failures == 0 {
            return;
        }
        let lasted = self.since.take().map(|since| since.elapsed());
        tracing::warn!(listener = %self.listener, failed_accepts = self.failures, ?lasted, "accepting connections again");
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_from_10_ms_to_at_most_a_second_and_restart_after_recovery() {
        let mut backoff = AcceptBackoff::new("test".into());
        let emfile = io::Error::from_raw_os_error(nix::errno::Errno::EMFILE as i32);
        let pauses: Vec<u64> = (0..9)
            .map(|_| backoff.failed(&emfile).as_millis() as u64)
            .collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        backoff.recovered();
        assert_eq!(backoff.failed(&emfile), Duration::from_millis(10));
    }
}
