//! Reconcile: align what the core knows with what the cloud lists for the group and what the
//! servicegroup has bound. Running VMs are adopted, members whose VM is gone are unbound,
//! VMs that cannot serve are destroyed; trimming to `maxmembers` follows at the next sample.
//! This is what makes a restart neither orphan nor duplicate a VM.
//!
//! A listing is a picture of one moment (`Inventory::taken_at`): what the core learned
//! after it — a VM deployed, a VM destroyed — is not judged by it. This run's own launches
//! are recognised by their display names, so a listing that shows a VM before its deploy
//! answered, or after the answer was lost, ties it to its launch instead of adopting a
//! stranger.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use super::lifecycle::state_name;
use super::vm::{Cause, Phase, Retire, Vm};
use super::{Action, CloudState, CloudVm, GroupCore, Inventory, LaunchId};
use crate::event::EventKind;

impl GroupCore {
    /// The group's VMs as the cloud lists them (or why listing failed).
    pub fn on_inventory(&mut self, now: Duration, result: Result<Inventory, String>) {
        let inventory = match result {
            Ok(inventory) => inventory,
            Err(error) => {
                self.event(
                    now,
                    EventKind::ActionFailed,
                    format!("listing the group's VMs failed (retried): {error}"),
                );
                return;
            }
        };
        let taken = inventory.taken_at.unwrap_or(now);
        let first = self.needs_inventory;
        let listed: BTreeMap<&str, &CloudVm> = inventory
            .vms
            .iter()
            .map(|vm| (vm.id.as_str(), vm))
            .collect();
        let bound: BTreeMap<&str, SocketAddr> = inventory
            .bound
            .iter()
            .map(|(vm, addr)| (vm.as_str(), *addr))
            .collect();
        let draining: BTreeSet<&str> = inventory.draining.iter().map(String::as_str).collect();
        let mut changes = Vec::new();

        self.settle_launches(now, taken, &inventory.vms, &mut changes);
        // Uncertain launches from after this listing was taken wait for a later one.
        self.needs_inventory = !self.uncertain.is_empty();

        // VMs the core knew of before the listing was taken that the cloud no longer has.
        let known: Vec<String> = self.vms.keys().cloned().collect();
        for id in known {
            let gone = listed
                .get(id.as_str())
                .is_none_or(|vm| vm.state == CloudState::Gone);
            let vm = &self.vms[&id];
            if !gone || vm.known_since >= taken || vm.awaited {
                continue;
            }
            match vm.phase {
                Phase::Destroying { .. } => {
                    self.vms.remove(&id);
                    self.forget(&id, now);
                    self.event_about(
                        now,
                        EventKind::VmDestroyed,
                        Some(&id),
                        "gone from the cloud".into(),
                    );
                }
                _ if vm.is_bound() || vm.phase == Phase::Binding => {
                    changes.push(format!("{id} is gone from the cloud: unbinding its member"));
                    self.vm_gone(now, &id);
                }
                _ => {
                    let launch = vm.launch;
                    self.vms.remove(&id);
                    self.forget(&id, now);
                    if let Some(launch) = launch {
                        self.launch_done(now, launch, false);
                    }
                    changes.push(format!("{id} is gone from the cloud"));
                }
            }
        }

        // VMs the cloud has that the core does not know: adopt, wait for, or destroy. A VM
        // destroyed after the listing was taken is not new.
        let mut unknown: Vec<&CloudVm> = inventory
            .vms
            .iter()
            .filter(|vm| !self.vms.contains_key(&vm.id) && vm.state != CloudState::Gone)
            .filter(|vm| {
                !self
                    .forgotten
                    .iter()
                    .any(|(id, at)| *id == vm.id && *at >= taken)
            })
            .collect();
        unknown.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        for cloud in unknown {
            self.adopt(now, cloud, &bound, &draining, &mut changes);
        }

        // VMs found Starting earlier (no deploy task reports on them) that are Running now.
        let ready: Vec<(String, SocketAddr)> = self
            .vms
            .values()
            .filter(|vm| !vm.awaited && vm.retire.is_none())
            .filter(|vm| matches!(vm.phase, Phase::Deploying { .. }))
            .filter_map(|vm| {
                let cloud = listed.get(vm.id.as_str())?;
                (cloud.state == CloudState::Running).then_some((vm.id.clone(), cloud.addr?))
            })
            .collect();
        for (id, addr) in ready {
            let vm = self.vms.get_mut(&id).expect("listed");
            vm.addr = Some(addr);
            vm.phase = Phase::Binding;
            if vm.launch.is_some() {
                // This run's launch whose answer was lost: deployed, as any other.
                let reason = format!("Running at {}", addr.ip());
                self.event_about(now, EventKind::VmDeployed, Some(&id), reason);
            } else {
                changes.push(format!("adopted {id} at {}", addr.ip()));
            }
            self.bind(now, &id, addr);
        }
        // ... and those that never became Running within the deploy timeout (left alone in
        // observe mode).
        let stuck: Vec<String> = self
            .vms
            .values()
            .filter(|_| !self.policy.observe)
            .filter(|vm| !vm.awaited && vm.retire.is_none())
            .filter(|vm| {
                matches!(vm.phase, Phase::Deploying { since } if now >= since + self.policy.launch.deploy_timeout)
            })
            .map(|vm| vm.id.clone())
            .collect();
        for id in stuck {
            changes.push(format!(
                "destroying {id}: not Running within the deploy timeout"
            ));
            if let Some(launch) = self.vms[&id].launch {
                self.launch_failed(
                    now,
                    launch,
                    Some(&id),
                    "not Running within the deploy timeout",
                );
            }
            self.retire(now, &id, Cause::Orphan);
        }

        // Members bound for VMs that neither the core nor the cloud has.
        let stale: Vec<(String, SocketAddr)> = bound
            .iter()
            .filter(|(vm, _)| !self.vms.contains_key(**vm) && !listed.contains_key(**vm))
            .map(|(vm, addr)| (vm.to_string(), *addr))
            .collect();
        for (id, addr) in stale {
            changes.push(format!("{id} is gone from the cloud: unbinding {addr}"));
            let order = self.next_order();
            let mut vm = Vm::new(&id, Phase::Unbinding { requested: true }, order, now);
            vm.addr = Some(addr);
            vm.adopted = true;
            vm.retire = Some(Retire {
                cause: Cause::Gone,
                cut_short: false,
            });
            self.vms.insert(id.clone(), vm);
            self.actions.push_back(Action::Unbind { vm: id, addr });
        }

        if first || !changes.is_empty() {
            let summary = if changes.is_empty() {
                format!(
                    "{} VMs in the cloud, nothing to change",
                    inventory.vms.len()
                )
            } else {
                changes.join("; ")
            };
            self.event(now, EventKind::Reconciled, summary);
        }
    }

