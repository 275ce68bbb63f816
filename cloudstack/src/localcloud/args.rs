//! [`Args`]: the parameters of one API call, looked up as CloudStack's dispatcher does
//! (names case-insensitively, the first value of a repeated name, empty = absent), with typed
//! accessors that fail with CloudStack's 431 messages.

use super::api_error::ApiError;

#[derive(Debug)]
pub struct Args {
    command: String,
    pairs: Vec<(String, String)>,
}

impl Args {
    /// `pairs` must already be de-duplicated (first value wins).
    pub fn new(command: &str, pairs: Vec<(String, String)>) -> Self {
        Self {
            command: command.to_string(),
            pairs,
        }
    }

    pub fn command(&self) -> &str {
        &self.command
    }

    /// The value of `name`, if present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn require(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)
            .ok_or_else(|| ApiError::missing(&self.command, name))
    }

    pub fn bool(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(self.bad(name, v)),
        }
    }

    pub fn number(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name)
            .map(|v| v.trim().parse().map_err(|_| self.bad(name, v)))
            .transpose()
    }

    /// A comma-separated list (`ids=a,b`).
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A map parameter: `tags[0].key=k&tags[0].value=v` → `[(k, v)]`, by index order.
    pub fn map(&self, name: &str) -> Vec<(String, String)> {
        let prefix = format!("{}[", name.to_lowercase());
        let mut entries: Vec<(u32, String, String)> = Vec::new();
        for (key, value) in &self.pairs {
            let lower = key.to_lowercase();
            let Some(rest) = lower.strip_prefix(&prefix) else {
                continue;
            };
            let Some((index, field)) = rest.split_once("].") else {
                continue;
            };
            let Ok(index) = index.parse::<u32>() else {
                continue;
            };
            let slot = match entries.iter().position(|(i, _, _)| *i == index) {
                Some(slot) => slot,
                None => {
                    entries.push((index, String::new(), String::new()));
                    entries.len() - 1
                }
            };
            match field {
                "key" | "name" => entries[slot].1 = value.clone(),
                "value" => entries[slot].2 = value.clone(),
                _ => {}
            }
        }
        entries.sort_by_key(|(index, _, _)| *index);
        entries
            .into_iter()
            .filter(|(_, key, _)| !key.is_empty())
            .map(|(_, key, value)| (key, value))
            .collect()
    }

    /// CloudStack's "invalid value" 431 for `name`.
    pub fn bad(&self, name: &str, value: &str) -> ApiError {
        ApiError::bad_value(&self.command, name, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> Args {
        Args::new(
            "listVirtualMachines",
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn lookups_and_types() {
        let a = args(&[
            ("ID", "x"),
            ("listall", "TRUE"),
            ("page", "2"),
            ("empty", ""),
            ("ids", "a, b,"),
        ]);
        assert_eq!(a.get("id"), Some("x"));
        assert_eq!(a.get("empty"), None);
        assert!(a.bool("listall", false).expect("bool"));
        assert_eq!(a.number("page").expect("number"), Some(2));
        assert_eq!(a.list("ids"), vec!["a", "b"]);
        let e = a.require("zoneid").expect_err("missing");
        assert_eq!(e.errorcode, 431);
        assert!(e.errortext.contains("missing parameter zoneid"));
        assert_eq!(
            args(&[("page", "x")])
                .number("page")
                .expect_err("bad")
                .errorcode,
            431
        );
    }

    #[test]
    fn maps_by_index() {
        let a = args(&[
            ("tags[1].key", "b"),
            ("tags[1].value", "2"),
            ("tags[0].key", "a"),
            ("Tags[0].Value", "1"),
        ]);
        assert_eq!(
            a.map("tags"),
            vec![("a".into(), "1".into()), ("b".into(), "2".into())]
        );
    }
}
