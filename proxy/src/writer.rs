//! The one config writer. Every change (the file at start, SIGHUP, the admin API, the
//! autoscaler) goes through [`ConfigWriter::apply`] (a whole new config from the file) or
//! [`ConfigWriter::edit`] (a change to the running config's file form, validated whole), which
//! run one at a time on a single task, so concurrent edits never lose each other. [`members`]
//! holds the typed member operations (bind, enable/disable, unbind) built on `edit`. Each
//! applied config is published on [`ConfigWriter::config_changes`]. Applying a config:
//!
//! 1. make the sockets of new listeners ([`listeners`]); any failure rejects the change and
//!    nothing moved;
//! 2. look up or create the runtime state of every member (state outlives snapshots), drain
//!    members that were disabled or unbound;
//! 3. compile and publish the new [`Snapshot`] (a TLS vserver whose certificates did not change
//!    keeps its rustls config and session cache);
//! 4. start the new accept loops, stop the removed ones, and reconcile health monitors.
//!
//! Validating an edit reads files (certificates) and saving writes one: both run on the
//! blocking pool, so the writer's task never holds up the runtime it shares with the data
//! plane. The writer counts the admin API changes not saved yet; a file reload discards them
//! with a warning, or is refused under `[admin] reloadpolicy = "KEEP"`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accesslog::{AccessLogStats, AccessLogs};
use crate::config::file::FileConfig;
use crate::config::{Config, ReloadPolicy};
use crate::health::Monitors;
use crate::load_monitors::{LoadMonitors, LoadSamples};
use crate::member::{MemberKey, MemberState};
use crate::member_tls::ClientConfigs;
use crate::snapshot::{self, Snapshot};
use crate::stats::VserverStats;
use crate::surge::SurgeQueue;
use crate::tls::ServerConfigs;

pub mod listeners;
pub mod members;
pub mod outcomes;

pub use members::{MemberBinding, MemberChange, MemberOpError};
pub use outcomes::{ChangeSource, WriterOutcomes};

use listeners::Listeners;

/// Why a change was not applied. The running config is untouched, except where said.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("lbvserver `{vserver}` cannot listen on {addr}: {source}")]
    Bind {
        vserver: String,
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// The socket listened but its accept loop did not start: the new config is in force
    /// without this vserver accepting connections.
    #[error("lbvserver `{vserver}` listens but cannot accept connections: {source}")]
    AcceptLoop {
        vserver: String,
        source: std::io::Error,
    },
    #[error(
        "the admin API holds {changes} change(s) not saved to the file; with [admin] \
         reloadpolicy = \"KEEP\" a reload would lose them: save them (nsconfig save) first"
    )]
    Unsaved { changes: u64 },
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

enum Command {
    Load(Box<Config>, oneshot::Sender<Result<(), ApplyError>>),
    Edit(Edit, ChangeSource, oneshot::Sender<Result<(), EditError>>),
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
    /// Access log lines written and dropped, across every `[accesslog]` applied.
    pub access_log_stats: Arc<AccessLogStats>,
}

