//! A seeded, deterministic world around ONE [`GroupCore`], in virtual time. It plays:
//!
//! - the cloud: VMs that boot after a random delay, fail their deploy (leaving a VM in Error
//!   or not), never reach Running, crash, or are destroyed behind the engine's back; deploys
//!   lost on the wire before or after the cloud took them; destroys and lists that fail;
//! - the proxy: members keyed by address, bound, drained and unbound, UP or DOWN, sharing a
//!   random load, draining fast, slowly or not at all;
//! - the driver, as `autoscaler::Driver` behaves: every action is a task with a random
//!   latency (several are in flight; results come back in any order), the group is listed at
//!   every interval (one listing at a time; the core's own request during one gets a fresh
//!   one), and the engine restarts (SIGKILL: the proxy loses every autoscaled member; or the
//!   engine alone: the proxy keeps them), losing the steps in flight.
//!
//! After every step the invariants are checked ([`invariants`], [`checks`]); a run stops at
//! the first violation. Everything is a function of the seed.
//!
//! - [`scenario`]: one seed's policy, fault rates and durations;
//! - [`driver`]: executing actions, their effects on the cloud and the proxy, their replies;
//! - [`cloud`], [`proxy`]: the two sides the engine drives; [`rng`]: SplitMix64.

pub mod checks;
pub mod cloud;
mod driver;
mod invariants;
pub mod proxy;
pub mod rng;
pub mod scenario;

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use autoscaler::{CloudState, EventKind, GroupCore, LaunchId, MemberSample, MetricSource};

use self::checks::Checks;
pub use self::checks::Known;
use self::cloud::Cloud;
use self::driver::{Effect, Job, Reply};
use self::proxy::Proxy;
use self::rng::Rng;
pub use self::scenario::Scenario;

/// How one seed's run ended.
#[derive(Debug)]
pub struct Outcome {
    pub seed: u64,
    pub steps: u64,
    /// The first invariant that failed, if one did.
    pub violation: Option<String>,
    /// One line per step (and per event and action within it).
    pub log: Vec<String>,
    /// What happened, counted (faults, decisions, restarts, known bugs hit).
    pub stats: BTreeMap<String, u64>,
}

/// Runs one scenario to its end or to its first violation (violations that a `tolerate`d
/// known bug explains are counted in the stats instead).
pub fn run(scenario: Scenario, tolerate: &BTreeSet<Known>) -> Outcome {
    let mut world = World::new(scenario, tolerate.clone());
    let result = world.run();
    Outcome {
        seed: world.sc.seed,
        steps: world.steps,
        violation: result.err(),
        log: world.log,
        stats: world.stats,
    }
}

#[derive(Debug)]
struct World {
    sc: Scenario,
    rng: Rng,
    now: Duration,
    /// `None` between an engine's death and the next one's start.
    core: Option<GroupCore>,
    /// Bumped at every restart: the replies to a dead engine's steps are lost.
    generation: u32,
    cloud: Cloud,
    proxy: Proxy,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    /// Deploy jobs the driver polls, by VM id.
    jobs: BTreeMap<String, Job>,
    /// The proxy's config writer applies one operation at a time, in order.
    proxy_free_at: Duration,
    /// A listing is under way ...
    listing: bool,
    /// ... and the core asked for one meanwhile: that one's answer is dropped, and the group
    /// listed again.
    relist: bool,
    /// The group's load, in CPU percent of one member.
    demand: f64,
    calm: bool,
    checks: Checks,
    tolerate: BTreeSet<Known>,
    /// Known bugs this run hit (tolerated).
    known: BTreeSet<Known>,
    /// What the stale listings delivered to the live core got wrong.
    stale: invariants::Stale,
    /// Members that were draining when an engine started (and that it adopted).
    drained_before_start: BTreeSet<String>,
    /// VMs an operator destroyed behind the engine's back.
    vanished: BTreeSet<String>,
    /// VMs the live core's launches created whose deploy's first answer (`Accepted`, or
    /// `Uncertain`) has not come yet ...
    unanswered: BTreeMap<String, LaunchId>,
    /// ... and those of them that a listing showed it first.
    listed_early: BTreeSet<String>,
    /// A tolerated known bug put the group over `maxmembers`; it still is.
    over_max_since: Option<Known>,
    deploys_sent: u64,
    steps: u64,
    log: Vec<String>,
    stats: BTreeMap<String, u64>,
}

