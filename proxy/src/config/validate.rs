//! From file text to a [`Config`]: every problem reported in one pass, each with its path.
//!
//! Stage one deserializes each `[[table]]` on its own (so one broken element does not hide the
//! others); stage two checks values, ranges and cross-references.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::de::DeserializeOwned;

use super::content_switch;
use super::duration;
use super::file::{
    AdminFile, AutoscaleGroupFile, AutoscaleMetricFile, AutoscaleProfileFile, FileConfig,
    LbMetricTableFile, LbMonitorFile, LbVserverFile, MemberFile, MetricsFile, ServiceGroupFile,
    SslCertKeyFile,
};
use super::http_monitor;
use super::model::*;
use super::problems::{ConfigError, Problems};
use super::read;
use super::secret::{Secret, SecretForms, SecretSource};

/// Parses and validates config text. `base_dir` resolves relative certificate paths.
pub fn from_toml(text: &str, base_dir: &Path) -> Result<Config, ConfigError> {
    let mut problems = Problems::default();
    let (file, broken) = parse_file(text, &mut problems);
    let config = validate(&file, base_dir, &broken, &[], &mut problems);
    problems.into_result(|| config.expect("no problems means every part validated"))
}

/// Validates an already-deserialized file (an edit of the running config). `loaded` are the
/// running config's certificates: an `[[sslcertkey]]` with the same name and files keeps its
/// loaded key instead of reading the files again.
pub fn from_file(
    file: &FileConfig,
    base_dir: &Path,
    loaded: &[SslCertKey],
) -> Result<Config, ConfigError> {
    let mut problems = Problems::default();
    let config = validate(file, base_dir, &Names::default(), loaded, &mut problems);
    problems.into_result(|| config.expect("no problems means every part validated"))
}

/// Names of elements that failed to deserialize, so references to them are not reported twice.
#[derive(Debug, Default)]
struct Names(HashSet<String>);

fn parse_file(text: &str, problems: &mut Problems) -> (FileConfig, Names) {
    let mut file = FileConfig::default();
    let mut broken = Names::default();
    let table: toml::Table = match toml::from_str(text) {
        Ok(table) => table,
        Err(error) => {
            problems.add(
                "",
                format!("not valid TOML: {}", error.to_string().trim_end()),
            );
            return (file, broken);
        }
    };
    for (key, value) in table {
        match key.as_str() {
            "ballast" => file.ballast = element(&key, value, problems, &mut broken),
            "httpprofile" => file.httpprofile = element(&key, value, problems, &mut broken),
            "admin" => file.admin = element(&key, value, problems, &mut broken),
            "metrics" => file.metrics = element(&key, value, problems, &mut broken),
            "accesslog" => file.accesslog = element(&key, value, problems, &mut broken),
            "localcloud" => match value {
                toml::Value::Table(table) => file.localcloud = Some(table),
                _ => problems.add("localcloud", "expected a table, written [localcloud]"),
            },
            "lbmetrictable" => {
                file.lbmetrictable = elements(&key, "metrictable", value, problems, &mut broken)
            }
            "autoscaleprofile" => {
                file.autoscaleprofile = elements(&key, "name", value, problems, &mut broken)
            }
            "autoscalegroup" => {
                file.autoscalegroup = elements(&key, "name", value, problems, &mut broken)
            }
            "sslcertkey" => file.sslcertkey = elements(&key, "certkey", value, problems, &mut broken),
            "lbmonitor" => file.lbmonitor = elements(&key, "monitorname", value, problems, &mut broken),
            "servicegroup" => {
                file.servicegroup = elements(&key, "servicegroupname", value, problems, &mut broken)
            }
            "lbvserver" => file.lbvserver = elements(&key, "name", value, problems, &mut broken),
            "cspolicy" => file.cspolicy = elements(&key, "policyname", value, problems, &mut broken),
            "csvserver" => file.csvserver = elements(&key, "name", value, problems, &mut broken),
            other => problems.add(
                other,
                "unknown section; expected one of ballast, httpprofile, admin, metrics, accesslog, localcloud, sslcertkey, lbmonitor, \
                 servicegroup, lbvserver, cspolicy, csvserver, lbmetrictable, autoscaleprofile, autoscalegroup",
            ),
        }
    }
    (file, broken)
}

fn element<T: DeserializeOwned>(
    path: &str,
    value: toml::Value,
    problems: &mut Problems,
    _broken: &mut Names,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(parsed) => Some(parsed),
        Err(error) => {
            let inner = error.path().to_string();
            let at = if inner == "." {
                path.to_owned()
            } else {
                format!("{path}.{inner}")
            };
            problems.add(at, serde_message(&error.into_inner().to_string()));
            None
        }
    }
}

/// The first line of a deserializer error, in config words rather than Rust types.
fn serde_message(raw: &str) -> String {
    raw.lines()
        .next()
        .unwrap_or(raw)
        .trim()
        .replace("expected i64", "expected an integer")
        .replace("expected a sequence", "expected an array")
}

fn elements<T: DeserializeOwned>(
    section: &str,
    name_key: &str,
    value: toml::Value,
    problems: &mut Problems,
    broken: &mut Names,
) -> Vec<T> {
    let toml::Value::Array(items) = value else {
        problems.add(
            section,
            format!("expected an array of tables, written [[{section}]]"),
        );
        return Vec::new();
    };
    let mut parsed = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let name = item
            .get(name_key)
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        match element(&format!("{section}[{index}]"), item, problems, broken) {
            Some(value) => parsed.push(value),
            None => {
                broken.0.extend(name);
            }
        }
    }
    parsed
}

fn validate(
    file: &FileConfig,
    base_dir: &Path,
    broken: &Names,
    loaded: &[SslCertKey],
    p: &mut Problems,
) -> Option<Config> {
    let settings = settings(file, p);
    let http_profile = http_profile(file, p);
    let cert_keys = each(&file.sslcertkey, "sslcertkey", p, |ck, path, p| {
        let unchanged = loaded.iter().find(|l| {
            l.name == ck.certkey
                && l.cert_path == base_dir.join(&ck.cert)
                && l.key_path == base_dir.join(&ck.key)
        });
        match unchanged {
            Some(loaded) => Some(loaded.clone()),
            None => cert_key(ck, base_dir, path, p),
        }
    });
    let monitors = each(&file.lbmonitor, "lbmonitor", p, |m, path, p| {
        lb_monitor(m, base_dir, path, p)
    });
    let service_groups = each(&file.servicegroup, "servicegroup", p, |g, path, p| {
        service_group(g, base_dir, path, p)
    });
    let vservers = each(&file.lbvserver, "lbvserver", p, |v, path, p| {
        lb_vserver(v, base_dir, path, p)
    });
    let cs_policies = each(&file.cspolicy, "cspolicy", p, content_switch::cs_policy);
    let cs_vservers = each(&file.csvserver, "csvserver", p, content_switch::cs_vserver);
    let admin = file
        .admin
        .as_ref()
        .map(|admin| admin_settings(admin, base_dir, p));
    let metrics = file.metrics.as_ref().map(|m| metrics_settings(m, p));
    let access_log = file
        .accesslog
        .as_ref()
        .map(|log| super::accesslog::access_log_settings(log, base_dir, p));
    let metric_tables = each(&file.lbmetrictable, "lbmetrictable", p, metric_table);
    let autoscale_profiles = each(
        &file.autoscaleprofile,
        "autoscaleprofile",
        p,
        |a, path, p| autoscale_profile(a, base_dir, path, p),
    );
    let autoscale_groups = each(&file.autoscalegroup, "autoscalegroup", p, autoscale_group);

    unique(
        file.sslcertkey.iter().map(|c| c.certkey.as_str()),
        "sslcertkey",
        "certkey",
        p,
    );
    unique(
        file.lbmonitor.iter().map(|m| m.monitorname.as_str()),
        "lbmonitor",
        "monitorname",
        p,
    );
    unique(
        file.servicegroup
            .iter()
            .map(|g| g.servicegroupname.as_str()),
        "servicegroup",
        "servicegroupname",
        p,
    );
    unique(
        file.lbvserver.iter().map(|v| v.name.as_str()),
        "lbvserver",
        "name",
        p,
    );
    unique(
        file.cspolicy.iter().map(|c| c.policyname.as_str()),
        "cspolicy",
        "policyname",
        p,
    );
    unique(
        file.csvserver.iter().map(|c| c.name.as_str()),
        "csvserver",
        "name",
        p,
    );
    let tables = file.lbmetrictable.iter().map(|t| t.metrictable.as_str());
    unique(tables, "lbmetrictable", "metrictable", p);
    unique(
        file.autoscaleprofile.iter().map(|a| a.name.as_str()),
        "autoscaleprofile",
        "name",
        p,
    );
    unique(
        file.autoscalegroup.iter().map(|a| a.name.as_str()),
        "autoscalegroup",
        "name",
        p,
    );
    references(file, broken, p);
    super::member_tls::references(file, &broken.0, p);
    super::backup::backup_references(file, |name| broken.0.contains(name), p);
    autoscale_references(file, broken, p);
    load_references(file, broken, p);
    content_switch::references(file, &broken.0, p);
    port_clashes(file, p);

    Some(Config {
        source: file.clone(),
        settings: settings?,
        admin: admin.map_or(Some(None), |a| a.map(Some))?,
        metrics: metrics.map_or(Some(None), |m| m.map(Some))?,
        access_log: access_log.unwrap_or(Some(None))?,
        local_cloud: file.localcloud.clone(),
        metric_tables: metric_tables?,
        autoscale_profiles: autoscale_profiles?,
        autoscale_groups: autoscale_groups?,
        http_profile: http_profile?,
        cert_keys: cert_keys?,
        monitors: monitors?,
        service_groups: service_groups?,
        vservers: vservers?,
        cs_policies: cs_policies?,
        cs_vservers: cs_vservers?,
    })
}

