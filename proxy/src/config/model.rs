//! The validated config: typed values that the rest of Ballast can trust.
//!
//! Nothing here can be out of range or dangling; [`super::validate`] is the only way to build
//! one from a file, and [`Config::to_file`] writes it back.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::sign::CertifiedKey;

use super::duration;
use super::file::{
    BallastFile, FileConfig, HttpProfileFile, LbMonitorFile, LbVserverFile, MemberFile,
    ServiceGroupFile, SslCertKeyFile,
};

/// A whole validated config.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    pub http_profile: HttpProfile,
    pub cert_keys: Vec<SslCertKey>,
    pub monitors: Vec<LbMonitor>,
    pub service_groups: Vec<ServiceGroup>,
    pub vservers: Vec<LbVserver>,
}

/// `[ballast]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Runtime worker threads; `None` means one per CPU.
    pub workers: Option<usize>,
    pub shutdown_timeout: Duration,
}

/// `[httpprofile]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpProfile {
    /// Largest request head (request line and headers) in bytes; more gets `431`.
    pub max_header_len: usize,
    /// A client must send its whole request head within this time; an idle HTTP/1.1 keep-alive
    /// connection must start its next request within it too.
    pub client_header_timeout: Duration,
}

/// `[[sslcertkey]]`, with the certificate chain and key already loaded.
#[derive(Debug, Clone)]
pub struct SslCertKey {
    pub name: String,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub certified: Arc<CertifiedKey>,
}

/// `[[lbmonitor]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbMonitor {
    pub name: String,
    pub probe: Probe,
    pub interval: Duration,
    pub resp_timeout: Duration,
    /// Consecutive failures that mark a member DOWN.
    pub retries: u32,
    /// Consecutive successes that mark a DOWN member UP again.
    pub success_retries: u32,
    /// Probe interval while a member is DOWN.
    pub down_time: Duration,
    /// Probe this port instead of the member's own.
    pub dest_port: Option<u16>,
}

/// What a monitor sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A TCP connect that succeeds within `resptimeout`.
    Tcp,
    /// An HTTP/1.1 request whose status code is in one of `resp_codes`.
    Http {
        method: String,
        path: String,
        resp_codes: Vec<RangeInclusive<u16>>,
    },
}

/// Whether a servicegroup speaks HTTP to its members or relays bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendType {
    Http,
    Tcp,
}

/// `[[servicegroup]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceGroup {
    pub name: String,
    pub backend_type: BackendType,
    /// How long a member may take to send its response head before the client gets `504`.
    pub server_timeout: Duration,
    pub connect_timeout: Duration,
    pub monitors: Vec<String>,
    pub members: Vec<Member>,
}

/// A bound member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub addr: SocketAddr,
    pub weight: u32,
    /// `false` (`state = "DISABLED"`) drains the member: no new traffic, in-flight work finishes.
    pub enabled: bool,
}

/// `servicetype` of a vserver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceType {
    Http,
    Ssl,
    Tcp,
    SslTcp,
}

impl ServiceType {
    pub const ALL: [(&'static str, ServiceType); 4] = [
        ("HTTP", ServiceType::Http),
        ("SSL", ServiceType::Ssl),
        ("TCP", ServiceType::Tcp),
        ("SSL_TCP", ServiceType::SslTcp),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::Http => "HTTP",
            ServiceType::Ssl => "SSL",
            ServiceType::Tcp => "TCP",
            ServiceType::SslTcp => "SSL_TCP",
        }
    }

    pub fn is_tls(self) -> bool {
        matches!(self, ServiceType::Ssl | ServiceType::SslTcp)
    }

    /// The servicegroup type this vserver needs behind it.
    pub fn backend_type(self) -> BackendType {
        match self {
            ServiceType::Http | ServiceType::Ssl => BackendType::Http,
            ServiceType::Tcp | ServiceType::SslTcp => BackendType::Tcp,
        }
    }
}

/// `lbmethod`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LbMethod {
    RoundRobin,
    LeastConnection,
    LeastResponseTime,
    SourceIpHash,
    UrlHash,
    CustomLoad,
}

impl LbMethod {
    pub const ALL: [(&'static str, LbMethod); 6] = [
        ("ROUNDROBIN", LbMethod::RoundRobin),
        ("LEASTCONNECTION", LbMethod::LeastConnection),
        ("LEASTRESPONSETIME", LbMethod::LeastResponseTime),
        ("SOURCEIPHASH", LbMethod::SourceIpHash),
        ("URLHASH", LbMethod::UrlHash),
        ("CUSTOMLOAD", LbMethod::CustomLoad),
    ];

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, method)| *method == self)
            .map(|(name, _)| *name)
            .expect("ALL lists every method")
    }
}

