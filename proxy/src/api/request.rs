//! What an admin request asks for: `/nitro/v1/<config|stat>/<resource>[/<name>]` with NITRO's
//! query options (`action`, `args=k:v,…`, `filter=k:v,…`, `statbindings=yes`, decoded with
//! `form_urlencoded`), and its JSON body (read up to a size limit and a nesting depth).

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::Value;

use super::reply::{NitroError, code};

/// Bodies larger than this get `413`.
pub const MAX_BODY: usize = 1024 * 1024;
/// A login body larger than this gets `413` (it is read before the client is known).
pub const MAX_LOGIN_BODY: usize = 4 * 1024;
/// JSON nested deeper than this gets `400`.
pub const MAX_DEPTH: usize = 32;
/// How long, and how many bytes, the rest of a body answered early is read and thrown away.
const LINGER: Duration = Duration::from_secs(5);
const LINGER_BYTES: usize = 1024 * 1024;

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
        let name = parts.next().map(path_segment).transpose()?;
        let mut target = Target {
            area,
            resource: resource.to_owned(),
            name,
            action: None,
            args: Vec::new(),
            filter: Vec::new(),
            statbindings: false,
        };
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let value = value.into_owned();
            match key.as_ref() {
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

/// A path segment: percent-decoded (a `+` stays a `+`; only a query is form-encoded).
fn path_segment(text: &str) -> Result<String, NitroError> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| NitroError::invalid(format!("`{text}` is not UTF-8 once decoded")))
}

/// Reads the body (at most `limit` bytes) and parses it as JSON; an empty body is `null`.
/// A body whose `Content-Length` is over the limit gets `413` before any of it is read; one
/// without a length is read until it passes the limit, never further. JSON nested deeper than
/// [`MAX_DEPTH`] is refused before it is parsed.
pub async fn json_body(body: &mut Incoming, limit: usize) -> Result<Value, NitroError> {
    let too_large = || {
        NitroError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::BODY_TOO_LARGE,
            format!("request body is larger than {limit} bytes"),
        )
    };
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large());
    }
    let bytes: Bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error)
            if error
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(too_large());
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
    if nesting_depth(&bytes) > MAX_DEPTH {
        return Err(NitroError::malformed(format!(
            "JSON nested deeper than {MAX_DEPTH} levels; a NITRO body needs only a few"
        )));
    }
    serde_json::from_slice(&bytes)
        .map_err(|error| NitroError::malformed(format!("malformed JSON: {error}")))
}

/// Reads and discards what is left of a body that was answered before it was read, for at most
/// [`LINGER`] and [`LINGER_BYTES`] (a lingering close, as nginx and HAProxy do): a client still
/// sending then reads its `401` or `413` instead of a connection reset. Nothing is kept.
pub async fn linger(mut body: Incoming) {
    let drain = async {
        let mut discarded = 0;
        while let Some(Ok(frame)) = body.frame().await {
            discarded += frame.data_ref().map_or(0, Bytes::len);
            if discarded > LINGER_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// How deep `[` and `{` nest in `json` (outside strings), without parsing it.
fn nesting_depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in json {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
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

    #[test]
    fn decodes_queries_as_forms_and_paths_as_paths() {
        let t = Target::parse(
            "/nitro/v1/config/lbvserver/a+b%2Fc",
            Some("filter=name%3Aweb+1&action=enable"),
        )
        .unwrap();
        assert_eq!(t.name.as_deref(), Some("a+b/c"));
        assert_eq!(t.filter, [("name".to_owned(), "web 1".to_owned())]);
        assert_eq!(t.action.as_deref(), Some("enable"));
        let bad = Target::parse("/nitro/v1/config/lbvserver/%FF", None).unwrap_err();
        assert_eq!(bad.message, "`%FF` is not UTF-8 once decoded");
    }

    #[test]
    fn measures_nesting_outside_strings() {
        assert_eq!(nesting_depth(b"{}"), 1);
        assert_eq!(nesting_depth(br#"{"a": [1, {"b": 2}]}"#), 3);
        assert_eq!(nesting_depth(br#"{"a": "[[[[{{{{", "b": "\"[["}"#), 1);
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(nesting_depth(deep.as_bytes()), 10_000);
    }
}
