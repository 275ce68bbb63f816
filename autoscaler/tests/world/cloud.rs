//! The cloud the world plays: VMs of the group with ids, states and addresses. Addresses come
//! from a small pool, lowest free first, and go back when a VM is expunged (as CloudStack
//! releases a nic's IP), so a new VM often gets the address a destroyed one had.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use autoscaler::{CloudState, CloudVm};

/// What becomes of a VM once its deploy reached the cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Running after its provisioning delay.
    Runs,
    /// The job fails and leaves the VM in Error.
    FailsLeavingVm,
    /// The job fails and the cloud cleans the VM up itself.
    FailsWithoutVm,
    /// Starting forever: the driver's deploy timeout ends the launch.
    NeverRunning,
}

#[derive(Debug, Clone)]
pub struct VmRecord {
    pub id: String,
    pub addr: SocketAddr,
    pub state: CloudState,
    pub created: Duration,
    pub fate: Fate,
    /// Its workload answers health checks once Running (false: it never turns UP).
    pub healthy: bool,
    /// What the deploy named it (the engine recognises its own launches by it).
    pub displayname: String,
}

#[derive(Debug, Default)]
pub struct Cloud {
    pub vms: BTreeMap<String, VmRecord>,
    next_id: u64,
    /// VMs ever created.
    pub created: u64,
}

pub const MEMBER_PORT: u16 = 8080;

impl Cloud {
    /// A deploy reached the cloud: a new VM, Starting, with an address.
    pub fn create(
        &mut self,
        now: Duration,
        fate: Fate,
        healthy: bool,
        displayname: String,
    ) -> String {
        self.next_id += 1;
        self.created += 1;
        let id = format!("vm-{:04}", self.next_id);
        let addr = self.free_addr();
        self.vms.insert(
            id.clone(),
            VmRecord {
                id: id.clone(),
                addr,
                state: CloudState::Starting,
                created: now,
                fate,
                healthy,
                displayname,
            },
        );
        id
    }

    fn free_addr(&self) -> SocketAddr {
        (1..=250u8)
            .map(|last| SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)), MEMBER_PORT))
            .find(|addr| {
                !self
                    .vms
                    .values()
                    .any(|vm| vm.state != CloudState::Gone && vm.addr == *addr)
            })
            .expect("fewer than 250 VMs exist at once")
    }

    pub fn get(&self, id: &str) -> Option<&VmRecord> {
        self.vms.get(id).filter(|vm| vm.state != CloudState::Gone)
    }

    pub fn set_state(&mut self, id: &str, state: CloudState) {
        if let Some(vm) = self.vms.get_mut(id)
            && vm.state != CloudState::Gone
        {
            vm.state = state;
        }
    }

    /// Destroy with expunge: the VM is gone and its address is free again.
    pub fn destroy(&mut self, id: &str) {
        self.set_state(id, CloudState::Gone);
    }

    /// `listVirtualMachines` for the group (expunged VMs are not listed).
    pub fn list(&self) -> Vec<CloudVm> {
        self.vms
            .values()
            .filter(|vm| vm.state != CloudState::Gone)
            .map(|vm| CloudVm {
                id: vm.id.clone(),
                state: vm.state,
                addr: matches!(vm.state, CloudState::Running | CloudState::Broken)
                    .then_some(vm.addr),
                created: Some(format!("{:012}", vm.created.as_millis())),
                displayname: Some(vm.displayname.clone()),
            })
            .collect()
    }

    /// VMs in existence: every state but destroyed (Starting and Error count).
    pub fn existing(&self) -> usize {
        self.vms
            .values()
            .filter(|vm| vm.state != CloudState::Gone)
            .count()
    }

    pub fn running(&self, id: &str) -> bool {
        self.get(id)
            .is_some_and(|vm| vm.state == CloudState::Running)
    }

    /// The VM that holds `addr` now, if one does.
    pub fn holder(&self, addr: SocketAddr) -> Option<&VmRecord> {
        self.vms
            .values()
            .find(|vm| vm.state != CloudState::Gone && vm.addr == addr)
    }
}
