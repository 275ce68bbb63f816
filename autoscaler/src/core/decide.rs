//! The rules, evaluated at every sample: fill to `minmembers`, trim to `maxmembers`, replace
//! members DOWN too long, then scale out (ANY metric above `upper` for the whole watch time)
//! or in (ALL metrics below `lower`), but never while VMs are provisioning, a scale-in is
//! draining, or a cooldown runs.

use std::time::Duration;

use super::vm::{Cause, Phase, Retire, Vm};
use super::{Action, GroupCore, LaunchId, MemberSample, ScaleOut};
use crate::event::EventKind;
use crate::policy::Victim;

impl GroupCore {
    /// One sample of every member of the servicegroup; evaluates the rules.
    pub fn on_sample(&mut self, now: Duration, members: &[MemberSample]) {
        // Phases first (a member UP now may count in the averages), then the averages, then
        // the events this sample causes, which carry them.
        let came_up = self.observe_members(now, members);
        self.averages = self.group_averages(now, members);
        self.members_up(now, came_up);
        self.finish_drained(now, members);
        self.handle_timeout(now);
        if self.needs_inventory || !self.policy.enabled {
            self.windows.restart();
            return;
        }
        self.keep_bounds(now);
        self.replace_unhealthy(now);
        self.retry_stalled_steps();

        let busy = self.is_provisioning() || self.is_scaling_in();
        let cooling = self.cooldown_until.is_some();
        if busy || cooling {
            // Samples taken now do not count toward the next watch time.
            self.windows.restart();
            return;
        }
        let known = self.averages.iter().any(Option::is_some);
        if !known {
            self.windows.restart();
            if !self.load_unknown {
                self.load_unknown = true;
                self.event(
                    now,
                    EventKind::LoadUnknown,
                    "no member reports a known value for any metric: no decision".into(),
                );
            }
            return;
        }
        self.load_unknown = false;
        self.windows
            .record(now, &self.policy.metrics, &self.averages);

        if let Some((metric, since)) = self.windows.scale_out(now, self.policy.watch_time) {
            let rule = &self.policy.metrics[metric];
            let reason = format!(
                "{} average {:.2} above {} for {}",
                rule.name,
                self.averages[metric].unwrap_or_default(),
                rule.upper.unwrap_or_default(),
                seconds(now - since)
            );
            let room = self.policy.max_members.saturating_sub(self.total_count());
            let count = self.policy.step.min(room);
            if count == 0 {
                self.windows.restart();
                return;
            }
            self.scale_out(now, since, count, reason);
        } else if self
            .windows
            .scale_in(now, self.policy.watch_time, &self.policy.metrics)
            && self.live_count() > self.policy.min_members
        {
            let reason = format!(
                "every metric below its lower threshold for {:?}",
                self.policy.watch_time
            );
            match self.victim() {
                Some(victim) => {
                    if self.observe_only(now, EventKind::ScaleInStarted, &reason) {
                        return;
                    }
                    self.windows.restart();
                    self.retire(now, &victim, Cause::ScaleIn);
                    self.event_about(now, EventKind::ScaleInStarted, Some(&victim), reason);
                }
                None => self.windows.restart(),
            }
        }
    }

    /// Timers: cooldown end, drains at their quiet time, destroy grace, suspension end.
    pub fn handle_timeout(&mut self, now: Duration) {
        if self.cooldown_until.is_some_and(|until| until <= now) {
            self.cooldown_until = None;
            self.windows.restart();
            self.event(now, EventKind::CooldownEnded, "cooldown over".into());
        }
        if self.suspended_until.is_some_and(|until| until <= now) {
            self.resume(now, "the suspension's back-off passed");
        }
        let due: Vec<String> = self
            .vms
            .values()
            .filter(|vm| {
                matches!(vm.phase, Phase::Draining { until } | Phase::Grace { until } if until <= now)
            })
            .map(|vm| vm.id.clone())
            .collect();
        for id in due {
            match self.vms[&id].phase {
                Phase::Draining { .. } => {
                    let open = self.vms[&id].connections;
                    self.finish_drain(now, &id, open);
                }
                _ => self.unbind(&id),
            }
        }
    }

