//! The invariants that follow the core's events: the cooldown is respected, and a cooldown
//! starts after every scale-out that brought a member UP. (The world checks the cloud and the
//! proxy itself: VMs over `maxmembers`, destroys of members in service, shared addresses, the
//! settled group.)

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use autoscaler::{Action, Event, EventKind, LaunchId};

/// Core bugs this simulation found that are still open. A run can tolerate some (count them
/// and go on) so that it finds the violations they would hide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Known {
    /// A deploy answered `Uncertain` did create its VM: a list finds it and the core adopts
    /// it as a stranger. Its scale-out ended as failed, so no cooldown starts when the VM is
    /// UP (it also skips its warm-up, and counts as a failed launch for the back-off).
    UncertainDeployNoCooldown,
    /// A listing shows a VM before its deploy's answer (`on_deploy_accepted`) arrived: the
    /// core adopts it as a stranger and, until the answer comes, counts it twice (the
    /// pending launch and the adopted VM). Seen two ways:
    /// - the double count makes `live > maxmembers`: the core trims a healthy member in
    ///   service that nothing asked to remove;
    /// - the adopted VM is retired before the answer comes (its bind failed, say): the
    ///   answer then ties the launch to a VM on its way out and the launch never ends, so
    ///   the scale-out never completes and no cooldown starts again in this engine run.
    ListedBeforeAccepted,
    /// A listing's answer is applied as if it were current, though the listing was taken
    /// before steps that ended since (the driver lists at every interval, concurrently with
    /// the other steps, and an answer can take seconds). Seen two ways:
    /// - taken before a VM the core launched existed, it arrives once the core has the VM
    ///   binding, joining, serving or being destroyed: the core takes the VM for gone,
    ///   unbinds it (cutting an UP member's connections) or forgets it, and may fill to min
    ///   over `maxmembers` while the VM still exists;
    /// - taken before the core destroyed a VM, it makes the core adopt and bind the destroyed
    ///   VM again (a ghost that counts toward max), at an address that may already be a new
    ///   VM's (two members meet at one address).
    StaleList,
    /// The engine restarts while the proxy keeps its members, one of them draining: the new
    /// core adopts it as a member in service (`Inventory::bound` does not say it drains), and
    /// the proxy keeps it draining for ever: it takes no traffic, yet counts toward min/max.
    DrainingMemberAdopted,
    /// An operator destroys a VM behind the engine's back and the cloud gives its address to
    /// the next VM before a list told the core: the core binds the new VM while the old
    /// member (which it still believes alive) holds the same address.
    AddressOfVanishedVm,
}

/// What one core (one engine run) did so far, as far as these checks care.
#[derive(Debug, Default)]
pub struct Checks {
    cooldown: Duration,
    cooldown_until: Option<Duration>,
    scale_out: Option<ScaleOut>,
    /// Launches the core heard of as `Uncertain` (their VM may exist).
    uncertain: BTreeSet<LaunchId>,
    /// VMs a stale listing made the core forget (and a later one adopt as strangers).
    pub forgotten: BTreeSet<String>,
    /// A VM that a listing showed before its deploy's answer came was retired before the
    /// answer: see [`Known::ListedBeforeAccepted`].
    pub retired_early: bool,
    tolerate: BTreeSet<Known>,
    /// Known bugs hit since the world last looked.
    pub known_hits: Vec<Known>,
}

/// The latest scale-out: its launches, the VMs they created, whether one came UP.
#[derive(Debug)]
struct ScaleOut {
    at: Duration,
    launches: BTreeSet<LaunchId>,
    vms: BTreeMap<String, LaunchId>,
    /// The VMs of its launches that came UP.
    up_vms: BTreeSet<String>,
}

/// Whether a decision came from a breach window (the cooldown applies), rather than from a
/// bound (fill to `minmembers`, trim to `maxmembers`) or a replacement of fenced members.
pub fn is_breach_decision(event: &Event) -> bool {
    match event.kind {
        EventKind::ScaleOutStarted => {
            !event.reason.contains("below minmembers") && !event.reason.contains("replacing")
        }
        EventKind::ScaleInStarted => !event.reason.contains("above maxmembers"),
        _ => false,
    }
}

/// A scale-out that the core tracks to start a cooldown: a breach or filling to min (a
/// replacement of fenced members is not one).
fn is_tracked_scale_out(event: &Event) -> bool {
    event.kind == EventKind::ScaleOutStarted
        && !event.observed
        && !event.reason.contains("replacing")
}

