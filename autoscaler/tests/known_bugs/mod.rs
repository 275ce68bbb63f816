//! The core bugs the seeded simulation found, each replayed as the shortest script that
//! shows it, against `GroupCore`'s public API. Each one is fixed; the script guards it.
//! The fixes rest on three facts the API now carries: a listing names this run's launches by
//! their display names (`GroupCore::launch_name`), says when it was taken
//! (`Inventory::taken_at`), and says which bound members drain (`Inventory::draining`).
//!
//! Every script starts from one adopted member `a` in service (cpu as given), one metric
//! `cpu` (out above 70, in below 30), 10 s interval, 30 s watch, 120 s cooldown, no warm-up.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use autoscaler::{
    Action, CloudState, CloudVm, DeployError, Event, EventKind, GroupCore, Inventory, LaunchId,
    MemberSample, MetricRule, MetricSource, Policy,
};

/// A deploy answered `Failed { vm: Some(id) }` before its `Accepted` (a driver may skip
/// that report: `on_deploy_finished` accepts a success without it) leaked the VM: the
/// failed launch's VM was never destroyed (fixed: `on_deploy_finished` forgot the pending
/// launch before naming its VM).
#[test]
fn a_failed_deploy_answered_before_its_id_destroys_its_vm() {
    let (mut core, _) = one_member_busy(1, 3);
    let launch = deploys(&core_actions(&mut core))[0];
    let failed = Err(DeployError::Failed {
        reason: "the job failed".into(),
        vm: Some("b".into()),
    });
    core.on_deploy_finished(secs(45), launch, failed);
    let actions = core_actions(&mut core);
    assert!(
        actions.contains(&Action::Destroy { vm: "b".into() }),
        "the failed launch's VM is destroyed: {actions:?}"
    );
}

/// Known::UncertainDeployNoCooldown. A deploy answered `Uncertain` did create its VM; the
/// listing the core asks for finds it and adopts it as a stranger. Once it is UP, no
/// cooldown starts (the scale-out ended as failed), so the next scale-out follows at once.
#[test]
fn an_uncertain_deploy_whose_vm_comes_up_starts_the_cooldown() {
    let (mut core, at) = one_member_busy(1, 3);
    let launch = deploys(&core_actions(&mut core))[0];
    let uncertain = Err(DeployError::Uncertain {
        reason: "connection reset".into(),
    });
    core.on_deploy_finished(at + secs(1), launch, uncertain);
    let b = named(running("b", 2), core.launch_name(launch));
    core.on_inventory(at + secs(2), listing(&[running("a", 1), b], &[("a", 1)]));
    core.on_bound(at + secs(3), "b", Ok(()));
    let up = at + secs(10);
    core.on_sample(up, &[busy("a"), busy("b")]);
    let events = core_events(&mut core);
    assert!(has(&events, EventKind::MemberUp), "b is UP: {events:?}");
    let next = busy_until(&mut core, up, up + secs(200));
    assert!(
        next.is_none_or(|at| at >= up + secs(120)),
        "no scale-out within the cooldown after b came UP, yet one at {next:?}"
    );
}

/// Known::ListedBeforeAccepted, first way. The driver's listing shows the new VM `b` before
/// the deploy's answer came: the core counts `b` twice (the pending launch and the adopted
/// VM), finds itself over `maxmembers` and trims `a`, a healthy member in service.
#[test]
fn a_vm_listed_before_its_deploys_answer_is_not_counted_twice() {
    let (mut core, at) = one_member_busy(1, 2);
    let launch = deploys(&core_actions(&mut core))[0];
    let b = named(starting("b"), core.launch_name(launch));
    core.on_inventory(at + secs(1), listing(&[running("a", 1), b], &[("a", 1)]));
    core.on_sample(at + secs(10), &[busy("a")]);
    let actions = core_actions(&mut core);
    let events = core_events(&mut core);
    assert!(
        !has(&events, EventKind::ScaleInStarted),
        "nothing is over maxmembers 2 (a, and b of {launch:?}): {events:?}"
    );
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Drain { .. })),
        "no member drained: {actions:?}"
    );
}

/// Known::ListedBeforeAccepted, second way. The listing shows `b` before its deploy's
/// answer; the answer comes, and `b`'s bind fails, so the core retires it. That launch must
/// end (as failed), so that the next scale-out completes and starts its cooldown.
#[test]
fn a_launch_whose_vm_was_retired_still_ends() {
    let (mut core, at) = one_member_busy(1, 3);
    let first = deploys(&core_actions(&mut core))[0];
    let b = named(running("b", 2), core.launch_name(first));
    core.on_inventory(at + secs(1), listing(&[running("a", 1), b], &[("a", 1)]));
    core.on_deploy_accepted(at + secs(2), first, "b");
    core.on_deploy_finished(at + secs(3), first, Ok(("b".into(), addr(2))));
    core.on_bound(at + secs(4), "b", Err("rejected".into()));
    core.on_unbound(at + secs(5), "b", Ok(()));
    core.on_destroyed(at + secs(6), "b", Ok(()));
    core_actions(&mut core);
    core_events(&mut core);
    // The next scale-out brings `c` UP: its cooldown must start.
    let next = busy_until(&mut core, at + secs(6), at + secs(300)).expect("a second scale-out");
    let second = deploys(&core_actions(&mut core))[0];
    core.on_deploy_accepted(next + secs(1), second, "c");
    core.on_deploy_finished(next + secs(2), second, Ok(("c".into(), addr(3))));
    core.on_bound(next + secs(3), "c", Ok(()));
    core.on_sample(next + secs(10), &[busy("a"), busy("c")]);
    let events = core_events(&mut core);
    assert!(has(&events, EventKind::MemberUp), "c is UP: {events:?}");
    assert!(
        has(&events, EventKind::CooldownStarted),
        "the second scale-out completes and cools down: {events:?}"
    );
}