impl ConfigWriter {
    /// Starts the writer. `tracker` tracks accept loops and connections; `shutdown` stops them
    /// (and closes the listening sockets).
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
        let access_logs = AccessLogs::default();
        let access_log_stats = access_logs.stats();
        // Expired SOURCEIP persistence entries leave every few seconds.
        tokio::spawn(crate::persistence::sweep(
            snapshot.clone(),
            shutdown.clone(),
        ));
        let mut state = WriterState {
            access_logs,
            configs: configs.clone(),
            load_monitors,
            outcomes: outcomes.clone(),
            base_dir,
            snapshot,
            tracker,
            shutdown: shutdown.clone(),
            listeners: Listeners::default(),
            members: HashMap::new(),
            stats: HashMap::new(),
            surge_queues: HashMap::new(),
            tls: ServerConfigs::default(),
            member_tls: ClientConfigs::default(),
            monitors: Monitors::default(),
            unsaved: 0,
        };
        tokio::spawn(async move {
            loop {
                let command = tokio::select! {
                    command = inbox.recv() => command,
                    () = shutdown.cancelled() => None,
                };
                let Some(command) = command else { break };
                match command {
                    Command::Load(config, reply) => {
                        let _ = reply.send(state.load(*config));
                    }
                    Command::Edit(edit, source, reply) => {
                        let _ = reply.send(state.edit(edit, source).await);
                    }
                    Command::Save(path, reply) => {
                        let _ = reply.send(state.save(path).await);
                    }
                }
            }
            state.listeners.close_all();
        });
        ConfigWriter {
            commands,
            outcomes,
            snmp_stats,
            load_samples,
            configs,
            access_log_stats,
        }
    }

    /// Applies a validated config read from the file (at start, on SIGHUP); returns once it
    /// is live (or was rejected). The autoscaled members of the running config stay bound
    /// (see [`members::carry_over`]); admin API changes not saved yet are discarded with a
    /// warning, or keep the running config under `[admin] reloadpolicy = "KEEP"`.
    pub async fn apply(&self, config: Config) -> Result<(), ApplyError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Load(Box::new(config), reply))
            .await
            .map_err(|_| ApplyError::Stopped)?;
        answer.await.map_err(|_| ApplyError::Stopped)?
    }

    /// Edits the running config through the admin API: `edit` changes its file form, the
    /// result is validated whole and applied; any failure leaves the running config as it
    /// was. Returns what `edit` returned.
    pub async fn edit<T: Send + 'static>(
        &self,
        edit: impl FnOnce(&mut FileConfig) -> Result<T, EditError> + Send + 'static,
    ) -> Result<T, EditError> {
        self.edit_from(ChangeSource::Api, edit).await
    }

    /// [`ConfigWriter::edit`], counted under `source`.
    pub async fn edit_from<T: Send + 'static>(
        &self,
        source: ChangeSource,
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
            .send(Command::Edit(erased, source, reply))
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

    /// Counts a file reload that was rejected before it reached the writer (its file did not
    /// validate).
    pub fn record_rejected(&self) {
        self.outcomes.count(ChangeSource::File, false);
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
    listeners: Listeners,
    members: HashMap<MemberKey, Arc<MemberState>>,
    stats: HashMap<String, Arc<VserverStats>>,
    /// Each servicegroup's surge queue, by name: like member state, it outlives snapshots.
    surge_queues: HashMap<String, Arc<SurgeQueue>>,
    tls: ServerConfigs,
    /// The rustls client config of each `SSL`/`SSL_TCP` servicegroup (kept while unchanged,
    /// so pooled member connections and TLS sessions survive edits).
    member_tls: ClientConfigs,
    monitors: Monitors,
    /// Admin API changes applied since the file was last loaded or saved.
    unsaved: u64,
    /// The running access log, kept while `[accesslog]` does not change.
    access_logs: AccessLogs,
}

impl WriterState {
    /// A config from the file replaces the running one.
    fn load(&mut self, config: Config) -> Result<(), ApplyError> {
        let unsaved = self.unsaved;
        let policy = config
            .admin
            .as_ref()
            .map_or(ReloadPolicy::default(), |admin| admin.reload_policy);
        if unsaved > 0 && policy == ReloadPolicy::Keep {
            self.outcomes.count(ChangeSource::File, false);
            return Err(ApplyError::Unsaved { changes: unsaved });
        }
        let running = self.snapshot.load().config.clone();
        let config = members::carry_over(&running, config);
        self.apply(Arc::new(config), ChangeSource::File)?;
        self.unsaved = 0;
        if unsaved > 0 {
            tracing::warn!(
                changes = unsaved,
                "the reload discarded admin API changes that were not saved"
            );
        }
        Ok(())
    }