/// Validates every element (so all problems are seen) and yields all of them only if each passed.
fn each<F, T>(
    items: &[F],
    section: &str,
    p: &mut Problems,
    mut one: impl FnMut(&F, &str, &mut Problems) -> Option<T>,
) -> Option<Vec<T>> {
    let results: Vec<Option<T>> = items
        .iter()
        .enumerate()
        .map(|(index, item)| one(item, &format!("{section}[{index}]"), p))
        .collect();
    results.into_iter().collect()
}

fn settings(file: &FileConfig, p: &mut Problems) -> Option<Settings> {
    let section = file.ballast.clone().unwrap_or_default();
    let workers = match section.workers {
        None | Some(0) => Some(None),
        Some(n) => p
            .check("ballast.workers", in_range(n, 0..=1024))
            .map(|n| Some(n as usize)),
    };
    let shutdown_timeout = opt_duration(
        &section.shutdowntimeout,
        "ballast.shutdowntimeout",
        Duration::from_secs(30),
        p,
    );
    let l4_relay = match section.l4relay.as_deref().unwrap_or("splice") {
        "copy" => Some(L4Relay::Copy),
        "splice" => Some(L4Relay::Splice),
        other => {
            p.add(
                "ballast.l4relay",
                format!("unknown relay `{other}`; expected copy or splice"),
            );
            None
        }
    };
    let max_conn = match section.maxconn {
        None | Some(0) => Some(None),
        Some(n) => p
            .check("ballast.maxconn", in_range(n, 0..=10_000_000))
            .map(|n| Some(n as u64)),
    };
    Some(Settings {
        workers: workers?,
        shutdown_timeout: shutdown_timeout?,
        l4_relay: l4_relay?,
        max_conn: max_conn?,
    })
}

fn http_profile(file: &FileConfig, p: &mut Problems) -> Option<HttpProfile> {
    let section = file.httpprofile.clone().unwrap_or_default();
    let max_header_len = p.check(
        "httpprofile.maxheaderlen",
        in_range(
            section.maxheaderlen.unwrap_or(32 * 1024),
            8192..=1024 * 1024,
        ),
    );
    let header_timeout = opt_duration(
        &section.clientheadertimeout,
        "httpprofile.clientheadertimeout",
        Duration::from_secs(10),
        p,
    );
    let body_timeout = opt_duration(
        &section.clientbodytimeout,
        "httpprofile.clientbodytimeout",
        Duration::from_secs(30),
        p,
    )
    .and_then(|timeout| positive(timeout, "httpprofile.clientbodytimeout", p));
    let max_streams = p.check(
        "httpprofile.maxconcurrentstreams",
        in_range(section.maxconcurrentstreams.unwrap_or(100), 1..=10_000),
    );
    Some(HttpProfile {
        max_header_len: max_header_len? as usize,
        client_header_timeout: positive(header_timeout?, "httpprofile.clientheadertimeout", p)?,
        max_concurrent_streams: max_streams? as u32,
        client_body_timeout: body_timeout?,
    })
}

fn cert_key(
    file: &SslCertKeyFile,
    base_dir: &Path,
    path: &str,
    p: &mut Problems,
) -> Option<SslCertKey> {
    let name = name(&file.certkey, &format!("{path}.certkey"), p);
    let cert_path = base_dir.join(&file.cert);
    let key_path = base_dir.join(&file.key);
    let certs = read::regular_file(&cert_path).and_then(|pem| {
        CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| format!("cannot read {}: {error}", cert_path.display()))
    });
    let certs = match certs {
        Ok(certs) if certs.is_empty() => {
            p.add(
                format!("{path}.cert"),
                format!("{} holds no PEM certificate", cert_path.display()),
            );
            None
        }
        Ok(certs) => Some(certs),
        Err(message) => {
            p.add(format!("{path}.cert"), message);
            None
        }
    };
    let key = read::regular_file(&key_path).and_then(|pem| {
        PrivateKeyDer::from_pem_slice(&pem)
            .map_err(|error| format!("cannot read {}: {error}", key_path.display()))
    });
    let key = match key {
        Ok(key) => rustls::crypto::ring::sign::any_supported_type(&key)
            .map_err(|error| {
                p.add(
                    format!("{path}.key"),
                    format!("{}: unusable private key: {error}", key_path.display()),
                )
            })
            .ok(),
        Err(message) => {
            p.add(format!("{path}.key"), message);
            None
        }
    };
    let certified = CertifiedKey::new(certs?, key?);
    if let Err(error) = certified.keys_match() {
        p.add(
            format!("{path}.key"),
            format!(
                "does not belong to the certificate in {}: {error}",
                cert_path.display()
            ),
        );
        return None;
    }
    Some(SslCertKey {
        name: name?,
        cert_path,
        key_path,
        certified: Arc::new(certified),
    })
}

