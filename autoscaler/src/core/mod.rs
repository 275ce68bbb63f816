//! The decision core: one autoscale group's state machine, with no I/O and no clock of its own
//! (quinn-proto style). The driver hands it `now` (time since the engine's origin) and what
//! it observed (samples, finished steps, the cloud's inventory); it hands back [`Action`]s to
//! execute, [`Event`]s to record, and the next deadline at which it wants
//! [`GroupCore::handle_timeout`].
//!
//! - [`breach`]: the watch-time windows; [`vm`]: each VM's lifecycle.
//! - `decide`: the rules (fill to min, over max, health replacement, scale out, scale in);
//!   `lifecycle`: what happens as steps finish; `reconcile`: aligning with the cloud.

mod breach;
mod decide;
mod lifecycle;
mod reconcile;
mod vm;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use crate::event::{Event, EventKind};
use crate::policy::Policy;

use self::breach::BreachWindows;
use self::vm::{Phase, Vm};

/// A launch this engine started: a deploy whose VM id may not be known yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LaunchId(pub u64);

/// What the driver must do. Each ends with the matching `on_*` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Deploy one VM; report [`GroupCore::on_deploy_accepted`] as soon as the cloud gives its
    /// id, then [`GroupCore::on_deploy_finished`].
    Deploy { launch: LaunchId },
    /// Bind the VM as a member; then [`GroupCore::on_bound`].
    Bind { vm: String, addr: SocketAddr },
    /// Stop new traffic to the member (it stays bound); no report needed.
    Drain { vm: String, addr: SocketAddr },
    /// Unbind the member; then [`GroupCore::on_unbound`].
    Unbind { vm: String, addr: SocketAddr },
    /// Destroy the VM with expunge; then [`GroupCore::on_destroyed`].
    Destroy { vm: String },
    /// List the group's VMs in the cloud; then [`GroupCore::on_inventory`].
    Reconcile,
    /// Ask the cloud about one VM; then [`GroupCore::on_investigated`].
    Investigate { vm: String },
}

/// One member's figures at one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberSample {
    /// The VM behind an autoscaled member; `None` for a member from the config file.
    pub vm: Option<String>,
    pub up: bool,
    pub connections: u64,
    pub protected: bool,
    /// One value per policy metric, in the policy's order (`None`: unknown).
    pub values: Vec<Option<f64>>,
}

/// A VM as the cloud lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudVm {
    pub id: String,
    pub state: CloudState,
    pub addr: Option<SocketAddr>,
    /// CloudStack's `created` (ISO 8601), to order adopted VMs.
    pub created: Option<String>,
    /// CloudStack's `displayname`: a launch of this engine run is recognised by it
    /// ([`GroupCore::launch_name`]) even when the listing comes before the deploy's answer.
    pub displayname: Option<String>,
}

/// The VM states the engine tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudState {
    Starting,
    Running,
    /// Stopped, Stopping, Error, Shutdown and anything else that cannot serve.
    Broken,
    /// Destroyed or Expunging: on its way out, no longer counted.
    Gone,
}

/// What reconciling found: the cloud's VMs of the group, and the autoscaled members bound now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    pub vms: Vec<CloudVm>,
    pub bound: Vec<(String, SocketAddr)>,
    /// VMs (of `bound`) whose member is draining: an earlier engine's scale-in in progress.
    pub draining: Vec<String>,
    /// When the listing was asked for (`None`: just now). What the core learned after that
    /// is not judged by it: a VM it deployed since is not "gone", one it destroyed since is
    /// not "new".
    pub taken_at: Option<Duration>,
}

/// Why a deploy did not give a Running VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployError {
    /// The cloud refused or the VM failed / timed out; `vm` is what it created, if anything.
    Failed { reason: String, vm: Option<String> },
    /// The request may or may not have reached the cloud (a transport error after sending):
    /// the group must be listed before anything is deployed again.
    Uncertain { reason: String },
}

/// The group's phase, for `stat/autoscalegroup` and the live status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupPhase {
    /// Waiting for the first inventory.
    Starting,
    Disabled,
    Idle,
    Watching,
    Provisioning,
    Cooldown,
    Draining,
    Suspended,
}

impl GroupPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupPhase::Starting => "starting",
            GroupPhase::Disabled => "disabled",
            GroupPhase::Idle => "idle",
            GroupPhase::Watching => "watching",
            GroupPhase::Provisioning => "provisioning",
            GroupPhase::Cooldown => "cooldown",
            GroupPhase::Draining => "draining",
            GroupPhase::Suspended => "suspended",
        }
    }
}

