//! In-memory fakes of the two worlds the driver reaches: a CloudStack-like [`FakeCloud`] and
//! a proxy servicegroup [`FakeFleet`]. Both run on tokio's clock (so paused-clock tests drive
//! boot delays and health checks) and write every call, in order, to one shared [`CallLog`]:
//! a test can then ask whether a member was drained and unbound before its VM was destroyed.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use autoscaler::{Cloud, CloudState, CloudVm, DeployRequest, Deployment, JobState};
use autoscaler::{Fleet, FleetError, MemberView};
use cloudstack::{CloudError, TransportError};
use tokio::time::Instant;

/// One call the driver made, to the cloud or to the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `vm`: the VM the cloud created for it, if it created one.
    Deploy {
        group: String,
        vm: Option<String>,
    },
    JobStatus {
        job: String,
    },
    List {
        group: String,
    },
    Destroy {
        vm: String,
    },
    Bind {
        vm: String,
        addr: SocketAddr,
    },
    Drain {
        addr: SocketAddr,
    },
    Unbind {
        addr: SocketAddr,
    },
}

/// Every call to the fakes that share it, with its time since the log was made.
#[derive(Debug)]
pub struct CallLog {
    start: Instant,
    calls: Mutex<Vec<(Duration, Call)>>,
}

impl CallLog {
    pub fn new() -> Arc<CallLog> {
        Arc::new(CallLog {
            start: Instant::now(),
            calls: Mutex::new(Vec::new()),
        })
    }

    /// Every call so far, oldest first, with its time.
    pub fn timed(&self) -> Vec<(Duration, Call)> {
        lock(&self.calls).clone()
    }

    /// Every call so far, oldest first, without the job polls and listings that each
    /// interval repeats.
    pub fn actions(&self) -> Vec<Call> {
        self.timed()
            .into_iter()
            .map(|(_, call)| call)
            .filter(|call| !matches!(call, Call::JobStatus { .. } | Call::List { .. }))
            .collect()
    }

    fn push(&self, call: Call) {
        lock(&self.calls).push((self.start.elapsed(), call));
    }
}

// ---------------------------------------------------------------------------------------------
// The cloud

/// A VM's state in the fake cloud (CloudStack's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmState {
    Starting,
    Running,
    Stopped,
    Error,
    /// Destroyed with expunge (or removed by a failed deploy): listed no more.
    Expunged,
}

/// How a deploy turns out once its boot delay has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Run,
    /// The job fails; the VM stays behind in Error, or the cloud removes it.
    Fail {
        leave_vm: bool,
    },
    /// Never leaves Starting; the job stays pending.
    Hang,
}

#[derive(Debug, Clone)]
struct FakeVm {
    id: String,
    displayname: Option<String>,
    group: String,
    addr: SocketAddr,
    state: VmState,
    job: String,
    created: Duration,
    ready_at: Instant,
    outcome: Outcome,
}

#[derive(Debug, Default)]
struct Faults {
    fail_deploys: u32,
    leave_failed_vm: bool,
    hang_deploys: u32,
    refuse_deploys: u32,
    transport_after_deploy: u32,
    fail_lists: u32,
    fail_destroys: u32,
}

#[derive(Debug)]
struct CloudInner {
    vms: BTreeMap<String, FakeVm>,
    next: u32,
    boot_delay: Duration,
    list_delay: Duration,
    deploy_delay: Duration,
    faults: Faults,
}

/// A CloudStack-like cloud in memory: VMs `vm-0001`, `vm-0002` ... at 127.77.x.y:8000 that
/// are Starting for the boot delay and then Running, with fault switches.
#[derive(Debug)]
pub struct FakeCloud {
    log: Arc<CallLog>,
    start: Instant,
    inner: Mutex<CloudInner>,
}

impl FakeCloud {
    pub fn new(log: Arc<CallLog>) -> Arc<FakeCloud> {
        Arc::new(FakeCloud {
            log,
            start: Instant::now(),
            inner: Mutex::new(CloudInner {
                vms: BTreeMap::new(),
                next: 1,
                boot_delay: Duration::from_secs(2),
                list_delay: Duration::ZERO,
                deploy_delay: Duration::ZERO,
                faults: Faults::default(),
            }),
        })
    }