fn lb_monitor(
    file: &LbMonitorFile,
    base_dir: &Path,
    path: &str,
    p: &mut Problems,
) -> Option<LbMonitor> {
    let name = name(&file.monitorname, &format!("{path}.monitorname"), p);
    let interval = opt_duration(
        &file.interval,
        &format!("{path}.interval"),
        Duration::from_secs(5),
        p,
    )
    .and_then(|d| positive(d, &format!("{path}.interval"), p));
    let resp_timeout = opt_duration(
        &file.resptimeout,
        &format!("{path}.resptimeout"),
        Duration::from_secs(2),
        p,
    )
    .and_then(|d| positive(d, &format!("{path}.resptimeout"), p));
    if let (Some(interval), Some(timeout)) = (interval, resp_timeout)
        && timeout >= interval
    {
        p.add(
            format!("{path}.resptimeout"),
            format!(
                "must be shorter than interval ({})",
                duration::format(interval)
            ),
        );
    }
    let down_time = match &file.downtime {
        None => interval,
        Some(_) => opt_duration(
            &file.downtime,
            &format!("{path}.downtime"),
            Duration::ZERO,
            p,
        )
        .and_then(|d| positive(d, &format!("{path}.downtime"), p)),
    };
    let retries = p.check(
        format!("{path}.retries"),
        in_range(file.retries.unwrap_or(3), 1..=127),
    );
    let success_retries = p.check(
        format!("{path}.successretries"),
        in_range(file.successretries.unwrap_or(1), 1..=32),
    );
    let dest_port = match file.destport {
        None => Some(None),
        Some(port) => p
            .check(format!("{path}.destport"), in_range(port, 1..=65535))
            .map(|n| Some(n as u16)),
    };
    let probe = match file.kind.as_str() {
        "TCP" => {
            reject_fields(file, path, HTTP_FIELDS, p);
            reject_fields(file, path, LOAD_FIELDS, p);
            Some(Probe::Tcp)
        }
        "HTTP" => {
            reject_fields(file, path, LOAD_FIELDS, p);
            reject_fields(file, path, &["send", "recv"], p);
            http_probe(file, path, p)
        }
        "HTTP-ECV" => {
            reject_fields(file, path, LOAD_FIELDS, p);
            reject_fields(file, path, &["httprequest", "respcode"], p);
            http_probe(file, path, p)
        }
        "LOAD" => {
            reject_fields(file, path, HTTP_FIELDS, p);
            load_probe(file, base_dir, path, p)
        }
        other => {
            p.add(
                format!("{path}.type"),
                format!("unknown monitor type `{other}`; expected TCP, HTTP, HTTP-ECV or LOAD"),
            );
            None
        }
    };
    Some(LbMonitor {
        name: name?,
        probe: probe?,
        interval: interval?,
        resp_timeout: resp_timeout?,
        retries: retries? as u32,
        success_retries: success_retries? as u32,
        down_time: down_time?,
        dest_port: dest_port?,
    })
}

/// `HTTP` (`httprequest`, `respcode`) or `HTTP-ECV` (`send`, `recv`), both with
/// `customheaders` and `secure`.
fn http_probe(file: &LbMonitorFile, path: &str, p: &mut Problems) -> Option<Probe> {
    let ecv = file.kind == "HTTP-ECV";
    let headers = http_monitor::custom_headers(file.customheaders.as_deref(), path, p);
    let secure = http_monitor::secure(file.secure.as_deref(), path, p);
    let recv = if ecv {
        http_monitor::recv(file.recv.as_deref(), path, p)
    } else {
        Some(None)
    };
    let (field, request) = if ecv {
        ("send", file.send.as_deref())
    } else {
        ("httprequest", file.httprequest.as_deref())
    };
    let request = request.unwrap_or("GET /");
    let mut words = request.split_whitespace();
    let parsed = match (words.next(), words.next(), words.next()) {
        (Some(method), Some(target), None)
            if method.bytes().all(|b| b.is_ascii_uppercase()) && target.starts_with('/') =>
        {
            Some((method.to_owned(), target.to_owned()))
        }
        _ => {
            p.add(
                format!("{path}.{field}"),
                format!("expected \"METHOD /path\" such as \"GET /healthz\", got `{request}`"),
            );
            None
        }
    };
    if ecv {
        let (method, target) = parsed?;
        return Some(Probe::Http {
            method,
            path: target,
            resp_codes: Vec::new(),
            recv: recv?,
            headers: headers?,
            secure: secure?,
        });
    }
    let codes = file
        .respcode
        .clone()
        .unwrap_or_else(|| vec!["200".to_owned()]);
    let mut resp_codes = Vec::with_capacity(codes.len());
    for (index, code) in codes.iter().enumerate() {
        if let Some(range) = p.check(format!("{path}.respcode[{index}]"), status_range(code)) {
            resp_codes.push(range);
        }
    }
    if resp_codes.len() != codes.len() {
        return None;
    }
    if resp_codes.is_empty() {
        p.add(format!("{path}.respcode"), "needs at least one status code");
        return None;
    }
    let (method, target) = parsed?;
    Some(Probe::Http {
        method,
        path: target,
        resp_codes,
        recv: recv?,
        headers: headers?,
        secure: secure?,
    })
}

fn status_range(text: &str) -> Result<RangeInclusive<u16>, String> {
    let code = |part: &str| -> Result<u16, String> {
        part.trim()
            .parse::<u16>()
            .ok()
            .filter(|code| (100..=599).contains(code))
            .ok_or_else(|| {
                format!("`{text}` is not a status code (100..=599) or a range such as \"200-299\"")
            })
    };
    match text.split_once('-') {
        Some((low, high)) => {
            let (low, high) = (code(low)?, code(high)?);
            if low > high {
                return Err(format!("range `{text}` runs backwards"));
            }
            Ok(low..=high)
        }
        None => code(text).map(|c| c..=c),
    }
}

fn service_group(
    file: &ServiceGroupFile,
    base_dir: &Path,
    path: &str,
    p: &mut Problems,
) -> Option<ServiceGroup> {
    let name = name(
        &file.servicegroupname,
        &format!("{path}.servicegroupname"),
        p,
    );
    let group_type = super::member_tls::group_type(&file.servicetype);
    if group_type.is_none() {
        p.add(
            format!("{path}.servicetype"),
            format!(
                "unknown servicetype `{}`; a servicegroup is HTTP, SSL, TCP or SSL_TCP",
                file.servicetype
            ),
        );
    }
    let backend_type = group_type.map(|(backend_type, _)| backend_type);
    let tls =
        group_type.and_then(|(_, tls)| super::member_tls::member_tls(file, tls, base_dir, path, p));
    // NetScaler's defaults: 360 s for a response head, 9000 s for an idle TCP connection.
    let default_server_timeout = match backend_type {
        Some(BackendType::Tcp) => Duration::from_secs(9000),
        _ => Duration::from_secs(360),
    };
    let server_timeout = opt_duration(
        &file.svrtimeout,
        &format!("{path}.svrtimeout"),
        default_server_timeout,
        p,
    )
    .and_then(|d| positive(d, &format!("{path}.svrtimeout"), p));
    let connect_timeout = opt_duration(
        &file.connecttimeout,
        &format!("{path}.connecttimeout"),
        Duration::from_secs(3),
        p,
    )
    .and_then(|d| positive(d, &format!("{path}.connecttimeout"), p));
    let members = each(&file.members, &format!("{path}.members"), p, member);
    let surge = super::surge::surge_settings(file, path, p);
    let mut seen = HashSet::new();
    for (index, m) in file.members.iter().enumerate() {
        if !seen.insert((m.ip.as_str(), m.port)) {
            p.add(
                format!("{path}.members[{index}]"),
                format!("{}:{} is bound twice to this servicegroup", m.ip, m.port),
            );
        }
    }
    let proxy_protocol = super::proxy_protocol::sending(file, path, p);
    Some(ServiceGroup {
        name: name?,
        backend_type: backend_type?,
        server_timeout: server_timeout?,
        connect_timeout: connect_timeout?,
        monitors: file.monitor.clone(),
        members: members?,
        tls: tls?,
        surge: surge?,
        proxy_protocol: proxy_protocol?,
    })
}

fn member(file: &MemberFile, path: &str, p: &mut Problems) -> Option<Member> {
    let ip = ip(&file.ip, &format!("{path}.ip"), p).and_then(|ip| {
        let reachable = !(ip.is_unspecified()
            || ip.is_multicast()
            || ip == IpAddr::from(std::net::Ipv4Addr::BROADCAST));
        let message = || {
            format!(
                "`{ip}` is not a member address: a member needs a unicast address to connect to"
            )
        };
        p.check(
            format!("{path}.ip"),
            reachable.then_some(ip).ok_or_else(message),
        )
    });
    let port = p.check(format!("{path}.port"), in_range(file.port, 1..=65535));
    let weight = p.check(
        format!("{path}.weight"),
        in_range(file.weight.unwrap_or(1), 1..=100),
    );
    let enabled = state(&file.state, &format!("{path}.state"), p);
    Some(Member {
        addr: SocketAddr::new(ip?, port? as u16),
        weight: weight? as u32,
        enabled: enabled?,
        autoscale: file.autoscale.clone(),
        scale_in_protection: file.scale_in_protection,
    })
}

