//! Serde helpers that accept what real CloudStack servers send: numbers as strings (and ids as
//! numbers, on old versions), booleans as strings, `null`, `{}` where a list is expected.

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde_json::Value;

/// A string, or a number / bool printed as one. `null` is the empty string.
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Null => String::new(),
        other @ (Value::Number(_) | Value::Bool(_)) => other.to_string(),
        other => return Err(D::Error::custom(format!("expected a string, got {other}"))),
    })
}

/// Like [`string`], but `null` and `""` are `None`.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = string(d)?;
    Ok((!s.is_empty()).then_some(s))
}

/// An integer, from a number or a numeric string; `null` and `""` are `None`.
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("expected an integer, got {n}"))),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("expected an integer, got {s:?}"))),
        other => Err(D::Error::custom(format!(
            "expected an integer, got {other}"
        ))),
    }
}

/// An integer as [`opt_i64`], `0` when absent.
pub fn i64_or_zero<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(opt_i64(d)?.unwrap_or(0))
}

/// A boolean, from `true`/`false` or `"true"`/`"false"`; `null` is `false`.
pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::Null => Ok(false),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") || s.is_empty() => Ok(false),
        Value::Number(n) => Ok(n.as_i64() != Some(0)),
        other => Err(D::Error::custom(format!("expected a boolean, got {other}"))),
    }
}

/// A list that may also be missing, `null`, `{}` or a single object.
pub fn list<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        Value::Object(map) if map.is_empty() => Ok(Vec::new()),
        Value::Array(items) => items
            .into_iter()
            .map(|item| serde_json::from_value(item).map_err(D::Error::custom))
            .collect(),
        single => Ok(vec![
            serde_json::from_value(single).map_err(D::Error::custom)?,
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Sample {
        #[serde(default, deserialize_with = "string")]
        id: String,
        #[serde(default, deserialize_with = "opt_i64")]
        count: Option<i64>,
        #[serde(default, deserialize_with = "bool")]
        flag: bool,
        #[serde(default, deserialize_with = "list")]
        items: Vec<u32>,
    }

    fn parse(json: &str) -> Sample {
        serde_json::from_str(json).expect("test JSON is valid")
    }

    #[test]
    fn tolerates_real_server_variations() {
        let s = parse(r#"{"id": 42, "count": "7", "flag": "true", "items": {}}"#);
        assert_eq!(
            (s.id.as_str(), s.count, s.flag, s.items.len()),
            ("42", Some(7), true, 0)
        );
        let s = parse(r#"{"id": "x", "count": 3, "flag": false, "items": [1, 2]}"#);
        assert_eq!((s.id.as_str(), s.count, s.flag), ("x", Some(3), false));
        assert_eq!(s.items, vec![1, 2]);
        let s = parse(r#"{"count": null, "items": null, "unknown": {"a": 1}}"#);
        assert_eq!(
            (s.id.as_str(), s.count, s.flag, s.items.len()),
            ("", None, false, 0)
        );
        assert!(serde_json::from_str::<Sample>(r#"{"count": "many"}"#).is_err());
    }
}
