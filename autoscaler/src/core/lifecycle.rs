//! What happens as the driver reports finished steps: a deploy accepted, Running or failed;
//! a member bound or unbound; a VM destroyed; an investigation's verdict.

use std::net::SocketAddr;
use std::time::Duration;

use super::vm::{Cause, Phase, Vm};
use super::{Action, CloudState, DeployError, GroupCore, LaunchId};
use crate::event::EventKind;

impl GroupCore {
    /// The cloud accepted the deploy of `launch` and named its VM.
    pub fn on_deploy_accepted(&mut self, now: Duration, launch: LaunchId, vm: &str) {
        if self.pending.remove(&launch).is_none() {
            return;
        }
        if let Some(known) = self.vms.get_mut(vm) {
            // A listing showed the VM before the deploy's answer came, and it was adopted as
            // a stranger: it is this launch's, and completes its scale-out.
            if known.launch.is_none() {
                known.launch = Some(launch);
                known.adopted = false;
                if matches!(known.phase, Phase::Serving { .. }) {
                    self.launch_done(now, launch, true);
                }
            }
            return;
        }
        let order = self.next_order();
        let mut entry = Vm::new(vm, Phase::Deploying { since: now }, order, now);
        entry.launch = Some(launch);
        entry.awaited = true;
        self.vms.insert(vm.to_string(), entry);
    }

    /// The deploy of `launch` ended: the VM is Running at `addr`, or it failed.
    pub fn on_deploy_finished(
        &mut self,
        now: Duration,
        launch: LaunchId,
        result: Result<(String, SocketAddr), DeployError>,
    ) {
        match result {
            Ok((id, addr)) => {
                if self.pending.contains_key(&launch) {
                    self.on_deploy_accepted(now, launch, &id);
                }
                let Some(vm) = self.vms.get_mut(&id) else {
                    return;
                };
                vm.awaited = false;
                if !matches!(vm.phase, Phase::Deploying { .. }) || vm.retire.is_some() {
                    return;
                }
                vm.addr = Some(addr);
                vm.phase = Phase::Binding;
                self.event_about(
                    now,
                    EventKind::VmDeployed,
                    Some(&id),
                    format!("Running at {}", addr.ip()),
                );
                self.bind(now, &id, addr);
            }
            Err(DeployError::Failed { reason, vm }) => {
                let created = vm.or_else(|| {
                    self.vms
                        .values()
                        .find(|v| v.launch == Some(launch))
                        .map(|v| v.id.clone())
                });
                if let Some(id) = &created {
                    if let Some(known) = self.vms.get_mut(id) {
                        known.awaited = false;
                    } else {
                        // Failed before its id was reported: the launch (still pending)
                        // names its VM now, so that the VM is destroyed.
                        self.on_deploy_accepted(now, launch, id);
                    }
                    self.retire(now, id, Cause::FailedLaunch);
                }
                self.pending.remove(&launch);
                self.launch_failed(now, launch, created.as_deref(), &reason);
            }
            Err(DeployError::Uncertain { reason }) => {
                // The VM may exist: the launch stays counted until a listing taken from now
                // on says whether it does ([`GroupCore::on_inventory`]); nothing is deployed
                // before that.
                if self.pending.remove(&launch).is_some() {
                    self.uncertain.insert(launch, now);
                    self.needs_inventory = true;
                    self.actions.push_back(Action::Reconcile);
                    self.event(
                        now,
                        EventKind::ActionFailed,
                        format!("{reason}; listing the group to see whether the VM exists"),
                    );
                    return;
                }
                // A listing already tied the launch to its VM: listings take it from here
                // (Starting → Running → bound, or destroyed at the deploy timeout).
                let claimed = self.vms.values_mut().find(|v| v.launch == Some(launch));
                if let Some(vm) = claimed {
                    vm.awaited = false;
                    let id = vm.id.clone();
                    self.event_about(
                        now,
                        EventKind::ActionFailed,
                        Some(&id),
                        format!("{reason}; the listings follow the VM from here"),
                    );
                }
            }
        }
    }

