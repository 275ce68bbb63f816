//! Persistence on an `[[lbvserver]]` (NetScaler's `persistencetype`): the keys as written, the
//! validated [`Persistence`], and its checks.
//!
//! `SOURCEIP` keeps a client address (masked by `persistmask` / `v6persistmasklen`) on one
//! member for `timeout` after its last use; `COOKIEINSERT` gives HTTP clients a signed cookie
//! that names their member. The runtime side is [`crate::persistence`].

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration;
use super::file::LbVserverFile;
use super::model::ServiceType;
use super::problems::Problems;
use super::secret::{Secret, SecretForms};

/// `persistencetype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PersistenceType {
    #[default]
    None,
    SourceIp,
    CookieInsert,
}

impl PersistenceType {
    pub const ALL: [(&'static str, PersistenceType); 3] = [
        ("NONE", PersistenceType::None),
        ("SOURCEIP", PersistenceType::SourceIp),
        ("COOKIEINSERT", PersistenceType::CookieInsert),
    ];

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, kind)| *kind == self)
            .map(|(name, _)| *name)
            .expect("ALL lists every type")
    }
}

/// `timeout` as written: minutes as NetScaler writes them (`2`), or a Ballast duration
/// (`"90s"`, `"2m"`). A string of digits counts as minutes too (NITRO clients send `"2"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PersistenceTimeout {
    Minutes(i64),
    Text(String),
}

/// The longest `timeout`: NetScaler's 1440 minutes.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(1440 * 60);

/// NetScaler's default `timeout`: 2 minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// A vserver's persistence, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persistence {
    pub kind: PersistenceType,
    /// `SOURCEIP`: an entry ends this long after its last use. `COOKIEINSERT`: the cookie's
    /// lifetime (`Max-Age`); zero is a session cookie.
    pub timeout: Duration,
    /// `persistmask` as a prefix length (255.255.255.0 is 24).
    pub v4_prefix: u8,
    /// `v6persistmasklen`.
    pub v6_prefix: u8,
    /// `cookiename`.
    pub cookie_name: String,
    /// `cookiekey` (or its file or variable); `None`: a random key made when Ballast starts.
    pub cookie_key: Option<Secret>,
}

impl Persistence {
    pub fn none(vserver: &str) -> Persistence {
        Persistence {
            kind: PersistenceType::None,
            timeout: DEFAULT_TIMEOUT,
            v4_prefix: 32,
            v6_prefix: 128,
            cookie_name: default_cookie_name(vserver),
            cookie_key: None,
        }
    }
}

/// `NSC_` and the vserver's name, with the characters a cookie name cannot hold (`:` and `@`
/// of a vserver name) written as `_`.
pub fn default_cookie_name(vserver: &str) -> String {
    let name: String = vserver
        .chars()
        .map(|c| if is_token_char(c) { c } else { '_' })
        .collect();
    format!("NSC_{name}")
}

/// A `tchar` of RFC 9110 §5.6.2, which a cookie name (RFC 6265 `token`) is made of.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Checks the persistence keys of `file` (a vserver of `service_type`, `None` when that was
/// wrong already); `path` is the vserver's (`lbvserver[0]`).
pub fn persistence(
    file: &LbVserverFile,
    service_type: Option<ServiceType>,
    base_dir: &Path,
    path: &str,
    p: &mut Problems,
) -> Option<Persistence> {
    let kind_text = file.persistencetype.as_deref().unwrap_or("NONE");
    let kind = match PersistenceType::ALL.iter().find(|(w, _)| *w == kind_text) {
        Some((_, kind)) => Some(*kind),
        None => {
            p.add(
                format!("{path}.persistencetype"),
                format!(
                    "unknown persistencetype `{kind_text}`; expected one of NONE, SOURCEIP, COOKIEINSERT"
                ),
            );
            None
        }
    };
    if let (Some(PersistenceType::CookieInsert), Some(service_type)) = (kind, service_type)
        && !matches!(service_type, ServiceType::Http | ServiceType::Ssl)
    {
        p.add(
            format!("{path}.persistencetype"),
            format!(
                "COOKIEINSERT needs HTTP or SSL; a {} vserver carries no cookies (SOURCEIP works on it)",
                service_type.as_str()
            ),
        );
    }
    let timeout = timeout(file.timeout.as_ref(), &format!("{path}.timeout"), p);
    if let (Some(PersistenceType::SourceIp), Some(timeout)) = (kind, timeout)
        && timeout.is_zero()
    {
        p.add(
            format!("{path}.timeout"),
            "SOURCEIP needs a timeout longer than zero (an entry ends that long after its last use)",
        );
    }
    let v4_prefix = match &file.persistmask {
        None => Some(32),
        Some(mask) => p.check(format!("{path}.persistmask"), netmask(mask)),
    };
    let v6_prefix = match file.v6persistmasklen {
        None => Some(128),
        Some(len) if (1..=128).contains(&len) => Some(len as u8),
        Some(len) => {
            p.add(
                format!("{path}.v6persistmasklen"),
                format!("expected 1..=128, got {len}"),
            );
            None
        }
    };
    let cookie_name = match &file.cookiename {
        None => Some(default_cookie_name(&file.name)),
        Some(name) => p.check(format!("{path}.cookiename"), cookie_name(name)),
    };
    let forms = SecretForms {
        key: "cookiekey",
        inline: file.cookiekey.as_ref().map(|s| s.expose()),
        file: file.cookiekeyfile.as_deref(),
        env: file.cookiekeyenv.as_deref(),
    };
    let cookie_key = match forms.read(base_dir) {
        Ok(Some(key)) if key.expose().len() < 16 => {
            p.add(
                format!("{path}.cookiekey"),
                "must be at least 16 characters (it signs the persistence cookies)",
            );
            None
        }
        Ok(key) => Some(key),
        Err(error) => {
            p.add(format!("{path}.{}", error.key), error.message);
            None
        }
    };
    Some(Persistence {
        kind: kind?,
        timeout: timeout?,
        v4_prefix: v4_prefix?,
        v6_prefix: v6_prefix?,
        cookie_name: cookie_name?,
        cookie_key: cookie_key?,
    })
}

