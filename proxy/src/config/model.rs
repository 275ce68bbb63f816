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
use rustls_pki_types::CertificateDer;

use super::file::FileConfig;
use super::secret::Secret;

/// A whole validated config.
#[derive(Debug, Clone)]
pub struct Config {
    /// What was validated; saving writes this back.
    pub source: FileConfig,
    pub settings: Settings,
    pub admin: Option<AdminSettings>,
    pub metrics: Option<MetricsSettings>,
    /// `[accesslog]`, when it is there and enabled.
    pub access_log: Option<super::accesslog::AccessLogSettings>,
    /// `[localcloud]`: run the CloudStack-compatible local cloud inside this process. Opaque
    /// here: the `ballast` binary parses and validates it with the local cloud's own rules.
    pub local_cloud: Option<toml::Table>,
    pub metric_tables: Vec<LbMetricTable>,
    pub autoscale_profiles: Vec<AutoscaleProfile>,
    pub autoscale_groups: Vec<AutoscaleGroup>,
    pub http_profile: HttpProfile,
    pub cert_keys: Vec<SslCertKey>,
    pub monitors: Vec<LbMonitor>,
    pub service_groups: Vec<ServiceGroup>,
    pub vservers: Vec<LbVserver>,
    /// `[[cspolicy]]`.
    pub cs_policies: Vec<super::content_switch::CsPolicy>,
    /// `[[csvserver]]`.
    pub cs_vservers: Vec<super::content_switch::CsVserver>,
}

/// `[ballast]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Runtime worker threads; `None` means one per CPU.
    pub workers: Option<usize>,
    pub shutdown_timeout: Duration,
    /// How `TCP` vservers move bytes.
    pub l4_relay: L4Relay,
    /// `maxconn`: client connections open at once, all vservers together; `None`: derived from
    /// the file descriptor limit (see [`crate::limits`]).
    pub max_conn: Option<u64>,
}

/// `[ballast] l4relay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4Relay {
    /// User-space copy (`copy_bidirectional`, 8 KiB buffers).
    Copy,
    /// `splice(2)` through a kernel pipe.
    Splice,
}

/// `[httpprofile]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpProfile {
    /// Largest request head (request line and headers) in bytes; more gets `431`.
    pub max_header_len: usize,
    /// A client must send its whole request head within this time; an idle HTTP/1.1 keep-alive
    /// connection must start its next request within it too.
    pub client_header_timeout: Duration,
    /// A request body that brings no new bytes for this long ends the exchange with `408`.
    pub client_body_timeout: Duration,
    /// Streams one HTTP/2 client connection may have open at once (more are refused).
    pub max_concurrent_streams: u32,
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
#[derive(Debug, Clone, PartialEq)]
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
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// SNMP GETs of a metric table (NetScaler's `LOAD` monitor): load and BUSY, never DOWN.
    Load(LoadProbe),
    /// A TCP connect that succeeds within `resptimeout`.
    Tcp,
    /// An HTTP/1.1 request (`HTTP`: its status code is in one of `resp_codes`; `HTTP-ECV`:
    /// `resp_codes` is empty and its body contains `recv`).
    Http {
        method: String,
        path: String,
        resp_codes: Vec<RangeInclusive<u16>>,
        /// `HTTP-ECV`: text the first 64 KiB of the body must contain.
        recv: Option<String>,
        /// `customheaders`, in order; a `Host` among them replaces the default.
        headers: Vec<(String, String)>,
        /// `secure = "YES"`: over TLS, without verifying the member's certificate.
        secure: bool,
    },
}

/// A `LOAD` monitor's SNMP side.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadProbe {
    pub security: SnmpSecurity,
    /// An `lbmetrictable` name, or `linux` for the built-in UCD-SNMP-MIB table.
    pub table: String,
    pub metrics: Vec<MonitorMetric>,
    /// Only informs CUSTOMLOAD and the autoscaler; never marks a member BUSY.
    pub passive: bool,
}

/// How a `LOAD` monitor authenticates: the community and the passphrases are [`Secret`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnmpSecurity {
    V1 {
        community: Secret,
    },
    V2c {
        community: Secret,
    },
    V3 {
        user: String,
        /// The protocol name (`SHA-256` ...) and the passphrase.
        auth: Option<(String, Secret)>,
        privacy: Option<(String, Secret)>,
    },
}