    /// The bind of `vm` ended.
    pub fn on_bound(&mut self, now: Duration, vm: &str, result: Result<(), String>) {
        let Some(entry) = self.vms.get_mut(vm) else {
            return;
        };
        if entry.phase != Phase::Binding || entry.retire.is_some() {
            return;
        }
        match result {
            Ok(()) => {
                entry.phase = Phase::Joining { since: now };
                let reason = match entry.addr {
                    Some(addr) => format!("bound as {addr}"),
                    None => "bound".to_string(),
                };
                self.event_about(now, EventKind::MemberBound, Some(vm), reason);
            }
            Err(error) => {
                let launch = entry.launch;
                self.event_about(
                    now,
                    EventKind::ActionFailed,
                    Some(vm),
                    format!("bind failed: {error}"),
                );
                self.retire(now, vm, Cause::FailedLaunch);
                if let Some(launch) = launch {
                    self.launch_failed(now, launch, Some(vm), &format!("bind failed: {error}"));
                }
            }
        }
    }

    /// The unbind of `vm` ended; the destroy follows (unless the VM is already gone).
    pub fn on_unbound(&mut self, now: Duration, vm: &str, result: Result<(), String>) {
        let Some(entry) = self.vms.get_mut(vm) else {
            return;
        };
        if let Err(error) = result {
            entry.phase = Phase::Unbinding { requested: false };
            self.event_about(
                now,
                EventKind::ActionFailed,
                Some(vm),
                format!("unbind failed (retried): {error}"),
            );
            return;
        }
        let gone = entry.retire.is_some_and(|r| r.cause == Cause::Gone);
        let freed = entry.addr;
        let addr = entry.addr.map_or_else(String::new, |a| a.to_string());
        // A new VM that got this address from the cloud may bind now.
        let waiting: Vec<String> = self
            .vms
            .values()
            .filter(|v| v.waits_for_address && v.addr == freed && v.id != vm)
            .map(|v| v.id.clone())
            .collect();
        for id in waiting {
            if let Some(new) = self.vms.get_mut(&id)
                && let Some(addr) = new.addr
            {
                new.waits_for_address = false;
                self.actions.push_back(Action::Bind { vm: id, addr });
            }
        }
        if gone {
            self.vms.remove(vm);
            self.forget(vm, now);
            self.event_about(
                now,
                EventKind::MemberUnbound,
                Some(vm),
                format!("{addr} unbound: its VM is gone"),
            );
        } else {
            self.event_about(
                now,
                EventKind::MemberUnbound,
                Some(vm),
                format!("{addr} unbound"),
            );
            self.destroy(vm);
        }
    }

    /// The destroy (with expunge) of `vm` ended.
    pub fn on_destroyed(&mut self, now: Duration, vm: &str, result: Result<(), String>) {
        let Some(entry) = self.vms.get_mut(vm) else {
            return;
        };
        if let Err(error) = result {
            entry.phase = Phase::Destroying { requested: false };
            self.event_about(
                now,
                EventKind::ActionFailed,
                Some(vm),
                format!("destroy failed (retried): {error}"),
            );
            return;
        }
        let retire = entry.retire;
        self.vms.remove(vm);
        self.forget(vm, now);
        self.event_about(
            now,
            EventKind::VmDestroyed,
            Some(vm),
            "destroyed and expunged".into(),
        );
        if retire.is_some_and(|r| r.cause == Cause::ScaleIn && r.cut_short) {
            self.start_cooldown(now, "the scale-in's drain was cut short");
        }
    }

