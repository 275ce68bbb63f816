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
        self.vms.insert(
            vm.to_string(),
            Vm {
                id: vm.to_string(),
                addr: None,
                phase: Phase::Deploying { since: now },
                launch: Some(launch),
                order,
                adopted: false,
                protected: false,
                connections: 0,
                retire: None,
            },
        );
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
                self.actions.push_back(Action::Bind { vm: id, addr });
            }
            Err(DeployError::Failed { reason, vm }) => {
                let created = vm.or_else(|| {
                    self.vms
                        .values()
                        .find(|v| v.launch == Some(launch))
                        .map(|v| v.id.clone())
                });
                if let Some(id) = &created {
                    if !self.vms.contains_key(id) {
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
                self.pending.remove(&launch);
                self.needs_inventory = true;
                self.actions.push_back(Action::Reconcile);
                self.launch_failed(
                    now,
                    launch,
                    None,
                    &format!("{reason}; listing the group before any new deploy"),
                );
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
        let addr = entry.addr.map_or_else(String::new, |a| a.to_string());
        if gone {
            self.vms.remove(vm);
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
        let launch = entry.launch.filter(|_| {
            self.scale_out
                .as_ref()
                .is_some_and(|s| s.waiting.contains(&entry.launch.expect("filtered")))
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

    /// Counts a failed launch: back off, and suspend launching after too many in a row.
    fn launch_failed(&mut self, now: Duration, launch: LaunchId, vm: Option<&str>, reason: &str) {
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