/// One metric's threshold and weight in a `LOAD` monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorMetric {
    pub metric: String,
    pub threshold: Option<f64>,
    pub weight: f64,
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
    /// `HTTP`: how long a member may take to send its response head before the client gets
    /// `504`. `TCP`: how long a relayed connection may stay idle (no byte either way).
    pub server_timeout: Duration,
    pub connect_timeout: Duration,
    pub monitors: Vec<String>,
    pub members: Vec<Member>,
    /// `proxyprotocol` and `proxyprotocoltxversion`: the PROXY header each new member
    /// connection starts with; `None`: none.
    pub proxy_protocol: Option<crate::proxy_protocol::Version>,
    /// `maxclient`, `maxsurgequeue`, `surgequeuetimeout`: each member's limit and the queue
    /// that waits for it.
    pub surge: SurgeSettings,
    /// `SSL` and `SSL_TCP` groups: how Ballast speaks TLS to the members (`None`: plain).
    pub tls: Option<MemberTls>,
}

/// TLS to the members of an `SSL` or `SSL_TCP` servicegroup, with its files already read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberTls {
    /// `cafile`, resolved; `None`: the system's trust store (or no verification).
    pub ca_file: Option<PathBuf>,
    /// The CA certificates a member's chain must lead to (from `cafile` or the system's trust
    /// store; empty when `serverauth` is off).
    pub roots: Arc<Vec<CertificateDer<'static>>>,
    /// `serverauth`: verify the member's certificate chain and name (on by default).
    pub server_auth: bool,
    /// `snihost`: the name sent as SNI and verified against the certificate; `None`: no SNI,
    /// and the certificate must name the member's IP address.
    pub sni_host: Option<String>,
    /// `clientcertkey`: the `sslcertkey` presented to members that ask for a client
    /// certificate (mutual TLS).
    pub client_cert_key: Option<String>,
}

/// A servicegroup's per-member limit and its surge queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SurgeSettings {
    /// `maxclient`: requests (HTTP) or connections (TCP) each member takes at once; `None`: no
    /// limit (and nothing ever waits).
    pub max_client: Option<u32>,
    /// `maxsurgequeue`: how many may wait for a member under its limit; beyond it, `503`.
    pub max_queue: u32,
    /// `surgequeuetimeout`: how long one may wait before it gets `503`.
    pub queue_timeout: Duration,
}

impl Default for SurgeSettings {
    fn default() -> SurgeSettings {
        SurgeSettings {
            max_client: None,
            max_queue: 1024,
            queue_timeout: Duration::from_secs(5),
        }
    }
}

/// A bound member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub addr: SocketAddr,
    pub weight: u32,
    /// `false` (`state = "DISABLED"`) drains the member: no new traffic, in-flight work finishes.
    pub enabled: bool,
    /// Set when the autoscaler bound the member (runtime state: never read from or saved to a
    /// file).
    pub autoscale: Option<AutoscaleMark>,
    /// The autoscaler never picks this member for a scale-in (runtime state, set through the
    /// admin API).
    pub scale_in_protection: bool,
}

/// What marks a member the autoscaler bound: the VM behind it and the group that owns it.
/// Only [`crate::writer::ConfigWriter::bind_member`] sets it; `nsconfig save` leaves such
/// members out, and a reload keeps them (the cloud is their source of truth).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AutoscaleMark {
    /// The CloudStack VM id.
    pub vm_id: String,
    /// The `autoscalegroup` that launched the VM.
    pub group: String,
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
    /// `maxclient`: client connections open at once on this vserver.
    pub max_client: Option<u32>,
    /// `maxclientpersource`: client connections one source address may hold open.
    pub max_client_per_source: Option<u32>,
    /// `clttimeout`: an idle client connection (`TCP`: no byte either way; HTTP/2: no stream
    /// open) is closed after this long.
    pub client_timeout: Duration,
    /// `proxyprotocol = "ENABLED"`: the sources whose connections start with a PROXY header;
    /// `None`: PROXY headers are not accepted.
    pub proxy_protocol: Option<crate::proxy_protocol::trust::TrustedSources>,
    /// `persistencetype` and its keys.
    pub persistence: super::persistence::Persistence,
    /// `backupvserver`: takes the traffic when no member is eligible, or past `sothreshold`.
    pub backup: Option<String>,
    /// `somethod = "CONNECTION"`'s `sothreshold`: open client connections beyond which new
    /// traffic spills over to the backup vserver.
    pub spillover_threshold: Option<u32>,
    /// `disableprimaryondown`: after a failover to the backup, stay out of service until
    /// enabled again.
    pub disable_primary_on_down: bool,
}

impl LbVserver {
    /// Whether it has a listener of its own; a non-addressable vserver (`port = 0`) is reached
    /// only through a csvserver.
    pub fn is_addressable(&self) -> bool {
        self.addr.port() != 0
    }
}

impl LbMonitor {
    /// TCP and HTTP monitors decide UP/DOWN; LOAD monitors only report load.
    pub fn is_health_check(&self) -> bool {
        !matches!(self.probe, Probe::Load(_))
    }
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