fn lb_vserver(
    file: &LbVserverFile,
    base_dir: &Path,
    path: &str,
    p: &mut Problems,
) -> Option<LbVserver> {
    let name = name(&file.name, &format!("{path}.name"), p);
    let service_type = lookup(&file.servicetype, &ServiceType::ALL, "servicetype", path, p);
    let ip = ip(&file.ipv46, &format!("{path}.ipv46"), p);
    let port = match file.port {
        port @ 0..=65535 => Some(port as u16),
        other => {
            p.add(
                format!("{path}.port"),
                format!(
                    "expected 1..=65535, got {other} (or 0 with ipv46 0.0.0.0: a non-addressable vserver, reached through a csvserver or as a backupvserver)"
                ),
            );
            None
        }
    };
    let addressable = file.port != 0;
    if !addressable {
        non_addressable(ip, service_type, path, p);
    }
    let lb_method = lookup(
        file.lbmethod.as_deref().unwrap_or("LEASTCONNECTION"),
        &LbMethod::ALL,
        "lbmethod",
        path,
        p,
    );
    let enabled = state(&file.state, &format!("{path}.state"), p);
    let spillover = super::backup::spillover(file, path, p);
    let disable_primary_on_down = super::backup::disable_primary_on_down(file, path, p);
    let max_client = opt_limit(file.maxclient, &format!("{path}.maxclient"), p);
    let max_client_per_source = opt_limit(
        file.maxclientpersource,
        &format!("{path}.maxclientpersource"),
        p,
    );
    // NetScaler's defaults: 180 s for HTTP clients, 9000 s for TCP ones.
    let default_client_timeout = match service_type.map(ServiceType::backend_type) {
        Some(BackendType::Tcp) => Duration::from_secs(9000),
        _ => Duration::from_secs(180),
    };
    let client_timeout = opt_duration(
        &file.clttimeout,
        &format!("{path}.clttimeout"),
        default_client_timeout,
        p,
    )
    .and_then(|d| positive(d, &format!("{path}.clttimeout"), p));
    let persistence = super::persistence::persistence(file, service_type, base_dir, path, p);
    if let Some(service_type) = service_type {
        if lb_method == Some(LbMethod::UrlHash) && service_type.backend_type() == BackendType::Tcp {
            p.add(
                format!("{path}.lbmethod"),
                format!(
                    "URLHASH needs HTTP; a {} vserver has no URL",
                    service_type.as_str()
                ),
            );
        }
        match (service_type.is_tls(), file.sslcertkey.is_empty()) {
            // A non-addressable vserver does not terminate TLS: its csvserver does.
            (true, true) if addressable => p.add(
                format!("{path}.sslcertkey"),
                format!(
                    "a {} vserver needs at least one sslcertkey",
                    service_type.as_str()
                ),
            ),
            (false, false) => p.add(
                format!("{path}.sslcertkey"),
                format!(
                    "only SSL and SSL_TCP vservers take certificates, this one is {}",
                    service_type.as_str()
                ),
            ),
            _ => {}
        }
    }
    let proxy_protocol = super::proxy_protocol::accepting(
        &file.proxyprotocol,
        &file.proxyprotocoltrusted,
        addressable,
        path,
        p,
    );
    Some(LbVserver {
        name: name?,
        service_type: service_type?,
        addr: SocketAddr::new(ip?, port?),
        lb_method: lb_method?,
        service_group: file.servicegroupname.clone(),
        cert_keys: file.sslcertkey.clone(),
        enabled: enabled?,
        max_client: max_client?,
        max_client_per_source: max_client_per_source?,
        client_timeout: client_timeout?,
        proxy_protocol: proxy_protocol?,
        persistence: persistence?,
        backup: file.backupvserver.clone(),
        spillover_threshold: spillover?,
        disable_primary_on_down: disable_primary_on_down?,
    })
}

/// NetScaler's non-addressable vserver (`ipv46 = "0.0.0.0"`, `port = 0`): no listener of its
/// own; a csvserver switches requests to it.
fn non_addressable(
    ip: Option<IpAddr>,
    service_type: Option<ServiceType>,
    path: &str,
    p: &mut Problems,
) {
    if ip.is_some_and(|ip| !ip.is_unspecified()) {
        p.add(
            format!("{path}.ipv46"),
            "port 0 makes a non-addressable vserver (reached only through a csvserver or as a backupvserver); its ipv46 must be 0.0.0.0",
        );
    }
    if let Some(service_type) = service_type
        && service_type.backend_type() != BackendType::Http
    {
        p.add(
            format!("{path}.port"),
            format!(
                "only HTTP and SSL lbvservers can be non-addressable (port 0): a csvserver reaches them; this one is {}",
                service_type.as_str()
            ),
        );
    }
}

/// A connection limit: 0 or absent is no limit.
pub(super) fn opt_limit(value: Option<i64>, path: &str, p: &mut Problems) -> Option<Option<u32>> {
    match value {
        None | Some(0) => Some(None),
        Some(n) => p
            .check(path, in_range(n, 0..=10_000_000))
            .map(|n| Some(n as u32)),
    }
}

/// Cross-references: vservers → servicegroups and certificates, servicegroups → monitors.
fn references(file: &FileConfig, broken: &Names, p: &mut Problems) {
    let groups: HashMap<&str, &ServiceGroupFile> = file
        .servicegroup
        .iter()
        .map(|g| (g.servicegroupname.as_str(), g))
        .collect();
    let monitors: HashSet<&str> = file
        .lbmonitor
        .iter()
        .map(|m| m.monitorname.as_str())
        .collect();
    let certs: HashSet<&str> = file.sslcertkey.iter().map(|c| c.certkey.as_str()).collect();
    let missing = |name: &str| !broken.0.contains(name);

    for (index, vserver) in file.lbvserver.iter().enumerate() {
        let path = format!("lbvserver[{index}]");
        if let Some(group_name) = &vserver.servicegroupname {
            match groups.get(group_name.as_str()) {
                None if missing(group_name) => p.add(
                    format!("{path}.servicegroupname"),
                    format!("no servicegroup named `{group_name}`"),
                ),
                Some(group) => {
                    let wanted = ServiceType::ALL
                        .iter()
                        .find(|(word, _)| *word == vserver.servicetype)
                        .map(|(_, t)| t.backend_type());
                    let wanted_words = match wanted {
                        Some(BackendType::Http) => "an HTTP or SSL",
                        Some(BackendType::Tcp) => "a TCP or SSL_TCP",
                        None => continue,
                    };
                    let has = super::member_tls::group_type(&group.servicetype);
                    if let Some((has, _)) = has
                        && Some(has) != wanted
                    {
                        p.add(
                            format!("{path}.servicegroupname"),
                            format!(
                                "a {} vserver needs {wanted_words} servicegroup, `{group_name}` is {}",
                                vserver.servicetype, group.servicetype
                            ),
                        );
                    }
                }
                None => {}
            }
        }
        for (i, cert) in vserver.sslcertkey.iter().enumerate() {
            if !certs.contains(cert.as_str()) && missing(cert) {
                p.add(
                    format!("{path}.sslcertkey[{i}]"),
                    format!("no sslcertkey named `{cert}`"),
                );
            }
        }
    }
    for (index, group) in file.servicegroup.iter().enumerate() {
        let load_monitors = group.monitor.iter().filter(|name| {
            file.lbmonitor
                .iter()
                .any(|m| m.monitorname == **name && m.kind == "LOAD")
        });
        if load_monitors.count() > 1 {
            p.add(
                format!("servicegroup[{index}].monitor"),
                "binds more than one LOAD monitor; a member has one load",
            );
        }
        for (i, monitor) in group.monitor.iter().enumerate() {
            if !monitors.contains(monitor.as_str()) && missing(monitor) {
                p.add(
                    format!("servicegroup[{index}].monitor[{i}]"),
                    format!("no lbmonitor named `{monitor}`"),
                );
            }
        }
    }
}

