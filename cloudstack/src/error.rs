//! [`CloudError`]: everything a CloudStack call can fail with, and whether retrying may help.

use std::time::Duration;

/// A failed CloudStack call. `command` is the API command (`deployVirtualMachine`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CloudError {
    /// The request did not get an HTTP answer: connect refused, reset, TLS, timeout.
    #[error("{command}: no answer from {endpoint}: {message}")]
    Transport {
        command: String,
        endpoint: String,
        message: String,
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
    /// Whether the same call may succeed later: transport errors and CloudStack's
    /// 429 (API limit), 530 (internal), 533 (insufficient capacity), 534 (resource unavailable),
    /// and 502/503/504 from a proxy in front. Not 401, 431, 432, 531 or any other code, nor a
    /// job timeout (the job may still finish: reconcile instead of repeating the call).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Api { errorcode, .. } | Self::JobFailed { errorcode, .. } => {
                matches!(errorcode, 429 | 530 | 533 | 534)
            }
            Self::Http { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            Self::JobTimeout { .. } | Self::Protocol { .. } | Self::Setup(_) => false,
        }
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
        }
        let transport = CloudError::Transport {
            command: "listZones".into(),
            endpoint: "http://127.0.0.1:1/client/api".into(),
            message: "connection refused".into(),
        };
        assert!(transport.is_retryable());
        let timeout = CloudError::JobTimeout {
            command: "deployVirtualMachine".into(),
            jobid: "j".into(),
            waited: Duration::from_secs(1),
        };
        assert!(!timeout.is_retryable());
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
