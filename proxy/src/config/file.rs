//! The config file as written: serde structs that mirror the TOML one to one.
//!
//! Fields are loosely typed on purpose (ports as integers, enums and durations as strings) so
//! that a file with several mistakes still deserializes and [`super::validate`] can report every
//! problem in one pass. Unknown keys are rejected here (`deny_unknown_fields`). The same structs
//! serialize back to TOML, so what is saved is what `ballast run --config` reads.

use serde::{Deserialize, Serialize};

/// The whole file. Each top-level array is deserialized element by element, so one broken
/// `[[servicegroup]]` does not hide the problems of the others.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ballast: Option<BallastFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub httpprofile: Option<HttpProfileFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sslcertkey: Vec<SslCertKeyFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lbmonitor: Vec<LbMonitorFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servicegroup: Vec<ServiceGroupFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lbvserver: Vec<LbVserverFile>,
}

/// `[ballast]`: process-wide settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BallastFile {
    /// Worker threads; 0 or absent means one per CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<i64>,
    /// How long SIGTERM waits for in-flight requests before exiting anyway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdowntimeout: Option<String>,
}

/// `[httpprofile]`: limits for every `HTTP` and `SSL` vserver (NetScaler's `nshttpprofile`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpProfileFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxheaderlen: Option<i64>,
    /// Also the idle timeout of keep-alive HTTP/1.1 connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clientheadertimeout: Option<String>,
}

/// `[[sslcertkey]]`: a certificate and its private key, both PEM files.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SslCertKeyFile {
    pub certkey: String,
    pub cert: String,
    pub key: String,
}

/// `[[lbmonitor]]`: a health monitor that servicegroups bind by name.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LbMonitorFile {
    pub monitorname: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resptimeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successretries: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destport: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub httprequest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub respcode: Option<Vec<String>>,
}

/// `[[servicegroup]]`: a pool of backend members and the monitors bound to it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceGroupFile {
    pub servicegroupname: String,
    pub servicetype: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub svrtimeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connecttimeout: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monitor: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberFile>,
}

/// One `servicegroup_servicegroupmember_binding`: a backend `ip:port`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MemberFile {
    pub ip: String,
    pub port: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
    /// `ENABLED` (default) or `DISABLED`; disabling drains the member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// `[[lbvserver]]`: a listening virtual server in front of one servicegroup.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LbVserverFile {
    pub name: String,
    pub servicetype: String,
    pub ipv46: String,
    pub port: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lbmethod: Option<String>,
    /// The `lbvserver_servicegroup_binding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub servicegroupname: Option<String>,
    /// Certificates for `SSL` and `SSL_TCP`; the first is served when SNI matches none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sslcertkey: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}
