//! The driver against an in-memory cloud and servicegroup ([`fakes`]), in virtual time: tokio's
//! paused clock jumps ahead whenever every task waits, so boot delays, watch times, cooldowns,
//! drains, back-offs and timeouts take no real time. Each test asserts what an operator would
//! notice: the events in the history, the calls made to the cloud and the proxy, the VMs left.

mod fakes;

use std::sync::Arc;
use std::time::Duration;

use autoscaler::{
    Controls, Driver, EventKind, EventRecord, GroupPhase, History, LaunchLimits, MetricRule,
    MetricSource, Policy,
};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use fakes::{Call, CallLog, FakeCloud, FakeFleet, VmState};

const GROUP: &str = "web";

/// 1 s interval, 3 s watch, 5 s cooldown, 3 s quiet, 2 s warm-up, 5 s health grace; failed
/// launches back off 2 s, 4 s, 8 s and suspend after 3; a deploy has 20 s to be Running.
/// One metric, `cpu` from SNMP: scale out above 70, in below 20.
fn policy(min: u32, max: u32) -> Policy {
    let cpu = MetricRule {
        name: "cpu".into(),
        source: MetricSource::Snmp("cpu".into()),
        upper: Some(70.0),
        lower: Some(20.0),
    };
    let mut policy = Policy::new(min, max, vec![cpu]);
    policy.interval = secs(1);
    policy.watch_time = secs(3);
    policy.cooldown = secs(5);
    policy.quiet_time = secs(3);
    policy.warmup = secs(2);
    policy.health_grace_period = secs(5);
    policy.launch = LaunchLimits {
        retry_backoff: secs(2),
        max_retry_backoff: secs(8),
        suspend_after: 3,
        suspension: secs(3600),
        deploy_timeout: secs(20),
    };
    policy
}

/// A driver of group `web` running against fakes, with the operator's controls in hand.
struct Harness {
    log: Arc<CallLog>,
    cloud: Arc<FakeCloud>,
    fleet: Arc<FakeFleet>,
    history: Arc<History>,
    policy: watch::Sender<Policy>,
    resume: Arc<Notify>,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
    /// When the driver was made: its clock (event times) starts here.
    started: tokio::time::Instant,
}

/// A fresh cloud and servicegroup whose members report `cpu` 50 (between the thresholds).
fn world() -> (Arc<CallLog>, Arc<FakeCloud>, Arc<FakeFleet>) {
    let log = CallLog::new();
    let cloud = FakeCloud::new(log.clone());
    let fleet = FakeFleet::new(log.clone(), cloud.clone());
    fleet.set_default_metric("cpu", 50.0);
    (log, cloud, fleet)
}

impl Harness {
    fn start(policy: Policy) -> Harness {
        let (log, cloud, fleet) = world();
        Harness::start_on(log, cloud, fleet, policy)
    }

    fn start_on(
        log: Arc<CallLog>,
        cloud: Arc<FakeCloud>,
        fleet: Arc<FakeFleet>,
        policy: Policy,
    ) -> Harness {
        let history = Arc::new(History::new());
        let (policy_tx, policy_rx) = watch::channel(policy);
        let resume = Arc::new(Notify::new());
        let controls = Controls {
            policy: policy_rx,
            resume: resume.clone(),
        };
        let started = tokio::time::Instant::now();
        let driver = Driver::new(
            GROUP,
            cloud.clone(),
            fleet.clone(),
            history.clone(),
            controls,
        );
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(driver.run(shutdown.clone()));
        Harness {
            log,
            cloud,
            fleet,
            history,
            policy: policy_tx,
            resume,
            shutdown,
            task,
            started,
        }
    }

    /// Now on the engine's clock (what event times are measured on).
    fn clock(&self) -> Duration {
        tokio::time::Instant::now() - self.started
    }

