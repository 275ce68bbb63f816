//! Async jobs: poll `queryAsyncJobResult` with back-off until the job is done or a deadline
//! passes. A failed job becomes [`CloudError::JobFailed`] with the codes of its `jobresult`; a
//! job still pending at the deadline becomes [`CloudError::JobTimeout`] carrying its `jobid`,
//! so the caller can reconcile later instead of repeating the command.

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::client::CloudStackClient;
use crate::envelope;
use crate::error::CloudError;
use crate::model::{JobStatus, VirtualMachine};

/// How long and how often to poll.
#[derive(Debug, Clone, Copy)]
pub struct JobWait {
    /// Give up (with [`CloudError::JobTimeout`]) after this long.
    pub timeout: Duration,
    /// Waits between polls.
    pub poll: Backoff,
}

impl JobWait {
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            ..Self::default()
        }
    }
}

impl Default for JobWait {
    /// 10 minutes (libcloud's default); polls after 250 ms, growing ×1.5 to every 2 s.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(600),
            poll: Backoff::new(Duration::from_millis(250), Duration::from_secs(2), 1.5),
        }
    }
}

impl CloudStackClient {
    /// Waits for job `jobid` (started by `command`, named in errors) and returns its
    /// `jobresult`. Retryable errors while polling (a blip of the API) are ridden out until the
    /// deadline; others end the wait.
    pub async fn wait_for_job(
        &self,
        command: &str,
        jobid: &str,
        wait: JobWait,
    ) -> Result<Value, CloudError> {
        let started = Instant::now();
        let deadline = started + wait.timeout;
        let mut attempt = 0;
        loop {
            match self.query_async_job_result(jobid).await {
                Ok(job) => match job.status() {
                    JobStatus::Pending => {}
                    JobStatus::Succeeded if job.jobresultcode == 0 => {
                        return Ok(job.jobresult.unwrap_or(Value::Null));
                    }
                    JobStatus::Succeeded | JobStatus::Failed => {
                        return Err(job_failed(command, jobid, job.jobresultcode, job.jobresult));
                    }
                },
                Err(error) if error.is_retryable_if_read_only() => {
                    tracing::debug!(command, jobid, %error, "polling a job: retrying");
                }
                Err(error) => return Err(error),
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(CloudError::JobTimeout {
                    command: command.to_string(),
                    jobid: jobid.to_string(),
                    waited: now - started,
                });
            }
            let pause = wait.poll.delay(attempt).min(deadline - now);
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    /// [`CloudStackClient::wait_for_job`] for a VM job (deploy, start, stop, destroy): the
    /// `virtualmachine` of its result.
    pub async fn wait_for_virtual_machine(
        &self,
        command: &str,
        jobid: &str,
        wait: JobWait,
    ) -> Result<VirtualMachine, CloudError> {
        let result = self.wait_for_job(command, jobid, wait).await?;
        envelope::object(command, result, "virtualmachine")
    }
}

fn job_failed(
    command: &str,
    jobid: &str,
    jobresultcode: i64,
    jobresult: Option<Value>,
) -> CloudError {
    let fields = jobresult.as_ref().and_then(envelope::error_fields);
    let (errorcode, cserrorcode, errortext) = fields.unwrap_or_else(|| {
        let code = u16::try_from(jobresultcode).unwrap_or(530);
        (
            code,
            None,
            "the job failed without an error text".to_string(),
        )
    });
    CloudError::JobFailed {
        command: command.to_string(),
        jobid: jobid.to_string(),
        errorcode,
        cserrorcode,
        errortext,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inner_error_code_wins() {
        let result =
            serde_json::json!({"errorcode": 533, "cserrorcode": 4335, "errortext": "full"});
        let error = job_failed("deployVirtualMachine", "j1", 530, Some(result));
        assert_eq!(error.errorcode(), Some(533));
        assert_eq!(error.cserrorcode(), Some(4335));
        assert_eq!(error.jobid(), Some("j1"));
        assert!(error.is_retryable());
        let error = job_failed("deployVirtualMachine", "j1", 530, None);
        assert_eq!(error.errorcode(), Some(530));
    }
}