#[derive(Debug)]
struct Scheduled {
    at: Duration,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Something that happens at a time.
#[derive(Debug)]
enum Ev {
    /// A new engine is up: a fresh core.
    Start,
    /// The driver's interval: sample the members, then list the group.
    Tick,
    Restart,
    Calm,
    /// A step's result reaches the engine of `generation` (lost if that engine died).
    Reply {
        generation: u32,
        reply: Reply,
    },
    /// A request reaches the cloud or the proxy.
    Effect {
        generation: u32,
        effect: Effect,
    },
    /// A Starting VM's provisioning ends (Running, or its job fails).
    VmBooted {
        vm: String,
    },
}

impl World {
    fn new(sc: Scenario, tolerate: BTreeSet<Known>) -> World {
        let cooldown = sc.policy.cooldown;
        World {
            rng: Rng::new(sc.seed),
            sc,
            now: Duration::ZERO,
            core: None,
            generation: 0,
            cloud: Cloud::default(),
            proxy: Proxy::default(),
            queue: BinaryHeap::new(),
            seq: 0,
            jobs: BTreeMap::new(),
            proxy_free_at: Duration::ZERO,
            listing: false,
            relist: false,
            demand: 0.0,
            calm: false,
            checks: Checks::new(cooldown, &tolerate),
            tolerate,
            known: BTreeSet::new(),
            stale: invariants::Stale::default(),
            drained_before_start: BTreeSet::new(),
            vanished: BTreeSet::new(),
            unanswered: BTreeMap::new(),
            listed_early: BTreeSet::new(),
            over_max_since: None,
            deploys_sent: 0,
            steps: 0,
            log: Vec::new(),
            stats: BTreeMap::new(),
        }
    }

    fn run(&mut self) -> Result<(), String> {
        let end = self.sc.chaos + self.sc.calm;
        self.demand = self.rng.unit() * self.full_load() / 2.0;
        self.schedule(Duration::ZERO, Ev::Start);
        self.schedule(self.sc.chaos, Ev::Calm);
        let first_restart = self.rng.exp(self.sc.faults.restart_mean);
        self.schedule(first_restart, Ev::Restart);
        loop {
            let next_at = self.queue.peek().map_or(end, |s| s.0.at);
            if next_at >= end {
                break;
            }
            let deadline = self.core.as_ref().and_then(GroupCore::next_timeout);
            if let Some(deadline) = deadline.filter(|d| *d <= next_at) {
                self.now = self.now.max(deadline);
                self.steps += 1;
                self.line(format!("timer (deadline {:.3}s)", deadline.as_secs_f64()));
                let now = self.now;
                let core = self.core.as_mut().expect("a deadline comes from a core");
                core.handle_timeout(now);
                if core.next_timeout().is_some_and(|d| d <= now) {
                    return Err(format!(
                        "next_timeout() is still {:?} after handle_timeout({now:?})",
                        core.next_timeout()
                    ));
                }
                self.after_core()?;
            } else {
                let Reverse(next) = self.queue.pop().expect("peeked");
                self.now = next.at;
                self.steps += 1;
                self.handle(next.ev)?;
            }
            self.check()?;
        }
        self.line("end".into());
        Ok(())
    }

    fn handle(&mut self, ev: Ev) -> Result<(), String> {
        match ev {
            Ev::Start => {
                self.line("engine starts: a fresh core".into());
                let prefix = format!("gen{}-", self.generation);
                self.core = Some(GroupCore::new(self.sc.policy.clone()).with_launch_prefix(prefix));
                self.checks = Checks::new(self.sc.policy.cooldown, &self.tolerate);
                self.stale = invariants::Stale::default();
                let draining = self.proxy.members.values().filter(|m| m.draining);
                let draining: Vec<String> = draining.map(|m| m.vm.clone()).collect();
                self.drained_before_start.extend(draining);
                // A tokio interval's first tick is at once.
                self.schedule(self.now, Ev::Tick);
                self.after_core()
            }
            Ev::Tick => {
                if self.core.is_none() {
                    return Ok(());
                }
                self.schedule(self.now + self.sc.policy.interval, Ev::Tick);
                self.world_moves();
                let samples = self.samples();
                self.log_sample(&samples);
                let now = self.now;
                let core = self.core.as_mut().expect("checked above");
                core.on_sample(now, &samples);
                // As the driver does: the sample, then a listing, then the core's actions.
                self.list();
                self.after_core()
            }
            Ev::Restart => {
                if !self.calm {
                    let next = self.now + self.rng.exp(self.sc.faults.restart_mean);
                    self.schedule(next, Ev::Restart);
                    if self.core.is_some() {
                        self.restart();
                    }
                }
                Ok(())
            }
            Ev::Calm => {
                self.calm = true;
                self.line("calm: no more faults, steady load".into());
                Ok(())
            }
            Ev::Reply { generation, reply } => {
                if generation != self.generation || self.core.is_none() {
                    return Ok(());
                }
                self.deliver(reply)
            }
            Ev::Effect { generation, effect } => self.apply(generation, effect),
            Ev::VmBooted { vm } => {
                self.boot(&vm);
                Ok(())
            }
        }
    }