    /// Per-VM health and connections from the sample; joining members that turned UP serve.
    /// Returns the members that came UP, with their launches.
    fn observe_members(
        &mut self,
        now: Duration,
        members: &[MemberSample],
    ) -> Vec<(String, Option<LaunchId>)> {
        let mut came_up = Vec::new();
        for sample in members {
            let Some(id) = sample.vm.as_deref() else {
                continue;
            };
            let Some(vm) = self.vms.get_mut(id) else {
                continue;
            };
            vm.connections = sample.connections;
            vm.protected = sample.protected;
            match &mut vm.phase {
                Phase::Joining { .. } if sample.up => {
                    vm.phase = Phase::Serving {
                        up_since: now,
                        down_since: None,
                        investigating: false,
                    };
                    came_up.push((id.to_string(), vm.launch));
                }
                Phase::Serving { down_since, .. } => {
                    if sample.up {
                        *down_since = None;
                    } else if down_since.is_none() {
                        *down_since = Some(now);
                    }
                }
                // The member of a gone VM whose unbind must be asked again answers health
                // checks: its address belongs to another VM now, which serves its requests.
                // It is drained first, as any member that takes traffic.
                Phase::Unbinding { requested: false }
                    if sample.up && vm.retire.is_some_and(|r| r.cause == Cause::Gone) =>
                {
                    vm.phase = Phase::Draining {
                        until: now + self.policy.quiet_time,
                    };
                    if let Some(addr) = vm.addr {
                        self.actions.push_back(Action::Drain {
                            vm: vm.id.clone(),
                            addr,
                        });
                    }
                }
                _ => {}
            }
        }
        came_up
    }

    /// `member_up` for each member that came UP; a launch that brought one UP succeeded.
    fn members_up(&mut self, now: Duration, came_up: Vec<(String, Option<LaunchId>)>) {
        for (id, launch) in came_up {
            let reason = "first health check UP".to_string();
            self.event_about(now, EventKind::MemberUp, Some(&id), reason);
            if let Some(launch) = launch {
                self.failures = 0;
                self.retry_at = None;
                self.launch_done(now, launch, true);
            }
        }
    }

    /// Draining members whose connections are gone finish early.
    fn finish_drained(&mut self, now: Duration, members: &[MemberSample]) {
        let drained: Vec<String> = self
            .vms
            .values()
            .filter(|vm| matches!(vm.phase, Phase::Draining { .. }) && vm.connections == 0)
            .filter(|vm| {
                members
                    .iter()
                    .any(|m| m.vm.as_deref() == Some(vm.id.as_str()))
            })
            .map(|vm| vm.id.clone())
            .collect();
        for id in drained {
            self.finish_drain(now, &id, 0);
        }
    }

