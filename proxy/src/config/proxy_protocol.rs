//! The PROXY protocol keys, checked: on a vserver, `proxyprotocol` and
//! `proxyprotocoltrusted` (accepting headers from the L4 balancers in front); on a
//! `servicegroup`, `proxyprotocol` and `proxyprotocoltxversion` (sending them to members).
//!
//! NetScaler sets `proxyProtocol` in a netprofile: bound to a vserver it accepts the header,
//! bound to a service it sends it. Ballast puts the same key straight on each. The trusted
//! list is Ballast's own: a header from anyone else is refused, so no client can forge its
//! address.

use super::file::ServiceGroupFile;
use super::problems::Problems;
use super::validate::state;
use crate::proxy_protocol::Version;
use crate::proxy_protocol::trust::{Block, TrustedSources};

/// A vserver's `proxyprotocol` and `proxyprotocoltrusted` (`trusted`): `Some(None)` when it
/// does not accept headers. `listens`: the vserver has a listener of its own (a
/// non-addressable lbvserver, `port = 0`, is reached through a csvserver, which reads them).
pub fn accepting(
    proxyprotocol: &Option<String>,
    trusted: &[String],
    listens: bool,
    path: &str,
    p: &mut Problems,
) -> Option<Option<TrustedSources>> {
    let enabled = state_off(proxyprotocol, &format!("{path}.proxyprotocol"), p)?;
    if enabled && !listens {
        p.add(
            format!("{path}.proxyprotocol"),
            "a non-addressable vserver (port 0) accepts no connections of its own; set \
             proxyprotocol on the csvserver in front of it"
                .to_owned(),
        );
        return None;
    }
    let trusted_path = format!("{path}.proxyprotocoltrusted");
    if !enabled {
        if !trusted.is_empty() {
            p.add(
                trusted_path,
                "has no use unless proxyprotocol = \"ENABLED\"".to_owned(),
            );
            return None;
        }
        return Some(None);
    }
    if trusted.is_empty() {
        p.add(
            trusted_path,
            "proxyprotocol = \"ENABLED\" needs the addresses or CIDR blocks of the balancers \
             that send PROXY headers (such as [\"10.0.0.0/8\"])"
                .to_owned(),
        );
        return None;
    }
    let mut blocks = Vec::new();
    let mut valid = true;
    for (index, text) in trusted.iter().enumerate() {
        match p.check(format!("{trusted_path}[{index}]"), text.parse::<Block>()) {
            Some(block) => blocks.push(block),
            None => valid = false,
        }
    }
    valid.then(|| Some(TrustedSources::new(blocks)))
}

/// A `servicegroup`'s `proxyprotocol` and `proxyprotocoltxversion`: `Some(None)` when it
/// sends no header.
pub fn sending(file: &ServiceGroupFile, path: &str, p: &mut Problems) -> Option<Option<Version>> {
    let enabled = state_off(&file.proxyprotocol, &format!("{path}.proxyprotocol"), p)?;
    let version_path = format!("{path}.proxyprotocoltxversion");
    let version = match file.proxyprotocoltxversion.as_deref() {
        None => Version::V1,
        Some(text) => match Version::ALL.iter().find(|(word, _)| *word == text) {
            Some((_, version)) => *version,
            None => {
                p.add(
                    version_path,
                    format!("unknown proxyprotocoltxversion `{text}`; expected V1 or V2"),
                );
                return None;
            }
        },
    };
    if !enabled && file.proxyprotocoltxversion.is_some() {
        p.add(
            version_path,
            "has no use unless proxyprotocol = \"ENABLED\"".to_owned(),
        );
        return None;
    }
    Some(enabled.then_some(version))
}