    /// Drains the core's events and actions; checks the events; executes the actions.
    fn after_core(&mut self) -> Result<(), String> {
        let core = self.core.as_mut().expect("called with a core");
        let mut events = Vec::new();
        while let Some(event) = core.poll_event() {
            events.push(event);
        }
        let mut actions = Vec::new();
        while let Some(action) = core.poll_action() {
            actions.push(action);
        }
        for event in &events {
            self.count(format!("event {}", event.kind));
            if checks::is_breach_decision(event) {
                self.count(format!("decision {} (breach)", event.kind));
            }
            self.line(format!(
                "  event {} {}: {} (members {})",
                event.kind,
                event.vm.as_deref().unwrap_or("-"),
                event.reason,
                event.members
            ));
            match (event.kind, &event.vm) {
                (EventKind::Reconciled, _) => {
                    self.note_forgotten(&event.reason);
                    self.note_listed_early(&event.reason);
                }
                (EventKind::ScaleInStarted, Some(vm)) if event.reason.contains("above max") => {
                    self.check_trim(vm)?;
                    self.note_retired_early(vm);
                }
                (EventKind::VmDestroyed, Some(vm)) if event.reason.contains("gone from") => {
                    self.note_forgotten(&format!("{vm} is gone from the cloud"));
                    self.stale.ghosts.remove(vm);
                    self.note_retired_early(vm);
                }
                (EventKind::MemberUnbound | EventKind::VmDestroyed, Some(vm)) => {
                    self.stale.ghosts.remove(vm);
                    self.note_retired_early(vm);
                }
                (
                    EventKind::ActionFailed | EventKind::MemberReplaced | EventKind::ScaleInStarted,
                    Some(vm),
                ) => self.note_retired_early(vm),
                _ => {}
            }
        }
        self.checks.on_batch(self.now, &events, &actions)?;
        for known in std::mem::take(&mut self.checks.known_hits) {
            self.tolerated(known, "no cooldown after a scale-out".into());
        }
        for action in actions {
            self.line(format!("  action {action:?}"));
            self.execute(action)?;
        }
        Ok(())
    }

    /// The engine dies and a new one starts a few seconds later. Replies in flight are lost;
    /// deploys already sent still create their VMs; other requests in flight may or may not
    /// land. The proxy keeps its members (the engine alone restarted), or loses every
    /// autoscaled member (the whole process restarted: they are runtime state).
    fn restart(&mut self) {
        let kept = self.rng.chance(self.sc.faults.proxy_kept);
        self.generation += 1;
        self.core = None;
        self.listing = false;
        self.relist = false;
        self.unanswered.clear();
        self.listed_early.clear();
        self.count(format!("restart (proxy kept its members: {kept})"));
        self.line(format!(
            "RESTART: the engine dies; the proxy {}",
            if kept {
                "keeps its members"
            } else {
                "restarts too and loses every autoscaled member"
            }
        ));
        if !kept {
            self.proxy.members.clear();
        }
        let in_flight = std::mem::take(&mut self.queue).into_vec();
        for Reverse(scheduled) in in_flight {
            let keep = match &scheduled.ev {
                Ev::Reply { .. } | Ev::Tick => false,
                Ev::Effect { effect, .. } => match effect {
                    Effect::Deploy { .. } => true,
                    Effect::Destroy { .. } => self.rng.chance(0.5),
                    Effect::Bind { .. } | Effect::Drain { .. } | Effect::Unbind { .. } => {
                        kept && self.rng.chance(0.5)
                    }
                    Effect::List => false,
                },
                _ => true,
            };
            if keep {
                self.queue.push(Reverse(scheduled));
            }
        }
        self.jobs.clear();
        let start = self.now + self.rng.secs(2.0, 10.0);
        self.schedule(start, Ev::Start);
    }

    /// Between samples: the load walks, VMs crash or vanish.
    fn world_moves(&mut self) {
        if self.calm {
            return;
        }
        let full = self.full_load();
        self.demand = (self.demand + self.rng.normal() * 6.0).clamp(0.0, full);
        if self.rng.chance(0.01) {
            self.demand = self.rng.unit() * full;
        }
        let ids: Vec<String> = self.cloud.vms.keys().cloned().collect();
        for id in ids {
            if self.cloud.running(&id) && self.rng.chance(self.sc.faults.crash) {
                self.count("fault: VM crashed".into());
                self.line(format!("cloud: {id} crashed (Error)"));
                self.cloud.set_state(&id, CloudState::Broken);
            } else if self.cloud.get(&id).is_some() && self.rng.chance(self.sc.faults.vanish) {
                self.count("fault: VM destroyed behind the engine's back".into());
                self.line(format!("cloud: {id} destroyed by an operator"));
                self.cloud.destroy(&id);
                self.vanished.insert(id);
            }
        }
    }

