//! The config file as written: serde structs that mirror the TOML one to one.
//!
//! Fields are loosely typed on purpose (ports as integers, enums and durations as strings) so
//! that a file with several mistakes still deserializes and [`super::validate`] can report every
//! problem in one pass. Unknown keys are rejected here (`deny_unknown_fields`). The same structs
//! serialize back to TOML, so what is saved is what `ballast run --config` reads.

use serde::{Deserialize, Serialize};

use super::lenient;
use super::secret::SecretText;

/// The whole file. Each top-level array is deserialized element by element, so one broken
/// `[[servicegroup]]` does not hide the problems of the others.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ballast: Option<BallastFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub httpprofile: Option<HttpProfileFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsFile>,
    /// `[accesslog]`: one line per request and per TCP connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accesslog: Option<super::accesslog::AccessLogFile>,
    /// The embedded CloudStack-compatible local cloud (its own keys: see `docs/cloudstack.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localcloud: Option<toml::Table>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sslcertkey: Vec<SslCertKeyFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lbmonitor: Vec<LbMonitorFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servicegroup: Vec<ServiceGroupFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lbvserver: Vec<LbVserverFile>,
    /// Content switching: `[[cspolicy]]` rules and the `[[csvserver]]`s that bind them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cspolicy: Vec<super::content_switch::CsPolicyFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub csvserver: Vec<super::content_switch::CsVserverFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lbmetrictable: Vec<LbMetricTableFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub autoscaleprofile: Vec<AutoscaleProfileFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub autoscalegroup: Vec<AutoscaleGroupFile>,
}

/// `[ballast]`: process-wide settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BallastFile {
    /// Worker threads; 0 or absent means one per CPU.
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub workers: Option<i64>,
    /// How long SIGTERM waits for in-flight requests before exiting anyway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdowntimeout: Option<String>,
    /// `copy` or `splice`: how `TCP` vservers move bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l4relay: Option<String>,
    /// Client connections open at once, all vservers together; 0 or absent: derived from the
    /// file descriptor limit.
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub maxconn: Option<i64>,
}

/// `[httpprofile]`: limits for every `HTTP` and `SSL` vserver (NetScaler's `nshttpprofile`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpProfileFile {
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub maxheaderlen: Option<i64>,
    /// Also the idle timeout of keep-alive HTTP/1.1 connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clientheadertimeout: Option<String>,
    /// How long a request body may stall (no bytes from the client) before `408`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clientbodytimeout: Option<String>,
    /// Streams one HTTP/2 client connection may have open at once.
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub maxconcurrentstreams: Option<i64>,
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
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub retries: Option<i64>,
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub successretries: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub destport: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub httprequest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub respcode: Option<Vec<String>>,
    /// HTTP-ECV: the request, `"METHOD /path"` (default `"GET /"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<String>,
    /// HTTP-ECV: text the response body must contain (its first 64 KiB are read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recv: Option<String>,
    /// HTTP, HTTP-ECV: extra request headers, `"Name: value"` lines joined by `\r\n`; a
    /// `Host` here replaces the default (the member's `ip:port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customheaders: Option<String>,
    /// HTTP, HTTP-ECV: `YES` probes over TLS (the certificate is not verified), `NO` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure: Option<String>,
    /// LOAD only: `V1`, `V2` (v2c, the default) or `V3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snmpversion: Option<String>,
    /// LOAD, V1/V2: the community (default `public`); or `snmpcommunityfile`/`…env`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snmpcommunity: Option<SecretText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snmpcommunityfile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snmpcommunityenv: Option<String>,
    /// LOAD, V3: the USM user and its authPriv protocols and passphrases (each passphrase
    /// inline, or from `…file`/`…env`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snmpv3user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snmpauthprotocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snmpauthpassword: Option<SecretText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snmpauthpasswordfile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snmpauthpasswordenv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snmpprivprotocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snmpprivpassword: Option<SecretText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snmpprivpasswordfile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snmpprivpasswordenv: Option<String>,
    /// LOAD: the `lbmetrictable` to poll (default: the built-in `linux`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrictable: Option<String>,
    /// LOAD: `lbmonitor_metric_binding`s: thresholds and weights of the table's metrics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MonitorMetricFile>,
    /// LOAD: only inform CUSTOMLOAD and the autoscaler; never mark a member BUSY.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive: Option<bool>,
}