/// Known::StaleList, "forgets". The driver's listing was taken before the deploy created
/// `b`, and answers after `b` is Running and bound: the core takes `b` for gone, unbinds a
/// live VM and forgets it (a later listing adopts it again; meanwhile filling to min may
/// launch one more VM than `maxmembers` allows).
#[test]
fn a_listing_taken_before_a_vm_existed_does_not_unbind_it() {
    let (mut core, at) = one_member_busy(1, 3);
    let launch = deploys(&core_actions(&mut core))[0];
    // The listing is taken now (no `b` yet) and answers after the steps below.
    core.on_deploy_accepted(at + secs(1), launch, "b");
    core.on_deploy_finished(at + secs(5), launch, Ok(("b".into(), addr(2))));
    core.on_bound(at + secs(6), "b", Ok(()));
    core_actions(&mut core);
    let stale = taken(listing(&[running("a", 1)], &[("a", 1), ("b", 2)]), at);
    core.on_inventory(at + secs(7), stale);
    let actions = core_actions(&mut core);
    assert!(
        !actions.contains(&Action::Unbind {
            vm: "b".into(),
            addr: addr(2)
        }),
        "b exists, yet: {actions:?}"
    );
}

/// Known::StaleList, "resurrects". A listing taken before the core destroyed `a` answers
/// after the destroy: the core adopts the destroyed VM and binds it again (its address may
/// already be a new VM's).
#[test]
fn a_listing_taken_before_a_destroy_does_not_bring_the_vm_back() {
    let mut core = GroupCore::new(policy(1, 3));
    let both = [running("a", 1), running("b", 2)];
    core.on_inventory(secs(0), listing(&both, &[("a", 1), ("b", 2)]));
    let mut now = secs(0);
    // Idle load: the newer member, `b`, is the scale-in victim.
    while !core_actions(&mut core)
        .iter()
        .any(|a| matches!(a, Action::Drain { .. }))
    {
        now += secs(10);
        assert!(now < secs(300), "a scale-in");
        core.on_sample(now, &[idle("a", 5), idle("b", 5)]);
    }
    core.on_sample(now + secs(10), &[idle("a", 5), idle("b", 0)]);
    core_actions(&mut core);
    core.on_unbound(now + secs(11), "b", Ok(()));
    core.on_destroyed(now + secs(12), "b", Ok(()));
    core_actions(&mut core);
    // The listing was taken before the destroy.
    let stale = taken(listing(&both, &[("a", 1)]), now + secs(11));
    core.on_inventory(now + secs(13), stale);
    let actions = core_actions(&mut core);
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::Bind { vm, .. } if vm == "b")),
        "b was destroyed, yet: {actions:?}"
    );
}

/// Known::AddressOfVanishedVm. An operator destroys `b` behind the engine's back and the
/// cloud gives its address to the next VM, `c`, before a listing told the core: the core
/// binds `c` at the address of `b`'s member (the proxy answers `AlreadyBound`, which the
/// driver takes as done), so `c` is never sampled as itself, and unbinding `b` later
/// removes `c`'s member.
#[test]
fn a_new_vm_is_not_bound_at_an_address_a_member_holds() {
    let mut core = GroupCore::new(policy(1, 3));
    let both = [running("a", 1), running("b", 2)];
    core.on_inventory(secs(0), listing(&both, &[("a", 1), ("b", 2)]));
    let mut now = secs(0);
    let launch = loop {
        now += secs(10);
        assert!(now < secs(300), "a scale-out");
        core.on_sample(now, &[busy("a"), busy("b")]);
        if let Some(launch) = deploys(&core_actions(&mut core)).first() {
            break *launch;
        }
    };
    core.on_deploy_accepted(now + secs(1), launch, "c");
    core.on_deploy_finished(now + secs(5), launch, Ok(("c".into(), addr(2))));
    let actions = core_actions(&mut core);
    assert!(
        !actions.contains(&Action::Bind {
            vm: "c".into(),
            addr: addr(2)
        }),
        "b's member holds {}: c must not be bound there first: {actions:?}",
        addr(2)
    );
    // b's member goes first; then c is bound there.
    assert!(actions.contains(&Action::Unbind {
        vm: "b".into(),
        addr: addr(2)
    }));
    core.on_unbound(now + secs(6), "b", Ok(()));
    let actions = core_actions(&mut core);
    assert_eq!(
        actions,
        [Action::Bind {
            vm: "c".into(),
            addr: addr(2)
        }]
    );
}

