//! Request parameters: an ordered list of `name=value` pairs, and the URL encoding CloudStack
//! uses for them.
//!
//! [`java_url_encode`] is `java.net.URLEncoder.encode(value, "UTF-8")` with `+` replaced by `%20`:
//! exactly what the server re-computes when it checks a signature, so the client puts the same
//! bytes on the wire. [`parse_form`] is the reverse, used by the local cloud.

/// Request parameters in insertion order. Setting a name twice replaces the first value
/// (CloudStack only looks at the first one anyway).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value`, replacing an earlier value of the same name.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let (name, value) = (name.into(), value.into());
        match self.pairs.iter_mut().find(|(n, _)| *n == name) {
            Some(pair) => pair.1 = value,
            None => self.pairs.push((name, value)),
        }
        self
    }

    /// Builder form of [`Params::set`].
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.set(name, value);
        self
    }

    /// Sets `name` only when `value` is present.
    pub fn set_opt(&mut self, name: &str, value: Option<impl ToString>) -> &mut Self {
        if let Some(value) = value {
            self.set(name, value.to_string());
        }
        self
    }

    /// A list parameter, comma-joined (`networkids=a,b`); nothing when the list is empty.
    pub fn set_list(&mut self, name: &str, values: &[String]) -> &mut Self {
        if !values.is_empty() {
            self.set(name, values.join(","));
        }
        self
    }

    /// A map parameter as CloudStack indexes them: `tags[0].key=k&tags[0].value=v`.
    pub fn set_map(&mut self, name: &str, entries: &[(String, String)]) -> &mut Self {
        for (index, (key, value)) in entries.iter().enumerate() {
            self.set(format!("{name}[{index}].key"), key.clone());
            self.set(format!("{name}[{index}].value"), value.clone());
        }
        self
    }

    /// Appends every pair of `other`, replacing values of names already set.
    pub fn extend(&mut self, other: &Params) -> &mut Self {
        for (name, value) in other.iter() {
            self.set(name, value);
        }
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// `name=value&...` with Java-style encoded values, in insertion order: the query string or
    /// form body that goes on the wire.
    pub fn to_query(&self) -> String {
        let mut out = String::new();
        for (name, value) in &self.pairs {
            if !out.is_empty() {
                out.push('&');
            }
            out.push_str(&java_url_encode(name));
            out.push('=');
            out.push_str(&java_url_encode(value));
        }
        out
    }
}

/// `URLEncoder.encode(value, "UTF-8").replace("+", "%20")`: keeps `A-Z a-z 0-9 . - * _`,
/// encodes every other byte of the UTF-8 form as upper-case `%XX` (so `~` is `%7E`), and a
/// space as `%20`. `form_urlencoded` keeps the same set and writes a space as `+`; a `+` in
/// its output is therefore always a space (a literal `+` is `%2B`).
pub fn java_url_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes())
        .map(|chunk| if chunk == "+" { "%20" } else { chunk })
        .collect()
}

/// Decodes an `application/x-www-form-urlencoded` string (a query string or a form body):
/// `+` is a space, `%XX` a byte; bad escapes are kept literally, bytes that are not UTF-8 are
/// replaced. Pairs keep their order; duplicates are kept (the caller decides).
pub fn parse_form(input: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(input.as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_encoding_keeps_only_the_unreserved_set() {
        assert_eq!(java_url_encode("aZ09.-*_"), "aZ09.-*_");
        assert_eq!(java_url_encode("a b"), "a%20b");
        assert_eq!(java_url_encode("~/+:,=@"), "%7E%2F%2B%3A%2C%3D%40");
        assert_eq!(java_url_encode("é€"), "%C3%A9%E2%82%AC");
    }

    #[test]
    fn java_encoding_of_every_byte() {
        for byte in 0..=0x7f_u8 {
            let text = char::from(byte).to_string();
            let expected = if byte.is_ascii_alphanumeric() || b".-*_".contains(&byte) {
                text.clone()
            } else {
                format!("%{byte:02X}")
            };
            assert_eq!(java_url_encode(&text), expected, "byte {byte:#x}");
        }
    }

    #[test]
    fn form_decoding_reverses_the_encoding() {
        let value = "a b~c*d/e+f é & = %";
        let query = Params::new().with("k", value).to_query();
        assert_eq!(
            parse_form(&query),
            vec![("k".to_string(), value.to_string())]
        );
        assert_eq!(
            parse_form("a=1+2&b=%zz&c&=x"),
            vec![
                ("a".into(), "1 2".into()),
                ("b".into(), "%zz".into()),
                ("c".into(), String::new()),
                (String::new(), "x".into()),
            ]
        );
        assert_eq!(
            parse_form("trailing=%4"),
            vec![("trailing".into(), "%4".into())]
        );
    }

    #[test]
    fn set_replaces_and_maps_are_indexed() {
        let mut params = Params::new();
        params.set("a", "1").set("a", "2");
        params.set_map("tags", &[("k".into(), "v".into())]);
        params.set_list("ids", &["x".into(), "y".into()]);
        params.set_list("none", &[]);
        assert_eq!(
            params.to_query(),
            "a=2&tags%5B0%5D.key=k&tags%5B0%5D.value=v&ids=x%2Cy"
        );
    }
}
