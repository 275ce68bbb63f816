//! Admin authentication, as NITRO does it: `X-NITRO-USER`/`X-NITRO-PASS` on each request, or
//! `POST /nitro/v1/config/login` for a `NITRO_AUTH_TOKEN` session cookie that expires after
//! `sessiontimeout` without use.
//!
//! The password comes from an environment variable or a file (never the command line or the
//! config), is compared in constant time and never logged. Each failure from an address doubles
//! the wait before the next answer to it (up to 3.2 s), so guessing is slow.

use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use http::{HeaderMap, StatusCode, header};
use serde_json::Value;
use tokio::time::Instant;

use super::reply::{NitroError, code};
use crate::config::AdminSettings;

/// The cookie that carries a session.
pub const COOKIE: &str = "NITRO_AUTH_TOKEN";
const MAX_DELAY: Duration = Duration::from_millis(3200);

/// Credentials and live sessions.
pub struct Auth {
    user: String,
    password: Vec<u8>,
    session_timeout: Duration,
    sessions: Mutex<HashMap<String, Instant>>,
    failures: Mutex<HashMap<IpAddr, u32>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Reads the password from where `[admin]` says it is.
    pub fn load(settings: &AdminSettings) -> Result<Auth, String> {
        let password = settings
            .password
            .read()
            .map_err(|error| format!("admin password: {error}"))?;
        Ok(Auth {
            user: settings.user.clone(),
            password: password.expose().as_bytes().to_vec(),
            session_timeout: settings.session_timeout,
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        })
    }

    /// Lets a request through if it carries good credentials or a live session.
    pub async fn check(&self, headers: &HeaderMap, peer: IpAddr) -> Result<(), NitroError> {
        if let (Some(user), Some(pass)) = (headers.get("x-nitro-user"), headers.get("x-nitro-pass"))
        {
            return self.verify(user.as_bytes(), pass.as_bytes(), peer).await;
        }
        let Some(token) = session_token(headers) else {
            return Err(NitroError::new(
                StatusCode::UNAUTHORIZED,
                code::NOT_LOGGED_IN,
                "not logged in: send X-NITRO-USER and X-NITRO-PASS, or log in for a NITRO_AUTH_TOKEN cookie",
            ));
        };
        let mut sessions = self
            .sessions
            .lock()
            .expect("sessions lock is never poisoned");
        let now = Instant::now();
        match sessions.get_mut(&token) {
            Some(last_used) if now.duration_since(*last_used) < self.session_timeout => {
                *last_used = now;
                Ok(())
            }
            found => {
                if found.is_some() {
                    sessions.remove(&token);
                }
                Err(NitroError::new(
                    StatusCode::UNAUTHORIZED,
                    code::NOT_LOGGED_IN,
                    "session expired or logged out; log in again",
                ))
            }
        }
    }

    /// `{"login": {"username": …, "password": …}}` → a new session token.
    pub async fn login(&self, body: &Value, peer: IpAddr) -> Result<String, NitroError> {
        let login = body.get("login").ok_or_else(|| {
            NitroError::malformed(
                "expected a body like {\"login\": {\"username\": \"...\", \"password\": \"...\"}}",
            )
        })?;
        let field = |key: &str| {
            login
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .as_bytes()
                .to_vec()
        };
        self.verify(&field("username"), &field("password"), peer)
            .await?;
        let token = random_token();
        let mut sessions = self
            .sessions
            .lock()
            .expect("sessions lock is never poisoned");
        let now = Instant::now();
        sessions.retain(|_, last_used| now.duration_since(*last_used) < self.session_timeout);
        sessions.insert(token.clone(), now);
        Ok(token)
    }

    /// Ends the session the request carries.
    pub fn logout(&self, headers: &HeaderMap) {
        if let Some(token) = session_token(headers) {
            self.sessions
                .lock()
                .expect("sessions lock is never poisoned")
                .remove(&token);
        }
    }

    pub fn session_timeout(&self) -> Duration {
        self.session_timeout
    }

    async fn verify(&self, user: &[u8], password: &[u8], peer: IpAddr) -> Result<(), NitroError> {
        let good = constant_time_eq(user, self.user.as_bytes())
            & constant_time_eq(password, &self.password);
        let failures = {
            let mut failures = self
                .failures
                .lock()
                .expect("failures lock is never poisoned");
            if good {
                failures.remove(&peer);
                return Ok(());
            }
            if failures.len() > 10_000 {
                failures.clear();
            }
            let count = failures.entry(peer).or_insert(0);
            *count = count.saturating_add(1);
            *count
        };
        let delay = Duration::from_millis(100 << (failures - 1).min(5)).min(MAX_DELAY);
        tracing::warn!(client = %peer, failures, "admin login failed");
        tokio::time::sleep(delay).await;
        Err(NitroError::new(
            StatusCode::UNAUTHORIZED,
            code::INVALID_CREDENTIALS,
            "invalid username or password",
        ))
    }
}

fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, token)| token.to_owned())
}

/// Compares without an early exit, so timing does not tell how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        difference |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    difference == 0
}

/// 128 random bits, hex-encoded.
fn random_token() -> String {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut bytes))
        .expect("/dev/urandom is readable on Linux");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_whole_strings() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn finds_the_session_cookie_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; NITRO_AUTH_TOKEN=abc123; b=2".parse().unwrap(),
        );
        assert_eq!(session_token(&headers).as_deref(), Some("abc123"));
    }
}
