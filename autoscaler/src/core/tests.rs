//! The decision core driven by hand with explicit `now`, one test per rule, each a table.
//!
//! [`World`] plays the cloud and the servicegroup: it executes the core's actions at once (or
//! holds the kinds a test asks it to hold), builds every member's sample from one value per
//! metric, and records each action and event as `"<t>s <what>"`, so a test asserts the exact
//! sequence and times. Time is whole seconds since the origin unless a test says otherwise.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use super::CloudState::{Broken, Gone, Running, Starting};
use super::{
    Action, CloudState, CloudVm, DeployError, GroupCore, GroupPhase, Inventory, MemberSample,
};
use crate::event::Event;
use crate::policy::{LaunchLimits, MetricRule, MetricSource, Policy, Victim};

/// A value the member cannot report (an SNMP timeout): `None` in its sample.
const UNKNOWN: f64 = f64::NAN;

fn secs(t: u64) -> Duration {
    Duration::from_secs(t)
}

fn metric(name: &str, upper: Option<f64>, lower: Option<f64>) -> MetricRule {
    MetricRule {
        name: name.to_string(),
        source: MetricSource::Snmp(name.to_string()),
        upper,
        lower,
    }
}

/// `cpu` (upper 80, lower 20); interval 1 s, watch 3 s, cooldown 10 s, quiet 5 s, no warm-up,
/// health grace 5 s; failed launches back off 10 s, 20 s, ... and suspend after 3 for 30 min.
fn policy(min: u32, max: u32) -> Policy {
    let mut policy = Policy::new(min, max, vec![metric("cpu", Some(80.0), Some(20.0))]);
    policy.interval = secs(1);
    policy.watch_time = secs(3);
    policy.cooldown = secs(10);
    policy.quiet_time = secs(5);
    policy.destroy_grace_period = Duration::ZERO;
    policy.warmup = Duration::ZERO;
    policy.health_grace_period = secs(5);
    policy.launch = LaunchLimits {
        retry_backoff: secs(10),
        max_retry_backoff: secs(300),
        suspend_after: 3,
        suspension: secs(1800),
        deploy_timeout: secs(600),
    };
    policy
}

/// Every VM's address, from its name (`vm-3` → 10.0.0.3, `old-3` → 10.0.1.3, ...).
fn addr(vm: &str) -> SocketAddr {
    let (prefix, n) = vm.rsplit_once('-').expect("VM names are <prefix>-<n>");
    let subnet = match prefix {
        "vm" => 0,
        "old" => 1,
        "bad" => 2,
        _ => 3,
    };
    format!("10.0.{subnet}.{n}:8080")
        .parse()
        .expect("an address")
}

fn values(load: &[f64]) -> Vec<Option<f64>> {
    load.iter().map(|v| (!v.is_nan()).then_some(*v)).collect()
}

/// How the fake cloud answers a deploy (`vm-<launch>` is the VM it creates).
#[derive(Debug, Clone, Copy)]
enum Deploy {
    /// Accepted, then Running with an address at once (the default).
    Running,
    /// Accepted; the VM stays Starting.
    Starting,
    /// Accepted, then failed: the VM it created is in Error.
    Fails,
    /// The connection broke after the request was sent; the cloud created the VM in this
    /// state, or nothing.
    Uncertain(Option<CloudState>),
}

/// The cloud, the servicegroup and the members' figures around one [`GroupCore`].
struct World {
    core: GroupCore,
    now: Duration,
    cloud: BTreeMap<String, CloudVm>,
    created: u32,
    /// The servicegroup's autoscaled members, by VM.
    bound: BTreeMap<String, SocketAddr>,
    down: BTreeSet<String>,
    /// Every member's values (one per metric), unless `loads` names the member.
    load: Vec<Option<f64>>,
    loads: BTreeMap<String, Vec<Option<f64>>>,
    connections: BTreeMap<String, u64>,
    protected: BTreeSet<String>,
    /// Answers to the next deploys; `Running` once empty.
    deploys: VecDeque<Deploy>,
    /// Action kinds left unexecuted until [`World::release`].
    hold: BTreeSet<&'static str>,
    held: Vec<Action>,
    log: Vec<String>,
    events: Vec<String>,
}

impl World {
    /// A fresh core; its first action (list the group) waits for [`World::start`].
    fn new(policy: Policy) -> World {
        let load = vec![Some(50.0); policy.metrics.len()];
        World {
            core: GroupCore::new(policy),
            now: Duration::ZERO,
            cloud: BTreeMap::new(),
            created: 0,
            bound: BTreeMap::new(),
            down: BTreeSet::new(),
            load,
            loads: BTreeMap::new(),
            connections: BTreeMap::new(),
            protected: BTreeSet::new(),
            deploys: VecDeque::new(),
            hold: BTreeSet::new(),
            held: Vec::new(),
            log: Vec::new(),
            events: Vec::new(),
        }
    }

    /// `count` Running VMs `old-1`, `old-2`, ... (created in that order), bound as members:
    /// what a previous run left.
    fn adopt(mut self, count: u32) -> World {
        for n in 1..=count {
            self = self.vm(&format!("old-{n}"), CloudState::Running, true);
        }
        self
    }

    /// A VM in the cloud, bound as a member or not.
    fn vm(mut self, id: &str, state: CloudState, bound: bool) -> World {
        self.create(id, state);
        if bound {
            self.bound.insert(id.to_string(), addr(id));
        }
        self
    }

    /// A member bound in the servicegroup whose VM the cloud does not have.
    fn stale_member(mut self, id: &str) -> World {
        self.bound.insert(id.to_string(), addr(id));
        self
    }

    /// The first inventory, at t = 0.
    fn start(mut self) -> World {
        self.pump();
        self
    }

    /// Starts, takes one sample at t = 0 with every metric at 50 (no threshold crossed) so the
    /// adopted members are UP, and forgets the setup's actions and events.
    fn settle(mut self) -> World {
        self.pump();
        let neutral = vec![Some(50.0); self.load.len()];
        let load = std::mem::replace(&mut self.load, neutral);
        self.sample(0);
        self.load = load;
        self.log.clear();
        self.events.clear();
        self
    }

    fn set_load(&mut self, load: &[f64]) {
        self.load = values(load);
    }

    fn set_member_load(&mut self, vm: &str, load: &[f64]) {
        self.loads.insert(vm.to_string(), values(load));
    }

    fn set_down(&mut self, vm: &str, down: bool) {
        if down {
            self.down.insert(vm.to_string());
        } else {
            self.down.remove(vm);
        }
    }

    fn hold(&mut self, kinds: &[&'static str]) {
        self.hold.extend(kinds);
    }

    /// Executes the held actions of `kind` at `t`, and no longer holds that kind.
    fn release(&mut self, t: u64, kind: &'static str) {
        self.now = secs(t);
        self.hold.remove(kind);
        let (go, keep) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|action| kind_of(action) == kind);
        self.held = keep;
        for action in go {
            self.execute(action);
        }
        self.pump();
    }

    /// One sample of every member at `t` (whole seconds).
    fn sample(&mut self, t: u64) {
        self.now = secs(t);
        let samples: Vec<MemberSample> = self
            .bound
            .keys()
            .map(|vm| MemberSample {
                vm: Some(vm.clone()),
                up: !self.down.contains(vm),
                connections: self.connections.get(vm).copied().unwrap_or(0),
                protected: self.protected.contains(vm),
                values: self.loads.get(vm).unwrap_or(&self.load).clone(),
            })
            .collect();
        self.core.on_sample(self.now, &samples);
        self.pump();
    }

    /// A sample every interval (1 s).
    fn run(&mut self, times: RangeInclusive<u64>) {
        for t in times {
            self.sample(t);
        }
    }

    /// Only the timers, at `now` (no sample).
    fn tick(&mut self, now: Duration) {
        self.now = now;
        self.core.handle_timeout(now);
        self.pump();
    }

    /// The driver's periodic reconcile: the core gets the inventory at `t`.
    fn reconcile(&mut self, t: u64) {
        self.now = secs(t);
        let inventory = self.inventory();
        self.core.on_inventory(self.now, Ok(inventory));
        self.pump();
    }

    fn set_policy(&mut self, t: u64, change: impl FnOnce(&mut Policy)) {
        self.now = secs(t);
        let mut policy = self.core.policy().clone();
        change(&mut policy);
        self.core.set_policy(self.now, policy);
        self.pump();
    }