fn timeout(value: Option<&PersistenceTimeout>, path: &str, p: &mut Problems) -> Option<Duration> {
    let minutes = |n: i64| {
        if (0..=1440).contains(&n) {
            Ok(Duration::from_secs(n as u64 * 60))
        } else {
            Err(format!(
                "expected 0..=1440 minutes (or a duration such as \"90s\"), got {n}"
            ))
        }
    };
    let parsed = match value {
        None => Ok(DEFAULT_TIMEOUT),
        Some(PersistenceTimeout::Minutes(n)) => minutes(*n),
        Some(PersistenceTimeout::Text(text)) => match text.trim().parse::<i64>() {
            Ok(n) => minutes(n),
            Err(_) => duration::parse(text).and_then(|d| {
                if d > MAX_TIMEOUT {
                    Err(format!("`{text}` is longer than 1440 minutes (24h)"))
                } else {
                    Ok(d)
                }
            }),
        },
    };
    p.check(path, parsed)
}

/// The prefix length of a dotted IPv4 netmask (`255.255.255.0` is 24); a mask whose ones are
/// not contiguous is an error.
fn netmask(text: &str) -> Result<u8, String> {
    let mask: Ipv4Addr = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not an IPv4 netmask such as 255.255.255.0"))?;
    let bits = u32::from(mask);
    let prefix = bits.leading_ones();
    if bits.checked_shl(prefix).unwrap_or(0) != 0 || prefix == 0 {
        return Err(format!(
            "`{text}` is not a netmask: its ones must come first (255.255.255.0, not 255.0.255.0), and at least one"
        ));
    }
    Ok(prefix as u8)
}