/// `[[lbvserver]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbVserver {
    pub name: String,
    pub service_type: ServiceType,
    pub addr: SocketAddr,
    pub lb_method: LbMethod,
    pub service_group: Option<String>,
    pub cert_keys: Vec<String>,
    pub enabled: bool,
}

impl Config {
    pub fn service_group(&self, name: &str) -> Option<&ServiceGroup> {
        self.service_groups.iter().find(|group| group.name == name)
    }

    pub fn monitor(&self, name: &str) -> Option<&LbMonitor> {
        self.monitors.iter().find(|monitor| monitor.name == name)
    }

    pub fn cert_key(&self, name: &str) -> Option<&SslCertKey> {
        self.cert_keys.iter().find(|cert_key| cert_key.name == name)
    }

    /// The file form of this config; `validate(to_file())` gives the same config back.
    pub fn to_file(&self) -> FileConfig {
        FileConfig {
            ballast: Some(BallastFile {
                workers: self.settings.workers.map(|n| n as i64),
                shutdowntimeout: Some(duration::format(self.settings.shutdown_timeout)),
            }),
            httpprofile: Some(HttpProfileFile {
                maxheaderlen: Some(self.http_profile.max_header_len as i64),
                clientheadertimeout: Some(duration::format(
                    self.http_profile.client_header_timeout,
                )),
            }),
            sslcertkey: self
                .cert_keys
                .iter()
                .map(|ck| SslCertKeyFile {
                    certkey: ck.name.clone(),
                    cert: ck.cert_path.display().to_string(),
                    key: ck.key_path.display().to_string(),
                })
                .collect(),
            lbmonitor: self.monitors.iter().map(LbMonitor::to_file).collect(),
            servicegroup: self
                .service_groups
                .iter()
                .map(ServiceGroup::to_file)
                .collect(),
            lbvserver: self.vservers.iter().map(LbVserver::to_file).collect(),
        }
    }
}

impl LbMonitor {
    fn to_file(&self) -> LbMonitorFile {
        let (kind, httprequest, respcode) = match &self.probe {
            Probe::Tcp => ("TCP", None, None),
            Probe::Http {
                method,
                path,
                resp_codes,
            } => (
                "HTTP",
                Some(format!("{method} {path}")),
                Some(
                    resp_codes
                        .iter()
                        .map(|r| match r.start() == r.end() {
                            true => r.start().to_string(),
                            false => format!("{}-{}", r.start(), r.end()),
                        })
                        .collect(),
                ),
            ),
        };
        LbMonitorFile {
            monitorname: self.name.clone(),
            kind: kind.to_owned(),
            interval: Some(duration::format(self.interval)),
            resptimeout: Some(duration::format(self.resp_timeout)),
            retries: Some(self.retries.into()),
            successretries: Some(self.success_retries.into()),
            downtime: Some(duration::format(self.down_time)),
            destport: self.dest_port.map(i64::from),
            httprequest,
            respcode,
        }
    }
}

impl ServiceGroup {
    fn to_file(&self) -> ServiceGroupFile {
        ServiceGroupFile {
            servicegroupname: self.name.clone(),
            servicetype: match self.backend_type {
                BackendType::Http => "HTTP",
                BackendType::Tcp => "TCP",
            }
            .to_owned(),
            svrtimeout: Some(duration::format(self.server_timeout)),
            connecttimeout: Some(duration::format(self.connect_timeout)),
            monitor: self.monitors.clone(),
            members: self
                .members
                .iter()
                .map(|m| MemberFile {
                    ip: m.addr.ip().to_string(),
                    port: m.addr.port().into(),
                    weight: Some(m.weight.into()),
                    state: Some(enabled_word(m.enabled).to_owned()),
                })
                .collect(),
        }
    }
}

impl LbVserver {
    fn to_file(&self) -> LbVserverFile {
        LbVserverFile {
            name: self.name.clone(),
            servicetype: self.service_type.as_str().to_owned(),
            ipv46: self.addr.ip().to_string(),
            port: self.addr.port().into(),
            lbmethod: Some(self.lb_method.as_str().to_owned()),
            servicegroupname: self.service_group.clone(),
            sslcertkey: self.cert_keys.clone(),
            state: Some(enabled_word(self.enabled).to_owned()),
        }
    }
}

fn enabled_word(enabled: bool) -> &'static str {
    if enabled { "ENABLED" } else { "DISABLED" }
}