    /// Every action asked for since the last call (executed or held).
    fn log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }

    fn events(&mut self) -> Vec<String> {
        std::mem::take(&mut self.events)
    }

    fn clear(&mut self) {
        self.log.clear();
        self.events.clear();
    }

    fn status(&self) -> (GroupPhase, Option<Duration>) {
        let status = self.core.status(self.now);
        (status.phase, status.time_left)
    }

    fn inventory(&self) -> Inventory {
        Inventory {
            vms: self.cloud.values().cloned().collect(),
            bound: self.bound.iter().map(|(vm, a)| (vm.clone(), *a)).collect(),
            ..Inventory::default()
        }
    }

    fn create(&mut self, id: &str, state: CloudState) {
        self.create_named(id, state, None);
    }

    /// A VM in the cloud whose display name is `displayname` (a launch's, for deploys).
    fn create_named(&mut self, id: &str, state: CloudState, displayname: Option<String>) {
        self.created += 1;
        let vm = CloudVm {
            id: id.to_string(),
            state,
            addr: (state != CloudState::Starting).then(|| addr(id)),
            created: Some(format!("2024-01-01T00:{:02}:00+0000", self.created)),
            displayname,
        };
        self.cloud.insert(id.to_string(), vm);
    }

    /// Executes every action the core asks for (and those they lead to), then collects events.
    fn pump(&mut self) {
        while let Some(action) = self.core.poll_action() {
            self.log
                .push(format!("{} {}", stamp(self.now), describe(&action)));
            if self.hold.contains(kind_of(&action)) {
                self.held.push(action);
            } else {
                self.execute(action);
            }
        }
        while let Some(event) = self.core.poll_event() {
            assert_eq!(event.at, self.now, "an event carries its call's time");
            self.events.push(render(&event));
        }
    }

    fn execute(&mut self, action: Action) {
        let now = self.now;
        match action {
            Action::Deploy { launch } => {
                let id = format!("vm-{}", launch.0);
                let name = Some(self.core.launch_name(launch));
                match self.deploys.pop_front().unwrap_or(Deploy::Running) {
                    Deploy::Running => {
                        self.create_named(&id, CloudState::Running, name);
                        self.core.on_deploy_accepted(now, launch, &id);
                        let running = Ok((id.clone(), addr(&id)));
                        self.core.on_deploy_finished(now, launch, running);
                    }
                    Deploy::Starting => {
                        self.create_named(&id, CloudState::Starting, name);
                        self.core.on_deploy_accepted(now, launch, &id);
                    }
                    Deploy::Fails => {
                        self.create_named(&id, CloudState::Broken, name);
                        self.core.on_deploy_accepted(now, launch, &id);
                        let failed = DeployError::Failed {
                            reason: "the VM went to Error".into(),
                            vm: Some(id),
                        };
                        self.core.on_deploy_finished(now, launch, Err(failed));
                    }
                    Deploy::Uncertain(created) => {
                        if let Some(state) = created {
                            self.create_named(&id, state, name);
                        }
                        let uncertain = DeployError::Uncertain {
                            reason: "connection reset after the request was sent".into(),
                        };
                        self.core.on_deploy_finished(now, launch, Err(uncertain));
                    }
                }
            }
            Action::Bind { vm, addr: at } => {
                let listed = self.cloud.get(&vm).and_then(|v| v.addr);
                assert_eq!(listed, Some(at), "{vm} is bound at its VM's address");
                assert!(
                    self.bound.insert(vm.clone(), at).is_none(),
                    "{vm} bound twice"
                );
                self.core.on_bound(now, &vm, Ok(()));
            }
            Action::Drain { vm, addr: at } => {
                assert_eq!(self.bound.get(&vm), Some(&at), "{vm} drained as a member");
            }
            Action::Unbind { vm, addr: at } => {
                assert_eq!(
                    self.bound.remove(&vm),
                    Some(at),
                    "{vm} unbound at its address"
                );
                self.core.on_unbound(now, &vm, Ok(()));
            }
            Action::Destroy { vm } => {
                assert!(
                    !self.bound.contains_key(&vm),
                    "{vm} destroyed while a member"
                );
                self.cloud.remove(&vm);
                self.core.on_destroyed(now, &vm, Ok(()));
            }
            Action::Reconcile => {
                let inventory = self.inventory();
                self.core.on_inventory(now, Ok(inventory));
            }
            Action::Investigate { vm } => {
                let state = self.cloud.get(&vm).map(|v| v.state);
                self.core.on_investigated(now, &vm, state);
            }
        }
    }
}

fn stamp(t: Duration) -> String {
    format!("{}s", t.as_secs_f64())
}

fn kind_of(action: &Action) -> &'static str {
    match action {
        Action::Deploy { .. } => "deploy",
        Action::Bind { .. } => "bind",
        Action::Drain { .. } => "drain",
        Action::Unbind { .. } => "unbind",
        Action::Destroy { .. } => "destroy",
        Action::Reconcile => "reconcile",
        Action::Investigate { .. } => "investigate",
    }
}

fn describe(action: &Action) -> String {
    match action {
        Action::Deploy { launch } => format!("deploy {}", launch.0),
        Action::Bind { vm, .. }
        | Action::Drain { vm, .. }
        | Action::Unbind { vm, .. }
        | Action::Destroy { vm }
        | Action::Investigate { vm } => format!("{} {vm}", kind_of(action)),
        Action::Reconcile => "reconcile".to_string(),
    }
}

/// `"<t>s <kind>[ <vm>][ (observed)]"`.
fn render(event: &Event) -> String {
    let mut text = format!("{} {}", stamp(event.at), event.kind);
    if let Some(vm) = &event.vm {
        text.push(' ');
        text.push_str(vm);
    }
    if event.observed {
        text.push_str(" (observed)");
    }
    text
}

#[test]
fn fill_to_minmembers_once_the_first_inventory_arrives_within_maxmembers() {
    struct Case<'a> {
        name: &'a str,
        min: u32,
        max: u32,
        cloud: &'a [(&'a str, CloudState, bool)],
        log: &'a [&'a str],
        events: &'a [&'a str],
    }
    let cases = [
        Case {
            name: "an empty group",
            min: 2,
            max: 4,
            cloud: &[],
            log: &[
                "0s reconcile",
                "1s deploy 1",
                "1s deploy 2",
                "1s bind vm-1",
                "1s bind vm-2",
            ],
            events: &[
                "1s reconciled",
                "1s scale_out_started",
                "1s vm_deployed vm-1",
                "1s vm_deployed vm-2",
                "1s member_bound vm-1",
                "1s member_bound vm-2",
                "2s member_up vm-1",
                "2s member_up vm-2",
                "2s cooldown_started",
            ],
        },
        Case {
            name: "a Running VM counts toward min",
            min: 2,
            max: 4,
            cloud: &[("old-1", Running, false)],
            log: &[
                "0s reconcile",
                "1s bind old-1",
                "1s deploy 1",
                "1s bind vm-1",
            ],
            events: &[
                "1s reconciled",
                "1s member_bound old-1",
                "1s member_up old-1",
                "1s scale_out_started",
                "1s vm_deployed vm-1",
                "1s member_bound vm-1",
                "2s member_up vm-1",
                "2s cooldown_started",
            ],
        },
        Case {
            name: "a VM in Error counts toward max until it is destroyed",
            min: 3,
            max: 3,
            cloud: &[("bad-1", Broken, false)],
            log: &[
                "0s reconcile",
                "1s destroy bad-1",
                "1s deploy 1",
                "1s deploy 2",
                "1s bind vm-1",
                "1s bind vm-2",
                "2s deploy 3",
                "2s bind vm-3",
            ],
            events: &[
                "1s reconciled",
                "1s scale_out_started",
                "1s vm_deployed vm-1",
                "1s vm_deployed vm-2",
                "1s member_bound vm-1",
                "1s member_bound vm-2",
                "2s vm_destroyed bad-1",
                "2s member_up vm-1",
                "2s member_up vm-2",
                "2s cooldown_started",
                "2s scale_out_started",
                "2s vm_deployed vm-3",
                "2s member_bound vm-3",
                "3s member_up vm-3",
                "3s cooldown_started",
            ],
        },
        Case {
            name: "a Starting VM counts toward min",
            min: 2,
            max: 2,
            cloud: &[("old-1", Running, true), ("old-2", Starting, false)],
            log: &["0s reconcile"],
            events: &["1s reconciled", "1s member_up old-1"],
        },
    ];
    for case in cases {
        let mut world = World::new(policy(case.min, case.max));
        for &(id, state, bound) in case.cloud {
            world = world.vm(id, state, bound);
        }
        world.hold(&["reconcile", "destroy"]);
        // Samples flow before the first inventory: nothing is deployed yet.
        world.sample(0);
        world.release(1, "reconcile");
        world.sample(1);
        world.release(2, "destroy");
        world.run(2..=3);
        assert_eq!(world.log(), case.log, "{}", case.name);
        assert_eq!(world.events(), case.events, "{}", case.name);
    }
}