/// A snapshot of the group for operators.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub phase: GroupPhase,
    /// Time left in the phase, where it has an end (watch, cooldown, drain, suspension).
    pub time_left: Option<Duration>,
    /// VMs by state name (`provisioning`, `up`, `down`, `draining`, `destroying`).
    pub members: BTreeMap<&'static str, u32>,
    /// Members in service.
    pub current: u32,
    /// Members the engine is working toward.
    pub desired: u32,
    /// The latest group averages, one per policy metric.
    pub averages: Vec<(String, Option<f64>)>,
    pub consecutive_failures: u32,
    /// Seconds from the start of the breach to the last new member UP, of the last scale-out.
    pub last_scale_out: Option<Duration>,
    pub observe: bool,
}

/// A scale-out in progress: its launches, and when the breach that caused it began.
#[derive(Debug, Clone)]
struct ScaleOut {
    breach_since: Duration,
    waiting: BTreeSet<LaunchId>,
    succeeded: u32,
}

/// One autoscale group's decision core.
#[derive(Debug)]
pub struct GroupCore {
    policy: Policy,
    vms: BTreeMap<String, Vm>,
    /// Deploys sent whose VM id is not known yet.
    pending: BTreeMap<LaunchId, Duration>,
    /// Deploys whose answer was lost (a transport error after sending), since when: the VM
    /// may exist. The next listing taken after that settles each one.
    uncertain: BTreeMap<LaunchId, Duration>,
    /// Display names of this run's launches are this prefix and the launch number.
    launch_prefix: String,
    /// VMs destroyed or found gone lately, and when: a listing taken before that still shows
    /// them, and must not bring them back.
    forgotten: VecDeque<(String, Duration)>,
    next_launch: u64,
    next_order: u64,
    scale_out: Option<ScaleOut>,
    windows: BreachWindows,
    averages: Vec<Option<f64>>,
    cooldown_until: Option<Duration>,
    /// No launch before this (the back-off after a failed launch).
    retry_at: Option<Duration>,
    failures: u32,
    suspended_until: Option<Duration>,
    /// The cloud must be listed before the next launch (at start, after an uncertain deploy).
    needs_inventory: bool,
    load_unknown: bool,
    /// Fenced members whose replacement waits for room under `maxmembers`.
    replacements_owed: u32,
    /// Observe mode: decisions already reported while their condition holds.
    observed: BTreeSet<&'static str>,
    /// Observe mode: VMs reconcile would have destroyed, already reported.
    spared: BTreeSet<String>,
    last_scale_out: Option<Duration>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
}

impl GroupCore {
    /// A core for `policy`; its first action is to list the group in the cloud.
    pub fn new(policy: Policy) -> GroupCore {
        let mut core = GroupCore {
            policy,
            vms: BTreeMap::new(),
            pending: BTreeMap::new(),
            uncertain: BTreeMap::new(),
            launch_prefix: String::from("launch-"),
            forgotten: VecDeque::new(),
            next_launch: 1,
            next_order: 1,
            scale_out: None,
            windows: BreachWindows::default(),
            averages: Vec::new(),
            cooldown_until: None,
            retry_at: None,
            failures: 0,
            suspended_until: None,
            needs_inventory: true,
            load_unknown: false,
            replacements_owed: 0,
            observed: BTreeSet::new(),
            spared: BTreeSet::new(),
            last_scale_out: None,
            actions: VecDeque::new(),
            events: VecDeque::new(),
        };
        core.actions.push_back(Action::Reconcile);
        core
    }

    /// Names this run's launches `<prefix><number>` (the driver gives the group's name and a
    /// run stamp), so that a listing can tell them from strangers.
    pub fn with_launch_prefix(mut self, prefix: impl Into<String>) -> GroupCore {
        self.launch_prefix = prefix.into();
        self
    }

    /// The display name the VM of `launch` is deployed with.
    pub fn launch_name(&self, launch: LaunchId) -> String {
        format!("{}{}", self.launch_prefix, launch.0)
    }