    /// Stops the driver and waits for it to return.
    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("the driver does not panic");
    }

    /// Lets virtual time pass.
    async fn run_for(&self, time: Duration) {
        tokio::time::sleep(time).await;
    }

    /// Lets virtual time pass until `done` holds; fails the test after `limit`.
    async fn until(&self, what: &str, limit: Duration, done: impl Fn(&Harness) -> bool) {
        let give_up = tokio::time::Instant::now() + limit;
        while !done(self) {
            assert!(
                tokio::time::Instant::now() < give_up,
                "not {what} within {limit:?}\nevents: {:#?}\ncalls: {:#?}",
                self.kinds(),
                self.log.actions()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn events(&self) -> Vec<EventRecord> {
        self.history.events(|_| true)
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.events()
            .iter()
            .map(|r| r.event.kind.as_str())
            .collect()
    }

    /// Event kinds from the first event of `kind` on (empty if there is none).
    fn kinds_from(&self, kind: EventKind) -> Vec<&'static str> {
        let kinds = self.kinds();
        match kinds.iter().position(|k| *k == kind.as_str()) {
            Some(at) => kinds[at..].to_vec(),
            None => Vec::new(),
        }
    }

    fn count(&self, kind: EventKind) -> usize {
        self.events()
            .iter()
            .filter(|r| r.event.kind == kind)
            .count()
    }

    /// The `n`th (from 0) event of `kind`.
    fn nth(&self, kind: EventKind, n: usize) -> EventRecord {
        self.events()
            .into_iter()
            .filter(|r| r.event.kind == kind)
            .nth(n)
            .unwrap_or_else(|| panic!("no {kind} #{n} in {:#?}", self.kinds()))
    }

    /// Members in service, as `stat/autoscalegroup` shows them.
    fn serving(&self) -> u32 {
        self.history.group(GROUP).map_or(0, |g| g.status.current)
    }

    fn phase(&self) -> Option<GroupPhase> {
        self.history.group(GROUP).map(|g| g.status.phase)
    }

    fn deploys(&self) -> usize {
        self.log
            .actions()
            .iter()
            .filter(|c| matches!(c, Call::Deploy { .. }))
            .count()
    }

    /// The VMs the cloud has (not expunged), with their states.
    fn vms(&self) -> Vec<(String, VmState)> {
        self.cloud.vms()
    }

    fn running(&self) -> Vec<String> {
        self.vms()
            .into_iter()
            .filter(|(_, state)| *state == VmState::Running)
            .map(|(vm, _)| vm)
            .collect()
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Every destroyed VM that had been bound was unbound first (after its last bind); a VM that
/// was removed by a scale-in (drained) was drained before it was unbound.
fn assert_no_destroy_of_a_bound_member(calls: &[Call]) {
    for (at, call) in calls.iter().enumerate() {
        let Call::Destroy { vm } = call else {
            continue;
        };
        let before = &calls[..at];
        let Some(bound) = before
            .iter()
            .rposition(|c| matches!(c, Call::Bind { vm: b, .. } if b == vm))
        else {
            continue;
        };
        let Call::Bind { addr, .. } = &before[bound] else {
            unreachable!()
        };
        let unbound = before[bound..]
            .iter()
            .position(|c| *c == Call::Unbind { addr: *addr });
        assert!(
            unbound.is_some(),
            "{vm} destroyed while bound at {addr}: {calls:#?}"
        );
    }
}

/// The calls about one VM and its member address, in order.
fn calls_about(calls: &[Call], vm: &str) -> Vec<Call> {
    let addr = calls.iter().find_map(|c| match c {
        Call::Bind { vm: b, addr } if b == vm => Some(*addr),
        _ => None,
    });
    calls
        .iter()
        .filter(|c| match c {
            Call::Deploy { vm: Some(d), .. } => d == vm,
            Call::Destroy { vm: d } | Call::Bind { vm: d, .. } => d == vm,
            Call::Drain { addr: a } | Call::Unbind { addr: a } => Some(*a) == addr,
            _ => false,
        })
        .cloned()
        .collect()
}

fn deploy_of(vm: &str) -> Call {
    Call::Deploy {
        group: GROUP.into(),
        vm: Some(vm.into()),
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_group_with_minmembers_1_fills_to_1_at_start() {
    let h = Harness::start(policy(1, 3));
    // The first health check passes 2 s after the bind.
    h.fleet.set_health_delay(secs(2));
    h.until("a member UP and a cooldown", secs(30), |h| {
        h.count(EventKind::CooldownStarted) == 1
    })
    .await;

    assert_eq!(
        h.kinds(),
        [
            "reconciled",
            "scale_out_started",
            "vm_deployed",
            "member_bound",
            "member_up",
            "cooldown_started"
        ]
    );
    // The group is listed before anything is deployed.
    assert_eq!(
        h.log.timed().first().map(|(_, c)| c.clone()),
        Some(Call::List {
            group: GROUP.into()
        })
    );
    let addr = h.fleet.addr_of("vm-0001").expect("bound");
    assert_eq!(addr.to_string(), "127.77.0.1:8000");
    assert_eq!(
        h.log.actions(),
        [
            deploy_of("vm-0001"),
            Call::Bind {
                vm: "vm-0001".into(),
                addr
            }
        ]
    );
    assert_eq!(h.serving(), 1);
    assert_eq!(h.phase(), Some(GroupPhase::Cooldown));
    let up_after =
        h.nth(EventKind::MemberUp, 0).event.at - h.nth(EventKind::MemberBound, 0).event.at;
    assert!(
        up_after >= secs(2) && up_after <= secs(3),
        "UP {up_after:?} after the bind"
    );
    let started = h.nth(EventKind::ScaleOutStarted, 0).event;
    assert!(
        started.reason.contains("0 members, below minmembers 1"),
        "{}",
        started.reason
    );

    // Nothing more happens: the cooldown ends exactly 5 s after it started; no second VM.
    h.run_for(secs(30)).await;
    let cooldown = h.nth(EventKind::CooldownStarted, 0).event.at;
    assert_eq!(
        h.nth(EventKind::CooldownEnded, 0).event.at,
        cooldown + secs(5)
    );
    assert_eq!(h.deploys(), 1);
    assert_eq!(h.running(), ["vm-0001"]);
    assert_eq!(h.phase(), Some(GroupPhase::Idle));
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn load_over_upper_scales_out_and_load_under_lower_drains_then_destroys() {
    let h = Harness::start(policy(1, 3));
    h.until("the first cooldown over", secs(30), |h| {
        h.count(EventKind::CooldownEnded) == 1
    })
    .await;

    // CPU 90 on the only member: scale out once every sample of the watch time is over 70.
    h.fleet.set_metric("vm-0001", "cpu", 90.0);
    h.fleet.set_default_metric("cpu", 40.0);
    let breach = h.history.events(|_| true).len();
    h.until("a second member UP", secs(30), |h| h.serving() == 2)
        .await;
    let started = h.nth(EventKind::ScaleOutStarted, 1).event;
    assert_eq!(started.values, [("cpu".to_string(), 90.0)]);
    assert!(
        started
            .reason
            .starts_with("cpu average 90.00 above 70 for 3s"),
        "{}",
        started.reason
    );
    assert_eq!(
        h.kinds()[breach..],
        [
            "scale_out_started",
            "vm_deployed",
            "member_bound",
            "member_up",
            "cooldown_started"
        ]
    );
    assert_eq!(h.deploys(), 2);
    let addr2 = h.fleet.addr_of("vm-0002").expect("bound");

    // The group average (90 + 40) / 2 = 65 is in band: nothing more until load drops.
    h.run_for(secs(10)).await;
    assert_eq!(h.deploys(), 2);
    assert_eq!(h.kinds().last(), Some(&"cooldown_ended"));

    // CPU 10 everywhere: after the watch time the newest member drains. It has 2 requests in
    // flight for about a second, then none: the drain ends at the next sample, before the
    // quiet time (3 s), and a drain that emptied does not start a cooldown.
    h.fleet.set_connections("vm-0002", 2);
    h.fleet.set_metric_everywhere("cpu", 10.0);
    h.until("a scale-in", secs(10), |h| {
        h.count(EventKind::ScaleInStarted) == 1
    })
    .await;
    let scale_in = h.nth(EventKind::ScaleInStarted, 0).event;
    assert_eq!(scale_in.vm.as_deref(), Some("vm-0002"));
    assert_eq!(scale_in.values, [("cpu".to_string(), 10.0)]);
    h.until("the victim draining", secs(1), |h| {
        h.fleet.is_draining(addr2)
    })
    .await;
    h.run_for(secs(1)).await;
    assert_eq!(h.count(EventKind::DrainFinished), 0, "{:#?}", h.kinds());
    h.fleet.set_connections("vm-0002", 0);
    h.until("vm-0002 destroyed", secs(10), |h| {
        h.count(EventKind::VmDestroyed) == 1
    })
    .await;

    assert_eq!(
        h.kinds_from(EventKind::ScaleInStarted),
        [
            "scale_in_started",
            "drain_finished",
            "member_unbound",
            "vm_destroyed"
        ]
    );
    let drained = h.nth(EventKind::DrainFinished, 0).event;
    assert_eq!(drained.reason, "no connections left");
    assert_eq!(drained.at - scale_in.at, secs(2));
    let calls = h.log.actions();
    assert_eq!(
        calls_about(&calls, "vm-0002"),
        [
            deploy_of("vm-0002"),
            Call::Bind {
                vm: "vm-0002".into(),
                addr: addr2
            },
            Call::Drain { addr: addr2 },
            Call::Unbind { addr: addr2 },
            Call::Destroy {
                vm: "vm-0002".into()
            },
        ]
    );
    assert_no_destroy_of_a_bound_member(&calls);

    // Back to one member (minmembers): no further scale-in, no cooldown after a full drain.
    h.run_for(secs(20)).await;
    assert_eq!(h.serving(), 1);
    assert_eq!(h.running(), ["vm-0001"]);
    assert_eq!(h.fleet.bound().len(), 1);
    assert_eq!(h.count(EventKind::ScaleInStarted), 1);
    assert_eq!(h.count(EventKind::CooldownStarted), 2);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_drain_cut_short_by_the_quiet_time_destroys_and_cools_down() {
    let h = Harness::start(policy(1, 3));
    h.until("one member", secs(30), |h| h.serving() == 1).await;
    h.policy.send_modify(|p| p.min_members = 2);
    h.until("two members and no cooldown", secs(30), |h| {
        h.serving() == 2 && h.phase() == Some(GroupPhase::Idle)
    })
    .await;
    h.policy.send_modify(|p| p.min_members = 1);

    // The victim keeps 5 requests in flight: the quiet time (3 s) ends the drain.
    h.fleet.set_connections("vm-0002", 5);
    h.fleet.set_metric_everywhere("cpu", 10.0);
    h.until("vm-0002 destroyed", secs(30), |h| {
        h.count(EventKind::VmDestroyed) == 1
    })
    .await;
    let scale_in = h.nth(EventKind::ScaleInStarted, 0).event;
    let drained = h.nth(EventKind::DrainFinished, 0).event;
    assert_eq!(drained.at - scale_in.at, secs(3));
    assert_eq!(drained.reason, "quiet time passed with 5 connections open");
    h.until("a cooldown", secs(2), |h| {
        h.kinds().last() == Some(&"cooldown_started")
    })
    .await;
    assert_eq!(
        h.kinds_from(EventKind::ScaleInStarted),
        [
            "scale_in_started",
            "drain_finished",
            "member_unbound",
            "vm_destroyed",
            "cooldown_started"
        ]
    );
    let addr2 = "127.77.0.2:8000".parse().expect("an address");
    assert_eq!(
        calls_about(&h.log.actions(), "vm-0002")[2..],
        [
            Call::Drain { addr: addr2 },
            Call::Unbind { addr: addr2 },
            Call::Destroy {
                vm: "vm-0002".into()
            },
        ]
    );
    h.stop().await;
}

/// Three deploys fail in a row; returns the harness with launching suspended.
async fn three_failed_launches(leave_vm: bool) -> Harness {
    let (log, cloud, fleet) = world();
    cloud.fail_next_deploys(3, leave_vm);
    let h = Harness::start_on(log, cloud, fleet, policy(1, 3));
    h.until("launching suspended", secs(60), |h| {
        h.count(EventKind::LaunchSuspended) == 1
    })
    .await;
    h
}

#[tokio::test(start_paused = true)]
async fn failed_deploys_are_cleaned_up_backed_off_and_suspend_launching() {
    let h = three_failed_launches(true).await;
    // Each failed deploy left a VM in Error: it is destroyed (expunged).
    h.until("the third failed VM destroyed", secs(5), |h| {
        h.count(EventKind::VmDestroyed) == 3
    })
    .await;
    assert_eq!(
        h.log.actions(),
        [
            deploy_of("vm-0001"),
            Call::Destroy {
                vm: "vm-0001".into()
            },
            deploy_of("vm-0002"),
            Call::Destroy {
                vm: "vm-0002".into()
            },
            deploy_of("vm-0003"),
            Call::Destroy {
                vm: "vm-0003".into()
            },
        ]
    );
    assert_eq!(h.vms(), []);
    let failed: Vec<_> = (0..3)
        .map(|n| h.nth(EventKind::DeployFailed, n).event)
        .collect();
    assert!(
        failed[0].reason.contains("1 in a row; next launch in 2s"),
        "{}",
        failed[0].reason
    );
    assert!(failed[1].reason.contains("2 in a row; next launch in 4s"));
    assert!(failed[2].reason.contains("3 in a row; launching suspended"));
    assert_eq!(failed[0].vm.as_deref(), Some("vm-0001"));
    // Each retry waits for its back-off after the failure (and at most one more interval).
    let deploys = deploy_times(&h);
    for (n, backoff) in [(1, secs(2)), (2, secs(4))] {
        let waited = deploys[n] - failed[n - 1].at;
        assert!(
            waited >= backoff && waited <= backoff + secs(1),
            "retry {n} after {waited:?}"
        );
    }
    assert_eq!(h.phase(), Some(GroupPhase::Suspended));
    assert_eq!(
        h.history
            .group(GROUP)
            .map(|g| g.status.consecutive_failures),
        Some(3)
    );

    // No launch loop: nothing is deployed while suspended, however long.
    h.run_for(secs(600)).await;
    assert_eq!(h.deploys(), 3);
    assert_eq!(h.count(EventKind::LaunchSuspended), 1);

    // An operator resumes: the next launch goes at once, and this one works.
    h.resume.notify_one();
    h.until("a member UP", secs(30), |h| h.serving() == 1).await;
    assert_eq!(
        h.kinds_from(EventKind::LaunchResumed),
        [
            "launch_resumed",
            "scale_out_started",
            "vm_deployed",
            "member_bound",
            "member_up",
            "cooldown_started"
        ]
    );
    let resumed = h.nth(EventKind::LaunchResumed, 0).event.at;
    assert!(deploy_times(&h)[3] - resumed <= secs(1));
    assert_eq!(h.deploys(), 4);
    assert_eq!(h.vms(), [("vm-0004".to_string(), VmState::Running)]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_suspension_is_lifted_by_disabling_then_enabling_the_group() {
    // This cloud removes a failed deploy's VM itself.
    let h = three_failed_launches(false).await;
    h.run_for(secs(60)).await;
    assert_eq!(h.deploys(), 3);
    assert_eq!(h.vms(), []);

    h.policy.send_modify(|p| p.enabled = false);
    h.run_for(secs(5)).await;
    assert_eq!(h.phase(), Some(GroupPhase::Disabled));
    assert_eq!(h.deploys(), 3);
    h.policy.send_modify(|p| p.enabled = true);
    h.until("a member UP", secs(30), |h| h.serving() == 1).await;
    assert_eq!(
        h.kinds_from(EventKind::LaunchResumed),
        [
            "launch_resumed",
            "scale_out_started",
            "vm_deployed",
            "member_bound",
            "member_up",
            "cooldown_started"
        ]
    );
    assert_eq!(h.deploys(), 4);
    assert_eq!(h.vms(), [("vm-0004".to_string(), VmState::Running)]);
    h.stop().await;
}

/// When each deploy call was made.
fn deploy_times(h: &Harness) -> Vec<Duration> {
    h.log
        .timed()
        .into_iter()
        .filter(|(_, c)| matches!(c, Call::Deploy { .. }))
        .map(|(at, _)| at)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_deploy_whose_answer_was_lost_is_adopted_not_repeated() {
    let (log, cloud, fleet) = world();
    cloud.lose_next_deploy_answers(1);
    let h = Harness::start_on(log, cloud, fleet, policy(1, 3));
    h.until("a member UP", secs(60), |h| h.serving() == 1).await;
    h.run_for(secs(30)).await;

    // One deploy call, one VM: the one the lost deploy created, adopted and bound.
    assert_eq!(h.deploys(), 1);
    assert_eq!(h.vms(), [("vm-0001".to_string(), VmState::Running)]);
    let addr = h.fleet.addr_of("vm-0001").expect("bound");
    assert_eq!(
        h.log.actions(),
        [
            deploy_of("vm-0001"),
            Call::Bind {
                vm: "vm-0001".into(),
                addr
            }
        ]
    );
    // The group was listed after the failed deploy call.
    let calls = h.log.timed();
    let deploy = calls
        .iter()
        .position(|(_, c)| matches!(c, Call::Deploy { .. }))
        .expect("a deploy");
    assert!(
        calls[deploy..]
            .iter()
            .any(|(_, c)| matches!(c, Call::List { .. }))
    );
    let failed = h.nth(EventKind::ActionFailed, 0).event;
    assert!(
        failed
            .reason
            .contains("listing the group to see whether the VM exists"),
        "{}",
        failed.reason
    );
    // The VM is the launch's own (by its display name): it completes the scale-out, with
    // its cooldown, and no launch failed.
    assert_eq!(
        h.kinds(),
        [
            "reconciled",
            "scale_out_started",
            "action_failed",
            "reconciled",
            "vm_deployed",
            "member_bound",
            "member_up",
            "cooldown_started",
            "cooldown_ended"
        ]
    );
    assert_eq!(
        h.nth(EventKind::Reconciled, 1).event.reason,
        "vm-0001 is the VM of the deploy whose answer was lost"
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_deploy_not_sent_is_a_failed_launch_retried_after_its_back_off() {
    let (log, cloud, fleet) = world();
    cloud.refuse_next_deploys(1);
    let h = Harness::start_on(log, cloud, fleet, policy(1, 3));
    h.until("a member UP", secs(60), |h| h.serving() == 1).await;

    // The refused deploy made nothing, so nothing waits for a listing: the launch failed
    // and the next one went after the back-off.
    let failed = h.nth(EventKind::DeployFailed, 0).event;
    assert!(
        failed.reason.starts_with(
            "deploy: deployVirtualMachine: not sent to http://fake-cloud/client/api: \
             cannot connect: "
        ),
        "{}",
        failed.reason
    );
    assert!(
        failed
            .reason
            .ends_with("(1 in a row; next launch in 2s at the earliest)"),
        "{}",
        failed.reason
    );
    assert_eq!(failed.vm, None);
    assert_eq!(
        h.count(EventKind::ActionFailed),
        0,
        "not an uncertain deploy"
    );
    let deploys = deploy_times(&h);
    assert_eq!(deploys.len(), 2);
    let waited = deploys[1] - failed.at;
    assert!(
        waited >= secs(2) && waited <= secs(3),
        "retried after {waited:?}"
    );
    assert_eq!(h.vms(), [("vm-0001".to_string(), VmState::Running)]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_lost_deploy_answer_is_not_settled_by_a_listing_sent_before_it() {
    // Listings take 1.5 s to come back, and retries are quick: a listing sent in the same
    // interval as the deploy (before the VM existed) answers after the deploy failed.
    let (log, cloud, fleet) = world();
    cloud.lose_next_deploy_answers(1);
    cloud.set_list_delay(Duration::from_millis(1500));
    let mut quick = policy(1, 3);
    quick.launch.retry_backoff = Duration::from_millis(500);
    let h = Harness::start_on(log, cloud, fleet, quick);
    h.until("a member UP", secs(60), |h| h.serving() == 1).await;
    h.run_for(secs(30)).await;

    assert_eq!(h.deploys(), 1, "{:#?}", h.kinds());
    assert_eq!(h.vms(), [("vm-0001".to_string(), VmState::Running)]);
    // The listing that settled it was sent after the failure, and found the VM.
    let failed = h.nth(EventKind::ActionFailed, 0).event.at;
    let found = h.nth(EventKind::Reconciled, 1).event;
    assert!(found.at > failed);
    assert_eq!(
        found.reason,
        "vm-0001 is the VM of the deploy whose answer was lost"
    );
    assert_eq!(h.count(EventKind::DeployFailed), 0);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_deploy_answer_slower_than_a_listing_still_completes_its_scale_out() {
    // The deploy's answer takes 1.5 s; the listing of the next interval already shows its VM.
    let (log, cloud, fleet) = world();
    cloud.set_deploy_delay(Duration::from_millis(1500));
    let h = Harness::start_on(log, cloud, fleet, policy(1, 3));
    h.until("a member UP", secs(60), |h| h.serving() == 1).await;
    h.run_for(secs(10)).await;
    assert_eq!(
        h.kinds(),
        [
            "reconciled",
            "scale_out_started",
            "vm_deployed",
            "member_bound",
            "member_up",
            "cooldown_started",
            "cooldown_ended"
        ]
    );
    // The listing recognised the launch's VM by its display name: nothing was adopted.
    assert_eq!(h.count(EventKind::Reconciled), 1);

    // The next scale-out is a scale-out of its own, with its own cooldown.
    h.fleet.set_metric("vm-0001", "cpu", 90.0);
    h.until("two members", secs(60), |h| h.serving() == 2).await;
    h.until("a second cooldown", secs(5), |h| {
        h.count(EventKind::CooldownStarted) == 2
    })
    .await;
    assert_eq!(h.deploys(), 2);
    h.stop().await;
}

/// Runs a first engine until two members serve, and stops it. Returns the cloud (two Running
/// VMs) and the VMs' member addresses.
async fn a_first_run_with_two_members() -> (
    Arc<CallLog>,
    Arc<FakeCloud>,
    Vec<(String, std::net::SocketAddr)>,
) {
    let first = Harness::start(policy(2, 4));
    first
        .until("two members UP", secs(60), |h| h.serving() == 2)
        .await;
    first.run_for(secs(2)).await;
    let bound = first.fleet.bound();
    assert_eq!(bound.len(), 2);
    assert_eq!(first.deploys(), 2);
    let (log, cloud) = (first.log.clone(), first.cloud.clone());
    first.stop().await;
    (log, cloud, bound)
}

#[tokio::test(start_paused = true)]
async fn a_restart_adopts_the_running_vms_into_a_fleet_that_lost_them() {
    let (log, cloud, bound) = a_first_run_with_two_members().await;
    // The proxy restarted too: its servicegroup has no autoscaled members.
    let fleet = FakeFleet::new(log.clone(), cloud.clone());
    fleet.set_default_metric("cpu", 50.0);
    let before = log.actions().len();
    let h = Harness::start_on(log, cloud, fleet, policy(2, 4));
    h.until("two members UP", secs(30), |h| h.serving() == 2)
        .await;
    h.run_for(secs(30)).await;

    let calls = h.log.actions()[before..].to_vec();
    let binds: Vec<Call> = bound
        .iter()
        .map(|(vm, addr)| Call::Bind {
            vm: vm.clone(),
            addr: *addr,
        })
        .collect();
    assert_eq!(calls, binds);
    assert_eq!(h.fleet.bound(), bound);
    assert_eq!(h.running(), ["vm-0001", "vm-0002"]);
    assert_eq!(
        h.kinds(),
        [
            "reconciled",
            "member_bound",
            "member_bound",
            "member_up",
            "member_up"
        ]
    );
    assert_eq!(
        h.nth(EventKind::Reconciled, 0).event.reason,
        "adopted vm-0001 at 127.77.0.1; adopted vm-0002 at 127.77.0.2"
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_restart_with_the_members_still_bound_changes_nothing() {
    let (log, cloud, bound) = a_first_run_with_two_members().await;
    let fleet = FakeFleet::new(log.clone(), cloud.clone());
    fleet.set_default_metric("cpu", 50.0);
    for (vm, addr) in &bound {
        fleet.keep(vm, *addr);
    }
    let before = log.actions().len();
    let h = Harness::start_on(log, cloud, fleet, policy(2, 4));
    h.until("two members UP", secs(30), |h| h.serving() == 2)
        .await;
    h.run_for(secs(30)).await;

    assert_eq!(h.log.actions()[before..], []);
    assert_eq!(h.fleet.bound(), bound);
    assert_eq!(h.running(), ["vm-0001", "vm-0002"]);
    assert_eq!(h.kinds(), ["reconciled", "member_up", "member_up"]);
    assert_eq!(
        h.nth(EventKind::Reconciled, 0).event.reason,
        "adopted vm-0001 (already bound as 127.77.0.1:8000); \
         adopted vm-0002 (already bound as 127.77.0.2:8000)"
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_restart_during_a_deploy_waits_for_that_vm_instead_of_deploying_again() {
    let first = Harness::start(policy(1, 4));
    first
        .until("one member UP", secs(30), |h| h.serving() == 1)
        .await;
    // The second VM takes 12 s to boot; the engine stops 5 s into it.
    first.cloud.set_boot_delay(secs(12));
    first.policy.send_modify(|p| p.min_members = 2);
    first
        .until("a second deploy", secs(5), |h| h.deploys() == 2)
        .await;
    first.run_for(secs(5)).await;
    let (log, cloud, fleet) = (first.log.clone(), first.cloud.clone(), first.fleet.clone());
    first.stop().await;
    assert_eq!(cloud.state("vm-0002"), Some(VmState::Starting));

    let before = log.actions().len();
    let h = Harness::start_on(log, cloud, fleet, policy(2, 4));
    h.until("two members UP", secs(60), |h| h.serving() == 2)
        .await;
    h.run_for(secs(10)).await;

    let addr2 = h.fleet.addr_of("vm-0002").expect("bound");
    assert_eq!(
        h.log.actions()[before..],
        [Call::Bind {
            vm: "vm-0002".into(),
            addr: addr2
        }]
    );
    assert_eq!(h.running(), ["vm-0001", "vm-0002"]);
    assert_eq!(
        h.kinds(),
        [
            "reconciled",
            "member_up",
            "reconciled",
            "member_bound",
            "member_up"
        ]
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_crashed_member_is_investigated_fenced_and_replaced() {
    let h = Harness::start(policy(2, 3));
    h.until("two members, cooldown over", secs(60), |h| {
        h.serving() == 2 && h.phase() == Some(GroupPhase::Idle)
    })
    .await;
    let crashed_at = h.clock();
    let addr1 = h.fleet.addr_of("vm-0001").expect("bound");
    h.cloud.crash("vm-0001");
    let before = h.history.events(|_| true).len();

    h.until("a replacement UP", secs(60), |h| {
        h.serving() == 2 && h.count(EventKind::MemberReplaced) == 1
    })
    .await;
    let replaced = h.nth(EventKind::MemberReplaced, 0).event;
    assert_eq!(replaced.vm.as_deref(), Some("vm-0001"));
    assert!(
        replaced.reason.contains("the VM is Stopped or in Error"),
        "{}",
        replaced.reason
    );
    // DOWN from the first sample after the crash (within an interval), replaced once the
    // grace period (5 s) has passed.
    let waited = replaced.at - crashed_at;
    assert!(
        waited >= secs(5) && waited <= secs(6),
        "replaced after {waited:?}"
    );
    assert_eq!(
        h.kinds()[before..],
        [
            "member_replaced",
            "member_unbound",
            "vm_destroyed",
            "scale_out_started",
            "vm_deployed",
            "member_bound",
            "member_up"
        ]
    );
    let calls = h.log.actions();
    assert_eq!(
        calls_about(&calls, "vm-0001"),
        [
            deploy_of("vm-0001"),
            Call::Bind {
                vm: "vm-0001".into(),
                addr: addr1
            },
            Call::Unbind { addr: addr1 },
            Call::Destroy {
                vm: "vm-0001".into()
            },
        ]
    );
    assert_no_destroy_of_a_bound_member(&calls);
    assert_eq!(h.deploys(), 3);
    h.run_for(secs(30)).await;
    assert_eq!(h.running(), ["vm-0002", "vm-0003"]);
    assert_eq!(h.vms().len(), 2);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_deploy_that_never_runs_is_destroyed_at_the_deploy_timeout_and_counted_failed() {
    let (log, cloud, fleet) = world();
    cloud.hang_next_deploys(1);
    let h = Harness::start_on(log, cloud, fleet, policy(1, 3));
    h.until("a member UP", secs(60), |h| h.serving() == 1).await;

    let failed = h.nth(EventKind::DeployFailed, 0).event;
    assert_eq!(failed.vm.as_deref(), Some("vm-0001"));
    assert!(
        failed
            .reason
            .starts_with("not Running within the deploy timeout 20s (1 in a row"),
        "{}",
        failed.reason
    );
    // Destroyed 20 s after its deploy call (the job polls are at most 2 s apart).
    let calls = h.log.timed();
    let at = |wanted: &Call| {
        calls
            .iter()
            .find(|(_, c)| c == wanted)
            .map(|(at, _)| *at)
            .expect("called")
    };
    let waited = at(&Call::Destroy {
        vm: "vm-0001".into(),
    }) - at(&deploy_of("vm-0001"));
    assert!(
        waited >= secs(20) && waited <= secs(22),
        "destroyed after {waited:?}"
    );
    assert_eq!(
        h.log.actions()[..3],
        [
            deploy_of("vm-0001"),
            Call::Destroy {
                vm: "vm-0001".into()
            },
            deploy_of("vm-0002"),
        ]
    );
    assert_eq!(
        h.kinds(),
        [
            "reconciled",
            "scale_out_started",
            "deploy_failed",
            "vm_destroyed",
            // No member, so no load figure, while the launch backs off.
            "load_unknown",
            "scale_out_started",
            "vm_deployed",
            "member_bound",
            "member_up",
            "cooldown_started"
        ]
    );
    assert_eq!(h.vms(), [("vm-0002".to_string(), VmState::Running)]);
    // A launch that works clears the failure count.
    assert_eq!(
        h.history
            .group(GROUP)
            .map(|g| g.status.consecutive_failures),
        Some(0)
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn observe_mode_records_decisions_and_only_lists_the_cloud() {
    let (log, cloud, fleet) = world();
    // Two members serve (an earlier run's, still bound); a third VM is Stopped.
    for _ in 0..2 {
        let (vm, addr) = cloud.add_vm(GROUP, VmState::Running);
        fleet.keep(&vm, addr);
    }
    cloud.add_vm(GROUP, VmState::Stopped);
    let mut observe = policy(3, 4);
    observe.observe = true;
    let h = Harness::start_on(log, cloud, fleet, observe);
    h.run_for(secs(10)).await;

    // The Stopped VM, which reconcile would destroy, is reported and left alone.
    assert_eq!(
        h.nth(EventKind::Reconciled, 0).event.reason,
        "adopted vm-0001 (already bound as 127.77.0.1:8000); \
         adopted vm-0002 (already bound as 127.77.0.2:8000); \
         observe mode, not acted on: would destroy vm-0003: Stopped or in Error and not a member"
    );
    assert_eq!(h.count(EventKind::Reconciled), 1);

    // Below minmembers: the scale-out is recorded once, as observed, and not acted on.
    let filled = h.nth(EventKind::ScaleOutStarted, 0).event;
    assert!(filled.observed);
    assert!(
        filled.reason.contains("2 members, below minmembers 3"),
        "{}",
        filled.reason
    );
    assert_eq!(h.count(EventKind::ScaleOutStarted), 1);

    // In bounds with CPU 90: each breach of the watch time is recorded, not acted on.
    h.policy.send_modify(|p| p.min_members = 1);
    h.fleet.set_metric_everywhere("cpu", 90.0);
    h.run_for(secs(10)).await;
    // Then CPU 5: a scale-in, recorded, not acted on.
    h.fleet.set_metric_everywhere("cpu", 5.0);
    h.run_for(secs(10)).await;
    // A member crashes: its replacement is recorded, not acted on.
    let (crashed, _) = h.fleet.bound()[0].clone();
    h.cloud.crash(&crashed);
    h.run_for(secs(20)).await;

    let decisions: Vec<_> = h
        .events()
        .into_iter()
        .map(|r| r.event)
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::ScaleOutStarted | EventKind::ScaleInStarted | EventKind::MemberReplaced
            )
        })
        .collect();
    assert!(decisions.iter().all(|e| e.observed), "{decisions:#?}");
    for kind in [EventKind::ScaleInStarted, EventKind::MemberReplaced] {
        assert!(h.count(kind) >= 1, "no observed {kind}: {:#?}", h.kinds());
    }
    assert!(h.count(EventKind::ScaleOutStarted) >= 2);
    for record in h.events() {
        let event = &record.event;
        assert!(
            event.observed
                || matches!(
                    event.kind,
                    EventKind::Reconciled | EventKind::MemberUp | EventKind::LoadUnknown
                ),
            "acted on in observe mode: {event:?}"
        );
    }
    // Not one call but listings: no deploy, no destroy (not even of the Stopped VM), no
    // bind, drain or unbind.
    assert_eq!(h.log.actions(), []);
    assert_eq!(h.vms().len(), 3);
    assert_eq!(h.fleet.bound().len(), 2);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn lowering_maxmembers_drains_and_destroys_the_extra_members() {
    let h = Harness::start(policy(3, 3));
    h.until("three members, cooldown over", secs(60), |h| {
        h.serving() == 3 && h.phase() == Some(GroupPhase::Idle)
    })
    .await;
    let addrs: Vec<_> = h.fleet.bound();
    let before = h.log.actions().len();
    let events_before = h.events().len();

    h.policy.send_modify(|p| {
        p.min_members = 1;
        p.max_members = 1;
    });
    h.until("one member left", secs(30), |h| {
        h.count(EventKind::VmDestroyed) == 2
    })
    .await;
    h.run_for(secs(20)).await;

    // The newest two go, each drained, unbound, then destroyed.
    let calls = h.log.actions();
    for (vm, addr) in &addrs[1..] {
        assert_eq!(
            calls_about(&calls, vm)[2..],
            [
                Call::Drain { addr: *addr },
                Call::Unbind { addr: *addr },
                Call::Destroy { vm: vm.clone() },
            ],
            "{calls:#?}"
        );
    }
    assert_eq!(calls.len() - before, 6);
    assert_no_destroy_of_a_bound_member(&calls);
    let removed: Vec<Option<String>> = h
        .events()
        .iter()
        .filter(|r| r.event.kind == EventKind::ScaleInStarted)
        .map(|r| r.event.vm.clone())
        .collect();
    assert_eq!(removed, [Some("vm-0003".into()), Some("vm-0002".into())]);
    assert!(
        h.nth(EventKind::ScaleInStarted, 0)
            .event
            .reason
            .contains("3 members, above maxmembers 1")
    );
    let mut kinds = h.kinds()[events_before..].to_vec();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            "drain_finished",
            "drain_finished",
            "member_unbound",
            "member_unbound",
            "scale_in_started",
            "scale_in_started",
            "vm_destroyed",
            "vm_destroyed"
        ]
    );
    assert_eq!(h.running(), ["vm-0001"]);
    assert_eq!(h.serving(), 1);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn listing_failures_hold_every_launch_until_the_group_is_listed() {
    let (log, cloud, fleet) = world();
    cloud.fail_next_lists(5);
    let h = Harness::start_on(log, cloud, fleet, policy(1, 3));
    h.run_for(secs(4)).await;
    assert_eq!(h.deploys(), 0);
    assert_eq!(h.phase(), Some(GroupPhase::Starting));
    h.until("a member UP", secs(30), |h| h.serving() == 1).await;
    assert_eq!(h.deploys(), 1);
    let kinds = h.kinds();
    let listed = kinds
        .iter()
        .position(|k| *k == "reconciled")
        .expect("listed");
    assert_eq!(kinds[..listed], ["action_failed"; 5]);
    assert_eq!(
        kinds[listed..],
        [
            "reconciled",
            "scale_out_started",
            "vm_deployed",
            "member_bound",
            "member_up",
            "cooldown_started"
        ]
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_destroy_is_retried_until_the_vm_is_gone() {
    let h = Harness::start(policy(2, 3));
    h.until("two members, cooldown over", secs(60), |h| {
        h.serving() == 2 && h.phase() == Some(GroupPhase::Idle)
    })
    .await;
    h.cloud.fail_next_destroys(2);
    h.policy.send_modify(|p| p.min_members = 1);
    h.fleet.set_metric_everywhere("cpu", 10.0);
    h.until("vm-0002 destroyed", secs(60), |h| {
        h.count(EventKind::VmDestroyed) == 1
    })
    .await;
    let calls = h.log.actions();
    let destroys = calls
        .iter()
        .filter(|c| {
            **c == Call::Destroy {
                vm: "vm-0002".into(),
            }
        })
        .count();
    assert_eq!(destroys, 3);
    assert_eq!(
        h.kinds_from(EventKind::ScaleInStarted),
        [
            "scale_in_started",
            "drain_finished",
            "member_unbound",
            "action_failed",
            "action_failed",
            "vm_destroyed"
        ]
    );
    // The member was unbound once; only the destroy was repeated.
    let addr2 = "127.77.0.2:8000".parse().expect("an address");
    assert_eq!(
        calls
            .iter()
            .filter(|c| **c == Call::Unbind { addr: addr2 })
            .count(),
        1
    );
    assert_no_destroy_of_a_bound_member(&calls);
    assert_eq!(h.running(), ["vm-0001"]);
    h.stop().await;
}
