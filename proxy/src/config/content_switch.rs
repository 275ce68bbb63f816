//! Content switching in the config: `[[cspolicy]]` (a named rule) and `[[csvserver]]` (a
//! listening HTTP or SSL vserver that binds policies, each with a target `lbvserver` and a
//! priority). The sections as written, their validated form and the checks between them.
//!
//! A `csvserver` shares the namespace and the addresses of the `lbvserver`s: no two vservers of
//! either kind have one name, and no two listen on one address.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::file::{FileConfig, LbVserverFile};
use super::lenient;
use super::model::ServiceType;
use super::problems::Problems;
use super::validate::{ip, name, opt_duration, opt_limit, positive, state};
use crate::content_switch::rule::Rule;

/// The highest priority a policy binding may have (NetScaler's range is 1..=2147483647).
pub const MAX_PRIORITY: i64 = 2_147_483_647;

/// `[[cspolicy]]` as written: a name and a rule (see [`crate::content_switch::rule`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CsPolicyFile {
    pub policyname: String,
    pub rule: String,
}

/// `[[csvserver]]` as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CsVserverFile {
    pub name: String,
    /// `HTTP` or `SSL`.
    pub servicetype: String,
    pub ipv46: String,
    #[serde(deserialize_with = "lenient::int")]
    pub port: i64,
    /// Certificates for `SSL`; the first is served when SNI matches none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sslcertkey: Vec<String>,
    /// Where a request no policy matches goes; absent: such a request gets `404`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaultlbvserver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Client connections this csvserver holds open at once; 0 or absent: no limit of its own.
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub maxclient: Option<i64>,
    /// Client connections one source address may hold open; 0 or absent: no limit.
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub maxclientpersource: Option<i64>,
    /// How long a client connection may stay idle before it is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clttimeout: Option<String>,
    /// `ENABLED`: connections from `proxyprotocoltrusted` sources start with a PROXY protocol
    /// header, as on an lbvserver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxyprotocol: Option<String>,
    /// The L4 balancers in front that send PROXY headers (addresses and CIDR blocks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proxyprotocoltrusted: Vec<String>,
    /// The `csvserver_cspolicy_binding`s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<CsPolicyBindingFile>,
}

/// One `csvserver_cspolicy_binding` as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CsPolicyBindingFile {
    pub policyname: String,
    pub targetlbvserver: String,
    /// Lower is evaluated first.
    #[serde(deserialize_with = "lenient::int")]
    pub priority: i64,
}

/// A validated `[[cspolicy]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsPolicy {
    pub name: String,
    pub rule: Arc<Rule>,
}

/// A validated `[[csvserver]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsVserver {
    pub name: String,
    /// `HTTP` or `SSL`.
    pub service_type: ServiceType,
    pub addr: SocketAddr,
    pub cert_keys: Vec<String>,
    pub default_lb_vserver: Option<String>,
    pub enabled: bool,
    pub max_client: Option<u32>,
    pub max_client_per_source: Option<u32>,
    pub client_timeout: Duration,
    /// `proxyprotocol = "ENABLED"`: the sources whose connections start with a PROXY header.
    pub proxy_protocol: Option<crate::proxy_protocol::trust::TrustedSources>,
    /// The bound policies, lowest priority first (the order they are evaluated in).
    pub policies: Vec<CsBinding>,
}

/// A policy bound to a csvserver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsBinding {
    pub policy: String,
    pub target: String,
    pub priority: u32,
}

/// Validates one `[[cspolicy]]` (the rule's error says where in the rule it went wrong).
pub fn cs_policy(file: &CsPolicyFile, path: &str, p: &mut Problems) -> Option<CsPolicy> {
    let name = name(&file.policyname, &format!("{path}.policyname"), p);
    let rule = p.check(format!("{path}.rule"), Rule::parse(&file.rule));
    Some(CsPolicy {
        name: name?,
        rule: Arc::new(rule?),
    })
}