    /// The cloud's answer about a member DOWN too long (`None`: the VM does not exist).
    /// The member is fenced (unbound, VM destroyed) and a replacement is deployed.
    pub fn on_investigated(&mut self, now: Duration, vm: &str, state: Option<CloudState>) {
        let Some(entry) = self.vms.get(vm) else {
            return;
        };
        if entry.retire.is_some() {
            return;
        }
        // A launch still waited for by its scale-out never came UP: it failed.
        let launch = entry.launch.filter(|launch| {
            self.scale_out
                .as_ref()
                .is_some_and(|s| s.waiting.contains(launch))
        });
        let verdict = match state {
            None => "the VM no longer exists".to_string(),
            Some(state) => format!("the VM is {}", state_name(state)),
        };
        let reason = format!(
            "DOWN beyond the health grace period {:?}; {verdict}: fenced and replaced",
            self.policy.health_grace_period
        );
        self.event_about(now, EventKind::MemberReplaced, Some(vm), reason);
        self.retire(now, vm, Cause::Fence);
        if let Some(launch) = launch {
            self.launch_failed(now, launch, Some(vm), "never came UP");
        }
        // The replacement is deployed as soon as `maxmembers` leaves room for it.
        self.replacements_owed += 1;
    }

    /// Binds `id` at `addr`, unless a member whose VM the core still knows holds that
    /// address: the cloud only hands an address out again once its VM is gone, so that member
    /// is unbound first and the bind follows its unbind.
    pub(super) fn bind(&mut self, now: Duration, id: &str, addr: SocketAddr) {
        let holders: Vec<String> = self
            .vms
            .values()
            .filter(|v| v.id != id && v.addr == Some(addr))
            .filter(|v| v.is_bound() || v.phase == Phase::Binding)
            .map(|v| v.id.clone())
            .collect();
        if holders.is_empty() {
            self.actions.push_back(Action::Bind {
                vm: id.to_string(),
                addr,
            });
            return;
        }
        if let Some(new) = self.vms.get_mut(id) {
            new.waits_for_address = true;
        }
        for holder in holders {
            self.event_about(
                now,
                EventKind::Reconciled,
                Some(&holder),
                format!("{addr} now belongs to {id}: the VM behind this member is gone"),
            );
            self.vm_gone(now, &holder);
        }
    }

    /// The cloud no longer has `id`: its member is unbound (nothing to destroy).
    pub(super) fn vm_gone(&mut self, now: Duration, id: &str) {
        let Some(vm) = self.vms.get_mut(id) else {
            return;
        };
        vm.retire = Some(super::vm::Retire {
            cause: Cause::Gone,
            cut_short: false,
        });
        let launch = vm.launch;
        if matches!(vm.phase, Phase::Unbinding { requested: true }) {
            return;
        }
        self.unbind(id);
        // Lost before it came UP: its launch has ended (see `retire`).
        if let Some(launch) = launch {
            self.launch_done(now, launch, false);
        }
    }

    /// Counts a failed launch: back off, and suspend launching after too many in a row.
    pub(super) fn launch_failed(
        &mut self,
        now: Duration,
        launch: LaunchId,
        vm: Option<&str>,
        reason: &str,
    ) {
        self.launch_done(now, launch, false);
        self.failures += 1;
        let limits = &self.policy.launch;
        let doubling = 2u32.saturating_pow(self.failures.saturating_sub(1).min(16));
        let backoff = limits
            .retry_backoff
            .saturating_mul(doubling)
            .min(limits.max_retry_backoff);
        let suspend = self.failures >= limits.suspend_after;
        let suspension = limits.suspension;
        self.retry_at = Some(now + backoff);
        let next = if suspend {
            "launching suspended".to_string()
        } else {
            format!("next launch in {backoff:?} at the earliest")
        };
        self.event_about(
            now,
            EventKind::DeployFailed,
            vm,
            format!("{reason} ({} in a row; {next})", self.failures),
        );
        if suspend && self.suspended_until.is_none() {
            self.suspended_until = Some(now + suspension);
            self.event(
                now,
                EventKind::LaunchSuspended,
                format!(
                    "{} consecutive failed launches: no launch until the group is enabled again \
                     or {suspension:?} pass",
                    self.failures
                ),
            );
        }
    }
}

pub(super) fn state_name(state: CloudState) -> &'static str {
    match state {
        CloudState::Starting => "Starting",
        CloudState::Running => "Running",
        CloudState::Broken => "Stopped or in Error",
        CloudState::Gone => "Destroyed",
    }
}
