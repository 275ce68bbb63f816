//! Who may use the fault endpoint (`/localcloud/v1/...`): an **admin** user of the local
//! cloud, by HTTP Basic authentication with its API key as the user name and its secret key as
//! the password (`curl -u <apikey>:<secretkey>`). It can crash VMs and fail hosts, so a
//! `user`-role key is refused as well as no key at all. Checked before the body is read.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;
use subtle::ConstantTimeEq;

use super::config::{ApiUser, LocalCloudConfig};

/// Why a request to the fault endpoint is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization: Basic`, an unknown API key or a wrong secret key: 401.
    Unauthenticated,
    /// A valid key pair of a `user`-role user: 403.
    NotAdmin { username: String },
}

impl Denied {
    pub fn message(&self) -> String {
        match self {
            Self::Unauthenticated => "the fault endpoint needs an admin user's API key and \
                                      secret key as HTTP Basic credentials (curl -u \
                                      APIKEY:SECRETKEY)"
                .to_string(),
            Self::NotAdmin { username } => format!(
                "user {username:?} is not an admin: only admin users may use the fault endpoint"
            ),
        }
    }
}

/// The admin user whose key pair `authorization` carries.
pub fn authorize<'a>(
    config: &'a LocalCloudConfig,
    authorization: Option<&HeaderValue>,
) -> Result<&'a ApiUser, Denied> {
    let (apikey, secretkey) = authorization
        .and_then(basic_credentials)
        .ok_or(Denied::Unauthenticated)?;
    let user = config
        .users
        .iter()
        .find(|user| user.apikey == apikey)
        .ok_or(Denied::Unauthenticated)?;
    if !bool::from(user.secretkey.as_bytes().ct_eq(secretkey.as_bytes())) {
        tracing::debug!(user = user.username, "fault endpoint: wrong secret key");
        return Err(Denied::Unauthenticated);
    }
    if !user.admin {
        return Err(Denied::NotAdmin {
            username: user.username.clone(),
        });
    }
    Ok(user)
}

/// `Basic base64(user:password)` → (user, password).
fn basic_credentials(header: &HeaderValue) -> Option<(String, String)> {
    let text = header.to_str().ok()?;
    let (scheme, encoded) = text.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LocalCloudConfig {
        LocalCloudConfig::from_toml_str(
            r#"
            [[apiuser]]
            username = "root"
            apikey = "admin-key"
            secretkey = "admin-secret"
            [[apiuser]]
            username = "alice"
            apikey = "user-key"
            secretkey = "user-secret"
            role = "user"
            [[zone]]
            name = "z"
            [[host]]
            name = "h"
            zone = "z"
            cpunumber = 1
            cpuspeed = 1000
            memory = 1024
            [[serviceoffering]]
            name = "o"
            cpunumber = 1
            cpuspeed = 1000
            memory = 512
            [[template]]
            name = "t"
            port = 8000
            "#,
        )
        .expect("valid")
    }

    fn basic(user: &str, password: &str) -> HeaderValue {
        let encoded = STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).expect("ASCII")
    }

    #[test]
    fn only_an_admin_key_pair_passes() {
        let config = config();
        let admin = authorize(&config, Some(&basic("admin-key", "admin-secret")));
        assert_eq!(admin.map(|u| u.username.as_str()), Ok("root"));
        assert_eq!(
            authorize(&config, Some(&basic("user-key", "user-secret"))).map(|_| ()),
            Err(Denied::NotAdmin {
                username: "alice".into()
            })
        );
        for refused in [
            None,
            Some(basic("admin-key", "wrong")),
            Some(basic("admin-key", "")),
            Some(basic("nobody", "admin-secret")),
            Some(HeaderValue::from_static("Bearer admin-key")),
            Some(HeaderValue::from_static("Basic !!not-base64")),
            Some(HeaderValue::from_static("Basic YWRtaW4ta2V5")), // "admin-key", no colon
        ] {
            assert_eq!(
                authorize(&config, refused.as_ref()).map(|_| ()),
                Err(Denied::Unauthenticated),
                "{refused:?}"
            );
        }
    }
}
