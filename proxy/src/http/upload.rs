//! A request body on its way to a member: where it stands, shared by the body (which records
//! it, frame by frame) and the proxy (which reads it).
//!
//! Three decisions depend on it. Whose fault a failed exchange is: a body that broke or
//! stalled is the client's, whatever the member connection reports afterwards. When
//! `svrtimeout` starts: once the member has the whole request, or once it stops taking the
//! body, never while Ballast waits for a slow client. And the member's time to first byte,
//! measured from that same moment, so a slow upload skews neither `LEASTRESPONSETIME` nor the
//! autoscaler's `responsetime`.
//!
//! Only requests with a body have one (bodiless requests are sent whole at once).

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::time::Instant;

use super::error::ExchangeError;

/// Where a request body stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Ballast waits for the client's next bytes (the client body timeout runs).
    WaitingForClient,
    /// The last bytes went to the member connection at `since`; it has not asked for more.
    WaitingForMember { since: Instant },
    /// The whole body went to the member connection at `at`.
    Sent { at: Instant },
    /// The client's body failed: the exchange is the client's failure.
    Failed(ExchangeError),
}

const WAITING_FOR_CLIENT: u8 = 0;
const WAITING_FOR_MEMBER: u8 = 1;
const SENT: u8 = 2;
const MALFORMED: u8 = 3;
const INCOMPLETE: u8 = 4;
const STALLED: u8 = 5;

/// The progress of one request body.
#[derive(Debug)]
pub struct Upload {
    origin: Instant,
    state: AtomicU8,
    /// When the state began, in microseconds after `origin`.
    since_us: AtomicU64,
}

impl Upload {
    pub fn new() -> Upload {
        Upload {
            origin: Instant::now(),
            state: AtomicU8::new(WAITING_FOR_CLIENT),
            since_us: AtomicU64::new(0),
        }
    }

    pub fn progress(&self) -> Progress {
        let since = self.origin + Duration::from_micros(self.since_us.load(Relaxed));
        match self.state.load(Relaxed) {
            WAITING_FOR_CLIENT => Progress::WaitingForClient,
            WAITING_FOR_MEMBER => Progress::WaitingForMember { since },
            SENT => Progress::Sent { at: since },
            MALFORMED => Progress::Failed(ExchangeError::MalformedBody),
            INCOMPLETE => Progress::Failed(ExchangeError::IncompleteBody),
            _ => Progress::Failed(ExchangeError::BodyTimeout),
        }
    }

    /// The client's failure, if its body failed.
    pub fn failure(&self) -> Option<ExchangeError> {
        match self.progress() {
            Progress::Failed(error) => Some(error),
            _ => None,
        }
    }

    /// When the whole body had gone to the member, if it has.
    pub fn sent_at(&self) -> Option<Instant> {
        match self.progress() {
            Progress::Sent { at } => Some(at),
            _ => None,
        }
    }

    /// When the last progress was recorded (a frame handed on, or the start).
    pub fn last_progress(&self) -> Instant {
        self.origin + Duration::from_micros(self.since_us.load(Relaxed))
    }

    /// The body starts out to a member now: the client body timeout counts from here, not from
    /// when the request head arrived (picking and connecting to a member took some of that).
    pub fn begin(&self) {
        if self.state.load(Relaxed) == WAITING_FOR_CLIENT {
            self.since_us.store(self.micros_now(), Relaxed);
        }
    }

    pub fn waiting_for_client(&self) {
        if self.state.load(Relaxed) == WAITING_FOR_MEMBER {
            self.state.store(WAITING_FOR_CLIENT, Relaxed);
        }
    }

    /// A frame went to the member connection; `last` if it ended the body.
    pub fn handed_on(&self, last: bool) {
        if self.failure().is_some() {
            return;
        }
        self.since_us.store(self.micros_now(), Relaxed);
        let state = if last { SENT } else { WAITING_FOR_MEMBER };
        self.state.store(state, Relaxed);
    }

    /// The client's body failed with `error` (one of the body kinds).
    pub fn failed(&self, error: ExchangeError) {
        let state = match error {
            ExchangeError::MalformedBody => MALFORMED,
            ExchangeError::IncompleteBody => INCOMPLETE,
            _ => STALLED,
        };
        self.since_us.store(self.micros_now(), Relaxed);
        self.state.store(state, Relaxed);
    }

    fn micros_now(&self) -> u64 {
        self.origin.elapsed().as_micros().min(u128::from(u64::MAX)) as u64
    }
}

impl Default for Upload {
    fn default() -> Upload {
        Upload::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_body_moves_from_client_to_member_to_sent() {
        let upload = Upload::new();
        assert_eq!(upload.progress(), Progress::WaitingForClient);
        tokio::time::advance(Duration::from_millis(5)).await;
        upload.begin();
        assert_eq!(upload.last_progress(), Instant::now());
        tokio::time::advance(Duration::from_millis(5)).await;
        upload.handed_on(false);
        assert_eq!(
            upload.progress(),
            Progress::WaitingForMember {
                since: Instant::now()
            }
        );
        upload.waiting_for_client();
        assert_eq!(upload.progress(), Progress::WaitingForClient);
        tokio::time::advance(Duration::from_millis(5)).await;
        upload.handed_on(true);
        assert_eq!(upload.sent_at(), Some(Instant::now()));
        assert_eq!(upload.failure(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_sticks() {
        let upload = Upload::new();
        upload.failed(ExchangeError::BodyTimeout);
        upload.begin();
        upload.handed_on(true);
        upload.waiting_for_client();
        assert_eq!(upload.failure(), Some(ExchangeError::BodyTimeout));
        assert_eq!(upload.sent_at(), None);
    }
}