    async fn edit(&mut self, edit: Edit, source: ChangeSource) -> Result<(), EditError> {
        let running = self.snapshot.load().config.clone();
        let base_dir = self.base_dir.clone();
        let validated = tokio::task::spawn_blocking(move || {
            let mut file = running.to_file();
            edit(&mut file)?;
            crate::config::validate::from_file(&file, &base_dir, &running.cert_keys)
                .map_err(|invalid| EditError::Invalid(invalid.name_objects(&file)))
        })
        .await
        .unwrap_or_else(|failed| Err(EditError::Rejected(format!("the edit failed: {failed}"))));
        let config = match validated {
            Ok(config) => config,
            Err(error) => {
                self.outcomes.count(source, false);
                return Err(error);
            }
        };
        self.apply(Arc::new(config), source)?;
        if source == ChangeSource::Api {
            self.unsaved += 1;
        }
        Ok(())
    }

    async fn save(&mut self, path: PathBuf) -> std::io::Result<()> {
        let file = crate::save::file_to_save(&self.snapshot.load().config);
        tokio::task::spawn_blocking(move || crate::save::save(&path, &file))
            .await
            .map_err(std::io::Error::other)??;
        self.unsaved = 0;
        Ok(())
    }

    fn apply(&mut self, config: Arc<Config>, source: ChangeSource) -> Result<(), ApplyError> {
        let result = self.apply_inner(config.clone());
        // An accept loop that did not start leaves the new config in force (see `AcceptLoop`).
        if !matches!(result, Err(ApplyError::Bind { .. })) {
            self.configs.send_replace(config);
        }
        self.outcomes.count(source, result.is_ok());
        result
    }

    fn apply_inner(&mut self, config: Arc<Config>) -> Result<(), ApplyError> {
        // 1. Listeners: every socket the change needs, or an error and nothing moved.
        let wanted = listeners::wanted(&config);
        let listener_plan = self.listeners.prepare(&wanted)?;

        // 2. Members: same key, same state; disabled or unbound members drain.
        let mut fresh = HashSet::new();
        let mut live = HashSet::new();
        self.surge_queues
            .retain(|name, _| config.service_group(name).is_some());
        for group in &config.service_groups {
            let queue = self.surge_queues.entry(group.name.clone()).or_default();
            queue.configure(&group.surge);
            let queue = queue.clone();
            for member in &group.members {
                let key = MemberKey {
                    group: group.name.as_str().into(),
                    addr: member.addr,
                };
                let state = self.members.entry(key.clone()).or_insert_with(|| {
                    fresh.insert(key.clone());
                    MemberState::new(key.clone(), health_checks(&config, group))
                });
                state.join_surge_queue(&queue);
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
        let vserver_names: HashSet<&str> = (config.vservers.iter().map(|v| v.name.as_str()))
            .chain(config.cs_vservers.iter().map(|cs| cs.name.as_str()))
            .collect();
        self.stats
            .retain(|name, _| vserver_names.contains(name.as_str()));
        self.tls.retain(|name| vserver_names.contains(name));
        self.member_tls
            .retain(|name| config.service_group(name).is_some_and(|g| g.tls.is_some()));

        // 3. Publish.
        let members = &self.members;
        let stats = &mut self.stats;
        let surge_queues = &self.surge_queues;
        let tls = &mut self.tls;
        let member_tls = &mut self.member_tls;
        let mut compiled = snapshot::compile(
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
            |group| surge_queues[group].clone(),
            |name, service_type, certs| {
                let alpn_http = service_type == crate::config::ServiceType::Ssl;
                tls.get(name, certs, alpn_http)
            },
            |group, settings, client_cert| {
                member_tls.get(&group.name, settings, group.backend_type, client_cert)
            },
        );
        compiled.access_log = self.access_logs.for_config(config.access_log.as_ref());
        self.snapshot.store(Arc::new(compiled));

        // 4. Drains, accept loops and monitors.
        for state in unbound {
            state.set_draining(true, "unbound from its servicegroup");
            // Requests in flight finish; tunnels (WebSocket) could last for ever: they close.
            state.cut_tunnels("unbound from its servicegroup");
        }
        let listening =
            self.listeners
                .commit(listener_plan, &self.snapshot, &self.tracker, &self.shutdown);
        self.monitors.reconcile(&config, &self.members, &fresh);
        self.load_monitors.reconcile(&config);
        listening
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