/// Two vservers (lbvservers and csvservers alike) cannot listen on the same address and port (a
/// wildcard address clashes with all); a non-addressable lbvserver (port 0) listens nowhere.
fn port_clashes(file: &FileConfig, p: &mut Problems) {
    let listeners = file
        .lbvserver
        .iter()
        .enumerate()
        .map(|(i, v)| ("lbvserver", i, v.name.as_str(), v.ipv46.as_str(), v.port))
        .chain(
            file.csvserver
                .iter()
                .enumerate()
                .map(|(i, v)| ("csvserver", i, v.name.as_str(), v.ipv46.as_str(), v.port)),
        );
    let mut taken: Vec<(IpAddr, i64, &str, &str)> = Vec::new();
    for (section, index, name, ipv46, port) in listeners {
        let Ok(ip) = ipv46.parse::<IpAddr>() else {
            continue;
        };
        if port == 0 {
            continue;
        }
        if let Some((_, _, other_section, other)) =
            taken.iter().find(|(other_ip, other_port, _, _)| {
                *other_port == port
                    && (*other_ip == ip || other_ip.is_unspecified() || ip.is_unspecified())
            })
        {
            p.add(
                format!("{section}[{index}].port"),
                format!("{ipv46}:{port} is already used by {other_section} `{other}`"),
            );
        }
        taken.push((ip, port, section, name));
    }
}

fn unique<'a>(names: impl Iterator<Item = &'a str>, section: &str, key: &str, p: &mut Problems) {
    let mut seen = HashMap::new();
    for (index, name) in names.enumerate() {
        if let Some(first) = seen.insert(name, index) {
            p.add(
                format!("{section}[{index}].{key}"),
                format!("`{name}` is already the name of {section}[{first}]"),
            );
        }
    }
}

pub(super) fn name(text: &str, path: &str, p: &mut Problems) -> Option<String> {
    let ok = !text.is_empty()
        && text.len() <= 127
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:@#".contains(c));
    if !ok {
        p.add(path, format!("`{text}` is not a valid name: 1 to 127 characters of letters, digits and _ - . : @ #"));
        return None;
    }
    Some(text.to_owned())
}

pub(super) fn ip(text: &str, path: &str, p: &mut Problems) -> Option<IpAddr> {
    p.check(
        path,
        text.parse()
            .map_err(|_| format!("`{text}` is not an IPv4 or IPv6 address")),
    )
}

pub(super) fn state(text: &Option<String>, path: &str, p: &mut Problems) -> Option<bool> {
    match text.as_deref() {
        None | Some("ENABLED") => Some(true),
        Some("DISABLED") => Some(false),
        Some(other) => {
            p.add(path, format!("expected ENABLED or DISABLED, got `{other}`"));
            None
        }
    }
}

fn lookup<T: Copy>(
    text: &str,
    table: &[(&str, T)],
    key: &str,
    path: &str,
    p: &mut Problems,
) -> Option<T> {
    match table.iter().find(|(word, _)| *word == text) {
        Some((_, value)) => Some(*value),
        None => {
            let words: Vec<&str> = table.iter().map(|(word, _)| *word).collect();
            p.add(
                format!("{path}.{key}"),
                format!(
                    "unknown {key} `{text}`; expected one of {}",
                    words.join(", ")
                ),
            );
            None
        }
    }
}

fn in_range(value: i64, range: RangeInclusive<i64>) -> Result<i64, String> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "expected {}..={}, got {value}",
            range.start(),
            range.end()
        ))
    }
}

pub(super) fn opt_duration(
    text: &Option<String>,
    path: &str,
    default: Duration,
    p: &mut Problems,
) -> Option<Duration> {
    match text {
        None => Some(default),
        Some(text) => p.check(path, duration::parse(text)),
    }
}

pub(super) fn positive(value: Duration, path: &str, p: &mut Problems) -> Option<Duration> {
    if value.is_zero() {
        p.add(path, "must be longer than zero");
        None
    } else {
        Some(value)
    }
}

fn admin_settings(file: &AdminFile, base_dir: &Path, p: &mut Problems) -> Option<AdminSettings> {
    let listen = socket_addr(
        file.listen.as_deref().unwrap_or("127.0.0.1:9080"),
        "admin.listen",
        p,
    );
    let user = name(file.user.as_deref().unwrap_or("nsroot"), "admin.user", p);
    let password = match (&file.passwordenv, &file.passwordfile) {
        (Some(_), Some(_)) => {
            p.add(
                "admin.passwordfile",
                "give passwordenv or passwordfile, not both",
            );
            None
        }
        (None, Some(path)) => Some(PasswordSource::File(base_dir.join(path))),
        (env, None) => Some(PasswordSource::Env(
            env.clone()
                .unwrap_or_else(|| "BALLAST_ADMIN_PASSWORD".to_owned()),
        )),
    };
    let session_timeout = opt_duration(
        &file.sessiontimeout,
        "admin.sessiontimeout",
        Duration::from_secs(1800),
        p,
    )
    .and_then(|d| positive(d, "admin.sessiontimeout", p));
    let max_login_attempts = p.check(
        "admin.maxloginattempts",
        in_range(file.maxloginattempts.unwrap_or(5), 1..=1000),
    );
    let failed_login_timeout = opt_duration(
        &file.failedlogintimeout,
        "admin.failedlogintimeout",
        Duration::from_secs(60),
        p,
    )
    .and_then(|d| positive(d, "admin.failedlogintimeout", p));
    let policies = ReloadPolicy::ALL.map(|policy| (policy.as_str(), policy));
    let reload_policy = match &file.reloadpolicy {
        Some(text) => lookup(text, &policies, "reloadpolicy", "admin", p),
        None => Some(ReloadPolicy::default()),
    };
    Some(AdminSettings {
        listen: listen?,
        user: user?,
        password: password?,
        session_timeout: session_timeout?,
        max_login_attempts: max_login_attempts? as u32,
        failed_login_timeout: failed_login_timeout?,
        save_path: file.saveconfig.as_ref().map(|path| base_dir.join(path)),
        reload_policy: reload_policy?,
    })
}

fn metrics_settings(file: &MetricsFile, p: &mut Problems) -> Option<MetricsSettings> {
    let listen = socket_addr(
        file.listen.as_deref().unwrap_or("127.0.0.1:9464"),
        "metrics.listen",
        p,
    );
    Some(MetricsSettings { listen: listen? })
}

fn socket_addr(text: &str, path: &str, p: &mut Problems) -> Option<SocketAddr> {
    p.check(
        path,
        text.parse()
            .map_err(|_| format!("`{text}` is not an address such as 127.0.0.1:9080")),
    )
}

fn metric_table(file: &LbMetricTableFile, path: &str, p: &mut Problems) -> Option<LbMetricTable> {
    let table_name = name(&file.metrictable, &format!("{path}.metrictable"), p);
    let metrics = each(
        &file.metrics,
        &format!("{path}.metrics"),
        p,
        |m, path, p| {
            let metric_name = name(&m.metric, &format!("{path}.metric"), p);
            let oid = p.check(format!("{path}.snmpoid"), oid(&m.snmpoid));
            let kind = match m.kind.as_deref().unwrap_or("gauge") {
                "integer" => Some(MetricKind::Integer),
                "gauge" => Some(MetricKind::Gauge),
                "counter" => Some(MetricKind::Counter),
                "string" => Some(MetricKind::String),
                other => {
                    p.add(
                    format!("{path}.type"),
                    format!("unknown metric type `{other}`; expected integer, gauge, counter or string"),
                );
                    None
                }
            };
            Some(TableMetric {
                name: metric_name?,
                oid: oid?,
                kind: kind?,
            })
        },
    );
    unique(
        file.metrics.iter().map(|m| m.metric.as_str()),
        &format!("{path}.metrics"),
        "metric",
        p,
    );
    Some(LbMetricTable {
        name: table_name?,
        metrics: metrics?,
    })
}

