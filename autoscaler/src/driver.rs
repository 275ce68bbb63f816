//! The driver: the only async part of the engine. Each interval it reads the servicegroup's
//! members through [`Fleet`], turns them into samples for the [`GroupCore`], lists the group
//! in the cloud (reconcile), and executes every [`Action`] the core returns as its own task
//! (deploy → poll the job → Running with an address; bind; drain; unbind; destroy with
//! expunge). Each task reports back on a channel, and the core hears about it with `now`.
//! Events go to the shared [`History`] and to `tracing`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::cloud::{Cloud, DeployRequest, JobState};
use crate::core::{Action, CloudState, DeployError, GroupCore, Inventory, LaunchId, MemberSample};
use crate::event::Event;
use crate::fleet::{Fleet, FleetError, MemberView};
use crate::history::{GroupRecord, History};
use crate::policy::{MetricSource, Policy};

/// How an operator steers a running group: a new policy (bounds, thresholds, enable,
/// observe) takes effect at once; `resume` lifts a launch suspension.
#[derive(Debug, Clone)]
pub struct Controls {
    pub policy: watch::Receiver<Policy>,
    pub resume: Arc<Notify>,
}

/// One autoscale group's driver.
#[derive(Debug)]
pub struct Driver<C, F> {
    group: String,
    cloud: Arc<C>,
    fleet: Arc<F>,
    core: GroupCore,
    history: Arc<History>,
    controls: Controls,
    origin: Instant,
    done_tx: mpsc::UnboundedSender<Completion>,
    done_rx: mpsc::UnboundedReceiver<Completion>,
    /// The last request counter of each member, for requests per second.
    last_requests: HashMap<SocketAddr, (u64, Instant)>,
    reconciling: bool,
    /// The core asked for a listing while one was under way: that one may have been read
    /// before what the core needs to see (a deploy whose answer was lost), so its answer is
    /// dropped and the group is listed again.
    relist: bool,
    /// Cancelled when the driver stops: its steps in flight end with it.
    tasks: CancellationToken,
}

/// What a finished task reports.
#[derive(Debug)]
enum Completion {
    Accepted(LaunchId, String),
    Deployed(LaunchId, Result<(String, SocketAddr), DeployError>),
    Bound(String, Result<(), String>),
    Unbound(String, Result<(), String>),
    Destroyed(String, Result<(), String>),
    Inventory(Result<Inventory, String>),
    Investigated(String, Option<CloudState>),
}

impl<C: Cloud, F: Fleet> Driver<C, F> {
    pub fn new(
        group: impl Into<String>,
        cloud: Arc<C>,
        fleet: Arc<F>,
        history: Arc<History>,
        controls: Controls,
    ) -> Driver<C, F> {
        let policy = controls.policy.borrow().clone();
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let group = group.into();
        // Display names `<group>-<run stamp>-<launch>`: visible in the cloud's UI, and how
        // a listing recognises this run's launches.
        let run_stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let core = GroupCore::new(policy).with_launch_prefix(format!("{group}-{run_stamp}-"));
        Driver {
            group,
            cloud,
            fleet,
            core,
            history,
            controls,
            origin: Instant::now(),
            done_tx,
            done_rx,
            last_requests: HashMap::new(),
            reconciling: false,
            relist: false,
            tasks: CancellationToken::new(),
        }
    }