#[test]
fn a_scale_out_adds_step_vms_but_never_more_than_maxmembers_allows() {
    struct Case<'a> {
        serving: u32,
        in_error: u32,
        step: u32,
        max: u32,
        log: &'a [&'a str],
    }
    let cases = [
        Case {
            serving: 2,
            in_error: 0,
            step: 3,
            max: 4,
            log: &["4s deploy 1", "4s deploy 2", "4s bind vm-1", "4s bind vm-2"],
        },
        Case {
            serving: 2,
            in_error: 1,
            step: 3,
            max: 4,
            log: &["4s deploy 1", "4s bind vm-1"],
        },
        Case {
            serving: 2,
            in_error: 2,
            step: 3,
            max: 4,
            log: &[],
        },
        Case {
            serving: 2,
            in_error: 0,
            step: 1,
            max: 4,
            log: &["4s deploy 1", "4s bind vm-1"],
        },
        Case {
            serving: 3,
            in_error: 0,
            step: 5,
            max: 4,
            log: &["4s deploy 1", "4s bind vm-1"],
        },
        Case {
            serving: 4,
            in_error: 0,
            step: 2,
            max: 4,
            log: &[],
        },
    ];
    for case in cases {
        let mut policy = policy(1, case.max);
        policy.step = case.step;
        let mut world = World::new(policy).adopt(case.serving);
        for n in 1..=case.in_error {
            world = world.vm(&format!("bad-{n}"), Broken, false);
        }
        // The VMs in Error are being destroyed (the call has not returned): they still count.
        world.hold(&["destroy"]);
        let mut world = world.settle();
        world.set_load(&[90.0]);
        world.run(1..=4);
        let name = format!(
            "{} serving, {} in Error, step {}",
            case.serving, case.in_error, case.step
        );
        assert_eq!(world.log(), case.log, "{name}");
    }
}

#[test]
fn a_scale_out_needs_any_metric_above_upper_on_every_sample_for_the_whole_watch_time() {
    // Interval 1 s, watch time 3 s: samples at t = 1, 2, 3, 4 all over → a scale-out at 4.
    let cases: [(&str, &[f64], &[&str]); 7] = [
        (
            "four samples over",
            &[90.0, 90.0, 90.0, 90.0],
            &["4s deploy 1", "4s bind vm-1"],
        ),
        ("one sample short", &[90.0, 90.0, 90.0], &[]),
        (
            "a sample back under restarts the window",
            &[90.0, 90.0, 50.0, 90.0, 90.0, 90.0, 90.0],
            &["7s deploy 1", "7s bind vm-1"],
        ),
        (
            "a restarted window one sample short",
            &[90.0, 90.0, 50.0, 90.0, 90.0, 90.0],
            &[],
        ),
        (
            "an unknown average restarts the window",
            &[90.0, 90.0, UNKNOWN, 90.0, 90.0, 90.0, 90.0],
            &["7s deploy 1", "7s bind vm-1"],
        ),
        (
            "at the threshold is not above it",
            &[80.0, 80.0, 80.0, 80.0, 80.0],
            &[],
        ),
        (
            "the breach starts late",
            &[50.0, 90.0, 90.0, 90.0, 90.0],
            &["5s deploy 1", "5s bind vm-1"],
        ),
    ];
    for (name, trace, log) in cases {
        let mut world = World::new(policy(1, 5)).adopt(2).settle();
        for (t, cpu) in (1..).zip(trace) {
            world.set_load(&[*cpu]);
            world.sample(t);
        }
        assert_eq!(world.log(), log, "{name}");
    }
}

#[test]
fn a_scale_in_needs_every_metric_with_a_lower_below_it_and_stops_at_minmembers() {
    type Rule<'a> = (&'a str, Option<f64>, Option<f64>);
    const CPU_MEM: &[Rule<'_>] = &[
        ("cpu", Some(80.0), Some(20.0)),
        ("mem", Some(80.0), Some(30.0)),
    ];
    const WITH_RPS: &[Rule<'_>] = &[
        ("cpu", Some(80.0), Some(20.0)),
        ("mem", Some(80.0), Some(30.0)),
        ("rps", Some(1000.0), None),
    ];
    struct Case<'a> {
        name: &'a str,
        metrics: &'a [Rule<'a>],
        load: &'a [f64],
        min: u32,
        until: u64,
        log: &'a [&'a str],
    }
    let cases = [
        Case {
            name: "all under: one at a time, down to min",
            metrics: CPU_MEM,
            load: &[10.0, 10.0],
            min: 1,
            until: 13,
            log: &[
                "4s drain old-3",
                "5s unbind old-3",
                "5s destroy old-3",
                "9s drain old-2",
                "10s unbind old-2",
                "10s destroy old-2",
            ],
        },
        Case {
            name: "all under, min 2",
            metrics: CPU_MEM,
            load: &[10.0, 10.0],
            min: 2,
            until: 13,
            log: &["4s drain old-3", "5s unbind old-3", "5s destroy old-3"],
        },
        Case {
            name: "all under, already at min",
            metrics: CPU_MEM,
            load: &[10.0, 10.0],
            min: 3,
            until: 13,
            log: &[],
        },
        Case {
            name: "one metric between its thresholds",
            metrics: CPU_MEM,
            load: &[10.0, 50.0],
            min: 1,
            until: 13,
            log: &[],
        },
        Case {
            name: "at the lower threshold is not below it",
            metrics: CPU_MEM,
            load: &[20.0, 10.0],
            min: 1,
            until: 13,
            log: &[],
        },
        Case {
            name: "one metric over upper, the other under lower: out, never in",
            metrics: CPU_MEM,
            load: &[10.0, 90.0],
            min: 1,
            until: 4,
            log: &["4s deploy 1", "4s bind vm-1"],
        },
        Case {
            name: "a metric without lower does not veto",
            metrics: WITH_RPS,
            load: &[10.0, 10.0, 500.0],
            min: 2,
            until: 13,
            log: &["4s drain old-3", "5s unbind old-3", "5s destroy old-3"],
        },
        Case {
            name: "a metric without lower still scales out",
            metrics: WITH_RPS,
            load: &[10.0, 10.0, 2000.0],
            min: 1,
            until: 4,
            log: &["4s deploy 1", "4s bind vm-1"],
        },
        Case {
            name: "a metric without upper never scales out",
            metrics: &[("cpu", None, Some(20.0))],
            load: &[95.0],
            min: 1,
            until: 13,
            log: &[],
        },
    ];
    for case in cases {
        let mut policy = policy(case.min, 10);
        policy.metrics = case
            .metrics
            .iter()
            .map(|&(name, upper, lower)| metric(name, upper, lower))
            .collect();
        let mut world = World::new(policy).adopt(3).settle();
        world.set_load(case.load);
        world.run(1..=case.until);
        assert_eq!(world.log(), case.log, "{}", case.name);
    }
}

#[test]
fn no_decision_while_vms_provision_or_a_scale_in_is_under_way() {
    struct Case<'a> {
        name: &'a str,
        cpu: f64,
        deploy: Deploy,
        hold: &'a [&'static str],
        down: &'a [&'a str],
        victim_connections: u64,
        quiet: u64,
        grace: u64,
        log: &'a [&'a str],
        phase: (GroupPhase, Option<Duration>),
    }
    let provisioning = (GroupPhase::Provisioning, None);
    let base = Case {
        name: "",
        cpu: 90.0,
        deploy: Deploy::Running,
        hold: &[],
        down: &[],
        victim_connections: 0,
        quiet: 5,
        grace: 0,
        log: &[],
        phase: provisioning,
    };
    let cases = [
        Case {
            name: "the deploy call has not returned",
            hold: &["deploy"],
            log: &["4s deploy 1"],
            ..base
        },
        Case {
            name: "the VM is Starting",
            deploy: Deploy::Starting,
            log: &["4s deploy 1"],
            ..base
        },
        Case {
            name: "the bind has not returned",
            hold: &["bind"],
            log: &["4s deploy 1", "4s bind vm-1"],
            ..base
        },
        Case {
            name: "bound, no health check UP yet",
            down: &["vm-1"],
            log: &["4s deploy 1", "4s bind vm-1"],
            ..base
        },
        Case {
            name: "the victim drains with connections open",
            cpu: 10.0,
            victim_connections: 4,
            quiet: 30,
            log: &["4s drain old-3"],
            phase: (GroupPhase::Draining, Some(secs(13))),
            ..base
        },
        Case {
            name: "drained; the destroy grace period runs",
            cpu: 10.0,
            grace: 30,
            log: &["4s drain old-3"],
            phase: (GroupPhase::Draining, Some(secs(14))),
            ..base
        },
        Case {
            name: "the unbind has not returned",
            cpu: 10.0,
            hold: &["unbind"],
            log: &["4s drain old-3", "5s unbind old-3"],
            phase: (GroupPhase::Draining, None),
            ..base
        },
        Case {
            name: "the destroy has not returned",
            cpu: 10.0,
            hold: &["destroy"],
            log: &["4s drain old-3", "5s unbind old-3", "5s destroy old-3"],
            phase: (GroupPhase::Draining, None),
            ..base
        },
    ];
    for case in cases {
        let mut policy = policy(1, 10);
        policy.quiet_time = secs(case.quiet);
        policy.destroy_grace_period = secs(case.grace);
        policy.health_grace_period = secs(60);
        let mut world = World::new(policy).adopt(3).settle();
        world.deploys.push_back(case.deploy);
        world.hold(case.hold);
        for vm in case.down {
            world.set_down(vm, true);
        }
        world
            .connections
            .insert("old-3".into(), case.victim_connections);
        world.set_load(&[case.cpu]);
        world.run(1..=21);
        assert_eq!(world.log(), case.log, "{}", case.name);
        assert_eq!(world.status(), case.phase, "{}", case.name);
    }
}

