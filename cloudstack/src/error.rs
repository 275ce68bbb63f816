//! [`CloudError`]: everything a CloudStack call can fail with, and whether retrying may help.
//!
//! A call without an HTTP answer is one of two errors, because they call for different
//! actions: [`CloudError::NotSent`] (the cloud never saw the request: safe to send again) and
//! [`CloudError::AnswerLost`] (the request went out, so a `deployVirtualMachine` may have made
//! a VM: list before deploying again).

use std::time::Duration;

use crate::transport::TransportError;

/// A failed CloudStack call. `command` is the API command (`deployVirtualMachine`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CloudError {
    /// The request never left: connect refused or timed out, TLS handshake failed. The cloud
    /// did not see it, so sending it again is safe.
    #[error("{command}: not sent to {endpoint}: {source}")]
    NotSent {
        command: String,
        endpoint: String,
        #[source]
        source: TransportError,
    },
    /// The request was sent (or may have been), but no answer came back: the connection
    /// closed or reset, or the deadline passed. The call may have taken effect.
    #[error("{command}: sent to {endpoint}, but the answer was lost: {source}")]
    AnswerLost {
        command: String,
        endpoint: String,
        #[source]
        source: TransportError,
    },
    /// CloudStack answered with an error object (`errorcode` is also the HTTP status).
    #[error("{command}: CloudStack error {errorcode}{}: {errortext}", cs_code(*cserrorcode))]
    Api {
        command: String,
        errorcode: u16,
        cserrorcode: Option<i32>,
        errortext: String,
    },
    /// An async job finished with `jobstatus` 2; the codes come from its `jobresult`.
    #[error("{command}: job {jobid} failed with error {errorcode}{}: {errortext}", cs_code(*cserrorcode))]
    JobFailed {
        command: String,
        jobid: String,
        errorcode: u16,
        cserrorcode: Option<i32>,
        errortext: String,
    },
    /// An async job was still pending at the deadline. It may yet finish: reconcile by `jobid`.
    #[error("{command}: job {jobid} still pending after {waited:?}")]
    JobTimeout {
        command: String,
        jobid: String,
        waited: Duration,
    },
    /// An HTTP error status without a CloudStack error body (a proxy or load balancer in front).
    #[error("{command}: HTTP {status}: {body}")]
    Http {
        command: String,
        status: u16,
        body: String,
    },
    /// The answer was not what the protocol promises (not JSON, wrong shape).
    #[error("{command}: unexpected answer: {message}")]
    Protocol { command: String, message: String },
    /// The client was set up wrongly (bad endpoint URL, unreadable CA file).
    #[error("CloudStack client setup: {0}")]
    Setup(String),
}

impl CloudError {
    /// Whether the same call, whatever it does, may be made again and succeed: a request
    /// [not sent](CloudError::NotSent), and CloudStack's 429 (API limit), 530 (internal), 533
    /// (insufficient capacity), 534 (resource unavailable), and 502/503/504 from a proxy in
    /// front. Not 401, 431, 432, 531, 535 or any other code; not an
    /// [answer lost](CloudError::AnswerLost) nor a job timeout: those calls may have taken
    /// effect, so reconcile (list) instead of repeating them.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::NotSent { .. } => true,
            Self::Api { errorcode, .. } | Self::JobFailed { errorcode, .. } => {
                matches!(errorcode, 429 | 530 | 533 | 534)
            }
            Self::Http { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            Self::AnswerLost { .. }
            | Self::JobTimeout { .. }
            | Self::Protocol { .. }
            | Self::Setup(_) => false,
        }
    }

    /// [`CloudError::is_retryable`] for a call that changes nothing (`list*`, `query*`): an
    /// [answer lost](CloudError::AnswerLost) may be asked again too.
    pub fn is_retryable_if_read_only(&self) -> bool {
        self.is_retryable() || matches!(self, Self::AnswerLost { .. })
    }

    /// Whether the call may have done its work although it failed: an answer lost after the
    /// request was sent, or a job still pending at the deadline. A deploy that failed this way
    /// may have made a VM.
    pub fn may_have_taken_effect(&self) -> bool {
        matches!(self, Self::AnswerLost { .. } | Self::JobTimeout { .. })
    }

    /// CloudStack's `errorcode` (for [`CloudError::Http`], the HTTP status).
    pub fn errorcode(&self) -> Option<u16> {
        match self {
            Self::Api { errorcode, .. } | Self::JobFailed { errorcode, .. } => Some(*errorcode),
            Self::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// CloudStack's `cserrorcode` (the exception class code, e.g. 4350 for a bad parameter).
    pub fn cserrorcode(&self) -> Option<i32> {
        match self {
            Self::Api { cserrorcode, .. } | Self::JobFailed { cserrorcode, .. } => *cserrorcode,
            _ => None,
        }
    }

    /// CloudStack's `errortext`.
    pub fn errortext(&self) -> Option<&str> {
        match self {
            Self::Api { errortext, .. } | Self::JobFailed { errortext, .. } => Some(errortext),
            _ => None,
        }
    }

    /// The async job this error is about, if any.
    pub fn jobid(&self) -> Option<&str> {
        match self {
            Self::JobFailed { jobid, .. } | Self::JobTimeout { jobid, .. } => Some(jobid),
            _ => None,
        }
    }
}

fn cs_code(cserrorcode: Option<i32>) -> String {
    cserrorcode.map_or_else(String::new, |code| format!(" (cserrorcode {code})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(errorcode: u16) -> CloudError {
        CloudError::Api {
            command: "listZones".into(),
            errorcode,
            cserrorcode: Some(9999),
            errortext: "x".into(),
        }
    }

    #[test]
    fn retryable_classes() {
        for code in [429, 530, 533, 534] {
            assert!(api(code).is_retryable(), "{code}");
        }
        for code in [401, 431, 432, 531, 532, 535, 536, 537] {
            assert!(!api(code).is_retryable(), "{code}");
            assert!(!api(code).is_retryable_if_read_only(), "{code}");
        }
        let not_sent = CloudError::NotSent {
            command: "listZones".into(),
            endpoint: "http://127.0.0.1:1/client/api".into(),
            source: TransportError::Connect(std::io::ErrorKind::ConnectionRefused.into()),
        };
        assert!(not_sent.is_retryable());
        assert!(!not_sent.may_have_taken_effect());
        let answer_lost = CloudError::AnswerLost {
            command: "deployVirtualMachine".into(),
            endpoint: "http://127.0.0.1:1/client/api".into(),
            source: TransportError::Timeout(Duration::from_secs(1)),
        };
        assert!(!answer_lost.is_retryable(), "a deploy may have made a VM");
        assert!(answer_lost.is_retryable_if_read_only());
        assert!(answer_lost.may_have_taken_effect());
        let timeout = CloudError::JobTimeout {
            command: "deployVirtualMachine".into(),
            jobid: "j".into(),
            waited: Duration::from_secs(1),
        };
        assert!(!timeout.is_retryable());
        assert!(!timeout.is_retryable_if_read_only());
        assert!(timeout.may_have_taken_effect());
        assert_eq!(timeout.jobid(), Some("j"));
    }

    #[test]
    fn messages_carry_the_codes() {
        assert_eq!(
            api(431).to_string(),
            "listZones: CloudStack error 431 (cserrorcode 9999): x"
        );
    }
}