    /// Runs until `shutdown`. VMs and members stay as they are: the next start adopts them.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut ticks = self.ticker();
        self.step();
        loop {
            let deadline = self.core.next_timeout().map(|at| self.origin + at);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticks.tick() => {
                    let samples = self.samples();
                    self.core.on_sample(self.now(), &samples);
                    self.reconcile();
                }
                Some(done) = self.done_rx.recv() => self.complete(done),
                () = sleep_until(deadline) => self.core.handle_timeout(self.now()),
                Ok(()) = self.controls.policy.changed() => {
                    let policy = self.controls.policy.borrow_and_update().clone();
                    let interval = policy.interval;
                    self.core.set_policy(self.now(), policy);
                    if interval != ticks.period() {
                        ticks = self.ticker();
                    }
                }
                () = self.controls.resume.notified() => {
                    self.core.resume(self.now(), "an operator enabled the group");
                }
            }
            self.step();
        }
        self.tasks.cancel();
        self.history.forget(&self.group);
    }

    fn ticker(&self) -> tokio::time::Interval {
        let period = self.core.policy().interval.max(Duration::from_millis(10));
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticks
    }

    fn now(&self) -> Duration {
        Instant::now() - self.origin
    }

    /// Executes the core's actions, records its events, publishes its status.
    fn step(&mut self) {
        while let Some(action) = self.core.poll_action() {
            self.execute(action);
        }
        while let Some(event) = self.core.poll_event() {
            self.record(event);
        }
        let policy = self.core.policy();
        let record = GroupRecord {
            status: self.core.status(self.now()),
            min_members: policy.min_members,
            max_members: policy.max_members,
        };
        self.history.publish(&self.group, record);
    }

    fn record(&self, event: Event) {
        let record = self.history.record(&self.group, event);
        let event = &record.event;
        let values: Vec<String> = event
            .values
            .iter()
            .map(|(name, value)| format!("{name}={value:.2}"))
            .collect();
        tracing::info!(
            group = %self.group,
            kind = event.kind.as_str(),
            reason = %event.reason,
            members = event.members,
            vm = event.vm.as_deref().unwrap_or(""),
            values = values.join(","),
            observed = event.observed,
            "autoscale event"
        );
    }

    fn complete(&mut self, done: Completion) {
        let now = self.now();
        match done {
            Completion::Accepted(launch, vm) => self.core.on_deploy_accepted(now, launch, &vm),
            Completion::Deployed(launch, result) => {
                self.core.on_deploy_finished(now, launch, result)
            }
            Completion::Bound(vm, result) => self.core.on_bound(now, &vm, result),
            Completion::Unbound(vm, result) => self.core.on_unbound(now, &vm, result),
            Completion::Destroyed(vm, result) => self.core.on_destroyed(now, &vm, result),
            Completion::Inventory(result) => {
                self.reconciling = false;
                if std::mem::take(&mut self.relist) {
                    self.reconcile();
                } else {
                    self.core.on_inventory(now, result);
                }
            }
            Completion::Investigated(vm, state) => self.core.on_investigated(now, &vm, state),
        }
    }

    /// Lists the group (unless a listing is already under way).
    fn reconcile(&mut self) {
        if self.reconciling {
            return;
        }
        self.reconciling = true;
        let (cloud, fleet, group) = (self.cloud.clone(), self.fleet.clone(), self.group.clone());
        let taken_at = Some(self.now());
        self.spawn(async move {
            let listed = cloud.list_group(&group).await;
            let members = fleet.members();
            let draining = members
                .iter()
                .filter(|m| m.draining)
                .filter_map(|m| m.vm.clone())
                .collect();
            let bound = members
                .into_iter()
                .filter_map(|m| Some((m.vm?, m.addr)))
                .collect();
            let result = listed
                .map(|vms| Inventory {
                    vms,
                    bound,
                    draining,
                    taken_at,
                })
                .map_err(|error| error.to_string());
            Completion::Inventory(result)
        });
    }

    fn execute(&mut self, action: Action) {
        let (cloud, fleet) = (self.cloud.clone(), self.fleet.clone());
        match action {
            Action::Reconcile => {
                self.relist = self.reconciling;
                self.reconcile();
            }
            Action::Deploy { launch } => {
                let request = DeployRequest {
                    group: self.group.clone(),
                    displayname: self.core.launch_name(launch),
                };
                let timeout = self.core.policy().launch.deploy_timeout;
                let done = self.done_tx.clone();
                self.spawn(async move {
                    Completion::Deployed(
                        launch,
                        deploy(&*cloud, &request, timeout, launch, &done).await,
                    )
                });
            }
            Action::Bind { vm, addr } => self.spawn(async move {
                let result = match fleet.bind(&vm, addr).await {
                    Ok(()) | Err(FleetError::AlreadyBound) => Ok(()),
                    Err(error) => Err(error.to_string()),
                };
                Completion::Bound(vm, result)
            }),
            Action::Drain { vm, addr } => {
                let group = self.group.clone();
                let stopped = self.tasks.clone();
                tokio::spawn(stopped.run_until_cancelled_owned(async move {
                    if let Err(error) = fleet.drain(addr).await {
                        tracing::warn!(group, vm, %addr, %error, "cannot drain the member");
                    }
                }));
            }
            Action::Unbind { vm, addr } => self.spawn(async move {
                let result = match fleet.unbind(addr).await {
                    Ok(()) | Err(FleetError::NotBound) => Ok(()),
                    Err(error) => Err(error.to_string()),
                };
                Completion::Unbound(vm, result)
            }),
            Action::Destroy { vm } => self.spawn(async move {
                let result = cloud.destroy(&vm).await.map_err(|error| error.to_string());
                Completion::Destroyed(vm, result)
            }),
            Action::Investigate { vm } => {
                let group = self.group.clone();
                self.spawn(async move {
                    let state = investigate(&*cloud, &group, &vm).await;
                    Completion::Investigated(vm, state)
                });
            }
        }
    }

    /// Runs `task` until it reports or the driver stops (a step cut short is safe: the next
    /// start reconciles with what the cloud and the servicegroup have).
    fn spawn(&self, task: impl Future<Output = Completion> + Send + 'static) {
        let done = self.done_tx.clone();
        let stopped = self.tasks.clone();
        tokio::spawn(async move {
            tokio::select! {
                completion = task => { let _ = done.send(completion); }
                () = stopped.cancelled() => {}
            }
        });
    }

    /// The members' figures, one value per policy metric.
    fn samples(&mut self) -> Vec<MemberSample> {
        let now = Instant::now();
        let members = self.fleet.members();
        let metrics = &self.core.policy().metrics;
        let mut samples = Vec::with_capacity(members.len());
        let mut seen = HashMap::with_capacity(members.len());
        for member in &members {
            let rate = self
                .last_requests
                .get(&member.addr)
                .and_then(|(count, at)| {
                    let elapsed = now.duration_since(*at).as_secs_f64();
                    (elapsed > 0.0 && member.requests >= *count)
                        .then(|| (member.requests - count) as f64 / elapsed)
                });
            seen.insert(member.addr, (member.requests, now));
            let values = metrics
                .iter()
                .map(|rule| value(&rule.source, member, rate))
                .collect();
            samples.push(MemberSample {
                vm: member.vm.clone(),
                up: member.up,
                connections: member.connections,
                protected: member.protected,
                values,
            });
        }
        self.last_requests = seen;
        samples
    }
}