#[test]
fn a_completed_scale_out_starts_the_cooldown_and_a_new_watch_time_follows_it() {
    struct Case<'a> {
        name: &'a str,
        cooldown: u64,
        /// The bind is held until then (the new member is UP at that sample).
        bind_at: Option<u64>,
        until: u64,
        events: &'a [&'a str],
    }
    let cases = [
        Case {
            name: "cooldown 10 s",
            cooldown: 10,
            bind_at: None,
            until: 21,
            events: &[
                "4s scale_out_started",
                "4s vm_deployed vm-1",
                "4s member_bound vm-1",
                "5s member_up vm-1",
                "5s cooldown_started",
                "15s cooldown_ended",
                "18s scale_out_started",
                "18s vm_deployed vm-2",
                "18s member_bound vm-2",
                "19s member_up vm-2",
                "19s cooldown_started",
            ],
        },
        Case {
            name: "no cooldown: a new watch time after each member UP",
            cooldown: 0,
            bind_at: None,
            until: 13,
            events: &[
                "4s scale_out_started",
                "4s vm_deployed vm-1",
                "4s member_bound vm-1",
                "5s member_up vm-1",
                "8s scale_out_started",
                "8s vm_deployed vm-2",
                "8s member_bound vm-2",
                "9s member_up vm-2",
                "12s scale_out_started",
                "12s vm_deployed vm-3",
                "12s member_bound vm-3",
                "13s member_up vm-3",
            ],
        },
        Case {
            name: "the cooldown starts when the new member is UP, not at the decision",
            cooldown: 10,
            bind_at: Some(9),
            until: 23,
            events: &[
                "4s scale_out_started",
                "4s vm_deployed vm-1",
                "9s member_bound vm-1",
                "9s member_up vm-1",
                "9s cooldown_started",
                "19s cooldown_ended",
                "22s scale_out_started",
                "22s vm_deployed vm-2",
                "22s member_bound vm-2",
                "23s member_up vm-2",
                "23s cooldown_started",
            ],
        },
    ];
    for case in cases {
        let mut policy = policy(1, 10);
        policy.cooldown = secs(case.cooldown);
        policy.health_grace_period = secs(60);
        let mut world = World::new(policy).adopt(2).settle();
        world.set_load(&[90.0]);
        if case.bind_at.is_some() {
            world.hold(&["bind"]);
        }
        for t in 1..=case.until {
            if case.bind_at == Some(t) {
                world.release(t, "bind");
            }
            world.sample(t);
        }
        assert_eq!(world.events(), case.events, "{}", case.name);
    }
}

#[test]
fn a_new_vm_gone_before_it_is_up_ends_its_launch_and_the_next_scale_out_still_cools_down() {
    struct Case<'a> {
        name: &'a str,
        /// Called after the sample at each time: takes vm-1 away while it joins.
        change: fn(&mut World, u64),
        until: u64,
        events: &'a [&'a str],
    }
    let cases = [
        Case {
            name: "the cloud loses it",
            change: |world, t| {
                if t == 6 {
                    world.cloud.remove("vm-1");
                    world.reconcile(t);
                }
            },
            until: 13,
            events: &[
                "4s scale_out_started",
                "4s vm_deployed vm-1",
                "4s member_bound vm-1",
                "6s reconciled",
                "6s member_unbound vm-1",
                "10s scale_out_started",
                "10s vm_deployed vm-2",
                "10s member_bound vm-2",
                "11s member_up vm-2",
                "11s cooldown_started",
            ],
        },
        Case {
            name: "a lowered maxmembers trims it (the serving members are protected)",
            change: |world, t| match t {
                5 => world.set_policy(t, |p| p.max_members = 2),
                7 => world.set_policy(t, |p| p.max_members = 10),
                _ => {}
            },
            until: 14,
            events: &[
                "4s scale_out_started",
                "4s vm_deployed vm-1",
                "4s member_bound vm-1",
                "6s scale_in_started vm-1",
                "7s drain_finished vm-1",
                "7s member_unbound vm-1",
                "7s vm_destroyed vm-1",
                "11s scale_out_started",
                "11s vm_deployed vm-2",
                "11s member_bound vm-2",
                "12s member_up vm-2",
                "12s cooldown_started",
            ],
        },
    ];
    for case in cases {
        let mut policy = policy(1, 10);
        policy.health_grace_period = secs(60);
        let mut world = World::new(policy).adopt(2);
        world.protected = ["old-1".to_string(), "old-2".to_string()].into();
        let mut world = world.settle();
        world.set_load(&[90.0]);
        world.set_down("vm-1", true);
        for t in 1..=case.until {
            world.sample(t);
            (case.change)(&mut world, t);
        }
        assert_eq!(world.events(), case.events, "{}", case.name);
    }
}

#[test]
fn a_drain_ends_at_the_quiet_time_or_at_zero_connections_and_only_a_cut_short_one_cools_down() {
    struct Case<'a> {
        name: &'a str,
        grace: u64,
        /// From then on the victim has no connection left (`None`: 4 stay open).
        drained_at: Option<u64>,
        until: u64,
        log: &'a [&'a str],
        events: &'a [&'a str],
    }
    let cases = [
        Case {
            name: "drained before the quiet time",
            grace: 0,
            drained_at: Some(6),
            until: 13,
            log: &["4s drain old-3", "6s unbind old-3", "6s destroy old-3"],
            events: &[
                "4s scale_in_started old-3",
                "6s drain_finished old-3",
                "6s member_unbound old-3",
                "6s vm_destroyed old-3",
            ],
        },
        Case {
            name: "cut short by the quiet time",
            grace: 0,
            drained_at: None,
            until: 21,
            log: &["4s drain old-3", "9s unbind old-3", "9s destroy old-3"],
            events: &[
                "4s scale_in_started old-3",
                "9s drain_finished old-3",
                "9s member_unbound old-3",
                "9s vm_destroyed old-3",
                "9s cooldown_started",
                "19s cooldown_ended",
            ],
        },
        Case {
            name: "drained exactly at the quiet time",
            grace: 0,
            drained_at: Some(9),
            until: 21,
            log: &["4s drain old-3", "9s unbind old-3", "9s destroy old-3"],
            events: &[
                "4s scale_in_started old-3",
                "9s drain_finished old-3",
                "9s member_unbound old-3",
                "9s vm_destroyed old-3",
            ],
        },
        Case {
            name: "drained, then the destroy grace period",
            grace: 2,
            drained_at: Some(6),
            until: 13,
            log: &["4s drain old-3", "8s unbind old-3", "8s destroy old-3"],
            events: &[
                "4s scale_in_started old-3",
                "6s drain_finished old-3",
                "8s member_unbound old-3",
                "8s vm_destroyed old-3",
            ],
        },
        Case {
            name: "cut short, then the destroy grace period",
            grace: 2,
            drained_at: None,
            until: 23,
            log: &["4s drain old-3", "11s unbind old-3", "11s destroy old-3"],
            events: &[
                "4s scale_in_started old-3",
                "9s drain_finished old-3",
                "11s member_unbound old-3",
                "11s vm_destroyed old-3",
                "11s cooldown_started",
                "21s cooldown_ended",
            ],
        },
    ];
    for case in cases {
        let mut policy = policy(2, 10);
        policy.destroy_grace_period = secs(case.grace);
        let mut world = World::new(policy).adopt(3).settle();
        world.set_load(&[10.0]);
        for t in 1..=case.until {
            let open = if case.drained_at.is_some_and(|at| t >= at) {
                0
            } else {
                4
            };
            world.connections.insert("old-3".into(), open);
            world.sample(t);
        }
        assert_eq!(world.log(), case.log, "{}", case.name);
        assert_eq!(world.events(), case.events, "{}", case.name);
    }
}

