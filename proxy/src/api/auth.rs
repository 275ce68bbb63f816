//! Admin authentication, as NITRO does it: `X-NITRO-USER`/`X-NITRO-PASS` on each request, or
//! `POST /nitro/v1/config/login` for a `NITRO_AUTH_TOKEN` session cookie that expires after
//! `sessiontimeout` without use.
//!
//! The password comes from an environment variable or a file (never the command line or the
//! config), is compared in constant time (`subtle`) and never logged. Failed attempts lock the
//! client's address out after `maxloginattempts` (see [`super::lockout`]), whether they came
//! as headers or as a login. At most [`MAX_SESSIONS`] sessions live at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use http::{HeaderMap, StatusCode, header};
use serde_json::Value;
use subtle::ConstantTimeEq;
use tokio::time::Instant;

use super::lockout::{Attempt, LoginGuard, LoginLimits};
use super::reply::{NitroError, code};
use crate::config::{AdminSettings, Secret};

/// The cookie that carries a session.
pub const COOKIE: &str = "NITRO_AUTH_TOKEN";
/// Live login sessions at most; a login beyond them is refused until one ends or expires.
pub const MAX_SESSIONS: usize = 256;

/// Credentials and live sessions.
pub struct Auth {
    user: String,
    password: Secret,
    session_timeout: Duration,
    sessions: Mutex<HashMap<String, Instant>>,
    guard: LoginGuard,
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
            password,
            session_timeout: settings.session_timeout,
            sessions: Mutex::new(HashMap::new()),
            guard: LoginGuard::new(LoginLimits {
                max_attempts: settings.max_login_attempts,
                window: settings.failed_login_timeout,
            }),
        })
    }

    /// Lets a request through if it carries good credentials or a live session. It looks at
    /// the headers only, so a request is refused before its body is read.
    pub fn check(&self, headers: &HeaderMap, peer: IpAddr) -> Result<(), NitroError> {
        if let (Some(user), Some(pass)) = (headers.get("x-nitro-user"), headers.get("x-nitro-pass"))
        {
            return self.verify(user.as_bytes(), pass.as_bytes(), peer);
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
    pub fn login(&self, body: &Value, peer: IpAddr) -> Result<String, NitroError> {
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
        self.verify(&field("username"), &field("password"), peer)?;
        let mut sessions = self
            .sessions
            .lock()
            .expect("sessions lock is never poisoned");
        let now = Instant::now();
        sessions.retain(|_, last_used| now.duration_since(*last_used) < self.session_timeout);
        if sessions.len() >= MAX_SESSIONS {
            return Err(NitroError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                code::TOO_MANY_SESSIONS,
                format!(
                    "{MAX_SESSIONS} sessions are open already; log out of one (config/logout) or \
                     wait for one to expire after sessiontimeout"
                ),
            ));
        }
        let token = random_token();
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

    /// Compares in constant time, unless `peer` is locked out; counts a failure.
    fn verify(&self, user: &[u8], password: &[u8], peer: IpAddr) -> Result<(), NitroError> {
        let good = || {
            let same = user.ct_eq(self.user.as_bytes())
                & password.ct_eq(self.password.expose().as_bytes());
            bool::from(same)
        };
        match self.guard.attempt(peer, Instant::now(), good) {
            Attempt::Accepted => Ok(()),
            Attempt::Refused { .. } => Err(NitroError::new(
                StatusCode::UNAUTHORIZED,
                code::INVALID_CREDENTIALS,
                "invalid username or password",
            )),
            Attempt::LockedOut { remaining } => Err(NitroError::new(
                StatusCode::TOO_MANY_REQUESTS,
                code::LOGIN_LOCKED_OUT,
                format!(
                    "too many failed logins from {peer}; locked out for {} s more",
                    remaining.as_secs_f64().ceil()
                ),
            )),
        }
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

/// 128 random bits from the operating system, hex-encoded.
fn random_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).expect("the OS random source is available on Linux");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(max_attempts: u32) -> Auth {
        Auth {
            user: "nsroot".to_owned(),
            password: Secret::inline("secret").unwrap(),
            session_timeout: Duration::from_secs(60),
            sessions: Mutex::new(HashMap::new()),
            guard: LoginGuard::new(LoginLimits {
                max_attempts,
                window: Duration::from_secs(60),
            }),
        }
    }

    #[test]
    fn compares_whole_credentials() {
        let auth = auth(100);
        let peer = IpAddr::from([127, 0, 0, 1]);
        assert!(auth.verify(b"nsroot", b"secret", peer).is_ok());
        for (user, password) in [
            (&b"nsroot"[..], &b"secreT"[..]),
            (b"nsroot", b"secret2"),
            (b"nsroot", b"secre"),
            (b"nsroot", b""),
            (b"nsroo", b"secret"),
        ] {
            let refused = auth.verify(user, password, peer).unwrap_err();
            assert_eq!(refused.code, code::INVALID_CREDENTIALS);
        }
    }

    #[test]
    fn a_locked_out_address_is_refused_with_the_right_password() {
        let auth = auth(2);
        let peer = IpAddr::from([127, 0, 0, 9]);
        let _ = auth.verify(b"nsroot", b"guess-1", peer);
        let _ = auth.verify(b"nsroot", b"guess-2", peer);
        let refused = auth.verify(b"nsroot", b"secret", peer).unwrap_err();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.code, code::LOGIN_LOCKED_OUT);
        assert!(
            refused
                .message
                .starts_with("too many failed logins from 127.0.0.9; locked out for "),
            "{}",
            refused.message
        );
        assert!(
            auth.verify(b"nsroot", b"secret", IpAddr::from([127, 0, 0, 10]))
                .is_ok()
        );
    }

    #[test]
    fn sessions_are_capped() {
        let auth = auth(100);
        let peer = IpAddr::from([127, 0, 0, 1]);
        let login = serde_json::json!({"login": {"username": "nsroot", "password": "secret"}});
        for _ in 0..MAX_SESSIONS {
            auth.login(&login, peer).unwrap();
        }
        let refused = auth.login(&login, peer).unwrap_err();
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.code, code::TOO_MANY_SESSIONS);
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
