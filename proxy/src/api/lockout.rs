//! Failed admin logins, counted per client address, as NetScaler's `maxloginattempts` and
//! `failedlogintimeout` do: after `maxloginattempts` failures within `failedlogintimeout`, the
//! address is locked out for `failedlogintimeout`, and every attempt from it is refused, the
//! right password too, until that time is up.
//!
//! Checking, verifying and counting happen under one lock, so a thousand parallel guesses get
//! no more tries than a thousand in a row. Memory is bounded: at most [`MAX_TRACKED`] addresses
//! are remembered; when that many are, finished windows are forgotten first, then the oldest.
//! Failures and lockouts are logged at most once a second each, with the count left out since.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How many client addresses are remembered at most.
pub const MAX_TRACKED: usize = 4096;
/// At most one log line of each kind per this long.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// `[admin] maxloginattempts` and `failedlogintimeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures within `window` that lock an address out.
    pub max_attempts: u32,
    /// How long failures are counted, and how long a lockout lasts.
    pub window: Duration,
}

/// What became of one login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Accepted,
    /// Wrong credentials: the `failures` so far in this window.
    Refused {
        failures: u32,
    },
    /// Not even checked: the address is locked out for `remaining` more.
    LockedOut {
        remaining: Duration,
    },
}

/// Failed logins by address.
#[derive(Debug)]
pub struct LoginGuard {
    limits: LoginLimits,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    clients: HashMap<IpAddr, Failures>,
    failure_log: RateLimitedLog,
    lockout_log: RateLimitedLog,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    /// When the first failure of this window happened.
    since: Instant,
    locked_until: Option<Instant>,
}

impl Failures {
    fn finished(&self, now: Instant, window: Duration) -> bool {
        match self.locked_until {
            Some(until) => until <= now,
            None => self.since + window <= now,
        }
    }
}

impl LoginGuard {
    pub fn new(limits: LoginLimits) -> LoginGuard {
        LoginGuard {
            limits,
            state: Mutex::new(State::default()),
        }
    }

    /// One login attempt from `peer`: `verify` (which compares the credentials) runs only when
    /// the address is not locked out, under the same lock that counts the failure.
    pub fn attempt(&self, peer: IpAddr, now: Instant, verify: impl FnOnce() -> bool) -> Attempt {
        let mut state = self
            .state
            .lock()
            .expect("login guard lock is never poisoned");
        let window = self.limits.window;
        if let Some(failures) = state.clients.get(&peer).copied() {
            if let Some(until) = failures.locked_until.filter(|until| *until > now) {
                return Attempt::LockedOut {
                    remaining: until - now,
                };
            }
            if failures.finished(now, window) {
                state.clients.remove(&peer);
            }
        }
        if verify() {
            state.clients.remove(&peer);
            return Attempt::Accepted;
        }
        if !state.clients.contains_key(&peer) {
            state.make_room(now, window);
        }
        let failures = state.clients.entry(peer).or_insert(Failures {
            count: 0,
            since: now,
            locked_until: None,
        });
        failures.count = failures.count.saturating_add(1);
        let count = failures.count;
        let locked = count >= self.limits.max_attempts;
        if locked {
            failures.locked_until = Some(now + window);
        }
        if let Some(suppressed) = state.failure_log.allow(now) {
            tracing::warn!(client = %peer, failures = count, suppressed, "admin login failed");
        }
        if locked && let Some(suppressed) = state.lockout_log.allow(now) {
            tracing::warn!(
                client = %peer,
                failures = count,
                lockout_seconds = window.as_secs_f64(),
                suppressed,
                "admin login locked out"
            );
        }
        Attempt::Refused { failures: count }
    }

    /// How many addresses are remembered now.
    pub fn tracked(&self) -> usize {
        self.state
            .lock()
            .expect("login guard lock is never poisoned")
            .clients
            .len()
    }
}

