//! Numbers that may arrive as numbers or as strings holding one (`80` or `"80"`), as NITRO
//! clients send them. Used by the file structs for every integer and decimal field.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};

struct Int;

impl Visitor<'_> for Int {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer (or a string holding one)")
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<i64, E> {
        Ok(value)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<i64, E> {
        i64::try_from(value).map_err(|_| E::custom(format!("{value} is too large")))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<i64, E> {
        if value.fract() == 0.0 && value.abs() < 9.0e15 {
            Ok(value as i64)
        } else {
            Err(E::custom(format!("expected an integer, got {value}")))
        }
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<i64, E> {
        value
            .trim()
            .parse()
            .map_err(|_| E::custom(format!("expected an integer, got \"{value}\"")))
    }
}

struct Float;

impl Visitor<'_> for Float {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number (or a string holding one)")
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<f64, E> {
        Ok(value as f64)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<f64, E> {
        Ok(value as f64)
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<f64, E> {
        Ok(value)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<f64, E> {
        value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| E::custom(format!("expected a number, got \"{value}\"")))
    }
}

pub fn int<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    deserializer.deserialize_any(Int)
}

pub fn opt_int<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    deserializer.deserialize_any(Int).map(Some)
}

pub fn opt_float<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    deserializer.deserialize_any(Float).map(Some)
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize)]
    struct Port {
        #[serde(deserialize_with = "super::int")]
        port: i64,
        #[serde(default, deserialize_with = "super::opt_float")]
        upper: Option<f64>,
    }

    #[test]
    fn numbers_and_strings_both_work() {
        let a: Port = serde_json::from_str(r#"{"port": 80, "upper": 70}"#).unwrap();
        let b: Port = serde_json::from_str(r#"{"port": "80", "upper": "70.5"}"#).unwrap();
        assert_eq!((a.port, a.upper), (80, Some(70.0)));
        assert_eq!((b.port, b.upper), (80, Some(70.5)));
        let bad = serde_json::from_str::<Port>(r#"{"port": "eighty"}"#).unwrap_err();
        assert!(
            bad.to_string()
                .contains("expected an integer, got \"eighty\""),
            "{bad}"
        );
    }
}
