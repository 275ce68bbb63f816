//! The one config writer. Every change (the file at start, SIGHUP, later the admin API and the
//! autoscaler) goes through [`ConfigWriter::apply`], which runs on a single task:
//!
//! 1. bind the listeners of new vservers (an address in use rejects the change, nothing moved);
//! 2. look up or create the runtime state of every member (state outlives snapshots), drain
//!    members that were disabled or unbound;
//! 3. compile and publish the new [`Snapshot`];
//! 4. start the new accept loops, stop the removed ones, and reconcile health monitors.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::health::Monitors;
use crate::listener::{self, RunningVserver};
use crate::member::{MemberKey, MemberState};
use crate::snapshot::{self, Snapshot};
use crate::stats::VserverStats;

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

/// A config to apply, and where to send the outcome.
type Command = (Arc<Config>, oneshot::Sender<Result<(), ApplyError>>);

/// A handle to the writer task.
#[derive(Debug, Clone)]
pub struct ConfigWriter {
    commands: mpsc::Sender<Command>,
}

impl ConfigWriter {
    /// Starts the writer. `tracker` tracks accept loops and connections; `shutdown` stops them.
    pub fn start(
        snapshot: Arc<ArcSwap<Snapshot>>,
        tracker: TaskTracker,
        shutdown: CancellationToken,
    ) -> ConfigWriter {
        let (commands, mut inbox) = mpsc::channel::<Command>(16);
        let mut state = WriterState {
            snapshot,
            tracker,
            shutdown,
            listeners: HashMap::new(),
            members: HashMap::new(),
            stats: HashMap::new(),
            monitors: Monitors::default(),
        };
        tokio::spawn(async move {
            while let Some((config, reply)) = inbox.recv().await {
                let _ = reply.send(state.apply(config));
            }
        });
        ConfigWriter { commands }
    }

    /// Applies a validated config; returns once it is live (or was rejected).
    pub async fn apply(&self, config: Config) -> Result<(), ApplyError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send((Arc::new(config), reply))
            .await
            .map_err(|_| ApplyError::Stopped)?;
        answer.await.map_err(|_| ApplyError::Stopped)?
    }
}

struct WriterState {
    snapshot: Arc<ArcSwap<Snapshot>>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    listeners: HashMap<Arc<str>, RunningVserver>,
    members: HashMap<MemberKey, Arc<MemberState>>,
    stats: HashMap<String, Arc<VserverStats>>,
    monitors: Monitors,
}

impl WriterState {
    fn apply(&mut self, config: Arc<Config>) -> Result<(), ApplyError> {
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
                    MemberState::new(key.clone(), group.monitors.len() as u32)
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
        self.members.retain(|key, state| {
            let keep = live.contains(key);
            if !keep {
                state.set_draining(true, "unbound from its servicegroup");
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

        // 4. Accept loops and monitors.
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
        Ok(())
    }
}
