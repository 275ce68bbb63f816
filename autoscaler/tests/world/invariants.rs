//! The invariants on the cloud and the proxy, checked after every step (and at each request
//! that could break one), and how a violation is told apart from a known, tolerated bug.
//!
//! - never more VMs in existence (every state but destroyed) than `maxmembers`;
//! - never more VMs created than deploys sent;
//! - no VM destroyed while a member still takes new traffic to it (bound, not draining);
//! - no member trimmed "above maxmembers" unless the group is: more VMs exist than that;
//! - no member operation that hits another VM's member: a bind at an address bound for
//!   another VM (the proxy says `AlreadyBound`, which the driver takes as done), a drain or
//!   an unbind that takes another VM's member out; no unbind of a member UP and in service
//!   (not drained first);
//! - long after the last fault, with a steady load: every VM of the group is a member in
//!   service, every member is its VM's, and their number is within `[min, max]`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use autoscaler::CloudVm;

use super::{Known, World};

/// What the listings delivered to the live core got wrong by the time they arrived.
#[derive(Debug, Default)]
pub struct Stale {
    /// The latest `Uncertain` deploy answer the live core heard.
    pub uncertain_at: Option<Duration>,
    /// A listing taken before that answer arrived after it, or made the core forget a VM
    /// that exists (one created after the listing was taken).
    pub missed: bool,
    /// VMs a listing showed alive after they were gone, or made the core forget.
    pub listed: BTreeSet<String>,
    /// Gone VMs the core adopted from such a listing, and still believes in.
    pub ghosts: BTreeSet<String>,
}

impl World {
    pub(super) fn check(&mut self) -> Result<(), String> {
        let max = self.sc.policy.max_members as usize;
        let existing = self.cloud.existing();
        if existing > max {
            let ids: Vec<String> = self
                .cloud
                .list()
                .iter()
                .map(|vm| format!("{} {:?}", vm.id, vm.state))
                .collect();
            let known = self
                .over_max_since
                .or(self.stale.missed.then_some(Known::StaleList));
            self.over_max_since = known;
            let message = format!(
                "{existing} VMs exist, over maxmembers {max}: {}",
                ids.join(", ")
            );
            self.violation(known, message)?;
        } else {
            self.over_max_since = None;
        }
        if self.cloud.created > self.deploys_sent {
            return Err(format!(
                "{} VMs created for {} deploys",
                self.cloud.created, self.deploys_sent
            ));
        }
        if self.calm && self.now >= self.sc.chaos + self.sc.settle {
            self.check_settled()?;
        }
        Ok(())
    }

    /// Long after the last fault with a steady load: every VM serves, within the bounds.
    fn check_settled(&mut self) -> Result<(), String> {
        let (min, max) = (self.sc.policy.min_members, self.sc.policy.max_members);
        let settled = self.sc.settle.as_secs();
        let zombie = self
            .proxy
            .members
            .values()
            .any(|m| m.draining && self.drained_before_start.contains(&m.vm));
        let zombie = zombie.then_some(Known::DrainingMemberAdopted);
        let mut in_service = Vec::new();
        let mut foreign = Vec::new();
        for (addr, member) in &self.proxy.members {
            let own = self
                .cloud
                .get(&member.vm)
                .is_some_and(|vm| vm.addr == *addr);
            if !own {
                foreign.push((*addr, member.vm.clone()));
            } else if !member.draining && self.up(*addr) {
                in_service.push(member.vm.clone());
            }
        }
        for (addr, vm) in foreign {
            let message = format!(
                "settled ({settled}s calm), yet the member at {addr} names {vm}, which is not \
                 the VM at that address"
            );
            self.violation(None, message)?;
        }
        let count = in_service.len() as u32;
        if count < min || count > max {
            let message = format!(
                "settled ({settled}s calm) with {count} members in service {in_service:?}, \
                 outside [{min}, {max}]"
            );
            self.violation(zombie, message)?;
        }
        for vm in self.cloud.list() {
            if in_service.contains(&vm.id) {
                continue;
            }
            let member = self.proxy.member_of(&vm.id).map(|(_, m)| m);
            let known = member
                .is_some_and(|m| m.draining && self.drained_before_start.contains(&m.vm))
                .then_some(Known::DrainingMemberAdopted);
            let member = member.map_or_else(
                || "not bound".to_string(),
                |m| format!("bound, draining {}", m.draining),
            );
            let message = format!(
                "settled ({settled}s calm), yet {} is {:?} in the cloud and not in service \
                 ({member})",
                vm.id, vm.state
            );
            self.violation(known, message)?;
        }
        Ok(())
    }

    /// No VM is destroyed while a member still sends it new traffic: neither the member
    /// bound for it, nor a member at its address.
    pub(super) fn check_destroy(&mut self, vm: &str, when: &str) -> Result<(), String> {
        let at_addr = self
            .cloud
            .get(vm)
            .and_then(|rec| Some((rec.addr, self.proxy.members.get(&rec.addr)?)));
        let bound = self.proxy.member_of(vm).or(at_addr);
        let Some((addr, member)) = bound.filter(|(_, m)| !m.draining) else {
            return Ok(());
        };
        let other = member.vm.clone();
        let state = if self.up(addr) {
            "UP: the proxy still sends it new traffic"
        } else {
            "DOWN"
        };
        let known = self.conflict_known(vm, &other);
        let message = format!(
            "Destroy of {vm} {when} while the member at {addr} (bound for {other}) is not \
             draining ({state})"
        );
        self.violation(known, message)
    }