#[test]
fn the_quiet_time_and_the_destroy_grace_end_on_their_timers_without_samples() {
    let ms = Duration::from_millis;
    type Tick<'a> = (u64, &'a [&'a str], Option<u64>);
    let cases: [(u64, &[Tick<'_>]); 2] = [
        (
            0,
            &[
                (8_999, &[], Some(9_000)),
                (
                    9_000,
                    &[
                        "9s drain_finished old-3",
                        "9s member_unbound old-3",
                        "9s vm_destroyed old-3",
                        "9s cooldown_started",
                    ],
                    Some(19_000),
                ),
                (19_000, &["19s cooldown_ended"], None),
            ],
        ),
        (
            2,
            &[
                (8_999, &[], Some(9_000)),
                (9_000, &["9s drain_finished old-3"], Some(11_000)),
                (10_999, &[], Some(11_000)),
                (
                    11_000,
                    &[
                        "11s member_unbound old-3",
                        "11s vm_destroyed old-3",
                        "11s cooldown_started",
                    ],
                    Some(21_000),
                ),
            ],
        ),
    ];
    for (grace, ticks) in cases {
        let mut policy = policy(2, 10);
        policy.destroy_grace_period = secs(grace);
        let mut world = World::new(policy).adopt(3).settle();
        world.set_load(&[10.0]);
        world.connections.insert("old-3".into(), 4);
        world.run(1..=4);
        assert_eq!(world.events(), ["4s scale_in_started old-3"]);
        assert_eq!(world.core.next_timeout(), Some(ms(9_000)), "grace {grace}");
        for &(at, events, next) in ticks {
            world.tick(ms(at));
            assert_eq!(world.events(), events, "grace {grace}, at {at} ms");
            assert_eq!(
                world.core.next_timeout(),
                next.map(ms),
                "grace {grace}, at {at} ms"
            );
        }
    }
}

#[test]
fn a_new_member_stays_out_of_the_averages_for_its_warm_up_and_adopted_ones_do_not_warm_up() {
    // Two adopted members at 90 from t = 0; the scale-out's member (UP at 4) reports 0.
    let cases: [(u64, &[(u64, f64)]); 3] = [
        (0, &[(0, 90.0), (3, 90.0), (4, 60.0)]),
        (5, &[(0, 90.0), (4, 90.0), (8, 90.0), (9, 60.0)]),
        (30, &[(0, 90.0), (33, 90.0), (34, 60.0)]),
    ];
    for (warmup, checks) in cases {
        let mut policy = policy(1, 10);
        policy.warmup = secs(warmup);
        policy.cooldown = secs(100);
        let mut world = World::new(policy).adopt(2).start();
        world.set_load(&[90.0]);
        world.set_member_load("vm-1", &[0.0]);
        let mut checks = checks.iter().peekable();
        for t in 0..=checks.clone().last().expect("a check").0 {
            world.sample(t);
            if let Some((_, average)) = checks.next_if(|(at, _)| *at == t) {
                let status = world.core.status(world.now);
                let expected = vec![("cpu".to_string(), Some(*average))];
                assert_eq!(status.averages, expected, "warm-up {warmup} s, at {t} s");
            }
        }
        assert_eq!(
            world.log(),
            ["0s reconcile", "3s deploy 1", "3s bind vm-1"],
            "warm-up {warmup} s"
        );
        assert_eq!(
            world.events(),
            [
                "0s reconciled",
                "0s member_up old-1",
                "0s member_up old-2",
                "3s scale_out_started",
                "3s vm_deployed vm-1",
                "3s member_bound vm-1",
                "4s member_up vm-1",
                "4s cooldown_started",
            ],
            "warm-up {warmup} s"
        );
    }
}

#[test]
fn the_scale_in_victim_follows_the_policy_and_is_never_protected() {
    use Victim::{LeastConnections, Newest, Oldest};
    // old-1, old-2, old-3 joined in that order, with 5, 1 and 3 connections.
    let cases: [(Victim, &[&str], &[&str]); 8] = [
        (Newest, &[], &["4s drain old-3"]),
        (Newest, &["old-3"], &["4s drain old-2"]),
        (Oldest, &[], &["4s drain old-1"]),
        (Oldest, &["old-1", "old-2"], &["4s drain old-3"]),
        (LeastConnections, &[], &["4s drain old-2"]),
        (LeastConnections, &["old-2"], &["4s drain old-3"]),
        (Newest, &["old-1", "old-2", "old-3"], &[]),
        (LeastConnections, &["old-1", "old-2", "old-3"], &[]),
    ];
    for (victim, protected, log) in cases {
        let mut policy = policy(1, 10);
        policy.victim = victim;
        let mut world = World::new(policy).adopt(3);
        for (vm, open) in [("old-1", 5), ("old-2", 1), ("old-3", 3)] {
            world.connections.insert(vm.into(), open);
        }
        world.protected = protected.iter().map(|vm| vm.to_string()).collect();
        let mut world = world.settle();
        world.set_load(&[10.0]);
        world.run(1..=4);
        let name = format!("{}, protected {protected:?}", victim.as_str());
        assert_eq!(world.log(), log, "{name}");
        let events: Vec<String> = log
            .iter()
            .map(|drain| drain.replace("drain", "scale_in_started"))
            .collect();
        assert_eq!(world.events(), events, "{name}");
    }
}

#[test]
fn unknown_load_on_every_member_is_reported_once_and_decides_nothing() {
    struct Case<'a> {
        name: &'a str,
        /// Every member's cpu from t = 1.
        trace: &'a [f64],
        /// Members that report this value instead.
        known: &'a [(&'a str, f64)],
        log: &'a [&'a str],
        events: &'a [&'a str],
    }
    let cases = [
        Case {
            name: "every member unknown",
            trace: &[UNKNOWN; 10],
            known: &[],
            log: &[],
            events: &["1s load_unknown"],
        },
        Case {
            name: "unknown, known, unknown again",
            trace: &[UNKNOWN, UNKNOWN, 50.0, 50.0, UNKNOWN, UNKNOWN, UNKNOWN],
            known: &[],
            log: &[],
            events: &["1s load_unknown", "5s load_unknown"],
        },
        Case {
            name: "one member known: the average is its value",
            trace: &[UNKNOWN; 4],
            known: &[("old-3", 10.0)],
            log: &["4s drain old-3"],
            events: &["4s scale_in_started old-3"],
        },
    ];
    for case in cases {
        let mut world = World::new(policy(1, 10)).adopt(3).settle();
        for (vm, cpu) in case.known {
            world.set_member_load(vm, &[*cpu]);
        }
        for (t, cpu) in (1..).zip(case.trace) {
            world.set_load(&[*cpu]);
            world.sample(t);
        }
        assert_eq!(world.log(), case.log, "{}", case.name);
        assert_eq!(world.events(), case.events, "{}", case.name);
    }
}

