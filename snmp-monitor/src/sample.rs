//! What the poller publishes: one [`Sample`] per finished poll of one member.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::usm::AuthFailure;

/// One poll of one member.
#[derive(Debug, Clone)]
pub struct Sample<K> {
    /// The key given to [`crate::Poller::watch`].
    pub member: K,
    pub addr: SocketAddr,
    /// The monitor's name (`lbmonitor.monitorname`).
    pub monitor: Arc<str>,
    /// When the poll finished.
    pub at: Instant,
    /// From the last request sent to its reply; `None` for timeouts and send errors.
    pub latency: Option<Duration>,
    pub result: PollResult,
    /// Metric name → value, for each metric that had a value (polled ones in table order,
    /// then derived ones). Empty unless `result` is `Ok`.
    pub values: Vec<(Arc<str>, f64)>,
    /// `Σ weight · value / threshold` over the bound metrics (see [`crate::load::evaluate`]).
    pub load: Option<f64>,
    /// A bound metric is above its threshold (act on it only for active bindings).
    pub busy: bool,
    /// Polls that failed in a row, this one included (0 after a success); NetScaler's
    /// `retries` (failures before DOWN) compares against this.
    pub consecutive_failures: u32,
}

impl<K> Sample<K> {
    /// The value of one metric, if this sample has it.
    pub fn value(&self, metric: &str) -> Option<f64> {
        self.values
            .iter()
            .find(|(name, _)| &**name == metric)
            .map(|&(_, v)| v)
    }
}

/// How a poll ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollResult {
    /// The agent answered every OID (some may be missing values: noSuchInstance and friends).
    Ok,
    /// No valid reply within `resptimeout` on the first try and each retry. A v1/v2c agent
    /// that does not know the community stays silent, so a wrong community ends here too (as
    /// in net-snmp); so does a wrong v3 privacy passphrase (the agent cannot decrypt).
    Timeout,
    /// A v3 agent sent a Report: wrong auth passphrase, unknown user, ...
    AuthError(AuthFailure),
    /// The agent answered with varbinds that are not the ones asked for, or that do not decode.
    DecodeError,
    /// The agent answered with a non-zero error-status (v1 noSuchName is 2).
    AgentError(i64),
    /// The request could not be sent (no route, no socket for the address family).
    SendError,
}

impl PollResult {
    pub fn class(&self) -> ResultClass {
        match self {
            PollResult::Ok => ResultClass::Ok,
            PollResult::Timeout => ResultClass::Timeout,
            PollResult::AuthError(_) => ResultClass::AuthError,
            PollResult::DecodeError => ResultClass::DecodeError,
            PollResult::AgentError(_) => ResultClass::AgentError,
            PollResult::SendError => ResultClass::SendError,
        }
    }
}

/// The label values of `ballast_snmp_polls_total{result=...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultClass {
    Ok,
    Timeout,
    AuthError,
    DecodeError,
    AgentError,
    SendError,
}

impl ResultClass {
    pub const ALL: [ResultClass; 6] = [
        ResultClass::Ok,
        ResultClass::Timeout,
        ResultClass::AuthError,
        ResultClass::DecodeError,
        ResultClass::AgentError,
        ResultClass::SendError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResultClass::Ok => "ok",
            ResultClass::Timeout => "timeout",
            ResultClass::AuthError => "auth_error",
            ResultClass::DecodeError => "decode_error",
            ResultClass::AgentError => "agent_error",
            ResultClass::SendError => "send_error",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}
