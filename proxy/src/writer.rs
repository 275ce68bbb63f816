//! The one config writer. Every change (the file at start, SIGHUP, the admin API, the
//! autoscaler) goes through [`ConfigWriter::apply`] (a whole new config) or
//! [`ConfigWriter::edit`] (a change to the running config's file form, validated whole), which
//! run one at a time on a single task, so concurrent edits never lose each other. [`members`]
//! holds the typed member operations (bind, enable/disable, unbind) built on `edit`. Each
//! applied config is published on [`ConfigWriter::config_changes`]. Applying a config:
//!
//! 1. bind the listeners of new vservers (an address in use rejects the change, nothing moved);
//! 2. look up or create the runtime state of every member (state outlives snapshots), drain
//!    members that were disabled or unbound;
//! 3. compile and publish the new [`Snapshot`];
//! 4. start the new accept loops, stop the removed ones, and reconcile health monitors.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::config::file::FileConfig;
use crate::health::Monitors;
use crate::listener::{self, RunningVserver};
use crate::load_monitors::{LoadMonitors, LoadSamples};
use crate::member::{MemberKey, MemberState};
use crate::snapshot::{self, Snapshot};
use crate::stats::VserverStats;

pub mod members;

pub use members::{MemberBinding, MemberChange, MemberOpError};

/// Why a change was not applied. The running config is untouched.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("lbvserver `{vserver}` cannot listen on {addr}: {source}")]
    Bind {
        vserver: String,
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("the config writer has stopped")]
    Stopped,
}

