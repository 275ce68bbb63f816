//! What an admin request asks for: `/nitro/v1/<config|stat>/<resource>[/<name>]` with NITRO's
//! query options (`action`, `args=k:v,…`, `filter=k:v,…`, `statbindings=yes`), and its JSON body
//! (read up to a size limit).

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::Value;

use super::reply::{NitroError, code};

/// Bodies larger than this get `413`.
pub const MAX_BODY: usize = 1024 * 1024;

/// `config` or `stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Config,
    Stat,
}

/// A parsed admin request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub area: Area,
    pub resource: String,
    pub name: Option<String>,
    pub action: Option<String>,
    pub args: Vec<(String, String)>,
    pub filter: Vec<(String, String)>,
    pub statbindings: bool,
}

impl Target {
    pub fn parse(path: &str, query: Option<&str>) -> Result<Target, NitroError> {
        let rest = path.strip_prefix("/nitro/v1/").ok_or_else(|| {
            NitroError::unknown(format!("`{path}` is not an admin API path; use /nitro/v1/config/<resource> or /nitro/v1/stat/<resource>"))
        })?;
        let mut parts = rest.trim_end_matches('/').splitn(3, '/');
        let area = match parts.next() {
            Some("config") => Area::Config,
            Some("stat") => Area::Stat,
            _ => {
                return Err(NitroError::unknown(format!(
                    "`{path}`: expected /nitro/v1/config/... or /nitro/v1/stat/..."
                )));
            }
        };
        let resource = parts
            .next()
            .filter(|r| !r.is_empty())
            .ok_or_else(|| NitroError::unknown(format!("`{path}` names no resource")))?;
        let name = parts.next().map(percent_decode).transpose()?;
        let mut target = Target {
            area,
            resource: resource.to_owned(),
            name,
            action: None,
            args: Vec::new(),
            filter: Vec::new(),
            statbindings: false,
        };
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value)?;
            match key {
                "action" => target.action = Some(value),
                "args" => target.args = pairs(&value, "args")?,
                "filter" => target.filter = pairs(&value, "filter")?,
                "statbindings" => target.statbindings = value.eq_ignore_ascii_case("yes"),
                // Accepted and ignored, as NITRO clients send them routinely.
                "attrs" | "view" | "pagesize" | "pageno" | "count" | "warning" => {}
                other => {
                    return Err(NitroError::invalid(format!(
                        "unknown query option `{other}`"
                    )));
                }
            }
        }
        Ok(target)
    }

    pub fn arg(&self, key: &str) -> Option<&str> {
        self.args
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// `k:v,k2:v2` (NITRO's `args` and `filter` syntax).
fn pairs(text: &str, option: &str) -> Result<Vec<(String, String)>, NitroError> {
    text.split(',')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            pair.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| {
                    NitroError::invalid(format!(
                        "`{option}={text}`: expected key:value pairs separated by commas"
                    ))
                })
        })
        .collect()
}

fn percent_decode(text: &str) -> Result<String, NitroError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        NitroError::invalid(format!("bad percent-encoding in `{text}`"))
                    })?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| NitroError::invalid(format!("`{text}` is not UTF-8")))
}

/// Reads the body (at most [`MAX_BODY`]) and parses it as JSON; an empty body is `null`.
pub async fn json_body(body: Incoming) -> Result<Value, NitroError> {
    let bytes: Bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error)
            if error
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(NitroError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                code::BODY_TOO_LARGE,
                format!("request body is larger than {MAX_BODY} bytes"),
            ));
        }
        Err(error) => {
            return Err(NitroError::malformed(format!(
                "cannot read the request body: {error}"
            )));
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes)
        .map_err(|error| NitroError::malformed(format!("malformed JSON: {error}")))
}

/// The object (or objects, for bulk adds) under `{"<resource>": …}`.
pub fn objects(body: &Value, resource: &str) -> Result<Vec<Value>, NitroError> {
    let shape =
        || NitroError::malformed(format!("expected a body like {{\"{resource}\": {{...}}}}"));
    let inner = body
        .as_object()
        .and_then(|o| o.get(resource))
        .ok_or_else(shape)?;
    match inner {
        Value::Object(_) => Ok(vec![inner.clone()]),
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
            Ok(items.clone())
        }
        _ => Err(shape()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nitro_targets() {
        let t = Target::parse(
            "/nitro/v1/config/servicegroup_servicegroupmember_binding/web%20pool",
            Some("args=ip:127.0.0.2,port:80"),
        )
        .unwrap();
        assert_eq!(t.area, Area::Config);
        assert_eq!(t.resource, "servicegroup_servicegroupmember_binding");
        assert_eq!(t.name.as_deref(), Some("web pool"));
        assert_eq!(t.arg("ip"), Some("127.0.0.2"));
        assert_eq!(t.arg("port"), Some("80"));
        assert!(Target::parse("/other", None).is_err());
        assert!(Target::parse("/nitro/v1/config/lbvserver", Some("args=broken")).is_err());
    }
}
