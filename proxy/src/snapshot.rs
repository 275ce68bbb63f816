//! The immutable snapshot that the data plane reads: vservers with their balancers, TLS configs
//! and member lists, compiled from a [`Config`] by the one config writer.
//!
//! Connections and requests load the current snapshot from an `ArcSwap` (a few nanoseconds, no
//! lock). An HTTP request uses the snapshot current when it arrives; a TCP connection keeps the
//! one it started with. Runtime state (member health, counters) is shared across snapshots.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::sign::CertifiedKey;

use crate::accesslog::AccessLog;
use crate::config::{
    Config, CsVserver, HttpProfile, LbMethod, MemberTls, ServiceGroup, ServiceType,
};
use crate::content_switch::plan::{PolicyPlan, SwitchPlan};
use crate::lb::Balancer;
use crate::limits::Connections;
use crate::member::MemberState;
use crate::member_tls::TlsToMembers;
use crate::persistence::PersistencePlan;
use crate::proxy_protocol::Version;
use crate::proxy_protocol::trust::TrustedSources;
use crate::stats::VserverStats;
use crate::surge::SurgeQueue;

/// Everything the data plane needs, for one version of the config.
#[derive(Debug)]
pub struct Snapshot {
    pub config: Arc<Config>,
    pub vservers: HashMap<Arc<str>, Arc<VserverPlan>>,
    pub groups: HashMap<String, Arc<GroupPlan>>,
    pub http_profile: HttpProfile,
    /// Client connections open in the process, against `[ballast] maxconn` (one counter for
    /// the process's life, handed from snapshot to snapshot).
    pub connections: Arc<Connections>,
    /// `[accesslog]`: where finished requests and connections are logged (`None`: off).
    pub access_log: Option<AccessLog>,
}

/// One vserver, ready to serve. A csvserver is one too (it listens, admits and counts like an
/// lbvserver), with a [`SwitchPlan`] and no servicegroup: each request goes on to the plan of
/// the lbvserver its policies choose.
#[derive(Debug)]
pub struct VserverPlan {
    pub name: Arc<str>,
    pub service_type: ServiceType,
    pub addr: SocketAddr,
    pub lb_method: LbMethod,
    pub group: Option<Arc<GroupPlan>>,
    pub balancer: Balancer,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub stats: Arc<VserverStats>,
    /// `maxclient`.
    pub max_client: Option<u32>,
    /// `maxclientpersource`.
    pub max_client_per_source: Option<u32>,
    /// `clttimeout`: how long a client connection may stay idle.
    pub client_timeout: Duration,
    /// `proxyprotocol = "ENABLED"`: the sources whose connections start with a PROXY header.
    pub proxy_protocol: Option<TrustedSources>,
    /// `backupvserver`'s plan (set once, right after every plan of the snapshot is made).
    pub backup: OnceLock<Arc<VserverPlan>>,
    /// `somethod = "CONNECTION"`: client connections beyond which traffic spills over.
    pub spillover_threshold: Option<u32>,
    /// `disableprimaryondown`: after a failover, stay on the backup until enabled again.
    pub disable_primary_on_down: bool,
    /// A csvserver's policies (`None` for an lbvserver).
    pub switch: Option<Arc<SwitchPlan>>,
    /// `persistencetype` other than `NONE` (an lbvserver's; `None` for a csvserver).
    pub persistence: Option<PersistencePlan>,
}

/// A servicegroup's members as one snapshot sees them.
#[derive(Debug)]
pub struct GroupPlan {
    pub name: Arc<str>,
    pub members: Vec<Arc<MemberState>>,
    pub weights: Vec<u32>,
    pub server_timeout: Duration,
    pub connect_timeout: Duration,
    /// Connect failures in a row that mark a member DOWN (passive detection).
    pub passive_retries: u32,
    /// Whether any monitor is bound (if not, passive DOWNs expire on their own).
    pub monitored: bool,
    /// `proxyprotocol`: the PROXY header version each new member connection starts with.
    /// An `HTTP` group that sends one shares no member connection between client connections
    /// ([`crate::http::private`]).
    pub proxy_protocol: Option<Version>,
    /// `maxclient` and the surge queue (runtime state shared by every snapshot).
    pub surge: Arc<SurgeQueue>,
    /// `SSL` and `SSL_TCP` groups: the TLS their member connections speak.
    pub tls: Option<TlsToMembers>,
}