/// Why an edit was not applied. The running config is untouched.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The edit names something that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Something with that name already exists.
    #[error("{0}")]
    Exists(String),
    /// The thing to delete is still referenced.
    #[error("{0}")]
    InUse(String),
    /// The request itself is wrong (a field, a value, a shape).
    #[error("{0}")]
    Rejected(String),
    /// The edited config does not validate.
    #[error("{0}")]
    Invalid(#[from] crate::config::ConfigError),
    /// A typed member operation found nothing to do (see [`members`]).
    #[error(transparent)]
    Member(MemberOpError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

/// A change to the running config's file form.
pub type Edit = Box<dyn FnOnce(&mut FileConfig) -> Result<(), EditError> + Send>;

/// Outcomes of reloads and edits, for metrics.
#[derive(Debug, Default)]
pub struct WriterOutcomes {
    pub applied: AtomicU64,
    pub rejected: AtomicU64,
}

enum Command {
    Replace(Arc<Config>, oneshot::Sender<Result<(), ApplyError>>),
    Edit(Edit, oneshot::Sender<Result<(), EditError>>),
    Save(PathBuf, oneshot::Sender<std::io::Result<()>>),
}

/// A handle to the writer task.
#[derive(Debug, Clone)]
pub struct ConfigWriter {
    commands: mpsc::Sender<Command>,
    pub outcomes: Arc<WriterOutcomes>,
    /// SNMP poll statistics of the LOAD monitors (`None`: the poller could not start).
    pub snmp_stats: Option<Arc<snmp_monitor::PollStats>>,
    /// Every LOAD monitor sample, for whoever subscribes (the autoscaler).
    load_samples: LoadSamples,
    /// Each applied config.
    configs: Arc<watch::Sender<Arc<Config>>>,
}

impl ConfigWriter {
    /// Starts the writer. `tracker` tracks accept loops and connections; `shutdown` stops them.
    pub fn start(
        snapshot: Arc<ArcSwap<Snapshot>>,
        base_dir: PathBuf,
        tracker: TaskTracker,
        shutdown: CancellationToken,
    ) -> ConfigWriter {
        let (commands, mut inbox) = mpsc::channel::<Command>(64);
        let outcomes = Arc::new(WriterOutcomes::default());
        let load_monitors = LoadMonitors::start(snapshot.clone());
        let snmp_stats = load_monitors.stats();
        let load_samples = load_monitors.samples();
        let configs = Arc::new(watch::Sender::new(snapshot.load().config.clone()));
        let mut state = WriterState {
            configs: configs.clone(),
            load_monitors,
            outcomes: outcomes.clone(),
            base_dir,
            snapshot,
            tracker,
            shutdown,
            listeners: HashMap::new(),
            members: HashMap::new(),
            stats: HashMap::new(),
            monitors: Monitors::default(),
        };
        tokio::spawn(async move {
            while let Some(command) = inbox.recv().await {
                match command {
                    Command::Replace(config, reply) => {
                        let running = state.snapshot.load().config.clone();
                        let config = members::carry_over(&running, Arc::unwrap_or_clone(config));
                        let _ = reply.send(state.apply(Arc::new(config)));
                    }
                    Command::Edit(edit, reply) => {
                        let _ = reply.send(state.edit(edit));
                    }
                    Command::Save(path, reply) => {
                        let _ = reply.send(state.save(&path));
                    }
                }
            }
        });
        ConfigWriter {
            commands,
            outcomes,
            snmp_stats,
            load_samples,
            configs,
        }
    }

    /// Applies a validated config; returns once it is live (or was rejected). The autoscaled
    /// members of the running config stay bound (see [`members::carry_over`]).
    pub async fn apply(&self, config: Config) -> Result<(), ApplyError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Replace(Arc::new(config), reply);
        self.commands
            .send(command)
            .await
            .map_err(|_| ApplyError::Stopped)?;
        answer.await.map_err(|_| ApplyError::Stopped)?
    }

    /// Edits the running config: `edit` changes its file form, the result is validated whole
    /// and applied; any failure leaves the running config as it was. Returns what `edit` returned.
    pub async fn edit<T: Send + 'static>(
        &self,
        edit: impl FnOnce(&mut FileConfig) -> Result<T, EditError> + Send + 'static,
    ) -> Result<T, EditError> {
        let (value_tx, value_rx) = oneshot::channel();
        let erased: Edit = Box::new(move |file: &mut FileConfig| {
            let value = edit(file)?;
            let _ = value_tx.send(value);
            Ok(())
        });
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Edit(erased, reply))
            .await
            .map_err(|_| ApplyError::Stopped)?;
        answer.await.map_err(|_| ApplyError::Stopped)??;
        value_rx
            .await
            .map_err(|_| EditError::Apply(ApplyError::Stopped))
    }

    /// A stream of every LOAD monitor sample (members' SNMP metrics, load and BUSY verdicts).
    pub fn load_samples(
        &self,
    ) -> tokio::sync::broadcast::Receiver<Arc<snmp_monitor::Sample<MemberKey>>> {
        self.load_samples.subscribe()
    }

    /// Each applied config, from the one running now: the file at start, every reload, every
    /// edit (admin API, member operations).
    pub fn config_changes(&self) -> watch::Receiver<Arc<Config>> {
        self.configs.subscribe()
    }

    /// Counts a change that was rejected before it reached the writer (a reload whose file did
    /// not validate).
    pub fn record_rejected(&self) {
        self.outcomes.rejected.fetch_add(1, Relaxed);
    }

    /// Writes the running config to `path` atomically, keeping the comments and layout of the
    /// file there (see [`crate::save`]).
    pub async fn save(&self, path: PathBuf) -> std::io::Result<()> {
        let (reply, answer) = oneshot::channel();
        let stopped = || std::io::Error::other("the config writer has stopped");
        self.commands
            .send(Command::Save(path, reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

struct WriterState {
    configs: Arc<watch::Sender<Arc<Config>>>,
    load_monitors: LoadMonitors,
    outcomes: Arc<WriterOutcomes>,
    base_dir: PathBuf,
    snapshot: Arc<ArcSwap<Snapshot>>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    listeners: HashMap<Arc<str>, RunningVserver>,
    members: HashMap<MemberKey, Arc<MemberState>>,
    stats: HashMap<String, Arc<VserverStats>>,
    monitors: Monitors,
}

impl WriterState {
    fn edit(&mut self, edit: Edit) -> Result<(), EditError> {
        let mut file = self.snapshot.load().config.to_file();
        let validated = edit(&mut file).and_then(|()| {
            crate::config::validate::from_file(&file, &self.base_dir)
                .map_err(|invalid| EditError::Invalid(invalid.name_objects(&file)))
        });
        match validated {
            Ok(config) => Ok(self.apply(Arc::new(config))?),
            Err(error) => {
                self.outcomes.rejected.fetch_add(1, Relaxed);
                Err(error)
            }
        }
    }

    fn save(&self, path: &std::path::Path) -> std::io::Result<()> {
        let file = crate::save::file_to_save(&self.snapshot.load().config);
        crate::save::save(path, &file)
    }

    fn apply(&mut self, config: Arc<Config>) -> Result<(), ApplyError> {
        let result = self.apply_inner(config.clone());
        let counter = if result.is_ok() {
            self.configs.send_replace(config);
            &self.outcomes.applied
        } else {
            &self.outcomes.rejected
        };
        counter.fetch_add(1, Relaxed);
        result
    }

    fn apply_inner(&mut self, config: Arc<Config>) -> Result<(), ApplyError> {
        // 1. Listeners: which vservers keep theirs, which need a new one.
        let wanted: Vec<_> = config.vservers.iter().filter(|v| v.enabled).collect();
        let keeps = |running: &RunningVserver| {
            wanted.iter().any(|v| {
                *v.name == *running.name
                    && v.addr == running.addr
                    && v.service_type == running.service_type
            })
        };
        let stopping: Vec<Arc<str>> = self
            .listeners
            .values()
            .filter(|r| !keeps(r))
            .map(|r| r.name.clone())
            .collect();
        let held_by_stopping: HashSet<_> = stopping
            .iter()
            .map(|name| self.listeners[name].addr)
            .collect();
        let mut bound: Vec<(usize, TcpListener)> = Vec::new();
        let mut rebind_later = Vec::new();
        for (index, vserver) in wanted.iter().enumerate() {
            if self
                .listeners
                .get(vserver.name.as_str())
                .is_some_and(&keeps)
            {
                continue;
            }
            if held_by_stopping.contains(&vserver.addr) {
                rebind_later.push(index);
                continue;
            }
            let listener = listener::bind(vserver.addr).map_err(|source| ApplyError::Bind {
                vserver: vserver.name.clone(),
                addr: vserver.addr,
                source,
            })?;
            bound.push((index, listener));
        }

        // 2. Members: same key, same state; disabled or unbound members drain.
        let mut fresh = HashSet::new();
        let mut live = HashSet::new();
        for group in &config.service_groups {
            for member in &group.members {
                let key = MemberKey {
                    group: group.name.as_str().into(),
                    addr: member.addr,
                };
                let state = self.members.entry(key.clone()).or_insert_with(|| {
                    fresh.insert(key.clone());
                    MemberState::new(key.clone(), health_checks(&config, group))
                });
                state.set_draining(
                    !member.enabled,
                    if member.enabled {
                        "enabled"
                    } else {
                        "disabled"
                    },
                );
                live.insert(key);
            }
        }
        // Unbound members drain only after the new snapshot is published (step 4), so no
        // request sees an old snapshot whose members are all draining already.
        let mut unbound = Vec::new();
        self.members.retain(|key, state| {
            let keep = live.contains(key);
            if !keep {
                unbound.push(state.clone());
            }
            keep
        });
        let vserver_names: HashSet<&str> =
            config.vservers.iter().map(|v| v.name.as_str()).collect();
        self.stats
            .retain(|name, _| vserver_names.contains(name.as_str()));

        // 3. Publish.
        let members = &self.members;
        let stats = &mut self.stats;
        let compiled = snapshot::compile(
            config.clone(),
            self.snapshot.load().connections.clone(),
            |group, addr| {
                members[&MemberKey {
                    group: group.into(),
                    addr,
                }]
                    .clone()
            },
            |name| stats.entry(name.to_owned()).or_default().clone(),
        );
        self.snapshot.store(Arc::new(compiled));

        // 4. Drains, accept loops and monitors.
        for state in unbound {
            state.set_draining(true, "unbound from its servicegroup");
        }
        for name in stopping {
            if let Some(running) = self.listeners.remove(&name) {
                running.stop();
                tracing::info!(vserver = %running.name, address = %running.addr, "vserver stopped listening");
            }
        }
        for index in rebind_later {
            let vserver = wanted[index];
            match listener::bind(vserver.addr) {
                Ok(listener) => bound.push((index, listener)),
                Err(error) => {
                    tracing::error!(vserver = %vserver.name, address = %vserver.addr, %error, "cannot listen")
                }
            }
        }
        for (index, tcp) in bound {
            let vserver = wanted[index];
            let name: Arc<str> = vserver.name.as_str().into();
            match listener::spawn(
                tcp,
                name.clone(),
                vserver.service_type,
                self.snapshot.clone(),
                self.tracker.clone(),
                self.shutdown.clone(),
            ) {
                Ok(running) => {
                    tracing::info!(vserver = %name, address = %running.addr, servicetype = vserver.service_type.as_str(), "vserver listening");
                    self.listeners.insert(name, running);
                }
                Err(error) => tracing::error!(vserver = %name, %error, "cannot start accept loop"),
            }
        }
        self.monitors.reconcile(&config, &self.members, &fresh);
        self.load_monitors.reconcile(&config);
        Ok(())
    }
}

/// How many health-check monitors (TCP, HTTP) a group binds: a new member starts DOWN for each.
fn health_checks(config: &Config, group: &crate::config::ServiceGroup) -> u32 {
    let checks = group
        .monitors
        .iter()
        .filter_map(|name| config.monitor(name));
    checks.filter(|m| m.is_health_check()).count() as u32
}
