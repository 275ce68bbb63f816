//! [`CloudStackClient`]: signs a call, sends it, unwraps the envelope. Typed commands are in
//! [`crate::api`], async-job waiting in [`crate::jobs`].

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::backoff::Backoff;
use crate::error::CloudError;
use crate::params::Params;
use crate::transport::{Endpoint, HttpMethod, SendError, Transport};
use crate::{dates, envelope, signing};

/// How to reach and authenticate to a CloudStack API.
#[derive(Clone)]
pub struct ClientConfig {
    /// `http[s]://host:port/client/api`.
    pub endpoint: String,
    pub api_key: String,
    pub secret_key: String,
    /// GET (default) or form POST.
    pub method: HttpMethod,
    /// `Some(ttl)`: sign with `signatureVersion=3` and `expires` = now + `ttl` (default 10 min,
    /// as ngine-io/cs does). `None`: the legacy signature without expiry.
    pub expires: Option<Duration>,
    /// Deadline for one HTTP exchange.
    pub timeout: Duration,
    /// PEM CA bundle for `https://`; only it is trusted. Default: the platform's trust store
    /// (`SSL_CERT_FILE` / `SSL_CERT_DIR` when set).
    pub ca_file: Option<PathBuf>,
    /// Extra attempts for read-only commands (`list*`, `query*`) that fail with a retryable
    /// error. Commands that change something are never repeated by the client.
    pub read_retries: u32,
    /// Waits between those attempts.
    pub retry_backoff: Backoff,
}

impl ClientConfig {
    pub fn new(
        endpoint: impl Into<String>,
        api_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Self {
        Self {
            endpoint: endpoint.into(),
            api_key: api_key.into(),
            secret_key: secret_key.into(),
            method: HttpMethod::Get,
            expires: Some(Duration::from_secs(600)),
            timeout: Duration::from_secs(30),
            ca_file: None,
            read_retries: 2,
            retry_backoff: Backoff::default(),
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("endpoint", &self.endpoint)
            .field("api_key", &self.api_key)
            .field("secret_key", &"<redacted>")
            .field("method", &self.method)
            .field("expires", &self.expires)
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .field("read_retries", &self.read_retries)
            .finish()
    }
}

/// A signed CloudStack API client. Cheap to clone.
#[derive(Clone)]
pub struct CloudStackClient {
    transport: Transport,
    api_key: String,
    secret_key: String,
    method: HttpMethod,
    expires: Option<Duration>,
    read_retries: u32,
    retry_backoff: Backoff,
}

impl fmt::Debug for CloudStackClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudStackClient")
            .field("endpoint", self.transport.endpoint())
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

impl CloudStackClient {
    pub fn new(config: ClientConfig) -> Result<Self, CloudError> {
        let endpoint = Endpoint::parse(&config.endpoint)?;
        let transport = Transport::new(endpoint, config.ca_file.as_deref(), config.timeout)?;
        Ok(Self {
            transport,
            api_key: config.api_key,
            secret_key: config.secret_key,
            method: config.method,
            expires: config.expires,
            read_retries: config.read_retries,
            retry_backoff: config.retry_backoff,
        })
    }

    /// Calls `command` with `params` and returns the inner object of the answer
    /// (`{"listzonesresponse": X}` → `X`). Read-only commands are retried on retryable errors,
    /// an answer lost included; a command that changes something is sent once.
    pub async fn call(&self, command: &str, params: &Params) -> Result<Value, CloudError> {
        let read_only = command.starts_with("list") || command.starts_with("query");
        let mut attempt = 0;
        loop {
            match self.call_once(command, params).await {
                Err(error)
                    if read_only
                        && error.is_retryable_if_read_only()
                        && attempt < self.read_retries =>
                {
                    tracing::debug!(command, %error, attempt, "retrying a read-only CloudStack call");
                    tokio::time::sleep(self.retry_backoff.delay(attempt)).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// One attempt of [`CloudStackClient::call`].
    pub async fn call_once(&self, command: &str, params: &Params) -> Result<Value, CloudError> {
        let signed = self.sign(command, params, SystemTime::now());
        let (status, body) = self
            .transport
            .send(self.method, signed.to_query())
            .await
            .map_err(|error| {
                let (command, endpoint) = (command.to_string(), self.endpoint_url());
                match error {
                    SendError::NotSent(source) => CloudError::NotSent {
                        command,
                        endpoint,
                        source,
                    },
                    SendError::AnswerLost(source) => CloudError::AnswerLost {
                        command,
                        endpoint,
                        source,
                    },
                }
            })?;
        envelope::unwrap(command, status, &body)
    }

    /// The parameters that go on the wire for `command` at `now`: `params` plus `command`,
    /// `response=json`, `apiKey`, `signatureVersion`/`expires` when configured, and `signature`.
    pub fn sign(&self, command: &str, params: &Params, now: SystemTime) -> Params {
        let mut signed = params.clone();
        signed.set("command", command);
        signed.set("response", "json");
        signed.set("apiKey", self.api_key.as_str());
        if let Some(ttl) = self.expires {
            signed.set("signatureVersion", "3");
            signed.set("expires", dates::format(now + ttl));
        }
        let signature = signing::sign(&signed, &self.secret_key);
        signed.set("signature", signature);
        signed
    }

    /// The endpoint URL, for messages.
    pub fn endpoint_url(&self) -> String {
        let e = self.transport.endpoint();
        let scheme = if e.https { "https" } else { "http" };
        format!("{scheme}://{}:{}{}", e.host, e.port, e.path)
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    #[test]
    fn signs_with_version_3_by_default_and_legacy_on_request() {
        let mut config = ClientConfig::new("http://127.0.0.1:1/client/api", "foo", "bar");
        let client = CloudStackClient::new(config.clone()).expect("valid");
        let now = UNIX_EPOCH + Duration::from_secs(1_767_225_000);
        let signed = client.sign("listZones", &Params::new(), now);
        assert_eq!(signed.get("signatureVersion"), Some("3"));
        assert_eq!(signed.get("expires"), Some("2026-01-01T00:00:00+0000"));
        let canonical = signing::string_to_sign(signed.iter());
        assert!(
            canonical
                .starts_with("apikey=foo&command=listzones&expires=2026-01-01t00%3a00%3a00%2b0000")
        );
        assert!(signing::verify(
            signed.iter(),
            "bar",
            signed.get("signature").expect("signed")
        ));

        config.expires = None;
        let legacy = CloudStackClient::new(config).expect("valid");
        let signed = legacy.sign("listZones", &Params::new(), now);
        assert_eq!(signed.get("expires"), None);
        assert_eq!(
            signed.get("signature"),
            Some("c40M2knecpYNKs3MzGkyuwR/MOo=")
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let config = ClientConfig::new("http://127.0.0.1:1/client/api", "foo", "s3cr3t");
        assert!(!format!("{config:?}").contains("s3cr3t"));
        let client = CloudStackClient::new(config).expect("valid");
        assert!(!format!("{client:?}").contains("s3cr3t"));
    }
}