impl Snapshot {
    pub fn empty() -> Snapshot {
        let config = Config::empty();
        Snapshot {
            http_profile: config.http_profile.clone(),
            config: Arc::new(config),
            vservers: HashMap::new(),
            groups: HashMap::new(),
            connections: Connections::new(),
            access_log: None,
        }
    }

    pub fn vserver(&self, name: &str) -> Option<&Arc<VserverPlan>> {
        self.vservers.get(name)
    }
}

/// No vservers, all defaults: what runs before the first config is applied.
impl Config {
    pub fn empty() -> Config {
        crate::config::validate::from_toml("", std::path::Path::new("."))
            .expect("an empty config is valid")
    }
}

/// Compiles the snapshot; `connections`, `member` and `stats` are (or look up) the runtime
/// state that outlives snapshots, `tls` gives a TLS vserver (by name and type) its rustls config for its certificates (the
/// writer keeps one while they do not change, so its session cache survives edits), and
/// `member_tls` gives an `SSL`/`SSL_TCP` servicegroup its client config (kept the same way).
pub fn compile(
    config: Arc<Config>,
    connections: Arc<Connections>,
    mut member: impl FnMut(&str, SocketAddr) -> Arc<MemberState>,
    mut stats: impl FnMut(&str) -> Arc<VserverStats>,
    mut surge: impl FnMut(&str) -> Arc<SurgeQueue>,
    mut tls: impl FnMut(&str, ServiceType, Vec<Arc<CertifiedKey>>) -> Arc<rustls::ServerConfig>,
    mut member_tls: impl FnMut(&ServiceGroup, &MemberTls, Option<Arc<CertifiedKey>>) -> TlsToMembers,
) -> Snapshot {
    let mut groups = HashMap::new();
    for group in &config.service_groups {
        let name: Arc<str> = group.name.as_str().into();
        let members = group
            .members
            .iter()
            .map(|m| member(&group.name, m.addr))
            .collect();
        let health_checks = || {
            let bound = group
                .monitors
                .iter()
                .filter_map(|name| config.monitor(name));
            bound.filter(|m| m.is_health_check())
        };
        let passive_retries = health_checks().next().map_or(3, |monitor| monitor.retries);
        let tls = group.tls.as_ref().map(|settings| {
            let client_cert = settings
                .client_cert_key
                .as_deref()
                .and_then(|name| config.cert_key(name))
                .map(|ck| ck.certified.clone());
            member_tls(group, settings, client_cert)
        });
        groups.insert(
            group.name.clone(),
            Arc::new(GroupPlan {
                name,
                members,
                weights: group.members.iter().map(|m| m.weight).collect(),
                server_timeout: group.server_timeout,
                connect_timeout: group.connect_timeout,
                passive_retries,
                monitored: health_checks().next().is_some(),
                proxy_protocol: group.proxy_protocol,
                surge: surge(&group.name),
                tls,
            }),
        );
    }
    let mut vservers = HashMap::new();
    for vserver in config.vservers.iter().filter(|v| v.enabled) {
        let group = vserver
            .service_group
            .as_ref()
            .and_then(|name| groups.get(name))
            .cloned();
        let balancer = match &group {
            Some(group) => Balancer::new(vserver.lb_method, &group.members, &group.weights),
            None => Balancer::new(vserver.lb_method, &[], &[]),
        };
        let tls = vserver.service_type.is_tls().then(|| {
            let certs = vserver
                .cert_keys
                .iter()
                .filter_map(|name| config.cert_key(name))
                .map(|ck| ck.certified.clone())
                .collect();
            tls(&vserver.name, vserver.service_type, certs)
        });
        let name: Arc<str> = vserver.name.as_str().into();
        let persistence = PersistencePlan::new(vserver, group.as_ref());
        vservers.insert(
            name.clone(),
            Arc::new(VserverPlan {
                stats: stats(&vserver.name),
                name,
                service_type: vserver.service_type,
                addr: vserver.addr,
                lb_method: vserver.lb_method,
                group,
                balancer,
                tls,
                max_client: vserver.max_client,
                max_client_per_source: vserver.max_client_per_source,
                client_timeout: vserver.client_timeout,
                proxy_protocol: vserver.proxy_protocol.clone(),
                backup: OnceLock::new(),
                spillover_threshold: vserver.spillover_threshold,
                disable_primary_on_down: vserver.disable_primary_on_down,
                switch: None,
                persistence,
            }),
        );
    }
    // `backupvserver`: validation refused cycles, so these links never make one.
    for vserver in config.vservers.iter().filter(|v| v.enabled) {
        let Some(plan) = vservers.get(vserver.name.as_str()) else {
            continue;
        };
        if let Some(backup) = vserver
            .backup
            .as_deref()
            .and_then(|name| vservers.get(name))
        {
            let _ = plan.backup.set(backup.clone());
        }
        if !vserver.disable_primary_on_down {
            plan.stats
                .disabled_on_down
                .store(false, std::sync::atomic::Ordering::Relaxed);
        }
    }
    for cs in config.cs_vservers.iter().filter(|cs| cs.enabled) {
        let certs = cs
            .cert_keys
            .iter()
            .filter_map(|name| config.cert_key(name))
            .map(|ck| ck.certified.clone())
            .collect();
        let tls = cs
            .service_type
            .is_tls()
            .then(|| tls(&cs.name, cs.service_type, certs));
        let plan = cs_vserver(&config, cs, &vservers, stats(&cs.name), tls);
        vservers.insert(plan.name.clone(), Arc::new(plan));
    }
    Snapshot {
        http_profile: config.http_profile.clone(),
        config,
        vservers,
        groups,
        connections,
        access_log: None,
    }
}