/// Validates one `[[csvserver]]` on its own; [`references`] checks what it names.
pub fn cs_vserver(file: &CsVserverFile, path: &str, p: &mut Problems) -> Option<CsVserver> {
    let name = name(&file.name, &format!("{path}.name"), p);
    let service_type = match file.servicetype.as_str() {
        "HTTP" => Some(ServiceType::Http),
        "SSL" => Some(ServiceType::Ssl),
        other => {
            p.add(
                format!("{path}.servicetype"),
                format!("unknown servicetype `{other}`; a csvserver is HTTP or SSL"),
            );
            None
        }
    };
    let ip = ip(&file.ipv46, &format!("{path}.ipv46"), p);
    let port = match file.port {
        port @ 1..=65535 => Some(port as u16),
        other => {
            p.add(
                format!("{path}.port"),
                format!("expected 1..=65535, got {other}"),
            );
            None
        }
    };
    match (service_type, file.sslcertkey.is_empty()) {
        (Some(ServiceType::Ssl), true) => p.add(
            format!("{path}.sslcertkey"),
            "an SSL csvserver needs at least one sslcertkey",
        ),
        (Some(ServiceType::Http), false) => p.add(
            format!("{path}.sslcertkey"),
            "only SSL csvservers take certificates, this one is HTTP",
        ),
        _ => {}
    }
    let enabled = state(&file.state, &format!("{path}.state"), p);
    let max_client = opt_limit(file.maxclient, &format!("{path}.maxclient"), p);
    let max_client_per_source = opt_limit(
        file.maxclientpersource,
        &format!("{path}.maxclientpersource"),
        p,
    );
    let client_timeout = opt_duration(
        &file.clttimeout,
        &format!("{path}.clttimeout"),
        Duration::from_secs(180),
        p,
    )
    .and_then(|d| positive(d, &format!("{path}.clttimeout"), p));
    let proxy_protocol = super::proxy_protocol::accepting(
        &file.proxyprotocol,
        &file.proxyprotocoltrusted,
        true,
        path,
        p,
    );
    let mut policies = Vec::with_capacity(file.policies.len());
    let mut priorities = HashMap::new();
    let mut bound = HashSet::new();
    for (index, binding) in file.policies.iter().enumerate() {
        let at = format!("{path}.policies[{index}]");
        if !bound.insert(binding.policyname.as_str()) {
            p.add(
                format!("{at}.policyname"),
                format!(
                    "cspolicy `{}` is bound to this csvserver twice",
                    binding.policyname
                ),
            );
        }
        if !(1..=MAX_PRIORITY).contains(&binding.priority) {
            p.add(
                format!("{at}.priority"),
                format!("expected 1..={MAX_PRIORITY}, got {}", binding.priority),
            );
            continue;
        }
        if let Some(first) = priorities.insert(binding.priority, index) {
            p.add(
                format!("{at}.priority"),
                format!(
                    "priority {} is already taken by policies[{first}] (`{}`); each binding of a csvserver needs its own",
                    binding.priority, file.policies[first].policyname
                ),
            );
        }
        policies.push(CsBinding {
            policy: binding.policyname.clone(),
            target: binding.targetlbvserver.clone(),
            priority: binding.priority as u32,
        });
    }
    policies.sort_by_key(|b| b.priority);
    Some(CsVserver {
        name: name?,
        service_type: service_type?,
        addr: SocketAddr::new(ip?, port?),
        cert_keys: file.sslcertkey.clone(),
        default_lb_vserver: file.defaultlbvserver.clone(),
        enabled: enabled?,
        max_client: max_client?,
        max_client_per_source: max_client_per_source?,
        client_timeout: client_timeout?,
        proxy_protocol: proxy_protocol?,
        policies,
    })
}

