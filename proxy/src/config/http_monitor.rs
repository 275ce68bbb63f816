//! The `HTTP` and `HTTP-ECV` monitor keys that are not the request line or the status codes:
//! `customheaders`, `secure` and `recv`, each checked with errors that name its path.

use http::{HeaderName, HeaderValue};

use super::problems::Problems;

/// Headers Ballast writes itself: a monitor cannot set them.
const RESERVED: [&str; 4] = [
    "connection",
    "content-length",
    "transfer-encoding",
    "upgrade",
];

/// The most bytes of a body an `HTTP-ECV` probe reads, and so the longest `recv`.
pub const MAX_BODY: usize = 64 * 1024;

/// `customheaders`: `"Name: value"` lines joined by `\r\n` (or `\n`), as NetScaler writes them;
/// a trailing line break is allowed. `None` (and problems) when a line is not a header.
pub fn custom_headers(
    text: Option<&str>,
    path: &str,
    p: &mut Problems,
) -> Option<Vec<(String, String)>> {
    let Some(text) = text else {
        return Some(Vec::new());
    };
    let path = format!("{path}.customheaders");
    let mut headers = Vec::new();
    let mut valid = true;
    for line in text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)) {
        if line.is_empty() {
            continue;
        }
        match header(line) {
            Ok(header) => headers.push(header),
            Err(message) => {
                p.add(path.clone(), message);
                valid = false;
            }
        }
    }
    valid.then_some(headers)
}

fn header(line: &str) -> Result<(String, String), String> {
    let Some((name, value)) = line.split_once(':') else {
        return Err(format!(
            "`{line}` is not a header: expected \"Name: value\""
        ));
    };
    let name = name.trim();
    let value = value.trim();
    let parsed = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("`{name}` is not a valid header name"))?;
    if RESERVED.contains(&parsed.as_str()) {
        return Err(format!(
            "`{name}` is set by Ballast itself; a monitor cannot send its own"
        ));
    }
    HeaderValue::from_str(value)
        .map_err(|_| format!("the value of `{name}` has a character a header cannot carry"))?;
    Ok((name.to_owned(), value.to_owned()))
}

/// `secure`: `YES` or `NO` (the default).
pub fn secure(text: Option<&str>, path: &str, p: &mut Problems) -> Option<bool> {
    match text {
        None | Some("NO") => Some(false),
        Some("YES") => Some(true),
        Some(other) => {
            p.add(
                format!("{path}.secure"),
                format!("expected YES or NO, got `{other}`"),
            );
            None
        }
    }
}

/// `recv` of an `HTTP-ECV` monitor: required, not empty, at most [`MAX_BODY`] bytes.
pub fn recv(text: Option<&str>, path: &str, p: &mut Problems) -> Option<Option<String>> {
    let path = format!("{path}.recv");
    match text {
        None => p.add(
            path,
            "an HTTP-ECV monitor needs `recv`: the text its response body must contain",
        ),
        Some("") => p.add(path, "must not be empty"),
        Some(text) if text.len() > MAX_BODY => p.add(
            path,
            format!(
                "is {} bytes; at most {MAX_BODY} (the body bytes a probe reads)",
                text.len()
            ),
        ),
        Some(text) => return Some(Some(text.to_owned())),
    }
    None
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::validate::from_toml;
    use super::super::{Config, Probe};
    use super::*;

    fn config(monitor: &str) -> Result<Config, Vec<String>> {
        let text = format!("[[lbmonitor]]\nmonitorname = \"m\"\n{monitor}");
        from_toml(&text, Path::new("."))
            .map_err(|e| e.problems.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn an_http_ecv_monitor_becomes_a_body_probe() {
        let config = config(
            "type = \"HTTP-ECV\"\nsend = \"GET /status\"\nrecv = \"ok\"\n\
             customheaders = \"Host: app.example\\r\\n\"\nsecure = \"YES\"\n",
        )
        .expect("valid");
        let Probe::Http {
            method,
            path,
            resp_codes,
            recv,
            headers,
            secure,
        } = &config.monitors[0].probe
        else {
            panic!("not an HTTP probe");
        };
        assert_eq!((method.as_str(), path.as_str()), ("GET", "/status"));
        assert!(resp_codes.is_empty());
        assert_eq!(recv.as_deref(), Some("ok"));
        assert_eq!(
            headers,
            &vec![("Host".to_owned(), "app.example".to_owned())]
        );
        assert!(*secure);
    }

    #[test]
    fn monitor_keys_of_another_type_are_refused_by_path() {
        let problems = config("type = \"HTTP-ECV\"\nhttprequest = \"GET /\"\n").unwrap_err();
        assert!(
            problems.contains(
                &"lbmonitor[0].httprequest: a HTTP-ECV monitor does not take this field".to_owned()
            ),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("lbmonitor[0].recv: an HTTP-ECV monitor needs `recv`")),
            "{problems:?}"
        );
        let problems = config("type = \"TCP\"\ncustomheaders = \"Host: x\"\n").unwrap_err();
        assert_eq!(
            problems,
            vec!["lbmonitor[0].customheaders: a TCP monitor does not take this field".to_owned()]
        );
        let problems = config("type = \"HTTP\"\nrecv = \"ok\"\nsecure = \"maybe\"\n").unwrap_err();
        assert!(
            problems
                .contains(&"lbmonitor[0].recv: a HTTP monitor does not take this field".to_owned()),
            "{problems:?}"
        );
        assert!(
            problems.contains(&"lbmonitor[0].secure: expected YES or NO, got `maybe`".to_owned()),
            "{problems:?}"
        );
    }

    #[test]
    fn custom_headers_take_netscaler_lines() {
        let mut p = Problems::default();
        let headers = custom_headers(Some("Host: app.example\r\nX-Probe: 1\r\n"), "m", &mut p);
        assert!(p.is_empty());
        assert_eq!(
            headers.unwrap(),
            vec![
                ("Host".to_owned(), "app.example".to_owned()),
                ("X-Probe".to_owned(), "1".to_owned())
            ]
        );
    }

    #[test]
    fn bad_custom_headers_are_refused_by_path() {
        let mut p = Problems::default();
        assert!(custom_headers(Some("no colon\r\nConnection: keep-alive"), "m", &mut p).is_none());
        let text = format!("{:?}", p);
        assert!(text.contains("m.customheaders"), "{text}");
        assert!(text.contains("`no colon` is not a header"), "{text}");
        assert!(text.contains("`Connection` is set by Ballast"), "{text}");
    }

    #[test]
    fn secure_is_yes_or_no() {
        let mut p = Problems::default();
        assert_eq!(secure(Some("YES"), "m", &mut p), Some(true));
        assert_eq!(secure(None, "m", &mut p), Some(false));
        assert_eq!(secure(Some("yes please"), "m", &mut p), None);
        assert!(format!("{p:?}").contains("expected YES or NO"));
    }

    #[test]
    fn recv_is_required_and_not_empty() {
        let mut p = Problems::default();
        assert_eq!(recv(Some("ok"), "m", &mut p), Some(Some("ok".to_owned())));
        assert_eq!(recv(None, "m", &mut p), None);
        assert_eq!(recv(Some(""), "m", &mut p), None);
        assert!(format!("{p:?}").contains("m.recv"));
    }
}