    /// A bind, drain or unbind for `vm` at `addr` touches no other VM's member.
    pub(super) fn check_member_op(
        &mut self,
        op: &str,
        vm: &str,
        addr: SocketAddr,
    ) -> Result<(), String> {
        let Some(member) = self.proxy.members.get(&addr) else {
            return Ok(());
        };
        if member.vm == vm {
            if op != "Unbind" || member.draining || !self.up(addr) {
                return Ok(());
            }
            let known = self.conflict_known(vm, vm);
            let message = format!(
                "Unbind of {vm} at {addr} while it is UP and not draining: its connections are \
                 cut, though {}",
                if self.cloud.running(vm) {
                    "its VM is Running"
                } else {
                    "its VM is not Running"
                }
            );
            return self.violation(known, message);
        }
        let other = member.vm.clone();
        let known = self.conflict_known(vm, &other);
        let what = match op {
            "Bind" => format!(
                "{vm} and {other} share the address {addr}: Bind of {vm} finds it bound for \
                 {other} (AlreadyBound, taken as done)"
            ),
            _ => format!("{op} for {vm} at {addr} hits the member of {other}"),
        };
        self.violation(known, what)
    }

    /// Which known bug explains two VMs meeting at one address, if one does.
    fn conflict_known(&self, a: &str, b: &str) -> Option<Known> {
        let either = |set: &BTreeSet<String>| set.contains(a) || set.contains(b);
        if either(&self.stale.listed) {
            Some(Known::StaleList)
        } else if either(&self.vanished) {
            Some(Known::AddressOfVanishedVm)
        } else {
            None
        }
    }

    /// An invariant failed: an error, unless a tolerated known bug explains it.
    pub(super) fn violation(
        &mut self,
        known: Option<Known>,
        message: String,
    ) -> Result<(), String> {
        match known {
            Some(known) if self.tolerate.contains(&known) => {
                self.tolerated(known, message);
                Ok(())
            }
            Some(known) => Err(format!("{message} [known: {known:?}]")),
            None => Err(message),
        }
    }

    /// A tolerated known bug struck: logged once per run, and counted.
    pub(super) fn tolerated(&mut self, known: Known, message: String) {
        if self.known.insert(known) {
            self.line(format!("  KNOWN BUG {known:?}: {message}"));
            self.count(format!("known bug hit: {known:?}"));
        }
    }

    /// Marks what a listing delivered to the live core got wrong by the time it arrived.
    pub(super) fn note_stale(&mut self, taken: Duration, vms: &[CloudVm]) {
        if let Some(uncertain) = self.stale.uncertain_at
            && taken < uncertain
        {
            self.stale.missed = true;
            self.line(format!(
                "  STALE list: taken at {:.3}s, before the Uncertain answer at {:.3}s",
                taken.as_secs_f64(),
                uncertain.as_secs_f64()
            ));
        }
        for vm in vms {
            if self.cloud.get(&vm.id).is_none() {
                self.line(format!("  STALE list: shows {} alive, it is gone", vm.id));
                self.stale.listed.insert(vm.id.clone());
            }
        }
    }
}

impl World {
    /// The core's reconcile said a VM is gone: it had better be.
    pub(super) fn note_forgotten(&mut self, reason: &str) {
        for change in reason.split("; ") {
            let Some((id, _)) = change.split_once(" is gone from the cloud") else {
                continue;
            };
            if self.cloud.get(id).is_some() {
                self.line(format!("  STALE list: the core forgets {id}, which exists"));
                self.stale.missed = true;
                self.stale.listed.insert(id.to_string());
                self.checks.forgotten.insert(id.to_string());
            }
        }
    }
}

impl World {
    /// The core adopted VMs from a listing: were any its own launches, still unanswered?
    pub(super) fn note_listed_early(&mut self, reason: &str) {
        for change in reason.split("; ") {
            let adopted = change
                .strip_prefix("waiting for ")
                .or_else(|| change.strip_prefix("adopted "))
                .and_then(|rest| rest.split(' ').next());
            if let Some(id) = adopted
                && self.cloud.get(id).is_none()
            {
                self.line(format!("  STALE list: the core adopts {id}, which is gone"));
                self.stale.ghosts.insert(id.to_string());
            }
            if let Some(id) = adopted
                && self.unanswered.contains_key(id)
            {
                self.line(format!(
                    "  LISTED EARLY: {id} adopted before its deploy's answer came"
                ));
                self.listed_early.insert(id.to_string());
            }
        }
    }

    /// A member trimmed because the group is over `maxmembers`: it had better be.
    pub(super) fn check_trim(&mut self, vm: &str) -> Result<(), String> {
        let (existing, max) = (self.cloud.existing(), self.sc.policy.max_members);
        if existing > max as usize {
            return Ok(());
        }
        // What does the core count that is not there (or count twice)?
        let twice = self
            .listed_early
            .iter()
            .any(|id| self.unanswered.contains_key(id));
        let known = if twice {
            Some(Known::ListedBeforeAccepted)
        } else if !self.stale.ghosts.is_empty() {
            Some(Known::StaleList)
        } else {
            None
        };
        let message =
            format!("{vm} trimmed as over maxmembers {max}, yet only {existing} VMs exist");
        self.violation(known, message)
    }
}

impl World {
    /// A VM the core adopted before its deploy's answer came is retired before that answer.
    pub(super) fn note_retired_early(&mut self, vm: &str) {
        if self.listed_early.contains(vm) && self.unanswered.contains_key(vm) {
            self.line(format!(
                "  LISTED EARLY: {vm} retired before its deploy's answer came"
            ));
            self.checks.retired_early = true;
        }
    }
}