    /// The launch of this run a display name belongs to, if any.
    fn launch_of(&self, displayname: Option<&str>) -> Option<LaunchId> {
        let number = displayname?.strip_prefix(self.launch_prefix.as_str())?;
        number.parse().ok().map(LaunchId)
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The next action to execute, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next event to record, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When the core next wants [`GroupCore::handle_timeout`] (samples aside).
    pub fn next_timeout(&self) -> Option<Duration> {
        let vm_deadlines = self.vms.values().filter_map(|vm| match vm.phase {
            Phase::Draining { until } | Phase::Grace { until } => Some(until),
            _ => None,
        });
        [self.cooldown_until, self.suspended_until]
            .into_iter()
            .flatten()
            .chain(vm_deadlines)
            .min()
    }

    /// Applies a changed policy (bounds, thresholds, enable/disable, observe) at once.
    pub fn set_policy(&mut self, now: Duration, policy: Policy) {
        let enabling = policy.enabled && !self.policy.enabled;
        if policy.metrics != self.policy.metrics {
            self.windows.restart();
            self.averages.clear();
        }
        if policy.observe != self.policy.observe {
            self.observed.clear();
            self.spared.clear();
            self.windows.restart();
        }
        self.policy = policy;
        if enabling {
            self.resume(now, "the group was enabled");
        }
    }

    /// An operator enabled the group again: a suspended or backing-off launch may go now.
    pub fn resume(&mut self, now: Duration, reason: &str) {
        let was_held = self.suspended_until.is_some() || self.failures > 0;
        self.suspended_until = None;
        self.retry_at = None;
        self.failures = 0;
        if was_held {
            self.event(now, EventKind::LaunchResumed, reason.to_string());
        }
    }

    /// The group as an operator sees it.
    pub fn status(&self, now: Duration) -> Status {
        let mut members = BTreeMap::new();
        for vm in self.vms.values() {
            *members.entry(vm.state_name()).or_insert(0) += 1;
        }
        if !self.pending.is_empty() {
            *members.entry("provisioning").or_insert(0) += self.pending.len() as u32;
        }
        let (phase, until) = self.phase(now);
        let live = self.live_count();
        let desired = live.clamp(self.policy.min_members, self.policy.max_members);
        Status {
            phase,
            time_left: until.map(|until| until.saturating_sub(now)),
            members,
            current: self.serving_count(),
            desired,
            averages: self
                .policy
                .metrics
                .iter()
                .enumerate()
                .map(|(i, m)| (m.name.clone(), self.averages.get(i).copied().flatten()))
                .collect(),
            consecutive_failures: self.failures,
            last_scale_out: self.last_scale_out,
            observe: self.policy.observe,
        }
    }

    fn phase(&self, now: Duration) -> (GroupPhase, Option<Duration>) {
        if self.needs_inventory && self.vms.is_empty() && self.pending.is_empty() {
            return (GroupPhase::Starting, None);
        }
        if !self.policy.enabled {
            return (GroupPhase::Disabled, None);
        }
        if let Some(until) = self.suspended_until {
            return (GroupPhase::Suspended, Some(until));
        }
        if self.is_provisioning() {
            return (GroupPhase::Provisioning, None);
        }
        if self.is_scaling_in() {
            let until = self.vms.values().find_map(|vm| match vm.phase {
                Phase::Draining { until } | Phase::Grace { until } => Some(until),
                _ => None,
            });
            return (GroupPhase::Draining, until);
        }
        if let Some(until) = self.cooldown_until.filter(|until| *until > now) {
            return (GroupPhase::Cooldown, Some(until));
        }
        let can_grow = self.total_count() < self.policy.max_members;
        let can_shrink = self.live_count() > self.policy.min_members;
        match self.windows.watching_since(can_grow, can_shrink) {
            Some(since) => (GroupPhase::Watching, Some(since + self.policy.watch_time)),
            None => (GroupPhase::Idle, None),
        }
    }

    /// Members in service (bound, UP, not leaving).
    fn serving_count(&self) -> u32 {
        self.vms.values().filter(|vm| vm.is_serving()).count() as u32
    }

    /// VMs that count toward `minmembers`: deploying, joining or serving.
    fn live_count(&self) -> u32 {
        let launching = self.pending.len() + self.uncertain.len();
        (launching + self.vms.values().filter(|vm| vm.is_live()).count()) as u32
    }

    /// Every VM that exists or may exist (counts toward `maxmembers`).
    fn total_count(&self) -> u32 {
        (self.pending.len() + self.uncertain.len() + self.vms.len()) as u32
    }

    fn is_provisioning(&self) -> bool {
        !self.pending.is_empty()
            || !self.uncertain.is_empty()
            || self.vms.values().any(Vm::is_provisioning)
    }

    /// Remembers that `id` is gone as of `now` (see `forgotten`).
    fn forget(&mut self, id: &str, now: Duration) {
        const REMEMBERED: usize = 1024;
        if self.forgotten.len() == REMEMBERED {
            self.forgotten.pop_front();
        }
        self.forgotten.push_back((id.to_string(), now));
    }

    /// A scale-in (or an over-max removal) is draining or finishing.
    fn is_scaling_in(&self) -> bool {
        use self::vm::Cause;
        self.vms.values().any(|vm| {
            vm.retire
                .is_some_and(|r| matches!(r.cause, Cause::ScaleIn | Cause::OverMax))
        })
    }

    fn event(&mut self, now: Duration, kind: EventKind, reason: String) {
        self.event_about(now, kind, None, reason);
    }

    fn event_about(&mut self, now: Duration, kind: EventKind, vm: Option<&str>, reason: String) {
        let values = self
            .policy
            .metrics
            .iter()
            .zip(&self.averages)
            .filter_map(|(m, v)| Some((m.name.clone(), (*v)?)))
            .collect();
        self.events.push_back(Event {
            at: now,
            kind,
            reason,
            members: self.serving_count(),
            vm: vm.map(str::to_string),
            values,
            observed: false,
        });
    }
}
