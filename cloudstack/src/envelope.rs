//! Response envelopes: `{"<command>response": {...}}` → the inner object, or a [`CloudError`].
//!
//! Tolerant like the clients that work against many CloudStack versions: the single top-level
//! key is taken whatever its name (legacy commands use other names); an empty list is `{}`;
//! numbers may be strings; unknown fields are ignored.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::CloudError;
use crate::model::Page;

/// The inner object of an answer with HTTP `status` and `body`, or the error it carries.
pub fn unwrap(command: &str, status: u16, body: &[u8]) -> Result<Value, CloudError> {
    let parsed: Result<Value, _> = serde_json::from_slice(body);
    let Ok(Value::Object(top)) = parsed else {
        return Err(not_cloudstack(command, status, body));
    };
    let inner = match top.len() {
        1 => top.into_iter().next().map(|(_, v)| v),
        _ => pick_response_key(command, top),
    };
    let Some(inner) = inner else {
        return Err(not_cloudstack(command, status, body));
    };
    if let Some(error) = api_error(command, &inner)
        && (status != 200 || inner.get("errortext").is_some())
    {
        return Err(error);
    }
    if status != 200 {
        return Err(not_cloudstack(command, status, body));
    }
    Ok(inner)
}

/// The list under `key` plus `count`. A missing key (CloudStack's `{}` for "nothing") is an
/// empty page; a missing `count` is the number of items.
pub fn page<T: DeserializeOwned>(
    command: &str,
    inner: Value,
    key: &str,
) -> Result<Page<T>, CloudError> {
    let Value::Object(mut map) = inner else {
        return Err(protocol(
            command,
            format!("expected an object with {key:?}"),
        ));
    };
    let count = map.get("count").and_then(number);
    let items: Vec<T> = match map.remove(key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(empty)) if empty.is_empty() => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| decode(command, key, item))
            .collect::<Result<_, _>>()?,
        Some(single) => vec![decode(command, key, single)?],
    };
    let count = count.unwrap_or(items.len() as u64);
    Ok(Page { count, items })
}

/// The object under `key` (`{"capability": {...}}`, `{"virtualmachine": {...}}`).
pub fn object<T: DeserializeOwned>(
    command: &str,
    inner: Value,
    key: &str,
) -> Result<T, CloudError> {
    match inner {
        Value::Object(mut map) => match map.remove(key) {
            Some(value) => decode(command, key, value),
            None => Err(protocol(command, format!("no {key:?} in the answer"))),
        },
        _ => Err(protocol(
            command,
            format!("expected an object with {key:?}"),
        )),
    }
}

/// Decodes `value` as a `T`, naming `what` in the error.
pub fn decode<T: DeserializeOwned>(
    command: &str,
    what: &str,
    value: Value,
) -> Result<T, CloudError> {
    serde_json::from_value(value).map_err(|error| protocol(command, format!("{what}: {error}")))
}

/// `(errorcode, cserrorcode, errortext)` of an error object, if `value` is one.
pub fn error_fields(value: &Value) -> Option<(u16, Option<i32>, String)> {
    let errorcode = value.get("errorcode").and_then(number)?;
    let cserrorcode = value
        .get("cserrorcode")
        .and_then(number)
        .and_then(|code| i32::try_from(code).ok());
    let errortext = match value.get("errortext") {
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    Some((
        u16::try_from(errorcode).unwrap_or(530),
        cserrorcode,
        errortext,
    ))
}

fn api_error(command: &str, inner: &Value) -> Option<CloudError> {
    let (errorcode, cserrorcode, errortext) = error_fields(inner)?;
    Some(CloudError::Api {
        command: command.to_string(),
        errorcode,
        cserrorcode,
        errortext,
    })
}

/// Several top-level keys: the `<command>response` one, else the only one ending in `response`.
fn pick_response_key(command: &str, mut top: Map<String, Value>) -> Option<Value> {
    let expected = format!("{}response", command.to_lowercase());
    if let Some(value) = top.remove(&expected) {
        return Some(value);
    }
    let mut candidates: Vec<String> = top
        .keys()
        .filter(|key| key.ends_with("response"))
        .cloned()
        .collect();
    if candidates.len() == 1 {
        return candidates.pop().and_then(|key| top.remove(&key));
    }
    None
}

fn number(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn not_cloudstack(command: &str, status: u16, body: &[u8]) -> CloudError {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    if status == 200 {
        protocol(command, format!("not a CloudStack JSON answer: {text:?}"))
    } else {
        CloudError::Http {
            command: command.to_string(),
            status,
            body: text,
        }
    }
}

fn protocol(command: &str, message: String) -> CloudError {
    CloudError::Protocol {
        command: command.to_string(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Zone;

    #[test]
    fn takes_the_single_key_whatever_its_name() {
        let inner = unwrap(
            "createCounter",
            200,
            br#"{"counterresponse":{"jobid":"j"}}"#,
        )
        .expect("ok");
        assert_eq!(inner["jobid"], "j");
    }

    #[test]
    fn empty_list_is_an_empty_object() {
        let inner = unwrap("listZones", 200, br#"{"listzonesresponse":{}}"#).expect("ok");
        let page: Page<Zone> = page("listZones", inner, "zone").expect("ok");
        assert_eq!((page.count, page.items.len()), (0, 0));
    }

    #[test]
    fn count_as_string_and_unknown_fields() {
        let body = br#"{"listzonesresponse":{"count":"1","zone":[{"id":7,"name":"z","new":1}]}}"#;
        let page: Page<Zone> = page(
            "listZones",
            unwrap("listZones", 200, body).expect("ok"),
            "zone",
        )
        .expect("ok");
        assert_eq!(page.count, 1);
        assert_eq!(page.items[0].id, "7");
    }

    #[test]
    fn errors_carry_their_codes() {
        let body = br#"{"listzonesresponse":{"uuidList":[],"errorcode":431,"cserrorcode":4350,"errortext":"bad"}}"#;
        let error = unwrap("listZones", 431, body).expect_err("an error");
        assert_eq!(error.errorcode(), Some(431));
        assert_eq!(error.cserrorcode(), Some(4350));
        assert_eq!(error.errortext(), Some("bad"));
        let body = br#"{"listzonesresponse":{"uuidList":[],"errorcode":401,"errortext":"unable to verify user credentials and/or request signature"}}"#;
        let error = unwrap("listZones", 401, body).expect_err("an error");
        assert_eq!((error.errorcode(), error.cserrorcode()), (Some(401), None));
        assert!(!error.is_retryable());
    }

    #[test]
    fn a_proxy_error_page_is_an_http_error() {
        let error = unwrap("listZones", 503, b"<html>busy</html>").expect_err("an error");
        assert!(matches!(error, CloudError::Http { status: 503, .. }));
        assert!(error.is_retryable());
        let error = unwrap("listZones", 200, b"<html>").expect_err("an error");
        assert!(matches!(error, CloudError::Protocol { .. }));
    }

    #[test]
    fn several_keys_prefer_the_command_response() {
        let body = br#"{"other":1,"listzonesresponse":{"count":0}}"#;
        assert!(unwrap("listZones", 200, body).is_ok());
    }
}