impl State {
    /// Keeps the table under [`MAX_TRACKED`] before a new address joins it.
    fn make_room(&mut self, now: Instant, window: Duration) {
        if self.clients.len() < MAX_TRACKED {
            return;
        }
        self.clients.retain(|_, f| !f.finished(now, window));
        while self.clients.len() >= MAX_TRACKED {
            let oldest = self
                .clients
                .iter()
                .min_by_key(|(_, f)| f.since)
                .map(|(addr, _)| *addr);
            match oldest {
                Some(addr) => self.clients.remove(&addr),
                None => break,
            };
        }
    }
}

/// At most one line per [`LOG_EVERY`]; counts the lines left out meanwhile.
#[derive(Debug, Default)]
struct RateLimitedLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    /// `Some(lines left out since the last one)` when a line may be written now.
    fn allow(&mut self, now: Instant) -> Option<u64> {
        if self.last.is_some_and(|last| now < last + LOG_EVERY) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const LIMITS: LoginLimits = LoginLimits {
        max_attempts: 3,
        window: Duration::from_secs(60),
    };

    fn client(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x7f00_0000 + n))
    }

    #[test]
    fn the_right_password_is_refused_while_locked_out_and_accepted_after() {
        let guard = LoginGuard::new(LIMITS);
        let start = Instant::now();
        for failures in 1..=3 {
            assert_eq!(
                guard.attempt(client(1), start, || false),
                Attempt::Refused { failures }
            );
        }
        let later = start + Duration::from_secs(20);
        let mut verified = false;
        assert_eq!(
            guard.attempt(client(1), later, || {
                verified = true;
                true
            }),
            Attempt::LockedOut {
                remaining: Duration::from_secs(40)
            }
        );
        assert!(!verified, "a locked-out attempt is not even checked");
        // Another address is not affected.
        assert_eq!(guard.attempt(client(2), later, || true), Attempt::Accepted);
        // When the lockout is over, the address starts afresh.
        let after = start + Duration::from_secs(60);
        assert_eq!(guard.attempt(client(1), after, || true), Attempt::Accepted);
        assert_eq!(
            guard.attempt(client(1), after, || false),
            Attempt::Refused { failures: 1 }
        );
    }

    #[test]
    fn failures_older_than_the_window_are_forgotten_and_success_resets() {
        let guard = LoginGuard::new(LIMITS);
        let start = Instant::now();
        guard.attempt(client(1), start, || false);
        guard.attempt(client(1), start, || false);
        let later = start + Duration::from_secs(61);
        assert_eq!(
            guard.attempt(client(1), later, || false),
            Attempt::Refused { failures: 1 }
        );
        assert_eq!(guard.attempt(client(1), later, || true), Attempt::Accepted);
        assert_eq!(
            guard.attempt(client(1), later, || false),
            Attempt::Refused { failures: 1 }
        );
    }

    #[test]
    fn memory_stays_bounded_across_many_addresses() {
        let guard = LoginGuard::new(LIMITS);
        let start = Instant::now();
        for n in 0..(MAX_TRACKED as u32 * 3) {
            guard.attempt(
                client(n),
                start + Duration::from_millis(u64::from(n)),
                || false,
            );
            assert!(guard.tracked() <= MAX_TRACKED);
        }
        assert_eq!(guard.tracked(), MAX_TRACKED);
        // The newest addresses are the ones remembered.
        let last = client(MAX_TRACKED as u32 * 3 - 1);
        assert_eq!(
            guard.attempt(last, start + Duration::from_secs(30), || false),
            Attempt::Refused { failures: 2 }
        );
    }

    #[test]
    fn logs_at_most_once_a_second() {
        let mut log = RateLimitedLog::default();
        let start = Instant::now();
        assert_eq!(log.allow(start), Some(0));
        assert_eq!(log.allow(start + Duration::from_millis(500)), None);
        assert_eq!(log.allow(start + Duration::from_millis(900)), None);
        assert_eq!(log.allow(start + Duration::from_secs(1)), Some(2));
    }
}