/// One `lbmonitor_metric_binding`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MonitorMetricFile {
    pub metric: String,
    #[serde(
        default,
        deserialize_with = "lenient::opt_float",
        skip_serializing_if = "Option::is_none"
    )]
    pub metricthreshold: Option<f64>,
    #[serde(
        default,
        deserialize_with = "lenient::opt_float",
        skip_serializing_if = "Option::is_none"
    )]
    pub metricweight: Option<f64>,
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
    /// `ENABLED`: each new connection to a member starts with a PROXY protocol header carrying
    /// the client's address (NetScaler's netprofile `proxyProtocol`); `DISABLED` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxyprotocol: Option<String>,
    /// `V1` (default, text) or `V2` (binary): the header version sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxyprotocoltxversion: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monitor: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberFile>,
    /// `SSL`/`SSL_TCP`: a PEM bundle of the CAs a member's certificate must chain to
    /// (relative: beside the config); absent: the system's trust store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cafile: Option<String>,
    /// `SSL`/`SSL_TCP`: `ENABLED` (default) verifies the member's certificate, `DISABLED` does
    /// not (NetScaler's `serverAuth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serverauth: Option<String>,
    /// `SSL`/`SSL_TCP`: the server name sent as SNI and verified against the member's
    /// certificate; absent: no SNI, and the certificate must name the member's IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snihost: Option<String>,
    /// `SSL`/`SSL_TCP`: the `sslcertkey` Ballast presents when a member asks for a client
    /// certificate (mutual TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clientcertkey: Option<String>,
    /// Requests (HTTP) or connections (TCP) each member takes at once; 0 or absent: no limit.
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub maxclient: Option<i64>,
    /// Requests or connections that may wait in the surge queue for a member under `maxclient`
    /// (default 1024; 0: none wait, they are refused at once).
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub maxsurgequeue: Option<i64>,
    /// How long one may wait in the surge queue before it is refused (default `5s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surgequeuetimeout: Option<String>,
}

/// One `servicegroup_servicegroupmember_binding`: a backend `ip:port`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MemberFile {
    pub ip: String,
    #[serde(deserialize_with = "lenient::int")]
    pub port: i64,
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub weight: Option<i64>,
    /// `ENABLED` (default) or `DISABLED`; disabling drains the member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Runtime state, never in a file (serde skips it, so a file cannot set it): the mark of a
    /// member the autoscaler bound (see [`super::model::AutoscaleMark`]).
    #[serde(skip)]
    pub autoscale: Option<super::model::AutoscaleMark>,
    /// Runtime state, never in a file: scale-in protection, set through the admin API.
    #[serde(skip)]
    pub scale_in_protection: bool,
}

/// `[[lbvserver]]`: a listening virtual server in front of one servicegroup.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LbVserverFile {
    pub name: String,
    pub servicetype: String,
    pub ipv46: String,
    #[serde(deserialize_with = "lenient::int")]
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
    /// Client connections this vserver holds open at once; 0 or absent: no limit of its own.
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub maxclient: Option<i64>,
    /// Client connections one source address may hold open on this vserver; 0 or absent: none.
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub maxclientpersource: Option<i64>,
    /// How long a client connection may stay idle (`TCP`: no byte either way; HTTP/2: no
    /// stream open) before it is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clttimeout: Option<String>,
    /// `ENABLED`: connections from `proxyprotocoltrusted` sources must start with a PROXY
    /// protocol header (v1 or v2), whose source address becomes the client's; `DISABLED`
    /// (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxyprotocol: Option<String>,
    /// Addresses and CIDR blocks of the L4 balancers in front (required with `proxyprotocol`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proxyprotocoltrusted: Vec<String>,
    /// `NONE` (default), `SOURCEIP` or `COOKIEINSERT` (see [`super::persistence`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistencetype: Option<String>,
    /// Persistence timeout: minutes (`2`) or a duration (`"90s"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<super::persistence::PersistenceTimeout>,
    /// `SOURCEIP`: the IPv4 netmask applied to client addresses (`255.255.255.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistmask: Option<String>,
    /// `SOURCEIP`: the prefix length applied to IPv6 client addresses.
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub v6persistmasklen: Option<i64>,
    /// `COOKIEINSERT`: the cookie's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookiename: Option<String>,
    /// `COOKIEINSERT`: the key that signs cookies, inline (`Debug` redacted), in a file, or in
    /// an environment variable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookiekey: Option<SecretText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookiekeyfile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookiekeyenv: Option<String>,
    /// The vserver that takes this one's traffic when none of its members is eligible (or
    /// past its spillover threshold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backupvserver: Option<String>,
    /// Spillover method: `CONNECTION` or `NONE` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub somethod: Option<String>,
    /// `somethod = "CONNECTION"`: open client connections beyond which traffic spills over to
    /// the backup vserver.
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub sothreshold: Option<i64>,
    /// `ENABLED`: once its traffic went to the backup because no member was eligible, the
    /// vserver stays out of service until it is enabled again (default `DISABLED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disableprimaryondown: Option<String>,
}