    /// The group average of each metric over members in service: UP, not draining, past
    /// their warm-up (members from the config file count when UP).
    fn group_averages(&self, now: Duration, members: &[MemberSample]) -> Vec<Option<f64>> {
        let counted: Vec<&MemberSample> = members
            .iter()
            .filter(|m| m.up)
            .filter(|m| match m.vm.as_deref() {
                None => true,
                Some(id) => self.vms.get(id).is_some_and(|vm| match vm.phase {
                    Phase::Serving { up_since, .. } => {
                        vm.retire.is_none() && now >= up_since + vm.warmup(self.policy.warmup)
                    }
                    _ => false,
                }),
            })
            .collect();
        (0..self.policy.metrics.len())
            .map(|metric| {
                let values: Vec<f64> = counted
                    .iter()
                    .filter_map(|m| m.values.get(metric).copied().flatten())
                    .collect();
                (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
            })
            .collect()
    }

    /// Fill to `minmembers`; remove what is over `maxmembers`.
    fn keep_bounds(&mut self, now: Duration) {
        let room = self.policy.max_members.saturating_sub(self.total_count());
        if self.replacements_owed > 0 && room > 0 && self.may_launch(now) && !self.policy.observe {
            let count = self.replacements_owed.min(room);
            self.replacements_owed -= count;
            self.event(
                now,
                EventKind::ScaleOutStarted,
                format!("replacing fenced members: adding {count}"),
            );
            for _ in 0..count {
                self.launch(now);
            }
        }
        let live = self.live_count();
        let (min, max) = (self.policy.min_members, self.policy.max_members);
        if live < min {
            let room = max.saturating_sub(self.total_count());
            let count = (min - live).min(room);
            if count > 0 && self.may_launch(now) {
                let reason = format!("{live} members, below minmembers {min}");
                if !self.observe_only(now, EventKind::ScaleOutStarted, &reason) {
                    self.scale_out(now, now, count, reason);
                }
            }
        } else if live > max {
            let reason = format!("{live} members, above maxmembers {max}");
            if self.observe_only(now, EventKind::ScaleInStarted, &reason) {
                return;
            }
            for _ in max..live {
                let Some(victim) = self.victim_any() else {
                    break;
                };
                self.retire(now, &victim, Cause::OverMax);
                self.event_about(
                    now,
                    EventKind::ScaleInStarted,
                    Some(&victim),
                    reason.clone(),
                );
            }
        } else {
            self.observed.clear();
        }
    }

    /// Members DOWN beyond the health grace period (after their warm-up), and members that
    /// never came UP, are investigated; [`GroupCore::on_investigated`] fences and replaces.
    fn replace_unhealthy(&mut self, now: Duration) {
        let grace = self.policy.health_grace_period;
        let warmup = self.policy.warmup;
        let mut investigate = Vec::new();
        for vm in self.vms.values_mut() {
            if vm.retire.is_some() {
                continue;
            }
            let warmed = vm.warmup(warmup);
            match &mut vm.phase {
                Phase::Serving {
                    up_since,
                    down_since: Some(down),
                    investigating,
                } if !*investigating && now >= (*down).max(*up_since + warmed) + grace => {
                    *investigating = true;
                    investigate.push(vm.id.clone());
                }
                Phase::Joining { since } if now >= *since + warmup + grace => {
                    // Never came UP: treat it as DOWN since it joined.
                    vm.phase = Phase::Serving {
                        up_since: *since,
                        down_since: Some(*since),
                        investigating: true,
                    };
                    investigate.push(vm.id.clone());
                }
                _ => {}
            }
        }
        for id in investigate {
            if self.policy.observe {
                self.observe_only(now, EventKind::MemberReplaced, &format!("{id} is DOWN"));
                continue;
            }
            self.actions.push_back(Action::Investigate { vm: id });
        }
    }

    /// Steps whose call failed are asked for again at the next sample.
    fn retry_stalled_steps(&mut self) {
        for vm in self.vms.values_mut() {
            let Some(addr) = vm.addr else {
                if let Phase::Destroying { requested } = &mut vm.phase
                    && !*requested
                {
                    *requested = true;
                    self.actions
                        .push_back(Action::Destroy { vm: vm.id.clone() });
                }
                continue;
            };
            match &mut vm.phase {
                Phase::Unbinding { requested } if !*requested => {
                    *requested = true;
                    self.actions.push_back(Action::Unbind {
                        vm: vm.id.clone(),
                        addr,
                    });
                }
                Phase::Destroying { requested } if !*requested => {
                    *requested = true;
                    self.actions
                        .push_back(Action::Destroy { vm: vm.id.clone() });
                }
                _ => {}
            }
        }
    }

    /// Whether a launch may start now: not suspended, not backing off, inventory known.
    pub(super) fn may_launch(&self, now: Duration) -> bool {
        !self.needs_inventory
            && self.suspended_until.is_none()
            && self.retry_at.is_none_or(|at| now >= at)
    }

    /// Starts `count` launches as one scale-out whose breach began at `breach_since`.
    fn scale_out(&mut self, now: Duration, breach_since: Duration, count: u32, reason: String) {
        if !self.may_launch(now) {
            return;
        }
        if self.observe_only(now, EventKind::ScaleOutStarted, &reason) {
            return;
        }
        self.windows.restart();
        self.event(
            now,
            EventKind::ScaleOutStarted,
            format!("{reason}: adding {count}"),
        );
        let mut launches = Vec::new();
        for _ in 0..count {
            let launch = self.launch(now);
            launches.push(launch);
        }
        let scale_out = self.scale_out.get_or_insert(ScaleOut {
            breach_since,
            waiting: Default::default(),
            succeeded: 0,
        });
        scale_out.waiting.extend(launches);
    }

    /// Asks for one deploy.
    fn launch(&mut self, now: Duration) -> LaunchId {
        let launch = LaunchId(self.next_launch);
        self.next_launch += 1;
        self.pending.insert(launch, now);
        self.actions.push_back(Action::Deploy { launch });
        launch
    }

    /// In observe mode, records the decision and returns true: the caller must not act. The
    /// breach windows restart, so a lasting breach is recorded once per watch time (as often
    /// as acting would decide); a bounds decision (fill, trim) is recorded once until the
    /// group is back within its bounds.
    fn observe_only(&mut self, now: Duration, kind: EventKind, reason: &str) -> bool {
        if !self.policy.observe {
            return false;
        }
        self.windows.restart();
        if self.observed.insert(kind.as_str()) {
            self.event(now, kind, format!("observe mode, not acted on: {reason}"));
            if let Some(event) = self.events.back_mut() {
                event.observed = true;
            }
        }
        true
    }

    /// The scale-in victim among members in service, by the policy's choice; never a
    /// protected member.
    fn victim(&self) -> Option<String> {
        let candidates = self
            .vms
            .values()
            .filter(|vm| vm.is_serving() && !vm.protected);
        pick(candidates, self.policy.victim)
    }

    /// A victim for trimming to `maxmembers`: serving members first, then joining ones.
    fn victim_any(&self) -> Option<String> {
        self.victim().or_else(|| {
            let joining = self.vms.values().filter(|vm| {
                vm.retire.is_none() && !vm.protected && matches!(vm.phase, Phase::Joining { .. })
            });
            pick(joining, Victim::Newest)
        })
    }

    /// Starts removing `id`: drain if it takes traffic, else unbind, else destroy.
    pub(super) fn retire(&mut self, now: Duration, id: &str, cause: Cause) {
        let quiet = self.policy.quiet_time;
        let Some(vm) = self.vms.get_mut(id) else {
            return;
        };
        vm.retire = Some(Retire {
            cause,
            cut_short: false,
        });
        let launch = vm.launch;
        let drains = matches!(cause, Cause::ScaleIn | Cause::OverMax);
        match (vm.phase, vm.addr) {
            (Phase::Serving { .. } | Phase::Joining { .. }, Some(addr)) if drains => {
                vm.phase = Phase::Draining { until: now + quiet };
                self.actions.push_back(Action::Drain {
                    vm: id.to_string(),
                    addr,
                });
            }
            (phase, Some(_)) if vm.is_bound() || phase == Phase::Binding => self.unbind(id),
            _ => self.destroy(id),
        }
        // A launch whose VM goes before it came UP has ended: its scale-out must not wait for
        // it, or the next scale-out would join that record and never start a cooldown.
        if let Some(launch) = launch {
            self.launch_done(now, launch, false);
        }
    }

    fn finish_drain(&mut self, now: Duration, id: &str, open: u64) {
        let grace = self.policy.destroy_grace_period;
        let Some(vm) = self.vms.get_mut(id) else {
            return;
        };
        if let Some(retire) = &mut vm.retire {
            retire.cut_short = open > 0;
        }
        let reason = if open == 0 {
            "no connections left".to_string()
        } else {
            format!("quiet time passed with {open} connections open")
        };
        if grace.is_zero() {
            vm.phase = Phase::Unbinding { requested: false };
        } else {
            vm.phase = Phase::Grace { until: now + grace };
        }
        self.event_about(now, EventKind::DrainFinished, Some(id), reason);
        if grace.is_zero() {
            self.unbind(id);
        }
    }

    pub(super) fn unbind(&mut self, id: &str) {
        let Some(vm) = self.vms.get_mut(id) else {
            return;
        };
        match vm.addr {
            Some(addr) => {
                vm.phase = Phase::Unbinding { requested: true };
                self.actions.push_back(Action::Unbind {
                    vm: id.to_string(),
                    addr,
                });
            }
            None => self.destroy(id),
        }
    }

    pub(super) fn destroy(&mut self, id: &str) {
        if let Some(vm) = self.vms.get_mut(id) {
            vm.phase = Phase::Destroying { requested: true };
            self.actions
                .push_back(Action::Destroy { vm: id.to_string() });
        }
    }

    /// A launch ended (UP, or failed); a scale-out whose launches all ended completes, and
    /// one that brought at least one member UP starts the cooldown.
    pub(super) fn launch_done(&mut self, now: Duration, launch: LaunchId, up: bool) {
        let Some(scale_out) = &mut self.scale_out else {
            return;
        };
        if !scale_out.waiting.remove(&launch) {
            return;
        }
        if up {
            scale_out.succeeded += 1;
        }
        if !scale_out.waiting.is_empty() {
            return;
        }
        let done = self.scale_out.take().expect("checked above");
        if done.succeeded > 0 {
            self.last_scale_out = Some(now.saturating_sub(done.breach_since));
            self.start_cooldown(now, "scale-out complete");
        }
    }

    pub(super) fn start_cooldown(&mut self, now: Duration, why: &str) {
        if self.policy.cooldown.is_zero() {
            return;
        }
        self.cooldown_until = Some(now + self.policy.cooldown);
        self.windows.restart();
        self.event(
            now,
            EventKind::CooldownStarted,
            format!("{why}: no decision for {:?}", self.policy.cooldown),
        );
    }

    pub(super) fn next_order(&mut self) -> u64 {
        let order = self.next_order;
        self.next_order += 1;
        order
    }
}

/// A measured span for a reason text: whole seconds as `60s`, others to a tenth (`4.0s`).
fn seconds(span: Duration) -> String {
    if span.subsec_nanos() == 0 {
        format!("{}s", span.as_secs())
    } else {
        format!("{:.1}s", span.as_secs_f64())
    }
}

fn pick<'a>(candidates: impl Iterator<Item = &'a Vm>, victim: Victim) -> Option<String> {
    let chosen = match victim {
        Victim::Newest => candidates.max_by_key(|vm| vm.order),
        Victim::Oldest => candidates.min_by_key(|vm| vm.order),
        Victim::LeastConnections => {
            candidates.min_by_key(|vm| (vm.connections, std::cmp::Reverse(vm.order)))
        }
    };
    chosen.map(|vm| vm.id.clone())
}