fn oid(text: &str) -> Result<Vec<u32>, String> {
    let arcs: Option<Vec<u32>> = text
        .trim_start_matches('.')
        .split('.')
        .map(|arc| arc.parse().ok())
        .collect();
    match arcs {
        Some(arcs) if arcs.len() >= 2 && arcs[0] <= 2 => Ok(arcs),
        _ => Err(format!(
            "`{text}` is not a numeric OID such as 1.3.6.1.4.1.2021.11.9.0"
        )),
    }
}

fn autoscale_profile(
    file: &AutoscaleProfileFile,
    base_dir: &Path,
    path: &str,
    p: &mut Problems,
) -> Option<AutoscaleProfile> {
    let profile_name = name(&file.name, &format!("{path}.name"), p);
    if let Some(kind) = file.kind.as_deref()
        && kind != "CLOUDSTACK"
    {
        p.add(
            format!("{path}.type"),
            format!("unknown type `{kind}`; the only cloud type is CLOUDSTACK"),
        );
    }
    let url = one_of(
        SecretForms {
            key: "url",
            inline: file.url.as_deref(),
            file: file.urlfile.as_deref(),
            env: file.urlenv.as_deref(),
        },
        base_dir,
        path,
        p,
    )
    .map(|url| url.expose().trim().to_owned());
    let url = url.filter(|url| {
        let ok = (url.starts_with("http://") || url.starts_with("https://")) && url.len() > 8;
        if !ok {
            let key = if file.url.is_some() {
                "url"
            } else if file.urlfile.is_some() {
                "urlfile"
            } else {
                "urlenv"
            };
            p.add(
                format!("{path}.{key}"),
                format!("`{url}` is not an http:// or https:// URL"),
            );
        }
        ok
    });
    let api_key = one_of(
        SecretForms {
            key: "apikey",
            inline: file.apikey.as_deref(),
            file: file.apikeyfile.as_deref(),
            env: file.apikeyenv.as_deref(),
        },
        base_dir,
        path,
        p,
    );
    let secret = one_of(
        SecretForms {
            key: "sharedsecret",
            inline: file.sharedsecret.as_ref().map(|s| s.expose()),
            file: file.sharedsecretfile.as_deref(),
            env: file.sharedsecretenv.as_deref(),
        },
        base_dir,
        path,
        p,
    );
    for (key, value) in [
        ("zoneid", &file.zoneid),
        ("templateid", &file.templateid),
        ("serviceofferingid", &file.serviceofferingid),
    ] {
        if value.trim().is_empty() {
            p.add(format!("{path}.{key}"), "must not be empty");
        }
    }
    let member_port = p.check(
        format!("{path}.memberport"),
        in_range(file.memberport, 1..=65535),
    );
    Some(AutoscaleProfile {
        name: profile_name?,
        url: url?,
        api_key: api_key?.expose().to_owned(),
        secret: secret?,
        zone_id: file.zoneid.clone(),
        template_id: file.templateid.clone(),
        service_offering_id: file.serviceofferingid.clone(),
        network_ids: file.networkids.clone(),
        member_port: member_port? as u16,
    })
}

/// A value given in exactly one of three ways (the endpoint: `url`, `urlfile`, `urlenv`; the
/// API key: `apikey`, `apikeyfile`, `apikeyenv`; the secret key: `sharedsecret`,
/// `sharedsecretfile`, `sharedsecretenv`): inline, the first line of a file (relative to the
/// config's directory), or an environment variable. Read now, so a missing file or variable is
/// a problem.
fn one_of(forms: SecretForms<'_>, base_dir: &Path, path: &str, p: &mut Problems) -> Option<Secret> {
    if forms.given() != 1 {
        let key = forms.key;
        p.add(
            path,
            format!("give exactly one of {key}, {key}file, {key}env"),
        );
        return None;
    }
    forms
        .read(base_dir)
        .map_err(|error| p.add(format!("{path}.{}", error.key), error.message))
        .ok()
        .flatten()
}

/// An optional secret field in any of its three forms (see [`SecretForms`]): `Some(None)` when
/// none is given, `None` after a problem.
fn optional_secret(
    forms: SecretForms<'_>,
    base_dir: &Path,
    path: &str,
    p: &mut Problems,
) -> Option<Option<Secret>> {
    forms
        .read(base_dir)
        .map_err(|error| p.add(format!("{path}.{}", error.key), error.message))
        .ok()
}

fn autoscale_group(
    file: &AutoscaleGroupFile,
    path: &str,
    p: &mut Problems,
) -> Option<AutoscaleGroup> {
    let group_name = name(&file.name, &format!("{path}.name"), p);
    // At least one member: with none, no member reports a load, so the group could never
    // scale out again.
    let min = p.check(
        format!("{path}.minmembers"),
        in_range(file.minmembers, 1..=1000),
    );
    let max = p.check(
        format!("{path}.maxmembers"),
        in_range(file.maxmembers, 1..=1000),
    );
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        p.add(
            format!("{path}.maxmembers"),
            format!("must be at least minmembers ({min})"),
        );
    }
    let mut duration = |key: &str, value: &Option<String>, default: u64, zero_ok: bool| {
        let at = format!("{path}.{key}");
        let parsed = opt_duration(value, &at, Duration::from_secs(default), p);
        if zero_ok {
            parsed
        } else {
            parsed.and_then(|d| positive(d, &at, p))
        }
    };
    let interval = duration("interval", &file.interval, 10, false);
    let watch_time = duration("watchtime", &file.watchtime, 60, true);
    let cooldown = duration("cooldown", &file.cooldown, 120, true);
    let quiet_time = duration("quiettime", &file.quiettime, 60, true);
    let destroy_grace_period = duration("destroygraceperiod", &file.destroygraceperiod, 0, true);
    let warmup = duration("warmup", &file.warmup, 30, true);
    let health_grace_period = duration("healthgraceperiod", &file.healthgraceperiod, 60, true);
    let deploy_timeout = duration("deploytimeout", &file.deploytimeout, 600, false);
    let step = p.check(
        format!("{path}.step"),
        in_range(file.step.unwrap_or(1), 1..=100),
    );
    let victim = match file.victim.as_deref().unwrap_or("newest") {
        "newest" => Some(Victim::Newest),
        "oldest" => Some(Victim::Oldest),
        "leastconnections" => Some(Victim::LeastConnections),
        other => {
            p.add(
                format!("{path}.victim"),
                format!("unknown victim `{other}`; expected newest, oldest or leastconnections"),
            );
            None
        }
    };
    let enabled = state(&file.state, &format!("{path}.state"), p);
    if file.metrics.is_empty() {
        p.add(
            format!("{path}.metrics"),
            "needs at least one metric to scale on",
        );
    }
    let metrics = each(&file.metrics, &format!("{path}.metrics"), p, scaling_metric);
    if !file.metrics.is_empty() {
        if !file.metrics.iter().any(|m| m.upper.is_some()) {
            p.add(
                format!("{path}.metrics"),
                "no metric has an upper threshold, so the group could never scale out",
            );
        }
        if !file.metrics.iter().any(|m| m.lower.is_some()) {
            p.add(
                format!("{path}.metrics"),
                "no metric has a lower threshold, so the group could never scale in",
            );
        }
    }
    Some(AutoscaleGroup {
        name: group_name?,
        vserver: file.vserver.clone(),
        service_group: file.servicegroupname.clone(),
        profile: file.profilename.clone(),
        min_members: min? as u32,
        max_members: max? as u32,
        interval: interval?,
        watch_time: watch_time?,
        cooldown: cooldown?,
        quiet_time: quiet_time?,
        destroy_grace_period: destroy_grace_period?,
        warmup: warmup?,
        health_grace_period: health_grace_period?,
        step: step? as u32,
        victim: victim?,
        enabled: enabled?,
        observe: file.observe.unwrap_or(false),
        deploy_timeout: deploy_timeout?,
        metrics: metrics?,
    })
}

