//! Health monitors (`lbmonitor` types `TCP`, `HTTP` and `HTTP-ECV`): one task per bound
//! (member, monitor). The HTTP probes are in [`http_probe`].
//!
//! A task probes its member every `interval` (every `downtime` while it says DOWN); a probe that
//! takes longer than `resptimeout` fails. `retries` failures in a row make the monitor vote
//! DOWN, `successretries` successes vote UP again; a member is UP while no monitor votes DOWN
//! and passive detection has not marked it. A new member starts DOWN until its first probe
//! passes, so a member is never sent traffic before it was seen healthy. A probe Ballast cannot
//! send because it is out of file descriptors (or memory) counts neither way.
//!
//! A servicegroup with `proxyprotocol` has its probes start with a PROXY header too (the probe
//! connection's own addresses, as HAProxy's `check-send-proxy`), so a member that requires one
//! (nginx `listen ... proxy_protocol`) passes its checks.
//!
//! Every failed probe records its reason on the member (`stat` shows the last one), and every
//! change of state is logged with the probe result that caused it, including a new member's
//! first verdict: a member that never comes UP logs its move to DOWN and why.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::config::{Config, LbMonitor, Probe};
use crate::error::is_local_exhaustion;
use crate::member::{MemberKey, MemberState};
use crate::proxy_protocol::Version;
use crate::snapshot::Snapshot;

mod http_probe;

/// The running monitor tasks, reconciled by the config writer after every change.
#[derive(Debug, Default)]
pub struct Monitors {
    running: HashMap<(MemberKey, String), Running>,
}

#[derive(Debug)]
struct Running {
    monitor: LbMonitor,
    /// The group's `proxyprotocol` when the task started.
    proxy_protocol: Option<Version>,
    member: Arc<MemberState>,
    voting_down: Arc<AtomicBool>,
    task: AbortHandle,
}

impl Running {
    /// The monitor was unbound from its member: it no longer holds the member DOWN.
    fn unbind(self) {
        if self.voting_down.swap(false, Relaxed) {
            self.member.monitor_verdict(true, "monitor unbound");
        }
    }
}

/// Dropping stops the probes and nothing else: at shutdown no member changes state.
impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Monitors {
    /// Starts tasks for new (member, monitor) bindings and stops those that went away.
    /// `fresh` members start DOWN: their monitors begin by voting DOWN.
    pub fn reconcile(
        &mut self,
        config: &Config,
        members: &HashMap<MemberKey, Arc<MemberState>>,
        fresh: &HashSet<MemberKey>,
    ) {
        let mut wanted = HashSet::new();
        for group in &config.service_groups {
            for member_config in &group.members {
                let key = MemberKey {
                    group: group.name.as_str().into(),
                    addr: member_config.addr,
                };
                let Some(member) = members.get(&key) else {
                    continue;
                };
                for name in &group.monitors {
                    let Some(monitor) = config.monitor(name).filter(|m| m.is_health_check()) else {
                        continue;
                    };
                    let id = (key.clone(), name.clone());
                    wanted.insert(id.clone());
                    if self.running.get(&id).is_some_and(|r| {
                        r.monitor == *monitor && r.proxy_protocol == group.proxy_protocol
                    }) {
                        continue;
                    }
                    let starts_down = match self.running.remove(&id) {
                        // A changed monitor keeps its current verdict.
                        Some(previous) => previous.voting_down.swap(false, Relaxed),
                        None => fresh.contains(&key),
                    };
                    let task = spawn(
                        monitor.clone(),
                        group.proxy_protocol,
                        member.clone(),
                        starts_down,
                    );
                    self.running.insert(id, task);
                }
            }
        }
        let unbound: Vec<_> = self
            .running
            .keys()
            .filter(|id| !wanted.contains(*id))
            .cloned()
            .collect();
        for id in unbound {
            if let Some(running) = self.running.remove(&id) {
                running.unbind();
            }
        }
    }
}