/// A csvserver's plan: its policies resolved to the lbvserver plans of `lbvservers` (which
/// holds only enabled ones).
fn cs_vserver(
    config: &Config,
    cs: &CsVserver,
    lbvservers: &HashMap<Arc<str>, Arc<VserverPlan>>,
    stats: Arc<VserverStats>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> VserverPlan {
    let switch_stats = stats.switching.clone();
    let policies = cs
        .policies
        .iter()
        .filter_map(|binding| {
            let policy = config
                .cs_policies
                .iter()
                .find(|p| p.name == binding.policy)?;
            Some(PolicyPlan {
                name: binding.policy.as_str().into(),
                priority: binding.priority,
                rule: policy.rule.clone(),
                target_name: binding.target.as_str().into(),
                target: lbvservers.get(binding.target.as_str()).cloned(),
                hits: switch_stats.policy_hits(&binding.policy),
            })
        })
        .collect();
    let default = cs.default_lb_vserver.as_deref().map(|name| {
        let plan = lbvservers.get(name).cloned();
        (Arc::<str>::from(name), plan)
    });
    VserverPlan {
        name: cs.name.as_str().into(),
        service_type: cs.service_type,
        addr: cs.addr,
        // A csvserver balances nothing itself: its targets do.
        lb_method: LbMethod::RoundRobin,
        group: None,
        balancer: Balancer::new(LbMethod::RoundRobin, &[], &[]),
        tls,
        max_client: cs.max_client,
        max_client_per_source: cs.max_client_per_source,
        client_timeout: cs.client_timeout,
        proxy_protocol: cs.proxy_protocol.clone(),
        backup: OnceLock::new(),
        spillover_threshold: None,
        disable_primary_on_down: false,
        persistence: None,
        switch: Some(Arc::new(SwitchPlan {
            policies,
            default,
            stats: switch_stats,
        })),
        stats,
    }
}