    /// This run's launches the listing shows (by display name): one whose deploy is still
    /// being waited for is tied to its VM at once (so it is never counted twice); one whose
    /// answer was lost either exists (and goes on from its state) or, if the listing was
    /// taken after the loss and does not show it, failed.
    fn settle_launches(
        &mut self,
        now: Duration,
        taken: Duration,
        vms: &[CloudVm],
        changes: &mut Vec<String>,
    ) {
        let mine: BTreeMap<LaunchId, &CloudVm> = vms
            .iter()
            .filter(|vm| vm.state != CloudState::Gone && !self.vms.contains_key(&vm.id))
            .filter_map(|vm| Some((self.launch_of(vm.displayname.as_deref())?, vm)))
            .collect();
        let in_flight: Vec<LaunchId> = self
            .pending
            .keys()
            .filter(|launch| mine.contains_key(launch))
            .copied()
            .collect();
        for launch in in_flight {
            let cloud = mine[&launch];
            self.pending.remove(&launch);
            let order = self.next_order();
            let mut vm = Vm::new(&cloud.id, Phase::Deploying { since: now }, order, now);
            vm.launch = Some(launch);
            vm.awaited = true;
            self.vms.insert(cloud.id.clone(), vm);
        }
        let lost: Vec<(LaunchId, Duration)> = self
            .uncertain
            .iter()
            .filter(|(_, since)| **since <= taken)
            .map(|(launch, since)| (*launch, *since))
            .collect();
        for (launch, _) in lost {
            self.uncertain.remove(&launch);
            let Some(cloud) = mine.get(&launch) else {
                self.launch_failed(
                    now,
                    launch,
                    None,
                    "the deploy whose answer was lost created no VM",
                );
                continue;
            };
            changes.push(format!(
                "{} is the VM of the deploy whose answer was lost",
                cloud.id
            ));
            let order = self.next_order();
            let mut vm = Vm::new(&cloud.id, Phase::Deploying { since: now }, order, now);
            vm.launch = Some(launch);
            self.vms.insert(cloud.id.clone(), vm);
            match (cloud.state, cloud.addr) {
                (CloudState::Running, Some(addr)) => {
                    let vm = self.vms.get_mut(&cloud.id).expect("inserted");
                    vm.addr = Some(addr);
                    vm.phase = Phase::Binding;
                    self.event_about(
                        now,
                        EventKind::VmDeployed,
                        Some(&cloud.id),
                        format!("Running at {}", addr.ip()),
                    );
                    self.bind(now, &cloud.id, addr);
                }
                (CloudState::Starting | CloudState::Running, _) => {}
                (state, _) => {
                    let reason = format!("its VM is {}", state_name(state));
                    self.retire(now, &cloud.id, Cause::FailedLaunch);
                    self.launch_failed(now, launch, Some(&cloud.id), &reason);
                }
            }
        }
    }