/// Known::DrainingMemberAdopted. The engine alone restarts (its profile changed) while the
/// proxy drains the old core's scale-in victim `b`: the new core resumes that drain rather
/// than taking `b` for a member in service (the proxy would keep it draining for ever).
#[test]
fn a_draining_member_found_at_start_finishes_its_drain() {
    let mut core = GroupCore::new(policy(1, 3));
    let both = [running("a", 1), running("b", 2)];
    let mut inventory = listing(&both, &[("a", 1), ("b", 2)]).expect("a listing");
    inventory.draining = vec!["b".into()];
    core.on_inventory(secs(0), Ok(inventory));
    core_actions(&mut core);
    core.on_sample(secs(10), &[busy("a"), idle("b", 0)]);
    let actions = core_actions(&mut core);
    assert_eq!(
        actions,
        [Action::Unbind {
            vm: "b".into(),
            addr: addr(2)
        }],
        "b's drain ends (no connections left) and it goes"
    );
}

// ---------------------------------------------------------------------------------------------

fn policy(min: u32, max: u32) -> Policy {
    let cpu = MetricRule {
        name: "cpu".into(),
        source: MetricSource::Snmp("cpu".into()),
        upper: Some(70.0),
        lower: Some(30.0),
    };
    let mut policy = Policy::new(min, max, vec![cpu]);
    policy.watch_time = secs(30);
    policy.cooldown = secs(120);
    policy.warmup = Duration::ZERO;
    policy
}

/// A core with `a` adopted and in service under a high load, run until its first scale-out;
/// returns it and the time of that scale-out (its deploy is in the core's actions).
fn one_member_busy(min: u32, max: u32) -> (GroupCore, Duration) {
    let mut core = GroupCore::new(policy(min, max));
    core.on_inventory(secs(0), listing(&[running("a", 1)], &[("a", 1)]));
    let mut now = secs(0);
    loop {
        now += secs(10);
        assert!(now < secs(300), "a scale-out");
        core.on_sample(now, &[busy("a")]);
        let events = core_events(&mut core);
        if has(&events, EventKind::ScaleOutStarted) {
            return (core, now);
        }
    }
}

/// Keeps every member busy from `from` to `to`; the time of the next scale-out, if any.
fn busy_until(core: &mut GroupCore, from: Duration, to: Duration) -> Option<Duration> {
    let mut now = from;
    while now < to {
        now += secs(10);
        core.handle_timeout(now);
        core.on_sample(now, &[busy("a"), busy("b")]);
        if has(&core_events(core), EventKind::ScaleOutStarted) {
            return Some(now);
        }
    }
    None
}

/// The group as a listing shows it, with the members bound (VM, address number).
fn listing(vms: &[CloudVm], bound: &[(&str, u8)]) -> Result<Inventory, String> {
    let bound = bound
        .iter()
        .map(|(id, n)| (id.to_string(), addr(*n)))
        .collect();
    Ok(Inventory {
        vms: vms.to_vec(),
        bound,
        ..Inventory::default()
    })
}

/// `listing` as of `at` (what the core learned after that is not judged by it).
fn taken(listing: Result<Inventory, String>, at: Duration) -> Result<Inventory, String> {
    listing.map(|inventory| Inventory {
        taken_at: Some(at),
        ..inventory
    })
}

/// `vm` with the display name its deploy gave it.
fn named(vm: CloudVm, displayname: String) -> CloudVm {
    CloudVm {
        displayname: Some(displayname),
        ..vm
    }
}

fn running(id: &str, n: u8) -> CloudVm {
    CloudVm {
        id: id.into(),
        state: CloudState::Running,
        addr: Some(addr(n)),
        created: Some(format!("2026-01-01T00:00:0{n}+0000")),
        displayname: None,
    }
}

fn starting(id: &str) -> CloudVm {
    CloudVm {
        id: id.into(),
        state: CloudState::Starting,
        addr: None,
        created: Some("2026-01-01T00:00:09+0000".into()),
        displayname: None,
    }
}

fn busy(vm: &str) -> MemberSample {
    sample(vm, 90.0, 50)
}

fn idle(vm: &str, connections: u64) -> MemberSample {
    sample(vm, 10.0, connections)
}

fn sample(vm: &str, cpu: f64, connections: u64) -> MemberSample {
    MemberSample {
        vm: Some(vm.into()),
        up: true,
        connections,
        protected: false,
        values: vec![Some(cpu)],
    }
}

fn addr(n: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)), 8080)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn core_actions(core: &mut GroupCore) -> Vec<Action> {
    std::iter::from_fn(|| core.poll_action()).collect()
}

fn core_events(core: &mut GroupCore) -> Vec<Event> {
    std::iter::from_fn(|| core.poll_event()).collect()
}

fn deploys(actions: &[Action]) -> Vec<LaunchId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Deploy { launch } => Some(*launch),
            _ => None,
        })
        .collect()
}

fn has(events: &[Event], kind: EventKind) -> bool {
    events.iter().any(|e| e.kind == kind && !e.observed)
}