fn cookie_name(text: &str) -> Result<String, String> {
    if text.is_empty() || text.len() > 64 || !text.chars().all(is_token_char) {
        return Err(format!(
            "`{text}` is not a valid cookie name: 1 to 64 letters, digits and !#$%&'*+-.^_`|~"
        ));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netmasks_become_prefix_lengths() {
        assert_eq!(netmask("255.255.255.255"), Ok(32));
        assert_eq!(netmask("255.255.255.0"), Ok(24));
        assert_eq!(netmask("255.128.0.0"), Ok(9));
        assert!(
            netmask("255.0.255.0")
                .unwrap_err()
                .contains("ones must come first")
        );
        assert!(netmask("0.0.0.0").is_err());
        assert!(netmask("/24").unwrap_err().contains("not an IPv4 netmask"));
    }

    #[test]
    fn default_cookie_names_are_tokens() {
        assert_eq!(default_cookie_name("web"), "NSC_web");
        assert_eq!(default_cookie_name("a:b@c#d"), "NSC_a_b_c#d");
        assert!(cookie_name("bad name").is_err());
        assert!(cookie_name("a;b").is_err());
        assert!(cookie_name("SRV").is_ok());
    }

    fn problems(vserver: &str) -> Vec<String> {
        let text =
            format!("[[lbvserver]]\nname = \"web\"\nipv46 = \"127.0.0.1\"\nport = 80\n{vserver}");
        match crate::config::validate::from_toml(&text, Path::new(".")) {
            Ok(_) => Vec::new(),
            Err(error) => error
                .problems
                .into_iter()
                .map(|p| format!("{}: {}", p.path, p.message))
                .collect(),
        }
    }

    #[test]
    fn every_problem_names_its_key() {
        let tcp = problems("servicetype = \"TCP\"\npersistencetype = \"COOKIEINSERT\"");
        assert_eq!(tcp.len(), 1, "{tcp:?}");
        assert!(
            tcp[0].starts_with("lbvserver[0].persistencetype: COOKIEINSERT needs HTTP or SSL"),
            "{tcp:?}"
        );
        assert!(problems("servicetype = \"TCP\"\npersistencetype = \"SOURCEIP\"").is_empty());
        assert!(
            problems("servicetype = \"SSL_TCP\"\nsslcertkey = []\npersistencetype = \"SOURCEIP\"")
                .iter()
                .all(|p| !p.contains("persist"))
        );
        let cases = [
            (
                "persistencetype = \"STICKY\"",
                "lbvserver[0].persistencetype: unknown persistencetype `STICKY`",
            ),
            (
                "persistencetype = \"SOURCEIP\"\ntimeout = 0",
                "lbvserver[0].timeout: SOURCEIP needs a timeout longer than zero",
            ),
            (
                "timeout = \"2 weeks\"",
                "lbvserver[0].timeout: unknown unit",
            ),
            (
                "persistmask = \"255.0.255.0\"",
                "lbvserver[0].persistmask: `255.0.255.0` is not a netmask",
            ),
            (
                "v6persistmasklen = 129",
                "lbvserver[0].v6persistmasklen: expected 1..=128",
            ),
            (
                "cookiename = \"a b\"",
                "lbvserver[0].cookiename: `a b` is not a valid cookie name",
            ),
            (
                "cookiekey = \"short\"",
                "lbvserver[0].cookiekey: must be at least 16 characters",
            ),
            (
                "cookiekey = \"0123456789abcdef\"\ncookiekeyenv = \"X\"",
                "lbvserver[0].cookiekey: give only one of cookiekey, cookiekeyfile and cookiekeyenv",
            ),
            (
                "cookiekeyenv = \"BALLAST_TEST_NO_SUCH_VARIABLE\"",
                "lbvserver[0].cookiekeyenv: environment variable BALLAST_TEST_NO_SUCH_VARIABLE is not set",
            ),
        ];
        for (keys, expected) in cases {
            let found = problems(&format!("servicetype = \"HTTP\"\n{keys}"));
            assert!(
                found.len() == 1 && found[0].starts_with(expected),
                "{keys}: {found:?}"
            );
        }
    }

    #[test]
    fn the_cookie_key_never_shows_in_debug() {
        let text = "[[lbvserver]]\nname = \"web\"\nservicetype = \"HTTP\"\nipv46 = \"127.0.0.1\"\nport = 80\npersistencetype = \"COOKIEINSERT\"\ncookiekey = \"do-not-print-this-key\"";
        let config = crate::config::validate::from_toml(text, Path::new(".")).unwrap();
        assert!(!format!("{config:?}").contains("do-not-print-this-key"));
        let persistence = &config.vservers[0].persistence;
        assert_eq!(persistence.kind, PersistenceType::CookieInsert);
        assert_eq!(persistence.cookie_name, "NSC_web");
        assert_eq!(persistence.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn the_keys_are_saved_as_they_were_written() {
        for timeout in ["timeout = 2", "timeout = \"90s\""] {
            let text = format!(
                "[[lbvserver]]\nname = \"web\"\nservicetype = \"HTTP\"\nipv46 = \"127.0.0.1\"\nport = 80\npersistencetype = \"SOURCEIP\"\n{timeout}\npersistmask = \"255.255.0.0\"\nv6persistmasklen = 64\ncookiename = \"SRV\"\ncookiekeyenv = \"PATH\"\n"
            );
            let config = crate::config::validate::from_toml(&text, Path::new(".")).unwrap();
            let saved = toml::to_string(&config.to_file()).unwrap();
            assert!(saved.contains(timeout), "{saved}");
            let again = crate::config::validate::from_toml(&saved, Path::new(".")).unwrap();
            assert_eq!(
                again.vservers[0].persistence,
                config.vservers[0].persistence
            );
        }
    }

    #[test]
    fn timeouts_in_minutes_or_durations() {
        let mut p = Problems::default();
        let t = |v: PersistenceTimeout, p: &mut Problems| timeout(Some(&v), "t", p);
        assert_eq!(
            t(PersistenceTimeout::Minutes(2), &mut p),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            t(PersistenceTimeout::Text("5".into()), &mut p),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            t(PersistenceTimeout::Text("1500ms".into()), &mut p),
            Some(Duration::from_millis(1500))
        );
        assert!(p.is_empty());
        assert_eq!(t(PersistenceTimeout::Minutes(1441), &mut p), None);
        assert_eq!(t(PersistenceTimeout::Text("25h".into()), &mut p), None);
        assert!(!p.is_empty());
    }
}