    /// A VM the core did not know: Running ones are adopted (bound, or taken over as bound,
    /// or their drain resumed), Starting ones waited for, broken ones destroyed.
    fn adopt(
        &mut self,
        now: Duration,
        cloud: &CloudVm,
        bound: &BTreeMap<&str, SocketAddr>,
        draining: &BTreeSet<&str>,
        changes: &mut Vec<String>,
    ) {
        let order = self.next_order();
        let mut vm = Vm::new(&cloud.id, Phase::Deploying { since: now }, order, now);
        vm.addr = cloud.addr;
        vm.adopted = true;
        let id = cloud.id.as_str();
        match (cloud.state, cloud.addr) {
            (CloudState::Running, Some(addr)) if draining.contains(id) => {
                // An earlier engine was scaling it in: its drain goes on.
                vm.phase = Phase::Draining {
                    until: now + self.policy.quiet_time,
                };
                vm.retire = Some(Retire {
                    cause: Cause::ScaleIn,
                    cut_short: false,
                });
                changes.push(format!(
                    "adopted {id} (draining as {addr}): its drain goes on"
                ));
                self.vms.insert(id.to_string(), vm);
            }
            (CloudState::Running, Some(addr)) if bound.contains_key(id) => {
                vm.phase = Phase::Joining { since: now };
                changes.push(format!("adopted {id} (already bound as {addr})"));
                self.vms.insert(id.to_string(), vm);
            }
            (CloudState::Running, Some(addr)) => {
                vm.phase = Phase::Binding;
                changes.push(format!("adopted {id} at {}", addr.ip()));
                self.vms.insert(id.to_string(), vm);
                self.bind(now, id, addr);
            }
            (CloudState::Starting, _) | (CloudState::Running, None) => {
                changes.push(format!("waiting for {id} to be Running"));
                self.vms.insert(id.to_string(), vm);
            }
            (state, _) if self.policy.observe => {
                // Observe mode acts on nothing, and a destroy cannot be undone: the VM is
                // left alone and reported once.
                if self.spared.insert(id.to_string()) {
                    changes.push(format!(
                        "observe mode, not acted on: would destroy {id}: {} and not a member",
                        state_name(state)
                    ));
                }
            }
            (state, _) => {
                changes.push(format!(
                    "destroying {id}: {} and not a member",
                    state_name(state)
                ));
                vm.retire = Some(Retire {
                    cause: Cause::Orphan,
                    cut_short: false,
                });
                self.vms.insert(id.to_string(), vm);
                if bound.contains_key(id) {
                    self.unbind(id);
                } else {
                    self.destroy(id);
                }
            }
        }
    }
}