/// One member's value of one metric (`None`: unknown).
fn value(source: &MetricSource, member: &MemberView, rate: Option<f64>) -> Option<f64> {
    match source {
        MetricSource::Snmp(name) => member
            .snmp
            .iter()
            .find(|(metric, _)| metric == name)
            .map(|(_, value)| *value),
        MetricSource::Connections => Some(member.connections as f64),
        MetricSource::RequestRate => rate,
        MetricSource::ResponseTime => (member.requests > 0).then_some(member.response_time_ms),
    }
}

/// Deploy → the cloud's VM id (reported at once) → poll the job until Running with an
/// address, or fail. A deploy whose answer was lost is *uncertain*: the request reached the
/// cloud, which may have made the VM, so the core lists the group before deploying again. A
/// deploy not sent at all made nothing: an ordinary failure, retried after the back-off.
async fn deploy<C: Cloud>(
    cloud: &C,
    request: &DeployRequest,
    timeout: Duration,
    launch: LaunchId,
    done: &mpsc::UnboundedSender<Completion>,
) -> Result<(String, SocketAddr), DeployError> {
    let started = Instant::now();
    let deployment = match cloud.deploy(request).await {
        Ok(deployment) => deployment,
        Err(error @ cloudstack::CloudError::AnswerLost { .. }) => {
            return Err(DeployError::Uncertain {
                reason: format!("deploy: {error}"),
            });
        }
        Err(error @ cloudstack::CloudError::NotSent { .. }) => {
            return Err(DeployError::Failed {
                reason: format!("deploy: {error}"),
                vm: None,
            });
        }
        Err(error) => {
            return Err(DeployError::Failed {
                reason: format!("deploy refused: {error}"),
                vm: None,
            });
        }
    };
    let vm = deployment.vm.clone();
    let _ = done.send(Completion::Accepted(launch, vm.clone()));
    let failed = |reason: String| DeployError::Failed {
        reason,
        vm: Some(vm.clone()),
    };
    let mut pause = Duration::from_millis(250);
    loop {
        match cloud.job_status(&deployment.job).await {
            Ok(JobState::Pending) => {}
            Ok(JobState::Done(found)) => {
                return match found.addr {
                    Some(addr) => Ok((found.id, addr)),
                    None => Err(failed("Running without an address".into())),
                };
            }
            Ok(JobState::Failed(error)) => return Err(failed(format!("deploy failed: {error}"))),
            Err(error) if error.is_retryable_if_read_only() => {
                tracing::debug!(vm, %error, "polling the deploy job: retrying");
            }
            Err(error) => return Err(failed(format!("polling the deploy job: {error}"))),
        }
        if started.elapsed() >= timeout {
            return Err(failed(format!(
                "not Running within the deploy timeout {timeout:?}"
            )));
        }
        tokio::time::sleep(pause.min(timeout.saturating_sub(started.elapsed()))).await;
        pause = (pause * 3 / 2).min(Duration::from_secs(2));
    }
}

/// What the cloud says about one VM (`None`: it does not exist). Listing failures are
/// retried a few times; if the cloud stays silent the VM is treated as broken (it is DOWN
/// beyond its grace period either way).
async fn investigate<C: Cloud>(cloud: &C, group: &str, vm: &str) -> Option<CloudState> {
    for attempt in 0..5u32 {
        match cloud.list_group(group).await {
            Ok(vms) => return vms.into_iter().find(|v| v.id == vm).map(|v| v.state),
            Err(error) => {
                tracing::warn!(group, vm, %error, attempt, "investigating a DOWN member: retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
    Some(CloudState::Broken)
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