/// `[admin]`: the NITRO-like admin API. Absent: no admin API.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Name of the environment variable that holds the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passwordenv: Option<String>,
    /// A file whose first line is the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passwordfile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessiontimeout: Option<String>,
    /// Failed logins from one address within `failedlogintimeout` that lock it out (default 5).
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub maxloginattempts: Option<i64>,
    /// How long failed logins count, and how long a lockout lasts (default `1m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failedlogintimeout: Option<String>,
    /// Where `nsconfig?action=save` writes; the file Ballast was started with by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saveconfig: Option<String>,
    /// `DISCARD` (default) or `KEEP`: what a SIGHUP does with admin API changes not saved yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reloadpolicy: Option<String>,
}

/// `[metrics]`: the Prometheus endpoint. Absent: no metrics listener.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricsFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}

/// `[[lbmetrictable]]`: metric names and the SNMP OIDs that LOAD monitors read for them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LbMetricTableFile {
    pub metrictable: String,
    #[serde(default)]
    pub metrics: Vec<MetricFile>,
}

/// One `lbmetrictable_metric_binding`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricFile {
    pub metric: String,
    pub snmpoid: String,
    /// `integer`, `gauge`, `counter` or `string` (a number written as text, such as laLoad).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// `[[autoscaleprofile]]`: where and how to create VMs (a CloudStack-compatible API).
///
/// Exactly one of `url`, `urlfile` and `urlenv` gives the endpoint, exactly one of `apikey`,
/// `apikeyfile` and `apikeyenv` the API key, and exactly one of
/// `sharedsecret`, `sharedsecretfile` and `sharedsecretenv` the secret key; `Debug` leaves an
/// inline secret out. The ids are UUIDs or names (the autoscaler resolves names).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AutoscaleProfileFile {
    pub name: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The API endpoint, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A file whose first line is the API endpoint (relative: beside the config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urlfile: Option<String>,
    /// The environment variable that holds the API endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urlenv: Option<String>,
    /// The API key, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apikey: Option<String>,
    /// A file whose first line is the API key (relative: beside the config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apikeyfile: Option<String>,
    /// The environment variable that holds the API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apikeyenv: Option<String>,
    /// The secret key, inline (never returned by the admin API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharedsecret: Option<SecretText>,
    /// A file whose first line is the secret key (relative: beside the config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharedsecretfile: Option<String>,
    /// The environment variable that holds the secret key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharedsecretenv: Option<String>,
    pub zoneid: String,
    pub templateid: String,
    pub serviceofferingid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networkids: Vec<String>,
    #[serde(deserialize_with = "lenient::int")]
    pub memberport: i64,
}

/// `[[autoscalegroup]]`: a vserver and servicegroup kept at the right size.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AutoscaleGroupFile {
    pub name: String,
    pub vserver: String,
    pub servicegroupname: String,
    pub profilename: String,
    #[serde(deserialize_with = "lenient::int")]
    pub minmembers: i64,
    #[serde(deserialize_with = "lenient::int")]
    pub maxmembers: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watchtime: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiettime: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destroygraceperiod: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthgraceperiod: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub step: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub victim: Option<String>,
    /// `ENABLED` (default) or `DISABLED`: a disabled group takes no decisions; its VMs stay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Compute and record decisions without acting on them (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observe: Option<bool>,
    /// A deploy not Running with an address by then is destroyed and counts as failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploytimeout: Option<String>,
    #[serde(default)]
    pub metrics: Vec<AutoscaleMetricFile>,
}

/// One scaling metric of an autoscale group.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AutoscaleMetricFile {
    pub name: String,
    /// `snmp` (a metric of the group's LOAD monitor), `connections`, `requestrate` or `responsetime`.
    pub source: String,
    #[serde(
        default,
        deserialize_with = "lenient::opt_float",
        skip_serializing_if = "Option::is_none"
    )]
    pub upper: Option<f64>,
    #[serde(
        default,
        deserialize_with = "lenient::opt_float",
        skip_serializing_if = "Option::is_none"
    )]
    pub lower: Option<f64>,
}
