//! The simulated world a replay runs against: a cloud whose deploys take the provision
//! delay and whose destroys take the deprovision delay, and a servicegroup whose binds,
//! drains and unbinds succeed at once. It executes the core's [`Action`]s and reports back
//! through the same `on_*` calls the driver makes; nothing in it ever fails, except a deploy
//! slower than the policy's deploy timeout, which fails the way the driver fails it.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::Options;
use super::trace::Sample;
use crate::core::{
    Action, CloudState, CloudVm, DeployError, GroupCore, Inventory, LaunchId, MemberSample,
};

/// The port every simulated member listens on.
const MEMBER_PORT: u16 = 80;

#[derive(Debug)]
pub(super) struct World {
    options: Options,
    deploy_timeout: Duration,
    /// The cloud's VMs of the group, by id.
    vms: BTreeMap<String, CloudVm>,
    /// The servicegroup's autoscaled members: VM id → address.
    members: BTreeMap<String, SocketAddr>,
    /// Steps that finish later, by (time, order of scheduling).
    due: BTreeMap<(Duration, u64), Due>,
    scheduled: u64,
    deployed: u32,
}

/// A step that finishes later.
#[derive(Debug, Clone)]
enum Due {
    /// The VM is Running with its address.
    Running {
        launch: LaunchId,
        vm: String,
        addr: SocketAddr,
    },
    /// The VM was not Running within the deploy timeout.
    TimedOut { launch: LaunchId, vm: String },
    /// The VM is destroyed and expunged.
    Destroyed { vm: String },
}

impl World {
    pub fn new(options: Options, deploy_timeout: Duration) -> World {
        World {
            options,
            deploy_timeout,
            vms: BTreeMap::new(),
            members: BTreeMap::new(),
            due: BTreeMap::new(),
            scheduled: 0,
            deployed: 0,
        }
    }

    /// When the next step finishes, if one is under way.
    pub fn next_due(&self) -> Option<Duration> {
        self.due.keys().next().map(|(at, _)| *at)
    }

    /// Finishes the earliest step (due at `at`) and reports it to the core.
    pub fn finish_next(&mut self, core: &mut GroupCore) {
        let Some(((at, _), due)) = self.due.pop_first() else {
            return;
        };
        match due {
            Due::Running { launch, vm, addr } => {
                // Destroyed before it was Running: the deploy job never reports.
                let Some(cloud) = self.vms.get_mut(&vm) else {
                    return;
                };
                cloud.state = CloudState::Running;
                cloud.addr = Some(addr);
                core.on_deploy_finished(at, launch, Ok((vm, addr)));
            }
            Due::TimedOut { launch, vm } => {
                let reason = format!(
                    "not Running within the deploy timeout {:?}",
                    self.deploy_timeout
                );
                core.on_deploy_finished(
                    at,
                    launch,
                    Err(DeployError::Failed {
                        reason,
                        vm: Some(vm),
                    }),
                );
            }
            Due::Destroyed { vm } => {
                self.vms.remove(&vm);
                self.members.remove(&vm);
                core.on_destroyed(at, &vm, Ok(()));
            }
        }
    }

    /// Executes one action at `now`; what finishes at once is reported at once.
    pub fn execute(&mut self, now: Duration, action: Action, core: &mut GroupCore) {
        match action {
            Action::Reconcile => core.on_inventory(now, Ok(self.inventory())),
            Action::Deploy { launch } => {
                self.deployed += 1;
                let vm = format!("vm-{}", self.deployed);
                self.vms.insert(
                    vm.clone(),
                    CloudVm {
                        id: vm.clone(),
                        state: CloudState::Starting,
                        addr: None,
                        created: None,
                        displayname: Some(core.launch_name(launch)),
                    },
                );
                core.on_deploy_accepted(now, launch, &vm);
                let due = if self.options.provision_delay > self.deploy_timeout {
                    (now + self.deploy_timeout, Due::TimedOut { launch, vm })
                } else {
                    let addr = address(self.deployed);
                    (
                        now + self.options.provision_delay,
                        Due::Running { launch, vm, addr },
                    )
                };
                self.schedule(due.0, due.1);
            }
            Action::Bind { vm, addr } => {
                self.members.insert(vm.clone(), addr);
                core.on_bound(now, &vm, Ok(()));
            }
            // The member stays bound and keeps reporting its connections.
            Action::Drain { .. } => {}
            Action::Unbind { vm, .. } => {
                self.members.remove(&vm);
                core.on_unbound(now, &vm, Ok(()));
            }
            Action::Destroy { vm } => {
                let pending = self
                    .due
                    .values()
                    .any(|due| matches!(due, Due::Destroyed { vm: v } if *v == vm));
                if !pending {
                    self.schedule(now + self.options.deprovision_delay, Due::Destroyed { vm });
                }
            }
            Action::Investigate { vm } => {
                let state = self.vms.get(&vm).map(|cloud| cloud.state);
                core.on_investigated(now, &vm, state);
            }
        }
    }

    /// One sample: every bound member is UP and reports the row's values and connections
    /// (1 without a `connections` column, so a drain lasts its whole quiet time).
    pub fn sample(&self, row: &Sample) -> Vec<MemberSample> {
        self.members
            .keys()
            .map(|vm| MemberSample {
                vm: Some(vm.clone()),
                up: true,
                connections: row.connections.unwrap_or(1),
                protected: false,
                values: row.values.iter().copied().map(Some).collect(),
            })
            .collect()
    }

    /// What a listing of the group finds.
    pub fn inventory(&self) -> Inventory {
        Inventory {
            vms: self.vms.values().cloned().collect(),
            bound: self
                .members
                .iter()
                .map(|(vm, addr)| (vm.clone(), *addr))
                .collect(),
            ..Inventory::default()
        }
    }

    fn schedule(&mut self, at: Duration, due: Due) {
        self.scheduled += 1;
        self.due.insert((at, self.scheduled), due);
    }
}

/// `vm-N` lives at the N-th address after 192.0.2.0 (TEST-NET-1: never a real host).
fn address(n: u32) -> SocketAddr {
    let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(192, 0, 2, 0)).wrapping_add(n));
    SocketAddr::new(ip.into(), MEMBER_PORT)
}