fn scaling_metric(
    file: &AutoscaleMetricFile,
    path: &str,
    p: &mut Problems,
) -> Option<ScalingMetric> {
    let metric_name = name(&file.name, &format!("{path}.name"), p);
    let source = match file.source.as_str() {
        "snmp" => Some(MetricSource::Snmp),
        "connections" => Some(MetricSource::Connections),
        "requestrate" => Some(MetricSource::RequestRate),
        "responsetime" => Some(MetricSource::ResponseTime),
        other => {
            p.add(
                format!("{path}.source"),
                format!("unknown source `{other}`; expected snmp, connections, requestrate or responsetime"),
            );
            None
        }
    };
    match (file.upper, file.lower) {
        (None, None) => p.add(path, "needs an upper or a lower threshold (or both)"),
        (Some(upper), Some(lower)) if lower >= upper => p.add(
            format!("{path}.lower"),
            format!("must be below upper ({upper})"),
        ),
        _ => {}
    }
    for (key, value) in [("upper", file.upper), ("lower", file.lower)] {
        if value.is_some_and(|v| v < 0.0) {
            p.add(format!("{path}.{key}"), "must not be negative");
        }
    }
    Some(ScalingMetric {
        name: metric_name?,
        source: source?,
        upper: file.upper,
        lower: file.lower,
    })
}

/// Autoscale groups name a vserver bound to their servicegroup, a profile, and SNMP metrics that
/// the metric table of the servicegroup's LOAD monitor defines; a servicegroup has one scaler.
fn autoscale_references(file: &FileConfig, broken: &Names, p: &mut Problems) {
    let missing = |name: &str| !broken.0.contains(name);
    let mut claimed: HashMap<&str, usize> = HashMap::new();
    for (index, group) in file.autoscalegroup.iter().enumerate() {
        let path = format!("autoscalegroup[{index}]");
        match file.lbvserver.iter().find(|v| v.name == group.vserver) {
            None if missing(&group.vserver) => p.add(
                format!("{path}.vserver"),
                format!("no lbvserver named `{}`", group.vserver),
            ),
            Some(vserver)
                if vserver.servicegroupname.as_deref() != Some(group.servicegroupname.as_str()) =>
            {
                p.add(
                    format!("{path}.servicegroupname"),
                    format!(
                        "lbvserver `{}` is not bound to servicegroup `{}`",
                        group.vserver, group.servicegroupname
                    ),
                )
            }
            _ => {}
        }
        if !file
            .servicegroup
            .iter()
            .any(|g| g.servicegroupname == group.servicegroupname)
            && missing(&group.servicegroupname)
        {
            p.add(
                format!("{path}.servicegroupname"),
                format!("no servicegroup named `{}`", group.servicegroupname),
            );
        }
        if let Some(other) = claimed.insert(&group.servicegroupname, index) {
            p.add(
                format!("{path}.servicegroupname"),
                format!(
                    "servicegroup `{}` is already scaled by autoscalegroup[{other}]",
                    group.servicegroupname
                ),
            );
        }
        if !file
            .autoscaleprofile
            .iter()
            .any(|a| a.name == group.profilename)
            && missing(&group.profilename)
        {
            p.add(
                format!("{path}.profilename"),
                format!("no autoscaleprofile named `{}`", group.profilename),
            );
        }
        snmp_metric_references(file, group, &path, p);
    }
}

/// An autoscale metric with `source = "snmp"` reads a metric of the LOAD monitor bound to the
/// group's servicegroup, so that monitor's table must have it. A missing servicegroup, monitor
/// or table is reported elsewhere.
fn snmp_metric_references(
    file: &FileConfig,
    group: &AutoscaleGroupFile,
    path: &str,
    p: &mut Problems,
) {
    let snmp = group
        .metrics
        .iter()
        .enumerate()
        .filter(|(_, m)| m.source == "snmp");
    let Some(service_group) = file
        .servicegroup
        .iter()
        .find(|g| g.servicegroupname == group.servicegroupname)
    else {
        return;
    };
    let load_monitor = service_group.monitor.iter().find_map(|name| {
        file.lbmonitor
            .iter()
            .find(|m| m.monitorname == *name && m.kind == "LOAD")
    });
    let Some(monitor) = load_monitor else {
        for (i, metric) in snmp {
            p.add(
                format!("{path}.metrics[{i}].source"),
                format!(
                    "servicegroup `{}` binds no LOAD monitor to read snmp metric `{}` from",
                    group.servicegroupname, metric.name
                ),
            );
        }
        return;
    };
    let table_name = monitor.metrictable.as_deref().unwrap_or("linux");
    let names: Vec<&str> = if table_name == "linux" {
        LINUX_TABLE_METRICS.to_vec()
    } else {
        match file
            .lbmetrictable
            .iter()
            .find(|t| t.metrictable == table_name)
        {
            Some(table) => table.metrics.iter().map(|m| m.metric.as_str()).collect(),
            None => return,
        }
    };
    for (i, metric) in snmp {
        if !names.contains(&metric.name.as_str()) {
            p.add(
                format!("{path}.metrics[{i}].name"),
                format!(
                    "metric table `{table_name}` of LOAD monitor `{}` has no metric `{}`; it has {}",
                    monitor.monitorname,
                    metric.name,
                    names.join(", ")
                ),
            );
        }
    }
}

/// Fields only `HTTP` and `HTTP-ECV` monitors take.
const HTTP_FIELDS: &[&str] = &[
    "httprequest",
    "respcode",
    "send",
    "recv",
    "customheaders",
    "secure",
];

/// Fields only a `LOAD` monitor takes.
const LOAD_FIELDS: &[&str] = &[
    "snmpversion",
    "snmpcommunity",
    "snmpcommunityfile",
    "snmpcommunityenv",
    "snmpv3user",
    "snmpauthprotocol",
    "snmpauthpassword",
    "snmpauthpasswordfile",
    "snmpauthpasswordenv",
    "snmpprivprotocol",
    "snmpprivpassword",
    "snmpprivpasswordfile",
    "snmpprivpasswordenv",
    "metrictable",
    "metrics",
    "passive",
];

/// Reports each of `fields` that `file` sets, as not taken by its monitor type.
fn reject_fields(file: &LbMonitorFile, path: &str, fields: &[&str], p: &mut Problems) {
    let set = |field: &str| match field {
        "httprequest" => file.httprequest.is_some(),
        "respcode" => file.respcode.is_some(),
        "send" => file.send.is_some(),
        "recv" => file.recv.is_some(),
        "customheaders" => file.customheaders.is_some(),
        "secure" => file.secure.is_some(),
        "snmpversion" => file.snmpversion.is_some(),
        "snmpcommunity" => file.snmpcommunity.is_some(),
        "snmpcommunityfile" => file.snmpcommunityfile.is_some(),
        "snmpcommunityenv" => file.snmpcommunityenv.is_some(),
        "snmpv3user" => file.snmpv3user.is_some(),
        "snmpauthprotocol" => file.snmpauthprotocol.is_some(),
        "snmpauthpassword" => file.snmpauthpassword.is_some(),
        "snmpauthpasswordfile" => file.snmpauthpasswordfile.is_some(),
        "snmpauthpasswordenv" => file.snmpauthpasswordenv.is_some(),
        "snmpprivprotocol" => file.snmpprivprotocol.is_some(),
        "snmpprivpassword" => file.snmpprivpassword.is_some(),
        "snmpprivpasswordfile" => file.snmpprivpasswordfile.is_some(),
        "snmpprivpasswordenv" => file.snmpprivpasswordenv.is_some(),
        "metrictable" => file.metrictable.is_some(),
        "metrics" => !file.metrics.is_empty(),
        "passive" => file.passive.is_some(),
        _ => false,
    };
    for field in fields.iter().filter(|f| set(f)) {
        p.add(
            format!("{path}.{field}"),
            format!("a {} monitor does not take this field", file.kind),
        );
    }
}

/// SNMP auth protocol names, as net-snmp's `-a` spells them.
pub const SNMP_AUTH_PROTOCOLS: [&str; 5] = ["SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512"];
/// SNMP privacy protocol names, as net-snmp's `-x` spells them (`-C`: Cisco/Reeder key extension).
pub const SNMP_PRIV_PROTOCOLS: [&str; 5] = ["AES", "AES-192", "AES-256", "AES-192-C", "AES-256-C"];