/// What csvservers name: policies, target and default lbvservers (which must be `HTTP` or
/// `SSL`), certificates; and names shared with lbvservers. `broken` are names of elements that
/// did not even deserialize (already reported).
pub fn references(file: &FileConfig, broken: &HashSet<String>, p: &mut Problems) {
    let policies: HashSet<&str> = file
        .cspolicy
        .iter()
        .map(|c| c.policyname.as_str())
        .collect();
    let lb: HashMap<&str, &LbVserverFile> = file
        .lbvserver
        .iter()
        .map(|v| (v.name.as_str(), v))
        .collect();
    let certs: HashSet<&str> = file.sslcertkey.iter().map(|c| c.certkey.as_str()).collect();
    let target = |name: &str, path: String, p: &mut Problems| match lb.get(name) {
        None if !broken.contains(name) => {
            p.add(path, format!("no lbvserver named `{name}`"));
        }
        Some(v) if !["HTTP", "SSL"].contains(&v.servicetype.as_str()) => p.add(
            path,
            format!(
                "lbvserver `{name}` is {}; a csvserver switches to HTTP or SSL lbvservers only",
                v.servicetype
            ),
        ),
        _ => {}
    };
    for (index, cs) in file.csvserver.iter().enumerate() {
        let path = format!("csvserver[{index}]");
        if lb.contains_key(cs.name.as_str()) {
            p.add(
                format!("{path}.name"),
                format!(
                    "`{}` is already the name of an lbvserver; vservers of both kinds share one namespace",
                    cs.name
                ),
            );
        }
        if let Some(default) = &cs.defaultlbvserver {
            target(default, format!("{path}.defaultlbvserver"), p);
        }
        for (i, binding) in cs.policies.iter().enumerate() {
            let at = format!("{path}.policies[{i}]");
            if !policies.contains(binding.policyname.as_str())
                && !broken.contains(&binding.policyname)
            {
                p.add(
                    format!("{at}.policyname"),
                    format!("no cspolicy named `{}`", binding.policyname),
                );
            }
            target(&binding.targetlbvserver, format!("{at}.targetlbvserver"), p);
        }
        for (i, cert) in cs.sslcertkey.iter().enumerate() {
            if !certs.contains(cert.as_str()) && !broken.contains(cert) {
                p.add(
                    format!("{path}.sslcertkey[{i}]"),
                    format!("no sslcertkey named `{cert}`"),
                );
            }
        }
    }
}

/// The csvserver or lbvserver that binds `policy`, if any (a bound policy cannot be deleted).
pub fn policy_user(file: &FileConfig, policy: &str) -> Option<String> {
    let cs = file
        .csvserver
        .iter()
        .find(|cs| cs.policies.iter().any(|b| b.policyname == policy))?;
    Some(format!("csvserver `{}`", cs.name))
}