fn spawn(
    monitor: LbMonitor,
    proxy_protocol: Option<Version>,
    member: Arc<MemberState>,
    starts_down: bool,
) -> Running {
    let voting_down = Arc::new(AtomicBool::new(starts_down));
    let task = tokio::spawn(probe_loop(
        monitor.clone(),
        proxy_protocol,
        member.clone(),
        voting_down.clone(),
    ))
    .abort_handle();
    Running {
        monitor,
        proxy_protocol,
        member,
        voting_down,
        task,
    }
}

async fn probe_loop(
    monitor: LbMonitor,
    proxy_protocol: Option<Version>,
    member: Arc<MemberState>,
    voting_down: Arc<AtomicBool>,
) {
    let addr = SocketAddr::new(
        member.key.addr.ip(),
        monitor.dest_port.unwrap_or(member.key.addr.port()),
    );
    let (mut failures, mut successes) = (0u32, 0u32);
    loop {
        let started = Instant::now();
        let outcome = match tokio::time::timeout(
            monitor.resp_timeout,
            probe(&monitor.probe, proxy_protocol, addr),
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no response within {:?}", monitor.resp_timeout).into()),
        };
        let down = voting_down.load(Relaxed);
        match outcome {
            Ok(()) => {
                failures = 0;
                successes += 1;
                member.probe_succeeded();
                if down && successes >= monitor.success_retries {
                    voting_down.store(false, Relaxed);
                    member.monitor_verdict(
                        true,
                        &format!("monitor {} probe succeeded", monitor.name),
                    );
                }
            }
            Err(Failure::Local(error)) => {
                // Says nothing about the member: neither a failure nor a success.
                tracing::debug!(member = %member.label, monitor = %monitor.name, %error, "probe not sent: Ballast is out of file descriptors or memory");
            }
            Err(reason) => {
                successes = 0;
                failures += 1;
                let reason = format!("monitor {}: {reason}", monitor.name);
                member.probe_failed(&reason);
                if !down && failures >= monitor.retries {
                    voting_down.store(true, Relaxed);
                    member.monitor_verdict(false, &reason);
                }
            }
        }
        let pause = if voting_down.load(Relaxed) {
            monitor.down_time
        } else {
            monitor.interval
        };
        tokio::time::sleep_until(started + pause).await;
    }
}

/// Why a probe did not pass.
#[derive(Debug)]
enum Failure {
    /// The member failed it.
    Member(String),
    /// Ballast could not send it (out of file descriptors or memory): the member's
    /// state stays as it is.
    Local(std::io::Error),
}

impl From<String> for Failure {
    fn from(reason: String) -> Failure {
        Failure::Member(reason)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Member(reason) => f.write_str(reason),
            Failure::Local(error) => write!(f, "not sent: {error}"),
        }
    }
}

/// One probe, after a PROXY header of `proxy_protocol`; `Err` says why it failed.
async fn probe(
    probe: &Probe,
    proxy_protocol: Option<Version>,
    addr: SocketAddr,
) -> Result<(), Failure> {
    let mut stream = match TcpStream::connect(addr).await {
        Ok(stream) => stream,
        Err(error) if is_local_exhaustion(&error) => return Err(Failure::Local(error)),
        Err(error) => return Err(format!("connect to {addr}: {error}").into()),
    };
    if let Some(version) = proxy_protocol {
        let local = stream
            .local_addr()
            .map_err(|error| format!("connected to {addr}, but: {error}"))?;
        let header = crate::proxy_protocol::encode(version, local, addr);
        if let Err(error) = stream.write_all(&header).await {
            return Err(format!("sending the PROXY header to {addr}: {error}").into());
        }
    }
    http_probe::probe(probe, stream, addr).await
}

/// Ends passive DOWNs of members that no monitor watches (see [`crate::member::PASSIVE_DOWNTIME`]).
pub async fn expire_passive_downs(snapshot: Arc<ArcSwap<Snapshot>>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let current = snapshot.load();
        for group in current.groups.values().filter(|g| !g.monitored) {
            group.members.iter().for_each(|m| m.expire_passive_down());
        }
    }
}