    /// Enough load to keep one more member than `maxmembers` at the upper threshold.
    fn full_load(&self) -> f64 {
        70.0 * f64::from(self.sc.policy.max_members + 1)
    }

    /// One sample of every member of the servicegroup (the driver's `fleet.members()`).
    fn samples(&mut self) -> Vec<MemberSample> {
        let addrs: Vec<SocketAddr> = self.proxy.members.keys().copied().collect();
        let up: BTreeMap<SocketAddr, bool> = addrs.iter().map(|a| (*a, self.up(*a))).collect();
        let serving = addrs
            .iter()
            .filter(|a| up[*a] && !self.proxy.members[*a].draining)
            .count()
            + usize::from(self.sc.config_member);
        let share = self.demand / serving.max(1) as f64;
        let mut samples = Vec::with_capacity(addrs.len() + 1);
        for addr in &addrs {
            let member = &self.proxy.members[addr];
            let (draining, vm) = (member.draining, member.vm.clone());
            let connections = if draining {
                (member.connections as f64 * member.drain_decay).floor() as u64
            } else if up[addr] {
                self.connections(share)
            } else {
                0
            };
            self.proxy
                .members
                .get_mut(addr)
                .expect("listed")
                .connections = connections;
            let values = if up[addr] {
                self.values(share, connections)
            } else {
                vec![None; self.sc.policy.metrics.len()]
            };
            samples.push(MemberSample {
                vm: Some(vm),
                up: up[addr],
                connections,
                protected: false,
                values,
            });
        }
        if self.sc.config_member {
            let connections = self.connections(share);
            let values = self.values(share, connections);
            samples.push(MemberSample {
                vm: None,
                up: true,
                connections,
                protected: false,
                values,
            });
        }
        samples
    }

    /// The health check of the member at `addr`: it probes the address, whichever VM has it.
    fn up(&self, addr: SocketAddr) -> bool {
        let member = &self.proxy.members[&addr];
        self.now >= member.bound_at + member.health_delay
            && self
                .cloud
                .holder(addr)
                .is_some_and(|vm| vm.state == CloudState::Running && vm.healthy)
    }

    fn connections(&mut self, share: f64) -> u64 {
        if self.calm {
            return 30;
        }
        (share * 0.8 + self.rng.normal() * 3.0).round().max(0.0) as u64
    }

    /// A member's metric values (`share`: its part of the load); SNMP sometimes times out.
    fn values(&mut self, share: f64, connections: u64) -> Vec<Option<f64>> {
        let cpu = if self.calm {
            50.0
        } else {
            (share + self.rng.normal() * 3.0).clamp(0.0, 100.0)
        };
        let mut values = Vec::with_capacity(self.sc.policy.metrics.len());
        for index in 0..self.sc.policy.metrics.len() {
            let lost = !self.calm && self.rng.chance(0.03);
            let value = match &self.sc.policy.metrics[index].source {
                MetricSource::Snmp(_) if lost => None,
                MetricSource::Snmp(name) if name == "cpu" => Some(cpu),
                MetricSource::Snmp(_) if self.calm => Some(50.0),
                MetricSource::Snmp(_) => Some((40.0 + cpu * 0.5).min(100.0)),
                _ => Some(connections as f64),
            };
            values.push(value);
        }
        values
    }

    fn latency(&mut self) -> Duration {
        if self.rng.chance(0.1) {
            self.rng.secs(3.0, 20.0)
        } else {
            self.rng.secs(0.05, 2.0)
        }
    }

    fn schedule(&mut self, at: Duration, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            ev,
        }));
    }

    fn count(&mut self, what: String) {
        *self.stats.entry(what).or_insert(0) += 1;
    }

    fn line(&mut self, text: String) {
        let line = format!(
            "{:>10.3} g{} {}",
            self.now.as_secs_f64(),
            self.generation,
            text
        );
        self.log.push(line);
    }

    fn log_sample(&mut self, samples: &[MemberSample]) {
        let mut text = format!("sample (load {:.1})", self.demand);
        for (s, member) in samples
            .iter()
            .zip(self.proxy.members.values().map(Some).chain([None]))
        {
            let id = s.vm.as_deref().unwrap_or("config");
            let state = match (s.up, member) {
                (_, Some(m)) if m.draining => "DRAINING",
                (true, _) => "UP",
                (false, _) => "DOWN",
            };
            let _ = write!(text, "; {id} {state} {}c", s.connections);
            for value in &s.values {
                match value {
                    Some(v) => {
                        let _ = write!(text, " {v:.0}");
                    }
                    None => text.push_str(" ?"),
                }
            }
        }
        if let Some(core) = &self.core {
            let _ = write!(text, " | core {}", core.status(self.now).phase.as_str());
        }
        self.line(text);
    }
}