    /// The file form of this config, exactly as it was validated (so a save writes back what
    /// the operator wrote, with defaults left implicit).
    pub fn to_file(&self) -> FileConfig {
        self.source.clone()
    }
}

/// `[admin]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSettings {
    pub listen: SocketAddr,
    pub user: String,
    pub password: PasswordSource,
    /// A login session ends after this long without a request.
    pub session_timeout: Duration,
    /// `maxloginattempts`: failed logins from one address that lock it out.
    pub max_login_attempts: u32,
    /// `failedlogintimeout`: how long failures count, and how long a lockout lasts.
    pub failed_login_timeout: Duration,
    /// Where `nsconfig?action=save` writes; `None`: the file Ballast was started with.
    pub save_path: Option<PathBuf>,
    pub reload_policy: ReloadPolicy,
}

/// `[admin] reloadpolicy`: what a SIGHUP does while the admin API holds changes that were not
/// saved (`nsconfig save`) to the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReloadPolicy {
    /// The file wins, as on a restart; the log warns how many changes were discarded.
    #[default]
    Discard,
    /// The reload is refused until the changes are saved, so none is lost by accident.
    Keep,
}

impl ReloadPolicy {
    pub const ALL: [ReloadPolicy; 2] = [ReloadPolicy::Discard, ReloadPolicy::Keep];

    pub fn as_str(self) -> &'static str {
        match self {
            ReloadPolicy::Discard => "DISCARD",
            ReloadPolicy::Keep => "KEEP",
        }
    }
}

/// Where the admin password comes from (never the command line or the config itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    Env(String),
    File(PathBuf),
}

impl PasswordSource {
    /// Reads the password (at start, not during validation, so `ballast check` needs no
    /// password on the machine that checks).
    pub fn read(&self) -> Result<Secret, String> {
        match self {
            PasswordSource::Env(name) => Secret::from_env(name),
            PasswordSource::File(path) => Secret::from_file(path),
        }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    pub listen: SocketAddr,
}

/// `[[lbmetrictable]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbMetricTable {
    pub name: String,
    pub metrics: Vec<TableMetric>,
}

/// One metric of a table: its name, OID and how to read the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMetric {
    pub name: String,
    pub oid: Vec<u32>,
    pub kind: MetricKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Integer,
    Gauge,
    Counter,
    /// A number written as an OCTET STRING, such as UCD's laLoad `"1.09"`.
    String,
}

/// `[[autoscaleprofile]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoscaleProfile {
    pub name: String,
    pub url: String,
    pub api_key: String,
    /// The CloudStack secret key, already read from where `sharedsecret*` says.
    pub secret: Secret,
    /// The zone, template, offering and network ids as written: each a UUID or a name, which
    /// the autoscaler resolves through CloudStack's list calls (at start and on reload).
    pub zone_id: String,
    pub template_id: String,
    pub service_offering_id: String,
    pub network_ids: Vec<String>,
    pub member_port: u16,
}

/// `[[autoscalegroup]]` (`docs/config.md` says what each field means, `docs/architecture.md`
/// the rules the engine keeps).
#[derive(Debug, Clone, PartialEq)]
pub struct AutoscaleGroup {
    pub name: String,
    pub vserver: String,
    pub service_group: String,
    pub profile: String,
    pub min_members: u32,
    pub max_members: u32,
    pub interval: Duration,
    pub watch_time: Duration,
    pub cooldown: Duration,
    pub quiet_time: Duration,
    pub destroy_grace_period: Duration,
    pub warmup: Duration,
    pub health_grace_period: Duration,
    pub step: u32,
    pub victim: Victim,
    /// `state`: a disabled group takes no decisions; its VMs stay.
    pub enabled: bool,
    /// `observe`: decisions are computed and recorded but not acted on.
    pub observe: bool,
    /// `deploytimeout`: a deploy not Running with an address by then is destroyed and counted
    /// as a failed launch.
    pub deploy_timeout: Duration,
    pub metrics: Vec<ScalingMetric>,
}

/// Which member a scale-in removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Victim {
    Newest,
    Oldest,
    LeastConnections,
}

/// One metric that drives scaling, with its thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingMetric {
    pub name: String,
    pub source: MetricSource,
    pub upper: Option<f64>,
    pub lower: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricSource {
    /// A metric of the servicegroup's SNMP LOAD monitor.
    Snmp,
    /// Active connections (or in-flight requests) per member.
    Connections,
    /// Requests per second per member.
    RequestRate,
    /// Response time (time to first byte), in milliseconds.
    ResponseTime,
}
