//! What the local cloud knows: the configured catalog ([`LocalCloudConfig`]) and the mutable
//! [`State`] behind one mutex (VMs, host health, jobs, instance groups, addresses, faults).
//! The mutex is never held across an `.await`.

use std::net::Ipv4Addr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::addresses::AddressPool;
use super::config::LocalCloudConfig;
use super::faults::Faults;
use super::jobs::Job;
use super::process::VmProcess;
use crate::model::VmState;

/// Everything the server, the job tasks and the process supervisors share.
#[derive(Debug)]
pub struct Shared {
    pub config: LocalCloudConfig,
    /// The resolved VM program and leading arguments.
    pub vm_command: Vec<String>,
    state: Mutex<State>,
    /// Cancelled at shutdown: job tasks stop, VM processes are killed.
    pub shutdown: CancellationToken,
    /// Every job task and process supervisor, so shutdown can wait for them.
    pub tasks: TaskTracker,
}

impl Shared {
    pub fn new(config: LocalCloudConfig, vm_command: Vec<String>) -> Self {
        let state = State {
            vms: Vec::new(),
            hosts_up: vec![true; config.hosts.len()],
            jobs: Vec::new(),
            groups: Vec::new(),
            addresses: AddressPool::new(config.address_range),
            faults: Faults::default(),
        };
        Self {
            config,
            vm_command,
            state: Mutex::new(state),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug)]
pub struct State {
    /// In creation order; an expunged VM is removed.
    pub vms: Vec<Vm>,
    /// Per configured host: `Up` (true) or `Down` (a failed host).
    pub hosts_up: Vec<bool>,
    pub jobs: Vec<Job>,
    pub groups: Vec<InstanceGroup>,
    pub addresses: AddressPool,
    pub faults: Faults,
}

/// A VM as the local cloud tracks it. Indexes point into the config's lists.
#[derive(Debug)]
pub struct Vm {
    pub id: String,
    pub name: String,
    pub displayname: String,
    pub account: String,
    pub accountid: String,
    pub userid: String,
    pub username: String,
    /// Instance group id.
    pub group: Option<String>,
    pub zone: usize,
    pub offering: usize,
    pub template: usize,
    /// The host it runs on; holds that host's capacity while set.
    pub host: Option<usize>,
    pub last_host: Option<usize>,
    pub ip: Ipv4Addr,
    pub mac: String,
    pub nic_id: String,
    pub state: VmState,
    pub created: SystemTime,
    pub tags: Vec<(String, String)>,
    pub userdata: Option<String>,
    /// The job working on this VM right now, shown as `jobid`/`jobstatus` in lists.
    pub job: Option<String>,
    /// Cancels the operation in flight (a destroy cancels a start).
    pub op: Option<CancellationToken>,
    pub process: Option<VmProcess>,
    /// Bumped for every process start and every destroy, so late reports about an older
    /// process, or an expunge timer of an earlier destroy, are ignored.
    pub generation: u64,
}

/// A named instance group (`deployVirtualMachine group=`).
#[derive(Debug, Clone)]
pub struct InstanceGroup {
    pub id: String,
    pub name: String,
    pub account: String,
    pub accountid: String,
    pub created: SystemTime,
}

impl State {
    pub fn vm(&self, id: &str) -> Option<&Vm> {
        self.vms.iter().find(|vm| vm.id == id)
    }

    pub fn vm_mut(&mut self, id: &str) -> Option<&mut Vm> {
        self.vms.iter_mut().find(|vm| vm.id == id)
    }

    /// MHz and MB taken on `host` by the VMs placed there.
    pub fn allocated(&self, config: &LocalCloudConfig, host: usize) -> (u64, u64) {
        self.vms
            .iter()
            .filter(|vm| vm.host == Some(host))
            .map(|vm| {
                let offering = &config.offerings[vm.offering];
                (
                    u64::from(offering.cpunumber) * u64::from(offering.cpuspeed),
                    u64::from(offering.memory),
                )
            })
            .fold((0, 0), |(c, m), (vc, vm)| (c + vc, m + vm))
    }

    /// The least-loaded `Up` host of `zone` with room for `offering`, preferring any host but
    /// `avoid` (an HA restart goes elsewhere when it can). `None`: the zone is full.
    pub fn place(
        &self,
        config: &LocalCloudConfig,
        zone: usize,
        offering: usize,
        avoid: Option<usize>,
    ) -> Option<usize> {
        let wanted = &config.offerings[offering];
        let need_cpu = u64::from(wanted.cpunumber) * u64::from(wanted.cpuspeed);
        let need_memory = u64::from(wanted.memory);
        let mut candidates: Vec<(usize, f64)> = config
            .hosts
            .iter()
            .enumerate()
            .filter(|(index, host)| host.zone == zone && self.hosts_up[*index])
            .filter_map(|(index, host)| {
                let total_cpu = u64::from(host.cpunumber) * u64::from(host.cpuspeed);
                let total_memory = u64::from(host.memory);
                let (cpu, memory) = self.allocated(config, index);
                let fits = cpu + need_cpu <= total_cpu && memory + need_memory <= total_memory;
                let load = (cpu as f64 / total_cpu as f64).max(memory as f64 / total_memory as f64);
                fits.then_some((index, load))
            })
            .collect();
        if candidates.len() > 1 {
            candidates.retain(|(index, _)| Some(*index) != avoid);
        }
        candidates
            .into_iter()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(index, _)| index)
    }

    /// The instance group `name` of `account`, created if new (as CloudStack does on deploy).
    pub fn group_for(&mut self, name: &str, account: &str, accountid: &str) -> String {
        if let Some(group) = self
            .groups
            .iter()
            .find(|g| g.name == name && g.accountid == accountid)
        {
            return group.id.clone();
        }
        let group = InstanceGroup {
            id: super::ids::stable("instancegroup", &format!("{accountid}/{name}")),
            name: name.to_string(),
            account: account.to_string(),
            accountid: accountid.to_string(),
            created: SystemTime::now(),
        };
        let id = group.id.clone();
        self.groups.push(group);
        id
    }
}