/// The csvserver that switches to (or defaults to) lbvserver `name`, if any.
pub fn target_user(file: &FileConfig, name: &str) -> Option<String> {
    let cs = file.csvserver.iter().find(|cs| {
        cs.defaultlbvserver.as_deref() == Some(name)
            || cs.policies.iter().any(|b| b.targetlbvserver == name)
    })?;
    Some(format!("csvserver `{}`", cs.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match super::super::validate::from_toml(text, std::path::Path::new("/tmp")) {
            Ok(_) => Vec::new(),
            Err(error) => error.problems.iter().map(ToString::to_string).collect(),
        }
    }

    const BASE: &str = r#"
[[servicegroup]]
servicegroupname = "pool"
servicetype = "HTTP"

[[lbvserver]]
name = "app"
servicetype = "HTTP"
ipv46 = "0.0.0.0"
port = 0
servicegroupname = "pool"

[[lbvserver]]
name = "db"
servicetype = "TCP"
ipv46 = "127.0.0.1"
port = 5432
servicegroupname = "tcp"

[[servicegroup]]
servicegroupname = "tcp"
servicetype = "TCP"
"#;

    #[test]
    fn a_csvserver_validates_and_orders_its_policies_by_priority() {
        let text = format!(
            r#"{BASE}
[[cspolicy]]
policyname = "api"
rule = 'HTTP.REQ.URL.STARTSWITH("/api")'

[[cspolicy]]
policyname = "shop"
rule = 'HTTP.REQ.HOSTNAME.EQ("shop.example.com")'

[[csvserver]]
name = "front"
servicetype = "HTTP"
ipv46 = "127.0.0.1"
port = 8080
defaultlbvserver = "app"
policies = [
  {{ policyname = "shop", targetlbvserver = "app", priority = 20 }},
  {{ policyname = "api", targetlbvserver = "app", priority = 10 }},
]
"#
        );
        let config = super::super::validate::from_toml(&text, std::path::Path::new("/tmp"))
            .unwrap_or_else(|e| panic!("{e}"));
        let cs = &config.cs_vservers[0];
        assert_eq!(cs.client_timeout, Duration::from_secs(180));
        let order: Vec<&str> = cs.policies.iter().map(|b| b.policy.as_str()).collect();
        assert_eq!(order, ["api", "shop"]);
        assert_eq!(
            config.vservers[0].addr.port(),
            0,
            "a non-addressable target"
        );
    }

    #[test]
    fn every_csvserver_problem_is_reported_with_its_path() {
        let text = format!(
            r#"{BASE}
[[cspolicy]]
policyname = "api"
rule = 'HTTP.REQ.URL.STARTSWITH(/api)'

[[cspolicy]]
policyname = "ok"
rule = "true"

[[csvserver]]
name = "app"
servicetype = "TCP"
ipv46 = "127.0.0.1"
port = 5432
defaultlbvserver = "db"
policies = [
  {{ policyname = "ok", targetlbvserver = "nowhere", priority = 10 }},
  {{ policyname = "missing", targetlbvserver = "app", priority = 10 }},
  {{ policyname = "ok", targetlbvserver = "app", priority = 0 }},
]
"#
        );
        assert_eq!(
            problems(&text),
            [
                "cspolicy[0].rule: at character 25: expected a string in double quotes, found `/api)`",
                "csvserver[0].servicetype: unknown servicetype `TCP`; a csvserver is HTTP or SSL",
                "csvserver[0].policies[1].priority: priority 10 is already taken by policies[0] (`ok`); each binding of a csvserver needs its own",
                "csvserver[0].policies[2].policyname: cspolicy `ok` is bound to this csvserver twice",
                "csvserver[0].policies[2].priority: expected 1..=2147483647, got 0",
                "csvserver[0].name: `app` is already the name of an lbvserver; vservers of both kinds share one namespace",
                "csvserver[0].defaultlbvserver: lbvserver `db` is TCP; a csvserver switches to HTTP or SSL lbvservers only",
                "csvserver[0].policies[0].targetlbvserver: no lbvserver named `nowhere`",
                "csvserver[0].policies[1].policyname: no cspolicy named `missing`",
                "csvserver[0].port: 127.0.0.1:5432 is already used by lbvserver `db`",
            ]
        );
    }

    #[test]
    fn port_zero_is_a_non_addressable_http_vserver_only() {
        let text = r#"
[[servicegroup]]
servicegroupname = "tcp"
servicetype = "TCP"

[[lbvserver]]
name = "app"
servicetype = "HTTP"
ipv46 = "127.0.0.1"
port = 0

[[lbvserver]]
name = "db"
servicetype = "TCP"
ipv46 = "0.0.0.0"
port = 0
servicegroupname = "tcp"

[[lbvserver]]
name = "secure"
servicetype = "SSL"
ipv46 = "0.0.0.0"
port = 0
"#;
        assert_eq!(
            problems(text),
            [
                "lbvserver[0].ipv46: port 0 makes a non-addressable vserver (reached only through a csvserver or as a backupvserver); its ipv46 must be 0.0.0.0",
                "lbvserver[1].port: only HTTP and SSL lbvservers can be non-addressable (port 0): a csvserver reaches them; this one is TCP",
            ],
            "a non-addressable SSL vserver needs no certificate: its csvserver terminates TLS"
        );
    }
}
