//! Reconcile: align what the core knows with what the cloud lists for the group and what the
//! servicegroup has bound. Running VMs are adopted, members whose VM is gone are unbound,
//! VMs that cannot serve are destroyed; trimming to `maxmembers` follows at the next sample.
//! This is what makes a restart neither orphan nor duplicate a VM.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::lifecycle::state_name;
use super::vm::{Cause, Phase, Retire, Vm};
use super::{Action, CloudState, CloudVm, GroupCore, Inventory};
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
        let first = self.needs_inventory;
        self.needs_inventory = false;
        let listed: BTreeMap<&str, &CloudVm> = inventory
            .vms
            .iter()
            .map(|vm| (vm.id.as_str(), vm))
            .collect();
        let bound: BTreeMap<&str, std::net::SocketAddr> = inventory
            .bound
            .iter()
            .map(|(vm, addr)| (vm.as_str(), *addr))
            .collect();
        let mut changes = Vec::new();

        // VMs the core knows that the cloud no longer has.
        let known: Vec<String> = self.vms.keys().cloned().collect();
        for id in known {
            let gone = listed
                .get(id.as_str())
                .is_none_or(|vm| vm.state == CloudState::Gone);
            if !gone {
                continue;
            }
            let vm = &self.vms[&id];
            match vm.phase {
                // Its deploy is still being waited for: the listing may lag the deploy.
                Phase::Deploying { .. } if vm.launch.is_some() => {}
                Phase::Destroying { .. } => {
                    self.vms.remove(&id);
                    self.event_about(
                        now,
                        EventKind::VmDestroyed,
                        Some(&id),
                        "gone from the cloud".into(),
                    );
                }
                _ if vm.is_bound() || vm.phase == Phase::Binding => {
                    let vm = self.vms.get_mut(&id).expect("known");
                    vm.retire = Some(Retire {
                        cause: Cause::Gone,
                        cut_short: false,
                    });
                    let launch = vm.launch;
                    changes.push(format!("{id} is gone from the cloud: unbinding its member"));
                    self.unbind(&id);
                    // Lost before it came UP: its launch has ended (see `retire`).
                    if let Some(launch) = launch {
                        self.launch_done(now, launch, false);
                    }
                }
                _ => {
                    self.vms.remove(&id);
                    changes.push(format!("{id} is gone from the cloud"));
                }
            }
        }

        // VMs the cloud has that the core does not know: adopt, wait for, or destroy.
        let mut unknown: Vec<&CloudVm> = inventory
            .vms
            .iter()
            .filter(|vm| !self.vms.contains_key(&vm.id) && vm.state != CloudState::Gone)
            .collect();
        unknown.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        for cloud in unknown {
            let order = self.next_order();
            let mut vm = Vm {
                id: cloud.id.clone(),
                addr: cloud.addr,
                phase: Phase::Deploying { since: now },
                launch: None,
                order,
                adopted: true,
                protected: false,
                connections: 0,
                retire: None,
            };
            match (cloud.state, cloud.addr) {
                (CloudState::Running, Some(addr)) if bound.contains_key(cloud.id.as_str()) => {
                    vm.phase = Phase::Joining { since: now };
                    changes.push(format!("adopted {} (already bound as {addr})", cloud.id));
                    self.vms.insert(cloud.id.clone(), vm);
                }
                (CloudState::Running, Some(addr)) => {
                    vm.phase = Phase::Binding;
                    changes.push(format!("adopted {} at {}", cloud.id, addr.ip()));
                    self.vms.insert(cloud.id.clone(), vm);
                    self.actions.push_back(Action::Bind {
                        vm: cloud.id.clone(),
                        addr,
                    });
                }
                (CloudState::Starting, _) | (CloudState::Running, None) => {
                    changes.push(format!("waiting for {} to be Running", cloud.id));
                    self.vms.insert(cloud.id.clone(), vm);
                }
                (state, _) if self.policy.observe => {
                    // Observe mode acts on nothing, and a destroy cannot be undone: the VM is
                    // left alone and reported once.
                    if self.spared.insert(cloud.id.clone()) {
                        changes.push(format!(
                            "observe mode, not acted on: would destroy {}: {} and not a member",
                            cloud.id,
                            state_name(state)
                        ));
                    }
                }
                (state, _) => {
                    changes.push(format!(
                        "destroying {}: {} and not a member",
                        cloud.id,
                        state_name(state)
                    ));
                    vm.retire = Some(Retire {
                        cause: Cause::Orphan,
                        cut_short: false,
                    });
                    self.vms.insert(cloud.id.clone(), vm);
                    if bound.contains_key(cloud.id.as_str()) {
                        self.vms.get_mut(&cloud.id).expect("inserted").phase =
                            Phase::Unbinding { requested: false };
                        self.unbind(&cloud.id);
                    } else {
                        self.destroy(&cloud.id);
                    }
                }
            }
        }

        // Adopted VMs found Starting earlier that are Running now.
        let ready: Vec<(String, std::net::SocketAddr)> = self
            .vms
            .values()
            .filter(|vm| vm.launch.is_none() && vm.retire.is_none())
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
            changes.push(format!("adopted {id} at {}", addr.ip()));
            self.actions.push_back(Action::Bind { vm: id, addr });
        }
        // Adopted VMs that never became Running within the deploy timeout (left alone in
        // observe mode).
        let stuck: Vec<String> = self
            .vms
            .values()
            .filter(|_| !self.policy.observe)
            .filter(|vm| vm.launch.is_none() && vm.retire.is_none())
            .filter(|vm| {
                matches!(vm.phase, Phase::Deploying { since } if now >= since + self.policy.launch.deploy_timeout)
            })
            .map(|vm| vm.id.clone())
            .collect();
        for id in stuck {
            changes.push(format!(
                "destroying {id}: not Running within the deploy timeout"
            ));
            self.retire(now, &id, Cause::Orphan);
        }

        // Members bound for VMs that neither the core nor the cloud has.
        let stale: BTreeSet<(&str, std::net::SocketAddr)> = bound
            .iter()
            .filter(|(vm, _)| !self.vms.contains_key(**vm) && !listed.contains_key(**vm))
            .map(|(vm, addr)| (*vm, *addr))
            .collect();
        for (id, addr) in stale {
            changes.push(format!("{id} is gone from the cloud: unbinding {addr}"));
            let order = self.next_order();
            self.vms.insert(
                id.to_string(),
                Vm {
                    id: id.to_string(),
                    addr: Some(addr),
                    phase: Phase::Unbinding { requested: true },
                    launch: None,
                    order,
                    adopted: true,
                    protected: false,
                    connections: 0,
                    retire: Some(Retire {
                        cause: Cause::Gone,
                        cut_short: false,
                    }),
                },
            );
            self.actions.push_back(Action::Unbind {
                vm: id.to_string(),
                addr,
            });
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
}