    /// How long a deployed VM is Starting before it is Running (from now on).
    pub fn set_boot_delay(&self, delay: Duration) {
        self.lock().boot_delay = delay;
    }

    /// How long a listing's answer takes to come back (the cloud reads its state first).
    pub fn set_list_delay(&self, delay: Duration) {
        self.lock().list_delay = delay;
    }

    /// How long a deploy's answer takes to come back (the cloud creates the VM first).
    pub fn set_deploy_delay(&self, delay: Duration) {
        self.lock().deploy_delay = delay;
    }

    /// The next `count` deploys are accepted, then their job fails after the boot delay; the
    /// VM is left behind in Error (`leave_vm`) or removed by the cloud.
    pub fn fail_next_deploys(&self, count: u32, leave_vm: bool) {
        let mut inner = self.lock();
        inner.faults.fail_deploys = count;
        inner.faults.leave_failed_vm = leave_vm;
    }

    /// The next `count` deploys are accepted and their VMs never leave Starting.
    pub fn hang_next_deploys(&self, count: u32) {
        self.lock().faults.hang_deploys = count;
    }

    /// The next `count` deploys create their VM (which boots normally), but the answer is
    /// lost: the driver gets a transport error.
    pub fn lose_next_deploy_answers(&self, count: u32) {
        self.lock().faults.transport_after_deploy = count;
    }

    /// The next `count` deploys are not sent: the connection is refused, nothing is created.
    pub fn refuse_next_deploys(&self, count: u32) {
        self.lock().faults.refuse_deploys = count;
    }

    /// The next `count` listings fail with a transport error.
    pub fn fail_next_lists(&self, count: u32) {
        self.lock().faults.fail_lists = count;
    }

    /// The next `count` destroys fail with CloudStack error 530.
    pub fn fail_next_destroys(&self, count: u32) {
        self.lock().faults.fail_destroys = count;
    }

    /// A VM of `group` that was there before the test (an earlier run's, or someone's).
    pub fn add_vm(&self, group: &str, state: VmState) -> (String, SocketAddr) {
        let now = Instant::now();
        let mut inner = self.lock();
        let vm = inner.create(group, self.start, now, Outcome::Run);
        vm.state = state;
        (vm.id.clone(), vm.addr)
    }

    /// The VM stops (a host failure, a kernel panic): Stopped, and no longer answers.
    pub fn crash(&self, vm: &str) {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.refresh(now);
        let found = inner.vms.get_mut(vm).expect("crash: no such VM");
        found.state = VmState::Stopped;
    }

    /// Every VM that is not expunged, whatever its state.
    pub fn vms(&self) -> Vec<(String, VmState)> {
        let mut inner = self.lock();
        inner.refresh(Instant::now());
        inner
            .vms
            .values()
            .filter(|vm| vm.state != VmState::Expunged)
            .map(|vm| (vm.id.clone(), vm.state))
            .collect()
    }

    /// The VM's state, if it was ever created.
    pub fn state(&self, vm: &str) -> Option<VmState> {
        let mut inner = self.lock();
        inner.refresh(Instant::now());
        inner.vms.get(vm).map(|vm| vm.state)
    }

    /// Creates a deployed VM as the faults say; returns it, whether its answer is lost, and
    /// how long the answer takes.
    fn create(&self, request: &DeployRequest) -> (Deployment, bool, Duration) {
        let now = Instant::now();
        let mut inner = self.lock();
        let faults = &mut inner.faults;
        let outcome = if faults.hang_deploys > 0 {
            faults.hang_deploys -= 1;
            Outcome::Hang
        } else if faults.fail_deploys > 0 {
            faults.fail_deploys -= 1;
            Outcome::Fail {
                leave_vm: faults.leave_failed_vm,
            }
        } else {
            Outcome::Run
        };
        let lose_answer = faults.transport_after_deploy > 0;
        if lose_answer {
            faults.transport_after_deploy -= 1;
        }
        let vm = inner.create(&request.group, self.start, now, outcome);
        vm.displayname = Some(request.displayname.clone());
        let deployment = Deployment {
            vm: vm.id.clone(),
            job: vm.job.clone(),
        };
        (deployment, lose_answer, inner.deploy_delay)
    }

