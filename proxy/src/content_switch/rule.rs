//! The `cspolicy` rule language: a small, NetScaler-flavoured expression over the request head.
//!
//! ```text
//! rule      := and ("||" and)*
//! and       := unary ("&&" unary)*
//! unary     := "!" unary | "(" rule ")" | "true" | "false" | condition
//! condition := "HTTP.REQ." operand "." test
//! operand   := "HOSTNAME" | "URL" | "URL.PATH" | "METHOD" | "HEADER(" string ")"
//! test      := ("EQ" | "STARTSWITH" | "ENDSWITH" | "CONTAINS") "(" string ")" | "EXISTS"
//! ```
//!
//! `HOSTNAME` is the request's host without its port, compared without regard to case (so
//! `HTTP.REQ.HOSTNAME.ENDSWITH(".example.com")` is the wildcard `*.example.com`); `URL` is the
//! path with its query, `URL.PATH` the path alone (both compared case-sensitively);
//! `HEADER("X-Name")` is the first value of a header; a missing header (or one whose first
//! value is not visible ASCII) fails every test, and `EXISTS` is true whenever it is there. Strings are in double quotes, with `\"` and `\\` as the only escapes. A
//! method may be written bare: `HTTP.REQ.METHOD.EQ(POST)`.

use http::HeaderMap;

/// A parsed rule, ready to evaluate against request heads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    Always(bool),
    Not(Box<Rule>),
    And(Box<Rule>, Box<Rule>),
    Or(Box<Rule>, Box<Rule>),
    Test(Operand, Test),
}

/// What part of the request a condition reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Hostname,
    Url,
    UrlPath,
    Method,
    Header(http::HeaderName),
}

/// What a condition checks of its operand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Test {
    Eq(String),
    StartsWith(String),
    EndsWith(String),
    Contains(String),
    Exists,
}

/// The parts of a request head a rule reads.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// The host without its port.
    pub host: &'a str,
    pub path_and_query: &'a str,
    pub method: &'a str,
    pub headers: &'a HeaderMap,
}

impl Rule {
    /// Parses `text`; the error says where and what was expected.
    pub fn parse(text: &str) -> Result<Rule, String> {
        let mut parser = Parser { text, at: 0 };
        let rule = parser.or()?;
        parser.skip_spaces();
        if parser.at < text.len() {
            return Err(parser.error("`&&`, `||` or the end of the rule"));
        }
        Ok(rule)
    }

    /// Whether `head` matches.
    pub fn matches(&self, head: &RequestHead<'_>) -> bool {
        match self {
            Rule::Always(value) => *value,
            Rule::Not(inner) => !inner.matches(head),
            Rule::And(a, b) => a.matches(head) && b.matches(head),
            Rule::Or(a, b) => a.matches(head) || b.matches(head),
            Rule::Test(Operand::Header(name), Test::Exists) => head.headers.contains_key(name),
            Rule::Test(operand, test) => {
                let (value, ignore_case) = match operand {
                    Operand::Hostname => (Some(head.host), true),
                    Operand::Url => (Some(head.path_and_query), false),
                    Operand::UrlPath => (head.path_and_query.split('?').next(), false),
                    Operand::Method => (Some(head.method), false),
                    Operand::Header(name) => {
                        (head.headers.get(name).and_then(|v| v.to_str().ok()), false)
                    }
                };
                let Some(value) = value else { return false };
                test.holds(value, ignore_case)
            }
        }
    }
}