/// `ENABLED` or `DISABLED`, absent meaning `DISABLED`.
fn state_off(text: &Option<String>, path: &str, p: &mut Problems) -> Option<bool> {
    match text {
        None => Some(false),
        Some(_) => state(text, path, p),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::validate::from_toml;
    use crate::proxy_protocol::Version;

    const GROUP: &str = r#"
[[servicegroup]]
servicegroupname = "app"
servicetype = "TCP"
"#;

    fn problems(text: &str) -> Vec<String> {
        match from_toml(text, std::path::Path::new(".")) {
            Ok(_) => Vec::new(),
            Err(error) => error
                .problems
                .iter()
                .map(|p| format!("{}: {}", p.path, p.message))
                .collect(),
        }
    }

    fn vserver(extra: &str) -> String {
        format!(
            "{GROUP}\n[[lbvserver]]\nname = \"front\"\nservicetype = \"TCP\"\nipv46 = \"127.0.0.1\"\nport = 9000\nservicegroupname = \"app\"\n{extra}\n"
        )
    }

    #[test]
    fn off_by_default_and_read_when_enabled() {
        let config = from_toml(&vserver(""), std::path::Path::new(".")).unwrap();
        assert!(config.vservers[0].proxy_protocol.is_none());
        assert!(config.service_groups[0].proxy_protocol.is_none());

        let text = vserver(
            "proxyprotocol = \"ENABLED\"\nproxyprotocoltrusted = [\"10.0.0.0/8\", \"127.0.0.2\"]",
        )
        .replace(
            "servicetype = \"TCP\"\n\n",
            "servicetype = \"TCP\"\nproxyprotocol = \"ENABLED\"\nproxyprotocoltxversion = \"V2\"\n\n",
        );
        let config = from_toml(&text, std::path::Path::new(".")).unwrap();
        let trusted = config.vservers[0].proxy_protocol.as_ref().unwrap();
        assert!(trusted.contains("10.9.8.7".parse().unwrap()));
        assert!(trusted.contains("127.0.0.2".parse().unwrap()));
        assert!(!trusted.contains("127.0.0.1".parse().unwrap()));
        assert_eq!(config.service_groups[0].proxy_protocol, Some(Version::V2));
    }

    #[test]
    fn mistakes_are_refused_by_path() {
        assert_eq!(
            problems(&vserver("proxyprotocol = \"ENABLED\"")),
            [
                "lbvserver[0].proxyprotocoltrusted: proxyprotocol = \"ENABLED\" needs the addresses or CIDR blocks of the balancers that send PROXY headers (such as [\"10.0.0.0/8\"])"
            ]
        );
        assert_eq!(
            problems(&vserver(
                "proxyprotocol = \"ENABLED\"\nproxyprotocoltrusted = [\"10.0.0.1/8\", \"x\"]"
            )),
            [
                "lbvserver[0].proxyprotocoltrusted[0]: `10.0.0.1/8` has host bits set; the block is 10.0.0.0/8",
                "lbvserver[0].proxyprotocoltrusted[1]: `x` is not an IP address or CIDR block (such as 10.0.0.0/8)",
            ]
        );
        assert_eq!(
            problems(&vserver("proxyprotocoltrusted = [\"10.0.0.0/8\"]")),
            ["lbvserver[0].proxyprotocoltrusted: has no use unless proxyprotocol = \"ENABLED\""]
        );
        assert_eq!(
            problems(&vserver("proxyprotocol = \"YES\"")),
            ["lbvserver[0].proxyprotocol: expected ENABLED or DISABLED, got `YES`"]
        );
        let group = |extra: &str| {
            problems(&format!(
                "[[servicegroup]]\nservicegroupname = \"app\"\nservicetype = \"HTTP\"\n{extra}\n"
            ))
        };
        assert_eq!(
            group("proxyprotocol = \"ENABLED\"\nproxyprotocoltxversion = \"V3\""),
            [
                "servicegroup[0].proxyprotocoltxversion: unknown proxyprotocoltxversion `V3`; expected V1 or V2"
            ]
        );
        assert_eq!(
            group("proxyprotocoltxversion = \"V2\""),
            [
                "servicegroup[0].proxyprotocoltxversion: has no use unless proxyprotocol = \"ENABLED\""
            ]
        );
        assert!(group("proxyprotocol = \"DISABLED\"").is_empty());
        let hidden =
            vserver("proxyprotocol = \"ENABLED\"\nproxyprotocoltrusted = [\"10.0.0.0/8\"]")
                .replace(
                    "servicetype = \"TCP\"\nipv46 = \"127.0.0.1\"\nport = 9000",
                    "servicetype = \"HTTP\"\nipv46 = \"0.0.0.0\"\nport = 0",
                )
                .replace("servicetype = \"TCP\"", "servicetype = \"HTTP\"");
        assert_eq!(
            problems(&hidden),
            [
                "lbvserver[0].proxyprotocol: a non-addressable vserver (port 0) accepts no connections of its own; set proxyprotocol on the csvserver in front of it"
            ]
        );
    }
}