#[test]
fn failed_deploys_destroy_their_vm_back_off_and_suspend_launching_until_resumed() {
    #[derive(Debug, Clone, Copy)]
    enum Op {
        Disable,
        Enable,
        Resume,
        SetMin(u32),
    }
    struct Case<'a> {
        name: &'a str,
        deploys: &'a [Deploy],
        ops: &'a [(u64, Op)],
        until: u64,
        /// The phase and the consecutive failures at t = 50.
        at_50: (GroupPhase, u32),
        log: Vec<&'a str>,
        events: Vec<&'a str>,
    }
    // Back-off 10 s, then 20 s; the third failure suspends launching for 1800 s.
    const THREE_FAILURES_LOG: &[&str] = &[
        "0s deploy 1",
        "0s destroy vm-1",
        "10s deploy 2",
        "10s destroy vm-2",
        "30s deploy 3",
        "30s destroy vm-3",
    ];
    const THREE_FAILURES: &[&str] = &[
        "0s scale_out_started",
        "0s deploy_failed vm-1",
        "0s vm_destroyed vm-1",
        "1s load_unknown",
        "10s scale_out_started",
        "10s deploy_failed vm-2",
        "10s vm_destroyed vm-2",
        "30s scale_out_started",
        "30s deploy_failed vm-3",
        "30s launch_suspended",
        "30s vm_destroyed vm-3",
    ];
    let fails = &[Deploy::Fails; 3];
    let suspended = (GroupPhase::Suspended, 3);
    let cases = [
        Case {
            name: "the suspension passes",
            deploys: fails,
            ops: &[],
            until: 1831,
            at_50: suspended,
            log: [THREE_FAILURES_LOG, &["1830s deploy 4", "1830s bind vm-4"]].concat(),
            events: [
                THREE_FAILURES,
                &[
                    "1830s launch_resumed",
                    "1830s scale_out_started",
                    "1830s vm_deployed vm-4",
                    "1830s member_bound vm-4",
                    "1831s member_up vm-4",
                    "1831s cooldown_started",
                ],
            ]
            .concat(),
        },
        Case {
            name: "the group is disabled, then enabled",
            deploys: fails,
            ops: &[(100, Op::Disable), (101, Op::Enable)],
            until: 102,
            at_50: suspended,
            log: [THREE_FAILURES_LOG, &["101s deploy 4", "101s bind vm-4"]].concat(),
            events: [
                THREE_FAILURES,
                &[
                    "101s launch_resumed",
                    "101s scale_out_started",
                    "101s vm_deployed vm-4",
                    "101s member_bound vm-4",
                    "102s member_up vm-4",
                    "102s cooldown_started",
                ],
            ]
            .concat(),
        },
        Case {
            name: "an operator resumes launching",
            deploys: fails,
            ops: &[(100, Op::Resume)],
            until: 101,
            at_50: suspended,
            log: [THREE_FAILURES_LOG, &["100s deploy 4", "100s bind vm-4"]].concat(),
            events: [
                THREE_FAILURES,
                &[
                    "100s launch_resumed",
                    "100s scale_out_started",
                    "100s vm_deployed vm-4",
                    "100s member_bound vm-4",
                    "101s member_up vm-4",
                    "101s cooldown_started",
                ],
            ]
            .concat(),
        },
        Case {
            // vm-3 UP resets the count: the next failure backs off 10 s again, no suspension.
            name: "a success in between",
            deploys: &[Deploy::Fails, Deploy::Fails, Deploy::Running, Deploy::Fails],
            ops: &[(40, Op::SetMin(2))],
            until: 51,
            at_50: (GroupPhase::Provisioning, 1),
            log: vec![
                "0s deploy 1",
                "0s destroy vm-1",
                "10s deploy 2",
                "10s destroy vm-2",
                "30s deploy 3",
                "30s bind vm-3",
                "40s deploy 4",
                "40s destroy vm-4",
                "50s deploy 5",
                "50s bind vm-5",
            ],
            events: vec![
                "0s scale_out_started",
                "0s deploy_failed vm-1",
                "0s vm_destroyed vm-1",
                "1s load_unknown",
                "10s scale_out_started",
                "10s deploy_failed vm-2",
                "10s vm_destroyed vm-2",
                "30s scale_out_started",
                "30s vm_deployed vm-3",
                "30s member_bound vm-3",
                "31s member_up vm-3",
                "31s cooldown_started",
                "40s scale_out_started",
                "40s deploy_failed vm-4",
                "40s vm_destroyed vm-4",
                "41s cooldown_ended",
                "50s scale_out_started",
                "50s vm_deployed vm-5",
                "50s member_bound vm-5",
                "51s member_up vm-5",
                "51s cooldown_started",
            ],
        },
    ];
    for case in cases {
        let mut world = World::new(policy(1, 5)).start();
        world.clear();
        world.deploys.extend(case.deploys);
        for t in 0..=case.until {
            for &(_, op) in case.ops.iter().filter(|(at, _)| *at == t) {
                match op {
                    Op::Disable => world.set_policy(t, |p| p.enabled = false),
                    Op::Enable => world.set_policy(t, |p| p.enabled = true),
                    Op::Resume => {
                        world.now = secs(t);
                        world
                            .core
                            .resume(world.now, "an operator resumed launching");
                        world.pump();
                    }
                    Op::SetMin(min) => world.set_policy(t, |p| p.min_members = min),
                }
            }
            world.sample(t);
            if t == 50 {
                let status = world.core.status(world.now);
                let at_50 = (status.phase, status.consecutive_failures);
                assert_eq!(at_50, case.at_50, "{}", case.name);
            }
        }
        assert_eq!(world.log(), case.log, "{}", case.name);
        assert_eq!(world.events(), case.events, "{}", case.name);
        let failures = world.core.status(world.now).consecutive_failures;
        assert_eq!(failures, 0, "{}: a member UP resets the count", case.name);
    }
}

#[test]
fn an_uncertain_deploy_lists_the_group_before_deploying_again_and_adopts_what_it_finds() {
    struct Case<'a> {
        name: &'a str,
        created: Option<CloudState>,
        log: &'a [&'a str],
        events: &'a [&'a str],
    }
    let cases = [
        Case {
            name: "the VM was created and is Running",
            created: Some(Running),
            // The launch's own VM (by its display name): it completes the scale-out.
            log: &["0s deploy 1", "0s reconcile", "21s bind vm-1"],
            events: &[
                "0s scale_out_started",
                "0s action_failed",
                "21s vm_deployed vm-1",
                "21s reconciled",
                "21s member_bound vm-1",
                "21s member_up vm-1",
                "21s cooldown_started",
                "31s cooldown_ended",
            ],
        },
        Case {
            name: "the VM was created and is Starting",
            created: Some(Starting),
            log: &["0s deploy 1", "0s reconcile"],
            events: &["0s scale_out_started", "0s action_failed", "21s reconciled"],
        },
        Case {
            name: "nothing was created",
            created: None,
            // Only now is the launch known to have failed: the back-off runs from here.
            log: &[
                "0s deploy 1",
                "0s reconcile",
                "31s deploy 2",
                "31s bind vm-2",
            ],
            events: &[
                "0s scale_out_started",
                "0s action_failed",
                "21s deploy_failed",
                "21s reconciled",
                "21s load_unknown",
                "31s scale_out_started",
                "31s vm_deployed vm-2",
                "31s member_bound vm-2",
                "32s member_up vm-2",
                "32s cooldown_started",
            ],
        },
    ];
    for case in cases {
        let mut world = World::new(policy(1, 5)).start();
        world.clear();
        world.deploys.push_back(Deploy::Uncertain(case.created));
        // The listing takes 21 s: past the 10 s back-off, still nothing is deployed.
        world.hold(&["reconcile"]);
        world.run(0..=20);
        world.release(21, "reconcile");
        world.run(21..=35);
        assert_eq!(world.log(), case.log, "{}", case.name);
        assert_eq!(world.events(), case.events, "{}", case.name);
    }
}

#[test]
fn a_member_down_beyond_the_health_grace_period_is_investigated_fenced_and_replaced() {
    struct Case<'a> {
        name: &'a str,
        /// When old-2 is DOWN.
        down: &'a [RangeInclusive<u64>],
        warmup: u64,
        max: u32,
        /// Destroys are held until then.
        destroy_at: Option<u64>,
        log: &'a [&'a str],
        events: &'a [&'a str],
    }
    let replaced_at_6: &[&str] = &[
        "6s investigate old-2",
        "6s unbind old-2",
        "6s destroy old-2",
        "7s deploy 1",
        "7s bind vm-1",
    ];
    let replaced_at_6_events: &[&str] = &[
        "6s member_replaced old-2",
        "6s member_unbound old-2",
        "6s vm_destroyed old-2",
        "7s scale_out_started",
        "7s vm_deployed vm-1",
        "7s member_bound vm-1",
        "8s member_up vm-1",
    ];
    let cases = [
        Case {
            name: "DOWN from 1 s",
            down: &[1..=u64::MAX],
            warmup: 0,
            max: 4,
            destroy_at: None,
            log: replaced_at_6,
            events: replaced_at_6_events,
        },
        Case {
            name: "UP again within the grace period",
            down: &[1..=4],
            warmup: 0,
            max: 4,
            destroy_at: None,
            log: &[],
            events: &[],
        },
        Case {
            name: "UP in between: the grace period starts again",
            down: &[1..=3, 5..=u64::MAX],
            warmup: 0,
            max: 4,
            destroy_at: None,
            log: &[
                "10s investigate old-2",
                "10s unbind old-2",
                "10s destroy old-2",
                "11s deploy 1",
                "11s bind vm-1",
            ],
            events: &[
                "10s member_replaced old-2",
                "10s member_unbound old-2",
                "10s vm_destroyed old-2",
                "11s scale_out_started",
                "11s vm_deployed vm-1",
                "11s member_bound vm-1",
                "12s member_up vm-1",
            ],
        },
        Case {
            name: "an adopted member has no warm-up to wait for",
            down: &[1..=u64::MAX],
            warmup: 30,
            max: 4,
            destroy_at: None,
            log: replaced_at_6,
            events: replaced_at_6_events,
        },
        Case {
            name: "at max, the replacement waits for the fenced VM's destroy",
            down: &[1..=u64::MAX],
            warmup: 0,
            max: 2,
            destroy_at: Some(9),
            log: &[
                "6s investigate old-2",
                "6s unbind old-2",
                "6s destroy old-2",
                "9s deploy 1",
                "9s bind vm-1",
            ],
            events: &[
                "6s member_replaced old-2",
                "6s member_unbound old-2",
                "9s vm_destroyed old-2",
                "9s scale_out_started",
                "9s vm_deployed vm-1",
                "9s member_bound vm-1",
                "10s member_up vm-1",
            ],
        },
    ];
    for case in cases {
        let mut policy = policy(2, case.max);
        policy.warmup = secs(case.warmup);
        let mut world = World::new(policy).adopt(2).settle();
        if case.destroy_at.is_some() {
            world.hold(&["destroy"]);
        }
        for t in 1..=13 {
            if case.destroy_at == Some(t) {
                world.release(t, "destroy");
            }
            world.set_down("old-2", case.down.iter().any(|r| r.contains(&t)));
            world.sample(t);
        }
        assert_eq!(world.log(), case.log, "{}", case.name);
        assert_eq!(world.events(), case.events, "{}", case.name);
    }
}