    /// Uses up one refused deploy, if armed.
    fn refuse_deploy(&self) -> bool {
        let faults = &mut self.lock().faults;
        let refuse = faults.refuse_deploys > 0;
        faults.refuse_deploys = faults.refuse_deploys.saturating_sub(1);
        refuse
    }

    /// Whether the VM behind `addr` is Running (what a health check would find).
    fn answers(&self, vm: &str, addr: SocketAddr) -> bool {
        let mut inner = self.lock();
        inner.refresh(Instant::now());
        inner
            .vms
            .get(vm)
            .is_some_and(|found| found.addr == addr && found.state == VmState::Running)
    }

    fn lock(&self) -> MutexGuard<'_, CloudInner> {
        lock(&self.inner)
    }
}

impl CloudInner {
    fn create(
        &mut self,
        group: &str,
        start: Instant,
        now: Instant,
        outcome: Outcome,
    ) -> &mut FakeVm {
        let n = self.next;
        self.next += 1;
        let id = format!("vm-{n:04}");
        let [hi, lo] = u16::try_from(n)
            .expect("fewer than 65536 VMs")
            .to_be_bytes();
        let vm = FakeVm {
            id: id.clone(),
            displayname: None,
            group: group.to_string(),
            addr: SocketAddr::from((Ipv4Addr::new(127, 77, hi, lo), 8000)),
            state: VmState::Starting,
            job: format!("job-{n:04}"),
            created: now - start,
            ready_at: now + self.boot_delay,
            outcome,
        };
        self.vms.entry(id).or_insert(vm)
    }

    /// Moves Starting VMs whose boot delay has passed to where their outcome takes them.
    fn refresh(&mut self, now: Instant) {
        for vm in self.vms.values_mut() {
            if vm.state != VmState::Starting || now < vm.ready_at {
                continue;
            }
            vm.state = match vm.outcome {
                Outcome::Run => VmState::Running,
                Outcome::Fail { leave_vm: true } => VmState::Error,
                Outcome::Fail { leave_vm: false } => VmState::Expunged,
                Outcome::Hang => VmState::Starting,
            };
        }
    }
}

impl FakeVm {
    fn cloud_vm(&self) -> CloudVm {
        let state = match self.state {
            VmState::Starting => CloudState::Starting,
            VmState::Running => CloudState::Running,
            VmState::Stopped | VmState::Error => CloudState::Broken,
            VmState::Expunged => CloudState::Gone,
        };
        let secs = self.created.as_secs();
        CloudVm {
            id: self.id.clone(),
            state,
            addr: Some(self.addr),
            created: Some(format!(
                "2025-01-01T{:02}:{:02}:{:02}+0000",
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            )),
            displayname: self.displayname.clone(),
        }
    }
}

impl Cloud for FakeCloud {
    async fn deploy(&self, request: &DeployRequest) -> Result<Deployment, CloudError> {
        if self.refuse_deploy() {
            self.log.push(Call::Deploy {
                group: request.group.clone(),
                vm: None,
            });
            return Err(CloudError::NotSent {
                command: "deployVirtualMachine".into(),
                endpoint: "http://fake-cloud/client/api".into(),
                source: TransportError::Connect(std::io::ErrorKind::ConnectionRefused.into()),
            });
        }
        let (deployment, lose_answer, delay) = self.create(request);
        self.log.push(Call::Deploy {
            group: request.group.clone(),
            vm: Some(deployment.vm.clone()),
        });
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if lose_answer {
            return Err(CloudError::AnswerLost {
                command: "deployVirtualMachine".into(),
                endpoint: "http://fake-cloud/client/api".into(),
                source: TransportError::Timeout(Duration::from_secs(30)),
            });
        }
        Ok(deployment)
    }