impl Test {
    /// Whether `value` passes; `ignore_case` compares ASCII letters without regard to case
    /// (hosts). Nothing is allocated: this runs for every policy a request meets.
    fn holds(&self, value: &str, ignore_case: bool) -> bool {
        let same = |a: &[u8], b: &[u8]| {
            if ignore_case {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        let (value, wanted) = match self {
            Test::Exists => return true,
            Test::Eq(wanted)
            | Test::StartsWith(wanted)
            | Test::EndsWith(wanted)
            | Test::Contains(wanted) => (value.as_bytes(), wanted.as_bytes()),
        };
        if wanted.len() > value.len() {
            return false;
        }
        match self {
            Test::Exists => true,
            Test::Eq(_) => same(value, wanted),
            Test::StartsWith(_) => same(&value[..wanted.len()], wanted),
            Test::EndsWith(_) => same(&value[value.len() - wanted.len()..], wanted),
            Test::Contains(_) => {
                wanted.is_empty() || value.windows(wanted.len()).any(|w| same(w, wanted))
            }
        }
    }
}

/// Builds a [`Test`] from its string argument.
type MakeTest = fn(String) -> Test;

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.at..]
    }

    fn skip_spaces(&mut self) {
        let trimmed = self.rest().trim_start();
        self.at = self.text.len() - trimmed.len();
    }

    /// Consumes `word` (after spaces) if it comes next.
    fn eat(&mut self, word: &str) -> bool {
        self.skip_spaces();
        if self.rest().starts_with(word) {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    fn error(&self, expected: &str) -> String {
        let found: String = self.rest().chars().take(12).collect();
        let found = if found.is_empty() {
            "the end of the rule".to_owned()
        } else {
            format!("`{found}`")
        };
        format!(
            "at character {}: expected {expected}, found {found}",
            self.text[..self.at].chars().count() + 1
        )
    }

    fn or(&mut self) -> Result<Rule, String> {
        let mut rule = self.and()?;
        while self.eat("||") {
            rule = Rule::Or(Box::new(rule), Box::new(self.and()?));
        }
        Ok(rule)
    }

    fn and(&mut self) -> Result<Rule, String> {
        let mut rule = self.unary()?;
        while self.eat("&&") {
            rule = Rule::And(Box::new(rule), Box::new(self.unary()?));
        }
        Ok(rule)
    }

    fn unary(&mut self) -> Result<Rule, String> {
        if self.eat("!") {
            return Ok(Rule::Not(Box::new(self.unary()?)));
        }
        if self.eat("(") {
            let rule = self.or()?;
            if !self.eat(")") {
                return Err(self.error("`)`"));
            }
            return Ok(rule);
        }
        if self.eat("true") {
            return Ok(Rule::Always(true));
        }
        if self.eat("false") {
            return Ok(Rule::Always(false));
        }
        if !self.eat("HTTP.REQ.") {
            return Err(self.error("`HTTP.REQ.`, `!`, `(`, `true` or `false`"));
        }
        let operand = self.operand()?;
        if !self.eat(".") {
            return Err(self.error("`.` and a test such as `EQ(\"...\")`"));
        }
        let test = self.test(&operand)?;
        Ok(Rule::Test(operand, test))
    }

    fn operand(&mut self) -> Result<Operand, String> {
        if self.eat("HOSTNAME") {
            Ok(Operand::Hostname)
        } else if self.eat("URL.PATH") {
            Ok(Operand::UrlPath)
        } else if self.eat("URL") {
            Ok(Operand::Url)
        } else if self.eat("METHOD") {
            Ok(Operand::Method)
        } else if self.eat("HEADER(") {
            let name = self.string()?;
            let name = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("`{name}` is not a valid header name"))?;
            if !self.eat(")") {
                return Err(self.error("`)`"));
            }
            Ok(Operand::Header(name))
        } else {
            Err(self.error("HOSTNAME, URL, URL.PATH, METHOD or HEADER(\"name\")"))
        }
    }

    fn test(&mut self, operand: &Operand) -> Result<Test, String> {
        if self.eat("EXISTS") {
            return match operand {
                Operand::Header(_) => Ok(Test::Exists),
                _ => Err("EXISTS applies to HEADER(\"name\") only".to_owned()),
            };
        }
        let kinds: [(&str, MakeTest); 4] = [
            ("EQ(", Test::Eq),
            ("STARTSWITH(", Test::StartsWith),
            ("ENDSWITH(", Test::EndsWith),
            ("CONTAINS(", Test::Contains),
        ];
        let Some(make) = kinds.iter().find(|(word, _)| self.eat(word)).map(|k| k.1) else {
            return Err(self.error("EQ, STARTSWITH, ENDSWITH, CONTAINS or EXISTS"));
        };
        let value = if *operand == Operand::Method {
            self.method()?
        } else {
            self.string()?
        };
        if !self.eat(")") {
            return Err(self.error("`)`"));
        }
        Ok(make(value))
    }

    /// A method: a string, or a bare upper-case word as NetScaler writes it (`EQ(GET)`).
    fn method(&mut self) -> Result<String, String> {
        self.skip_spaces();
        if self.rest().starts_with('"') {
            return self.string();
        }
        let word: String = self
            .rest()
            .chars()
            .take_while(|c| c.is_ascii_uppercase())
            .collect();
        if word.is_empty() {
            return Err(self.error("a method such as GET or \"GET\""));
        }
        self.at += word.len();
        Ok(word)
    }

    fn string(&mut self) -> Result<String, String> {
        if !self.eat("\"") {
            return Err(self.error("a string in double quotes"));
        }
        let mut value = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.at += i + 1;
                    return Ok(value);
                }
                '\\' => match chars.next() {
                    Some((_, escaped @ ('"' | '\\'))) => value.push(escaped),
                    _ => {
                        return Err(format!(
                            "{}: only \\\" and \\\\ are escapes",
                            self.error("a string")
                        ));
                    }
                },
                c => value.push(c),
            }
        }
        Err(self.error("a closing `\"`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head<'a>(
        host: &'a str,
        url: &'a str,
        method: &'a str,
        headers: &'a HeaderMap,
    ) -> RequestHead<'a> {
        RequestHead {
            host,
            path_and_query: url,
            method,
            headers,
        }
    }

    fn matches(rule: &str, request: &RequestHead<'_>) -> bool {
        Rule::parse(rule)
            .unwrap_or_else(|e| panic!("{rule}: {e}"))
            .matches(request)
    }

    #[test]
    fn hosts_paths_methods_and_headers_match_as_documented() {
        let mut headers = HeaderMap::new();
        headers.insert("x-tenant", "blue".parse().unwrap());
        let r = head("Shop.Example.com", "/api/items?page=2", "POST", &headers);
        assert!(matches(r#"HTTP.REQ.HOSTNAME.EQ("shop.example.com")"#, &r));
        assert!(matches(r#"HTTP.REQ.HOSTNAME.ENDSWITH(".EXAMPLE.com")"#, &r));
        assert!(!matches(r#"HTTP.REQ.HOSTNAME.EQ("example.com")"#, &r));
        assert!(matches(r#"HTTP.REQ.URL.STARTSWITH("/api/")"#, &r));
        assert!(matches(r#"HTTP.REQ.URL.PATH.EQ("/api/items")"#, &r));
        assert!(!matches(r#"HTTP.REQ.URL.EQ("/api/items")"#, &r));
        assert!(
            !matches(r#"HTTP.REQ.URL.STARTSWITH("/API")"#, &r),
            "paths keep their case"
        );
        assert!(matches("HTTP.REQ.METHOD.EQ(POST)", &r));
        assert!(matches(r#"HTTP.REQ.METHOD.EQ("POST")"#, &r));
        assert!(matches(r#"HTTP.REQ.HEADER("X-Tenant").EQ("blue")"#, &r));
        assert!(matches(r#"HTTP.REQ.HEADER("X-Tenant").EXISTS"#, &r));
        assert!(!matches(r#"HTTP.REQ.HEADER("X-Other").EXISTS"#, &r));
        assert!(!matches(r#"HTTP.REQ.HEADER("X-Other").CONTAINS("")"#, &r));
        let mut binary = HeaderMap::new();
        binary.insert("x-raw", http::HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let raw = head("h", "/", "GET", &binary);
        assert!(matches(r#"HTTP.REQ.HEADER("X-Raw").EXISTS"#, &raw));
        assert!(!matches(
            r#"HTTP.REQ.HEADER("X-Raw").CONTAINS("caf")"#,
            &raw
        ));
        assert!(matches(
            r#"HTTP.REQ.HOSTNAME.EQ("x") || HTTP.REQ.URL.CONTAINS("items") && !HTTP.REQ.METHOD.EQ(GET)"#,
            &r
        ));
        assert!(!matches(
            r#"(HTTP.REQ.HOSTNAME.EQ("x") || HTTP.REQ.URL.CONTAINS("items")) && HTTP.REQ.METHOD.EQ(GET)"#,
            &r
        ));
        assert!(matches("true", &r));
        assert!(!matches("false", &r));
    }

    #[test]
    fn comparisons_respect_lengths_and_fold_case_for_hosts_only() {
        let headers = HeaderMap::new();
        let r = head("a.B.example.COM", "/Caf\u{e9}?q=1", "GET", &headers);
        assert!(matches(r#"HTTP.REQ.HOSTNAME.CONTAINS("b.EXAMPLE")"#, &r));
        assert!(matches(r#"HTTP.REQ.HOSTNAME.STARTSWITH("A.b")"#, &r));
        assert!(!matches(
            r#"HTTP.REQ.HOSTNAME.ENDSWITH("xa.b.example.com")"#,
            &r
        ));
        assert!(!matches(r#"HTTP.REQ.HOSTNAME.EQ("a.b.example.co")"#, &r));
        assert!(matches("HTTP.REQ.URL.PATH.EQ(\"/Caf\u{e9}\")", &r));
        assert!(!matches("HTTP.REQ.URL.PATH.EQ(\"/caf\u{e9}\")", &r));
        assert!(matches(r#"HTTP.REQ.URL.CONTAINS("")"#, &r));
        assert!(!matches("HTTP.REQ.URL.STARTSWITH(\"/Caf\u{e9}?q=12\")", &r));
    }

    #[test]
    fn a_bad_rule_says_where_and_what_was_expected() {
        let cases = [
            (
                "HTTP.REQ.HOST.EQ(\"a\")",
                "at character 10: expected HOSTNAME, URL, URL.PATH, METHOD or HEADER(\"name\"), found `HOST.EQ(\"a\")`",
            ),
            (
                "HTTP.REQ.URL.STARTSWITH(\"/api\"",
                "at character 31: expected `)`, found the end of the rule",
            ),
            (
                "HTTP.REQ.URL.EQ(/api)",
                "at character 17: expected a string in double quotes, found `/api)`",
            ),
            (
                "HTTP.REQ.URL.EXISTS",
                "EXISTS applies to HEADER(\"name\") only",
            ),
            (
                "HTTP.REQ.URL.EQ(\"/\") and true",
                "at character 22: expected `&&`, `||` or the end of the rule, found `and true`",
            ),
            (
                "",
                "at character 1: expected `HTTP.REQ.`, `!`, `(`, `true` or `false`, found the end of the rule",
            ),
        ];
        for (rule, message) in cases {
            assert_eq!(Rule::parse(rule), Err(message.to_owned()), "{rule}");
        }
    }
}
