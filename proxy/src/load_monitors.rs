//! `LOAD` monitors wired into the proxy: the SNMP poller (from `snmp-monitor`) watches every
//! member of a servicegroup that binds a LOAD monitor, and each sample updates the member's
//! runtime state: its load (for `CUSTOMLOAD`), BUSY (active monitors only) and the latest metric
//! values (for `stat` and `/metrics`). Samples are also re-published for the autoscaler.
//!
//! The config writer calls [`LoadMonitors::reconcile`] after every change, as it does for
//! health monitors.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use snmp_monitor::{
    AuthProtocol, LoadMonitor, LoadMonitorSpec, Metric, MetricBinding, MetricTable, Oid,
    PollResult, PollStats, Poller, PollerConfig, PrivProtocol, Sample, Security, SpecError,
    UsmUser,
};
use tokio::sync::{broadcast, mpsc};

use crate::config::{Config, LbMetricTable, LbMonitor, LoadProbe, MetricKind, Probe, SnmpSecurity};
use crate::member::MemberKey;
use crate::snapshot::Snapshot;

/// A member whose polls failed this many times in a row has no load (CUSTOMLOAD treats it as
/// unknown, BUSY is lifted) until a poll succeeds again.
const FAILURES_BEFORE_UNKNOWN: u32 = 3;

/// Where every LOAD monitor sample is published (a lagging subscriber loses the oldest).
pub type LoadSamples = broadcast::Sender<Arc<Sample<MemberKey>>>;

/// A LOAD monitor as configured, with the custom metric table it reads (`None`: built-in).
type Watched = (LbMonitor, Option<LbMetricTable>);

/// The poller and what it watches.
#[derive(Debug)]
pub struct LoadMonitors {
    poller: Option<Poller<MemberKey>>,
    /// What each member is polled with: its monitor and that monitor's metric table, so a
    /// change to either (through a reload or the API) re-watches the member.
    watched: HashMap<MemberKey, Watched>,
    samples: broadcast::Sender<Arc<Sample<MemberKey>>>,
}

impl LoadMonitors {
    /// Starts the poller and the task that applies its samples. The poller binds its sockets
    /// to the address that reaches each member as it polls it (a member no socket reaches
    /// polls as a send error). Without OS randomness there is no poller: LOAD monitors are
    /// reported as unavailable and everything else runs.
    pub fn start(snapshot: Arc<ArcSwap<Snapshot>>) -> LoadMonitors {
        let (samples, _) = broadcast::channel(1024);
        let (tx, rx) = mpsc::channel(4096);
        let poller = match Poller::spawn(PollerConfig::default(), tx) {
            Ok(poller) => {
                tokio::spawn(apply_samples(rx, snapshot, samples.clone()));
                Some(poller)
            }
            Err(error) => {
                tracing::error!(%error, "LOAD monitors unavailable: cannot start the SNMP poller");
                None
            }
        };
        LoadMonitors {
            poller,
            watched: HashMap::new(),
            samples,
        }
    }

    /// Poll statistics for `/metrics`.
    pub fn stats(&self) -> Option<Arc<PollStats>> {
        self.poller.as_ref().map(|p| p.stats().clone())
    }

    /// The sender every sample is published on; subscribe to it for a stream of samples.
    pub fn samples(&self) -> LoadSamples {
        self.samples.clone()
    }

    /// Watches the members of groups with a LOAD monitor, unwatches the rest.
    pub fn reconcile(&mut self, config: &Config) {
        let Some(poller) = &self.poller else { return };
        let mut wanted = HashMap::new();
        for group in &config.service_groups {
            let load = group
                .monitors
                .iter()
                .filter_map(|name| config.monitor(name))
                .find(|m| !m.is_health_check());
            let Some(monitor) = load else { continue };
            for member in &group.members {
                let key = MemberKey {
                    group: group.name.as_str().into(),
                    addr: member.addr,
                };
                wanted.insert(key, monitor);
            }
        }
        self.watched.retain(|key, _| {
            let keep = wanted.contains_key(key);
            if !keep {
                poller.unwatch(key.clone());
            }
            keep
        });
        let mut built: HashMap<&str, Option<Arc<LoadMonitor>>> = HashMap::new();
        for (key, monitor) in wanted {
            let watched = (monitor.clone(), metric_table(monitor, config).cloned());
            if self.watched.get(&key) == Some(&watched) {
                continue;
            }
            let ready = built
                .entry(monitor.name.as_str())
                .or_insert_with(|| match load_monitor(monitor, config) {
                    Ok(ready) => Some(ready),
                    Err(error) => {
                        tracing::error!(monitor = monitor.name, %error, "LOAD monitor cannot poll");
                        None
                    }
                })
                .clone();
            if let Some(ready) = ready {
                poller.watch(key.clone(), ready.target(key.addr.ip()), ready);
                self.watched.insert(key, watched);
            }
        }
    }
}

