//! Who is calling: the `apiKey` names a user, the `signature` must be that user's signature of
//! the request ([`crate::signing::verify`]), and with `signatureVersion=3` the `expires` date
//! must be present, valid and not past. Any failure is the same 401, as CloudStack answers.

use super::api_error::ApiError;
use super::config::{ApiUser, LocalCloudConfig};
use crate::{dates, signing};

/// The user making the request described by `pairs` (first value of each name), at
/// `now` (seconds since the epoch).
pub fn authenticate<'a>(
    config: &'a LocalCloudConfig,
    pairs: &[(String, String)],
    now: i64,
) -> Result<&'a ApiUser, ApiError> {
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let (Some(apikey), Some(signature)) = (get("apiKey"), get("signature")) else {
        return Err(ApiError::unauthorized());
    };
    let user = config
        .users
        .iter()
        .find(|user| user.apikey == apikey)
        .ok_or_else(ApiError::unauthorized)?;
    if get("signatureVersion") == Some("3") {
        let expires = get("expires")
            .and_then(dates::parse)
            .ok_or_else(ApiError::unauthorized)?;
        if expires < now {
            tracing::debug!(user = user.username, "request expired");
            return Err(ApiError::unauthorized());
        }
    }
    let pairs = pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()));
    if !signing::verify(pairs, &user.secretkey, signature) {
        tracing::debug!(user = user.username, "bad signature");
        return Err(ApiError::unauthorized());
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Params;

    fn config() -> LocalCloudConfig {
        LocalCloudConfig::from_toml_str(
            r#"
            [[apiuser]]
            username = "u"
            apikey = "foo"
            secretkey = "bar"
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

    fn signed(params: Params, secret: &str) -> Vec<(String, String)> {
        let signature = signing::sign(&params, secret);
        params
            .with("signature", signature)
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn legacy_and_version_3() {
        let config = config();
        let legacy = Params::new()
            .with("command", "listZones")
            .with("apiKey", "foo");
        assert_eq!(
            authenticate(&config, &signed(legacy.clone(), "bar"), 0)
                .expect("ok")
                .username,
            "u"
        );
        assert_eq!(
            authenticate(&config, &signed(legacy.clone(), "nope"), 0)
                .expect_err("bad")
                .errorcode,
            401
        );
        let wrong_key = legacy.clone().with("apiKey", "other");
        assert!(authenticate(&config, &signed(wrong_key, "bar"), 0).is_err());

        let v3 = legacy
            .with("signatureVersion", "3")
            .with("expires", "2026-01-01T00:10:00+0000");
        let t = dates::parse("2026-01-01T00:10:00+0000").expect("valid");
        assert!(authenticate(&config, &signed(v3.clone(), "bar"), t - 1).is_ok());
        assert!(authenticate(&config, &signed(v3.clone(), "bar"), t + 1).is_err());
        let no_expires = Params::new()
            .with("command", "listZones")
            .with("apiKey", "foo")
            .with("signatureVersion", "3");
        assert!(authenticate(&config, &signed(no_expires, "bar"), 0).is_err());
    }
}