impl Checks {
    /// A fresh engine run: it remembers nothing of the previous one, and neither do we.
    pub fn new(cooldown: Duration, tolerate: &BTreeSet<Known>) -> Checks {
        Checks {
            cooldown,
            tolerate: tolerate.clone(),
            ..Checks::default()
        }
    }

    /// The events and actions one call to the core produced.
    pub fn on_batch(
        &mut self,
        now: Duration,
        events: &[Event],
        actions: &[Action],
    ) -> Result<(), String> {
        for event in events.iter().filter(|e| !e.observed) {
            self.on_event(now, event)?;
        }
        // A scale-out's deploys are the last ones of the call that started it.
        let started = events.iter().rev().find(|e| is_tracked_scale_out(e));
        let Some(event) = started else {
            return Ok(());
        };
        let count = event
            .reason
            .rsplit("adding ")
            .next()
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| format!("scale_out_started without a count: {}", event.reason))?;
        let deploys: Vec<LaunchId> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Deploy { launch } => Some(*launch),
                _ => None,
            })
            .collect();
        if deploys.len() < count {
            return Err(format!(
                "scale_out_started adding {count} came with {} deploys",
                deploys.len()
            ));
        }
        let launched = deploys[deploys.len() - count..].iter().copied();
        match &mut self.scale_out {
            // Filling to min while a scale-out is in progress adds to it (a breach decision
            // cannot happen while one is).
            Some(open) if !is_breach_decision(event) => open.launches.extend(launched),
            _ => {
                self.scale_out = Some(ScaleOut {
                    at: event.at,
                    launches: launched.collect(),
                    vms: BTreeMap::new(),
                    up_vms: BTreeSet::new(),
                })
            }
        }
        Ok(())
    }

    /// The world saw `launch` create `vm`.
    pub fn launch_created(&mut self, launch: LaunchId, vm: &str) {
        if let Some(open) = &mut self.scale_out
            && open.launches.contains(&launch)
        {
            open.vms.insert(vm.to_string(), launch);
        }
    }

    /// The core heard that `launch`'s deploy is `Uncertain`.
    pub fn launch_uncertain(&mut self, launch: LaunchId) {
        self.uncertain.insert(launch);
    }

    fn on_event(&mut self, now: Duration, event: &Event) -> Result<(), String> {
        let vm = event.vm.as_deref();
        match event.kind {
            EventKind::CooldownStarted => {
                self.cooldown_until = Some(now + self.cooldown);
                self.scale_out = None;
            }
            EventKind::MemberUp => {
                if let (Some(open), Some(vm)) = (&mut self.scale_out, vm)
                    && open.vms.contains_key(vm)
                {
                    open.up_vms.insert(vm.to_string());
                }
            }
            _ if is_breach_decision(event) => {
                self.check_cooldown(now, event)?;
                if event.kind == EventKind::ScaleInStarted {
                    self.scale_out = None;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A breach decision: not within a cooldown, and not right after a scale-out that
    /// brought a member UP without a cooldown.
    fn check_cooldown(&mut self, now: Duration, event: &Event) -> Result<(), String> {
        if let Some(until) = self.cooldown_until
            && now < until
        {
            return Err(format!(
                "cooldown not respected: {} ({}) at {:.3}s, the cooldown runs until {:.3}s",
                event.kind,
                event.reason,
                now.as_secs_f64(),
                until.as_secs_f64()
            ));
        }
        let Some(open) = &self.scale_out else {
            return Ok(());
        };
        if self.cooldown.is_zero() || open.up_vms.is_empty() {
            return Ok(());
        }
        // A VM the core adopted as a stranger does not complete its launch: why was it one?
        let uncertain = |vm: &String| self.uncertain.contains(&open.vms[vm]);
        let forgotten = |vm: &String| self.forgotten.contains(vm);
        let known = if open
            .up_vms
            .iter()
            .any(|vm| !uncertain(vm) && !forgotten(vm))
        {
            // An earlier launch may hold the scale-out open.
            self.retired_early.then_some(Known::ListedBeforeAccepted)
        } else if open.up_vms.iter().any(forgotten) {
            Some(Known::StaleList)
        } else {
            Some(Known::UncertainDeployNoCooldown)
        };
        if let Some(known) = known
            && self.tolerate.contains(&known)
        {
            self.known_hits.push(known);
            return Ok(());
        }
        Err(format!(
            "no cooldown after the scale-out of {:.3}s (launches {:?}, VMs {:?}) brought a \
             member UP, yet {} ({}) at {:.3}s{}",
            open.at.as_secs_f64(),
            open.launches,
            open.vms,
            event.kind,
            event.reason,
            now.as_secs_f64(),
            known.map_or_else(String::new, |known| format!(" [known: {known:?}]"))
        ))
    }
}