#[test]
fn a_member_that_never_comes_up_is_replaced_after_warm_up_and_grace() {
    struct Case<'a> {
        warmup: u64,
        until: u64,
        log: &'a [&'a str],
        events: &'a [&'a str],
    }
    let cases = [
        Case {
            warmup: 0,
            until: 16,
            log: &[
                "0s deploy 1",
                "0s bind vm-1",
                "5s investigate vm-1",
                "5s unbind vm-1",
                "5s destroy vm-1",
                "15s deploy 2",
                "15s bind vm-2",
            ],
            events: &[
                "0s scale_out_started",
                "0s vm_deployed vm-1",
                "0s member_bound vm-1",
                "5s load_unknown",
                "5s member_replaced vm-1",
                "5s deploy_failed vm-1",
                "5s member_unbound vm-1",
                "5s vm_destroyed vm-1",
                "15s scale_out_started",
                "15s vm_deployed vm-2",
                "15s member_bound vm-2",
                "16s member_up vm-2",
            ],
        },
        Case {
            warmup: 10,
            until: 26,
            log: &[
                "0s deploy 1",
                "0s bind vm-1",
                "15s investigate vm-1",
                "15s unbind vm-1",
                "15s destroy vm-1",
                "25s deploy 2",
                "25s bind vm-2",
            ],
            events: &[
                "0s scale_out_started",
                "0s vm_deployed vm-1",
                "0s member_bound vm-1",
                "15s load_unknown",
                "15s member_replaced vm-1",
                "15s deploy_failed vm-1",
                "15s member_unbound vm-1",
                "15s vm_destroyed vm-1",
                "25s scale_out_started",
                "25s vm_deployed vm-2",
                "25s member_bound vm-2",
                "26s member_up vm-2",
            ],
        },
    ];
    for case in cases {
        let mut policy = policy(1, 5);
        policy.warmup = secs(case.warmup);
        let mut world = World::new(policy).start();
        world.clear();
        world.set_down("vm-1", true);
        world.run(0..=case.until);
        assert_eq!(world.log(), case.log, "warm-up {}", case.warmup);
        assert_eq!(world.events(), case.events, "warm-up {}", case.warmup);
    }
}

#[test]
fn the_first_inventory_adopts_running_vms_and_cleans_up_without_duplicating() {
    struct Case<'a> {
        name: &'a str,
        min: u32,
        max: u32,
        observe: bool,
        cloud: &'a [(&'a str, CloudState, bool)],
        stale: &'a [&'a str],
        log: &'a [&'a str],
        events: &'a [&'a str],
    }
    let cases = [
        Case {
            name: "Running VMs are adopted; only those not bound are bound",
            min: 2,
            max: 5,
            observe: false,
            cloud: &[
                ("old-1", Running, true),
                ("old-2", Running, false),
                ("old-3", Running, false),
            ],
            stale: &[],
            log: &["0s reconcile", "0s bind old-2", "0s bind old-3"],
            events: &[
                "0s reconciled",
                "0s member_bound old-2",
                "0s member_bound old-3",
                "0s member_up old-1",
                "0s member_up old-2",
                "0s member_up old-3",
            ],
        },
        Case {
            name: "only what min still needs is deployed",
            min: 3,
            max: 5,
            observe: false,
            cloud: &[("old-1", Running, true)],
            stale: &[],
            log: &[
                "0s reconcile",
                "0s deploy 1",
                "0s deploy 2",
                "0s bind vm-1",
                "0s bind vm-2",
            ],
            events: &[
                "0s reconciled",
                "0s member_up old-1",
                "0s scale_out_started",
                "0s vm_deployed vm-1",
                "0s vm_deployed vm-2",
                "0s member_bound vm-1",
                "0s member_bound vm-2",
                "1s member_up vm-1",
                "1s member_up vm-2",
                "1s cooldown_started",
            ],
        },
        Case {
            name: "a Starting VM is waited for",
            min: 2,
            max: 5,
            observe: false,
            cloud: &[("old-1", Running, true), ("old-2", Starting, false)],
            stale: &[],
            log: &["0s reconcile"],
            events: &["0s reconciled", "0s member_up old-1"],
        },
        Case {
            name: "a VM in Error that is not a member is destroyed",
            min: 1,
            max: 5,
            observe: false,
            cloud: &[("old-1", Running, true), ("bad-1", Broken, false)],
            stale: &[],
            log: &["0s reconcile", "0s destroy bad-1"],
            events: &[
                "0s reconciled",
                "0s vm_destroyed bad-1",
                "0s member_up old-1",
            ],
        },
        Case {
            name: "a VM in Error that is a member is unbound, then destroyed",
            min: 1,
            max: 5,
            observe: false,
            cloud: &[("old-1", Running, true), ("bad-1", Broken, true)],
            stale: &[],
            log: &["0s reconcile", "0s unbind bad-1", "0s destroy bad-1"],
            events: &[
                "0s reconciled",
                "0s member_unbound bad-1",
                "0s vm_destroyed bad-1",
                "0s member_up old-1",
            ],
        },
        Case {
            name: "a member whose VM is gone is unbound, not destroyed",
            min: 2,
            max: 5,
            observe: false,
            cloud: &[("old-1", Running, true)],
            stale: &["gone-1"],
            log: &[
                "0s reconcile",
                "0s unbind gone-1",
                "0s deploy 1",
                "0s bind vm-1",
            ],
            events: &[
                "0s reconciled",
                "0s member_unbound gone-1",
                "0s member_up old-1",
                "0s scale_out_started",
                "0s vm_deployed vm-1",
                "0s member_bound vm-1",
                "1s member_up vm-1",
                "1s cooldown_started",
            ],
        },
        Case {
            name: "a Destroyed VM is not counted",
            min: 1,
            max: 5,
            observe: false,
            cloud: &[("old-1", Running, true), ("old-2", Gone, false)],
            stale: &[],
            log: &["0s reconcile"],
            events: &["0s reconciled", "0s member_up old-1"],
        },
        Case {
            name: "VMs over max are drained, then destroyed",
            min: 1,
            max: 2,
            observe: false,
            cloud: &[
                ("old-1", Running, true),
                ("old-2", Running, true),
                ("old-3", Running, true),
            ],
            stale: &[],
            log: &[
                "0s reconcile",
                "0s drain old-3",
                "1s unbind old-3",
                "1s destroy old-3",
            ],
            events: &[
                "0s reconciled",
                "0s member_up old-1",
                "0s member_up old-2",
                "0s member_up old-3",
                "0s scale_in_started old-3",
                "1s drain_finished old-3",
                "1s member_unbound old-3",
                "1s vm_destroyed old-3",
            ],
        },
        Case {
            name: "observe mode leaves a VM in Error alone",
            min: 1,
            max: 5,
            observe: true,
            cloud: &[("old-1", Running, true), ("bad-1", Broken, false)],
            stale: &[],
            log: &["0s reconcile"],
            events: &["0s reconciled", "0s member_up old-1"],
        },
    ];
    for case in cases {
        let mut policy = policy(case.min, case.max);
        policy.observe = case.observe;
        let mut world = World::new(policy);
        for &(id, state, bound) in case.cloud {
            world = world.vm(id, state, bound);
        }
        for id in case.stale {
            world = world.stale_member(id);
        }
        let mut world = world.start();
        world.run(0..=1);
        assert_eq!(world.log(), case.log, "{}", case.name);
        assert_eq!(world.events(), case.events, "{}", case.name);
    }
}