/// The poller's form of a LOAD monitor.
fn load_monitor(monitor: &LbMonitor, config: &Config) -> Result<Arc<LoadMonitor>, SpecError> {
    let Probe::Load(probe) = &monitor.probe else {
        unreachable!("only LOAD monitors are polled over SNMP");
    };
    let mut spec = LoadMonitorSpec::new(&monitor.name, security(probe), table(monitor, config));
    spec.bindings = probe
        .metrics
        .iter()
        .map(|m| MetricBinding::new(&m.metric, m.threshold, m.weight))
        .collect();
    spec.interval = monitor.interval;
    spec.resptimeout = monitor.resp_timeout;
    spec.destport = monitor.dest_port.unwrap_or(161);
    LoadMonitor::new(spec)
}

fn security(probe: &LoadProbe) -> Security {
    match &probe.security {
        SnmpSecurity::V1 { community } => Security::V1 {
            community: community.expose().to_owned(),
        },
        SnmpSecurity::V2c { community } => Security::V2c {
            community: community.expose().to_owned(),
        },
        SnmpSecurity::V3 {
            user,
            auth,
            privacy,
        } => Security::V3(UsmUser {
            name: user.clone(),
            auth: auth.as_ref().and_then(|(p, pass)| {
                Some((AuthProtocol::from_name(p)?, pass.expose().to_owned()))
            }),
            privacy: privacy.as_ref().and_then(|(p, pass)| {
                Some((PrivProtocol::from_name(p)?, pass.expose().to_owned()))
            }),
        }),
    }
}

/// The custom `lbmetrictable` a LOAD monitor reads; `None` for the built-in `linux` table.
fn metric_table<'a>(monitor: &LbMonitor, config: &'a Config) -> Option<&'a LbMetricTable> {
    let Probe::Load(probe) = &monitor.probe else {
        return None;
    };
    config.metric_tables.iter().find(|t| t.name == probe.table)
}

fn table(monitor: &LbMonitor, config: &Config) -> MetricTable {
    let Some(table) = metric_table(monitor, config) else {
        return MetricTable::linux();
    };
    let metrics = table.metrics.iter().filter_map(|m| {
        let kind = match m.kind {
            MetricKind::Integer => snmp_monitor::MetricKind::Integer,
            MetricKind::Gauge => snmp_monitor::MetricKind::Gauge,
            MetricKind::Counter => snmp_monitor::MetricKind::Counter,
            MetricKind::String => snmp_monitor::MetricKind::String,
        };
        Some(Metric::new(&m.name, Oid::from_arcs(&m.oid)?, kind))
    });
    MetricTable::new(&table.name, metrics.collect())
}

/// Applies each sample to its member's runtime state.
async fn apply_samples(
    mut rx: mpsc::Receiver<Sample<MemberKey>>,
    snapshot: Arc<ArcSwap<Snapshot>>,
    publish: broadcast::Sender<Arc<Sample<MemberKey>>>,
) {
    while let Some(sample) = rx.recv().await {
        let current = snapshot.load();
        let member = current
            .groups
            .get(&*sample.member.group)
            .and_then(|g| g.members.iter().find(|m| m.key == sample.member));
        let passive = current
            .config
            .monitor(&sample.monitor)
            .is_some_and(|m| matches!(&m.probe, Probe::Load(p) if p.passive));
        if let Some(member) = member {
            if sample.result == PollResult::Ok {
                member.set_load(sample.load);
                member.set_metrics(Some(sample.values.clone()));
                member.set_busy(sample.busy && !passive, "LOAD monitor threshold");
            } else if sample.consecutive_failures >= FAILURES_BEFORE_UNKNOWN {
                member.set_load(None);
                member.set_metrics(None);
                member.set_busy(false, "LOAD monitor cannot read the member");
            }
        }
        let _ = publish.send(Arc::new(sample));
    }
}