/// The three forms of a `LOAD` monitor's community.
fn community_forms(file: &LbMonitorFile) -> SecretForms<'_> {
    SecretForms {
        key: "snmpcommunity",
        inline: file.snmpcommunity.as_ref().map(|c| c.expose()),
        file: file.snmpcommunityfile.as_deref(),
        env: file.snmpcommunityenv.as_deref(),
    }
}

fn load_probe(
    file: &LbMonitorFile,
    base_dir: &Path,
    path: &str,
    p: &mut Problems,
) -> Option<Probe> {
    let v3_fields = [
        ("snmpv3user", file.snmpv3user.is_some()),
        ("snmpauthprotocol", file.snmpauthprotocol.is_some()),
        ("snmpauthpassword", file.snmpauthpassword.is_some()),
        ("snmpauthpasswordfile", file.snmpauthpasswordfile.is_some()),
        ("snmpauthpasswordenv", file.snmpauthpasswordenv.is_some()),
        ("snmpprivprotocol", file.snmpprivprotocol.is_some()),
        ("snmpprivpassword", file.snmpprivpassword.is_some()),
        ("snmpprivpasswordfile", file.snmpprivpasswordfile.is_some()),
        ("snmpprivpasswordenv", file.snmpprivpasswordenv.is_some()),
    ];
    let security = match file.snmpversion.as_deref().unwrap_or("V2") {
        version @ ("V1" | "V2") => {
            for (field, _) in v3_fields.iter().filter(|(_, set)| *set) {
                p.add(
                    format!("{path}.{field}"),
                    format!("only snmpversion V3 takes this field, not {version}"),
                );
            }
            optional_secret(community_forms(file), base_dir, path, p).map(|community| {
                let community = community
                    .unwrap_or_else(|| Secret::inline("public").expect("`public` is not empty"));
                if version == "V1" {
                    SnmpSecurity::V1 { community }
                } else {
                    SnmpSecurity::V2c { community }
                }
            })
        }
        "V3" => v3_security(file, base_dir, path, p),
        other => {
            p.add(
                format!("{path}.snmpversion"),
                format!("unknown snmpversion `{other}`; expected V1, V2 or V3"),
            );
            None
        }
    };
    let mut metrics = Vec::with_capacity(file.metrics.len());
    for (index, metric) in file.metrics.iter().enumerate() {
        let at = format!("{path}.metrics[{index}]");
        if metric.metricthreshold.is_some_and(|t| t <= 0.0) {
            p.add(format!("{at}.metricthreshold"), "must be above zero");
        }
        let weight = metric.metricweight.unwrap_or(1.0);
        if weight <= 0.0 {
            p.add(format!("{at}.metricweight"), "must be above zero");
        }
        metrics.push(MonitorMetric {
            metric: metric.metric.clone(),
            threshold: metric.metricthreshold,
            weight,
        });
    }
    Some(Probe::Load(LoadProbe {
        security: security?,
        table: file
            .metrictable
            .clone()
            .unwrap_or_else(|| "linux".to_owned()),
        metrics,
        passive: file.passive.unwrap_or(false),
    }))
}

fn v3_security(
    file: &LbMonitorFile,
    base_dir: &Path,
    path: &str,
    p: &mut Problems,
) -> Option<SnmpSecurity> {
    if community_forms(file).given() > 0 {
        let key = match (&file.snmpcommunityfile, &file.snmpcommunityenv) {
            (Some(_), _) => "snmpcommunityfile",
            (None, Some(_)) => "snmpcommunityenv",
            (None, None) => "snmpcommunity",
        };
        p.add(
            format!("{path}.{key}"),
            "snmpversion V3 authenticates a user, not a community",
        );
    }
    let user = file.snmpv3user.clone();
    if user.is_none() {
        p.add(format!("{path}.snmpv3user"), "snmpversion V3 needs a user");
    }
    let mut pair =
        |protocol: &Option<String>, password: SecretForms<'_>, names: &[&str], what: &str| match (
            protocol,
            optional_secret(password, base_dir, path, p)?,
        ) {
            (None, None) => Some(None),
            (Some(protocol), Some(password)) => {
                let mut ok = true;
                if !names.contains(&protocol.as_str()) {
                    p.add(
                        format!("{path}.snmp{what}protocol"),
                        format!(
                            "unknown protocol `{protocol}`; expected one of {}",
                            names.join(", ")
                        ),
                    );
                    ok = false;
                }
                if password.expose().len() < 8 {
                    let form = match password.source() {
                        SecretSource::Inline => "",
                        SecretSource::File(_) => "file",
                        SecretSource::Env(_) => "env",
                    };
                    p.add(
                        format!("{path}.snmp{what}password{form}"),
                        "must be at least 8 characters (as net-snmp requires)",
                    );
                    ok = false;
                }
                ok.then(|| Some((protocol.clone(), password)))
            }
            _ => {
                p.add(
                    format!("{path}.snmp{what}protocol"),
                    format!("give both snmp{what}protocol and snmp{what}password"),
                );
                None
            }
        };
    let auth = pair(
        &file.snmpauthprotocol,
        SecretForms {
            key: "snmpauthpassword",
            inline: file.snmpauthpassword.as_ref().map(|s| s.expose()),
            file: file.snmpauthpasswordfile.as_deref(),
            env: file.snmpauthpasswordenv.as_deref(),
        },
        &SNMP_AUTH_PROTOCOLS,
        "auth",
    );
    let privacy = pair(
        &file.snmpprivprotocol,
        SecretForms {
            key: "snmpprivpassword",
            inline: file.snmpprivpassword.as_ref().map(|s| s.expose()),
            file: file.snmpprivpasswordfile.as_deref(),
            env: file.snmpprivpasswordenv.as_deref(),
        },
        &SNMP_PRIV_PROTOCOLS,
        "priv",
    );
    if let (Some(None), Some(Some(_))) = (&auth, &privacy) {
        p.add(
            format!("{path}.snmpprivprotocol"),
            "privacy needs authentication too (USM has no noAuthPriv)",
        );
        return None;
    }
    Some(SnmpSecurity::V3 {
        user: user?,
        auth: auth?,
        privacy: privacy?,
    })
}

/// LOAD monitors name an existing metric table, and metrics that table defines.
fn load_references(file: &FileConfig, broken: &Names, p: &mut Problems) {
    for (index, monitor) in file
        .lbmonitor
        .iter()
        .enumerate()
        .filter(|(_, m)| m.kind == "LOAD")
    {
        let path = format!("lbmonitor[{index}]");
        let table_name = monitor.metrictable.as_deref().unwrap_or("linux");
        let names: Vec<&str> = if table_name == "linux" {
            LINUX_TABLE_METRICS.to_vec()
        } else {
            match file
                .lbmetrictable
                .iter()
                .find(|t| t.metrictable == table_name)
            {
                Some(table) => table.metrics.iter().map(|m| m.metric.as_str()).collect(),
                None => {
                    if !broken.0.contains(table_name) {
                        p.add(
                            format!("{path}.metrictable"),
                            format!("no lbmetrictable named `{table_name}` (built-in: linux)"),
                        );
                    }
                    continue;
                }
            }
        };
        for (i, metric) in monitor.metrics.iter().enumerate() {
            if !names.contains(&metric.metric.as_str()) {
                p.add(
                    format!("{path}.metrics[{i}].metric"),
                    format!(
                        "metric table `{table_name}` has no metric `{}`; it has {}",
                        metric.metric,
                        names.join(", ")
                    ),
                );
            }
        }
    }
}

/// Every metric name the built-in `linux` table publishes.
pub const LINUX_TABLE_METRICS: [&str; 8] = [
    "cpu",
    "memory",
    "load",
    "cpu_user",
    "cpu_system",
    "cpu_idle",
    "mem_total_kb",
    "mem_avail_kb",
];