#[test]
fn a_later_inventory_unbinds_members_whose_vm_is_gone_and_adopts_newcomers() {
    struct Case<'a> {
        name: &'a str,
        change: fn(&mut World),
        log: &'a [&'a str],
        events: &'a [&'a str],
    }
    let replaced: &[&str] = &["5s unbind old-2", "6s deploy 1", "6s bind vm-1"];
    let replaced_events: &[&str] = &[
        "5s reconciled",
        "5s member_unbound old-2",
        "6s scale_out_started",
        "6s vm_deployed vm-1",
        "6s member_bound vm-1",
        "7s member_up vm-1",
        "7s cooldown_started",
    ];
    let cases = [
        Case {
            name: "the cloud no longer lists a member's VM",
            change: |world| {
                world.cloud.remove("old-2");
            },
            log: replaced,
            events: replaced_events,
        },
        Case {
            name: "the cloud lists a member's VM as Destroyed",
            change: |world| {
                world.cloud.get_mut("old-2").expect("listed").state = Gone;
            },
            log: replaced,
            events: replaced_events,
        },
        Case {
            name: "a Running VM joined the group",
            change: |world| world.create("new-1", Running),
            log: &["5s bind new-1"],
            events: &[
                "5s reconciled",
                "5s member_bound new-1",
                "6s member_up new-1",
            ],
        },
        Case {
            name: "a Running VM joined the group, already bound",
            change: |world| {
                world.create("new-1", Running);
                world.bound.insert("new-1".into(), addr("new-1"));
            },
            log: &[],
            events: &["5s reconciled", "6s member_up new-1"],
        },
        Case {
            name: "nothing changed",
            change: |_| {},
            log: &[],
            events: &[],
        },
    ];
    for case in cases {
        let mut world = World::new(policy(2, 4)).adopt(2).settle();
        world.run(1..=5);
        (case.change)(&mut world);
        world.reconcile(5);
        world.run(6..=7);
        assert_eq!(world.log(), case.log, "{}", case.name);
        assert_eq!(world.events(), case.events, "{}", case.name);
    }
}

#[test]
fn lowering_maxmembers_live_drains_the_extra_members() {
    struct Case<'a> {
        victim: Victim,
        protected: &'a [&'a str],
        drained: [&'a str; 2],
    }
    let cases = [
        Case {
            victim: Victim::Newest,
            protected: &[],
            drained: ["old-4", "old-3"],
        },
        Case {
            victim: Victim::Oldest,
            protected: &[],
            drained: ["old-1", "old-2"],
        },
        Case {
            victim: Victim::Newest,
            protected: &["old-4"],
            drained: ["old-3", "old-2"],
        },
    ];
    for case in cases {
        let mut policy = policy(1, 4);
        policy.victim = case.victim;
        let mut world = World::new(policy).adopt(4);
        world.protected = case.protected.iter().map(|vm| vm.to_string()).collect();
        let mut world = world.settle();
        world.run(1..=4);
        world.set_policy(5, |p| p.max_members = 2);
        world.run(5..=7);
        let [first, second] = case.drained;
        // Finished drains are handled in the VMs' (name) order.
        let (a, b) = if first < second {
            (first, second)
        } else {
            (second, first)
        };
        let log = [
            format!("5s drain {first}"),
            format!("5s drain {second}"),
            format!("6s unbind {a}"),
            format!("6s unbind {b}"),
            format!("6s destroy {a}"),
            format!("6s destroy {b}"),
        ];
        let events = [
            format!("5s scale_in_started {first}"),
            format!("5s scale_in_started {second}"),
            format!("6s drain_finished {a}"),
            format!("6s drain_finished {b}"),
            format!("6s member_unbound {a}"),
            format!("6s member_unbound {b}"),
            format!("6s vm_destroyed {a}"),
            format!("6s vm_destroyed {b}"),
        ];
        assert_eq!(world.log(), log, "{}", case.victim.as_str());
        assert_eq!(world.events(), events, "{}", case.victim.as_str());
    }
}

#[test]
fn a_disabled_group_decides_nothing_and_observe_mode_only_records() {
    struct Case<'a> {
        name: &'a str,
        enabled: bool,
        observe: bool,
        min: u32,
        cpu: f64,
        old_2_down: bool,
        events: &'a [&'a str],
        phase: GroupPhase,
    }
    let base = Case {
        name: "",
        enabled: false,
        observe: false,
        min: 1,
        cpu: 50.0,
        old_2_down: false,
        events: &[],
        phase: GroupPhase::Disabled,
    };
    let cases = [
        Case {
            name: "disabled: a breach",
            cpu: 90.0,
            ..base
        },
        Case {
            name: "disabled: all under",
            cpu: 10.0,
            ..base
        },
        Case {
            name: "disabled: below min",
            min: 5,
            ..base
        },
        Case {
            name: "disabled: a member DOWN",
            old_2_down: true,
            ..base
        },
        Case {
            name: "observe: a breach, one decision per full watch time",
            enabled: true,
            observe: true,
            cpu: 90.0,
            events: &[
                "4s scale_out_started (observed)",
                "8s scale_out_started (observed)",
            ],
            phase: GroupPhase::Watching,
            ..base
        },
        Case {
            name: "observe: all under",
            enabled: true,
            observe: true,
            cpu: 10.0,
            events: &[
                "4s scale_in_started (observed)",
                "8s scale_in_started (observed)",
            ],
            phase: GroupPhase::Watching,
            ..base
        },
        Case {
            name: "observe: below min, recorded once",
            enabled: true,
            observe: true,
            min: 5,
            events: &["1s scale_out_started (observed)"],
            phase: GroupPhase::Idle,
            ..base
        },
        Case {
            name: "observe: a member DOWN",
            enabled: true,
            observe: true,
            old_2_down: true,
            events: &["6s member_replaced (observed)"],
            phase: GroupPhase::Idle,
            ..base
        },
    ];
    for case in cases {
        let mut world = World::new(policy(1, 10)).adopt(3).settle();
        world.set_policy(1, |p| {
            p.enabled = case.enabled;
            p.observe = case.observe;
            p.min_members = case.min;
        });
        world.set_load(&[case.cpu]);
        world.set_down("old-2", case.old_2_down);
        world.run(1..=10);
        assert_eq!(world.log(), [] as [&str; 0], "{}", case.name);
        assert_eq!(world.events(), case.events, "{}", case.name);
        assert_eq!(world.status().0, case.phase, "{}", case.name);
    }
}

#[test]
fn status_reports_the_phase_and_the_time_left_in_it() {
    type Setup = fn() -> World;
    let cases: [(&str, Setup, GroupPhase, Option<u64>); 9] = [
        (
            "before the first inventory",
            || {
                let mut world = World::new(policy(1, 5)).adopt(2);
                world.hold(&["reconcile"]);
                world.sample(0);
                world
            },
            GroupPhase::Starting,
            None,
        ),
        (
            "nothing in breach",
            || {
                let mut world = World::new(policy(1, 5)).adopt(2).settle();
                world.run(1..=1);
                world
            },
            GroupPhase::Idle,
            None,
        ),
        (
            "a breach since 1 s, at 2 s",
            || {
                let mut world = World::new(policy(1, 5)).adopt(2).settle();
                world.set_load(&[90.0]);
                world.run(1..=2);
                world
            },
            GroupPhase::Watching,
            Some(2),
        ),
        (
            "a breach at maxmembers: no action possible",
            || {
                let mut world = World::new(policy(1, 2)).adopt(2).settle();
                world.set_load(&[90.0]);
                world.run(1..=2);
                world
            },
            GroupPhase::Idle,
            None,
        ),
        (
            "a deploy under way",
            || {
                let mut world = World::new(policy(1, 5)).adopt(2).settle();
                world.set_load(&[90.0]);
                world.hold(&["deploy"]);
                world.run(1..=5);
                world
            },
            GroupPhase::Provisioning,
            None,
        ),
        (
            "cooling down since 5 s, at 6 s",
            || {
                let mut world = World::new(policy(1, 5)).adopt(2).settle();
                world.set_load(&[90.0]);
                world.run(1..=6);
                world
            },
            GroupPhase::Cooldown,
            Some(9),
        ),
        (
            "draining since 4 s, at 6 s",
            || {
                let mut world = World::new(policy(1, 5)).adopt(2).settle();
                world.set_load(&[10.0]);
                world.connections.insert("old-2".into(), 4);
                world.run(1..=6);
                world
            },
            GroupPhase::Draining,
            Some(3),
        ),
        (
            "suspended at 30 s, at 40 s",
            || {
                let mut world = World::new(policy(1, 5)).start();
                world.deploys.extend([Deploy::Fails; 3]);
                world.run(0..=40);
                world
            },
            GroupPhase::Suspended,
            Some(1790),
        ),
        (
            "disabled",
            || {
                let mut world = World::new(policy(1, 5)).adopt(2).settle();
                world.set_policy(1, |p| p.enabled = false);
                world.run(1..=1);
                world
            },
            GroupPhase::Disabled,
            None,
        ),
    ];
    for (name, setup, phase, left) in cases {
        let world = setup();
        assert_eq!(world.status(), (phase, left.map(secs)), "{name}");
    }
}