    async fn job_status(&self, job: &str) -> Result<JobState, CloudError> {
        self.log.push(Call::JobStatus { job: job.into() });
        let mut inner = self.lock();
        inner.refresh(Instant::now());
        let Some(vm) = inner.vms.values().find(|vm| vm.job == job) else {
            return Err(api_error("queryAsyncJobResult", 431, "no such job"));
        };
        Ok(match (vm.state, vm.outcome) {
            (VmState::Starting, _) => JobState::Pending,
            (_, Outcome::Fail { .. }) => JobState::Failed(CloudError::JobFailed {
                command: "deployVirtualMachine".into(),
                jobid: job.into(),
                errorcode: 530,
                cserrorcode: Some(4250),
                errortext: "Unable to create a deployment for VM".into(),
            }),
            _ => JobState::Done(vm.cloud_vm()),
        })
    }

    async fn list_group(&self, group: &str) -> Result<Vec<CloudVm>, CloudError> {
        self.log.push(Call::List {
            group: group.into(),
        });
        let (listed, delay) = {
            let mut inner = self.lock();
            if inner.faults.fail_lists > 0 {
                inner.faults.fail_lists -= 1;
                return Err(CloudError::NotSent {
                    command: "listVirtualMachines".into(),
                    endpoint: "http://fake-cloud/client/api".into(),
                    source: TransportError::Connect(std::io::ErrorKind::ConnectionRefused.into()),
                });
            }
            inner.refresh(Instant::now());
            let listed: Vec<CloudVm> = inner
                .vms
                .values()
                .filter(|vm| vm.group == group && vm.state != VmState::Expunged)
                .map(FakeVm::cloud_vm)
                .collect();
            (listed, inner.list_delay)
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok(listed)
    }

    async fn destroy(&self, vm: &str) -> Result<(), CloudError> {
        self.log.push(Call::Destroy { vm: vm.into() });
        let mut inner = self.lock();
        if inner.faults.fail_destroys > 0 {
            inner.faults.fail_destroys -= 1;
            return Err(api_error(
                "destroyVirtualMachine",
                530,
                "Failed to destroy vm",
            ));
        }
        inner.refresh(Instant::now());
        match inner.vms.get_mut(vm) {
            Some(found) if found.state != VmState::Expunged => {
                found.state = VmState::Expunged;
                Ok(())
            }
            _ => Err(api_error(
                "destroyVirtualMachine",
                431,
                "Unable to find the virtual machine",
            )),
        }
    }
}

fn api_error(command: &str, errorcode: u16, text: &str) -> CloudError {
    CloudError::Api {
        command: command.into(),
        errorcode,
        cserrorcode: Some(4350),
        errortext: text.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// The fleet

#[derive(Debug, Clone)]
struct FakeMember {
    vm: String,
    bound_at: Instant,
    draining: bool,
    connections: u64,
    snmp: BTreeMap<String, f64>,
}

#[derive(Debug)]
struct FleetInner {
    members: BTreeMap<SocketAddr, FakeMember>,
    health_delay: Duration,
    /// Metric values a newly bound member reports.
    defaults: BTreeMap<String, f64>,
}

/// One servicegroup in memory. A member is UP once it has been bound for the health delay
/// (zero: at the next `members()` call) and its VM answers in the cloud it probes.
#[derive(Debug)]
pub struct FakeFleet {
    log: Arc<CallLog>,
    /// What health checks reach: a crashed or destroyed VM is DOWN.
    probe: Arc<FakeCloud>,
    inner: Mutex<FleetInner>,
}

impl FakeFleet {
    pub fn new(log: Arc<CallLog>, probe: Arc<FakeCloud>) -> Arc<FakeFleet> {
        Arc::new(FakeFleet {
            log,
            probe,
            inner: Mutex::new(FleetInner {
                members: BTreeMap::new(),
                health_delay: Duration::ZERO,
                defaults: BTreeMap::new(),
            }),
        })
    }

    pub fn set_health_delay(&self, delay: Duration) {
        self.lock().health_delay = delay;
    }

    /// The value of metric `name` that members bound from now on report.
    pub fn set_default_metric(&self, name: &str, value: f64) {
        self.lock().defaults.insert(name.into(), value);
    }

    /// Sets metric `name` of the member `vm`.
    pub fn set_metric(&self, vm: &str, name: &str, value: f64) {
        let mut inner = self.lock();
        let member = inner
            .members
            .values_mut()
            .find(|m| m.vm == vm)
            .expect("set_metric: no such member");
        member.snmp.insert(name.into(), value);
    }

    /// Sets metric `name` of every member, and of members bound from now on.
    pub fn set_metric_everywhere(&self, name: &str, value: f64) {
        let mut inner = self.lock();
        inner.defaults.insert(name.into(), value);
        for member in inner.members.values_mut() {
            member.snmp.insert(name.into(), value);
        }
    }

    /// Requests in flight on the member `vm`.
    pub fn set_connections(&self, vm: &str, connections: u64) {
        let mut inner = self.lock();
        let member = inner
            .members
            .values_mut()
            .find(|m| m.vm == vm)
            .expect("set_connections: no such member");
        member.connections = connections;
    }

    /// A member bound before the test began (kept across a restart of the engine).
    pub fn keep(&self, vm: &str, addr: SocketAddr) {
        let mut inner = self.lock();
        let member = FakeMember {
            vm: vm.into(),
            bound_at: Instant::now() - Duration::from_secs(3600),
            draining: false,
            connections: 0,
            snmp: inner.defaults.clone(),
        };
        inner.members.insert(addr, member);
    }

    /// The bound members' VMs and addresses, by address.
    pub fn bound(&self) -> Vec<(String, SocketAddr)> {
        self.lock()
            .members
            .iter()
            .map(|(addr, m)| (m.vm.clone(), *addr))
            .collect()
    }

    /// The bound member of `vm`, if it is bound.
    pub fn addr_of(&self, vm: &str) -> Option<SocketAddr> {
        self.bound()
            .into_iter()
            .find_map(|(bound, addr)| (bound == vm).then_some(addr))
    }

    /// Whether the member at `addr` is draining.
    pub fn is_draining(&self, addr: SocketAddr) -> bool {
        self.lock().members.get(&addr).is_some_and(|m| m.draining)
    }

    fn lock(&self) -> MutexGuard<'_, FleetInner> {
        lock(&self.inner)
    }
}

impl Fleet for FakeFleet {
    async fn bind(&self, vm: &str, addr: SocketAddr) -> Result<(), FleetError> {
        self.log.push(Call::Bind {
            vm: vm.into(),
            addr,
        });
        let mut inner = self.lock();
        if inner.members.contains_key(&addr) {
            return Err(FleetError::AlreadyBound);
        }
        let member = FakeMember {
            vm: vm.into(),
            bound_at: Instant::now(),
            draining: false,
            connections: 0,
            snmp: inner.defaults.clone(),
        };
        inner.members.insert(addr, member);
        Ok(())
    }

    async fn drain(&self, addr: SocketAddr) -> Result<(), FleetError> {
        self.log.push(Call::Drain { addr });
        match self.lock().members.get_mut(&addr) {
            Some(member) => {
                member.draining = true;
                Ok(())
            }
            None => Err(FleetError::NotBound),
        }
    }

    async fn unbind(&self, addr: SocketAddr) -> Result<(), FleetError> {
        self.log.push(Call::Unbind { addr });
        match self.lock().members.remove(&addr) {
            Some(_) => Ok(()),
            None => Err(FleetError::NotBound),
        }
    }

    fn members(&self) -> Vec<MemberView> {
        let now = Instant::now();
        let members: Vec<(SocketAddr, FakeMember, Duration)> = {
            let inner = self.lock();
            inner
                .members
                .iter()
                .map(|(addr, m)| (*addr, m.clone(), inner.health_delay))
                .collect()
        };
        members
            .into_iter()
            .map(|(addr, member, delay)| MemberView {
                addr,
                up: now >= member.bound_at + delay && self.probe.answers(&member.vm, addr),
                vm: Some(member.vm),
                connections: member.connections,
                requests: 0,
                response_time_ms: 0.0,
                snmp: member.snmp.into_iter().collect(),
                protected: false,
                draining: member.draining,
            })
            .collect()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
