//! `backupvserver` and spillover in the data plane: which vserver's members serve a request
//! (HTTP) or a connection (TCP).
//!
//! A vserver serves from its own members while one of them is eligible and it is not past its
//! spillover threshold (`somethod = "CONNECTION"`: more than `sothreshold` client connections
//! open). Otherwise the traffic goes to its backup vserver, and on along the backup's own
//! backup, at most [`MAX_BACKUP_CHAIN`] steps (validation refuses longer chains and cycles).
//! When no backup along the chain can take it, the vserver's own members serve (a spilled
//! vserver with eligible members, before a backup without any), so a failure is its own.
//! Each diversion is counted on the vserver the traffic came to (`backuphits`,
//! `totspillovers`). With `disableprimaryondown`, the first failover (no member eligible)
//! takes the vserver out of service: its traffic stays on the backup, even once its members
//! are UP again, until `lbvserver?action=enable` (runtime state, kept across reloads).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

pub use crate::config::backup::MAX_BACKUP_CHAIN;
use crate::snapshot::VserverPlan;

/// Why traffic went to a backup vserver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Diversion {
    /// No member of the vserver was eligible (UP, enabled, not draining, not busy).
    Down,
    /// The vserver was past its spillover threshold.
    Spillover,
}

impl Diversion {
    pub const ALL: [Diversion; 2] = [Diversion::Down, Diversion::Spillover];

    /// The `reason` label of `ballast_vserver_backup_requests_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Diversion::Down => "down",
            Diversion::Spillover => "spillover",
        }
    }
}

/// The backup plan whose servicegroup and balancer serve traffic that came to `plan`, or
/// `None` when its own do; a diversion is counted on `plan`, and with `disableprimaryondown` a
/// failover takes `plan` out of service until it is enabled again.
pub fn serving(plan: &VserverPlan) -> Option<Arc<VserverPlan>> {
    let (backup, diversion) = route(plan)?;
    plan.stats.backup[diversion as usize].fetch_add(1, Relaxed);
    if diversion == Diversion::Down
        && plan.disable_primary_on_down
        && !plan.stats.disabled_on_down.swap(true, Relaxed)
    {
        tracing::warn!(vserver = %plan.name, backupvserver = %backup.name, "no member is eligible: the vserver failed over to its backup and stays out of service until it is enabled again (disableprimaryondown)");
    }
    Some(backup)
}

/// [`serving`], without counting: the backup and why.
pub fn route(plan: &VserverPlan) -> Option<(Arc<VserverPlan>, Diversion)> {
    let disabled = plan.disable_primary_on_down && plan.stats.disabled_on_down.load(Relaxed);
    let eligible = !disabled && has_eligible(plan);
    let spilling = is_spilling(plan);
    if eligible && !spilling {
        return None;
    }
    let diversion = if eligible {
        Diversion::Spillover
    } else {
        Diversion::Down
    };
    let mut next = plan.backup.get();
    for _ in 0..MAX_BACKUP_CHAIN {
        let current = next?;
        if has_eligible(current) && !is_spilling(current) {
            return Some((current.clone(), diversion));
        }
        next = current.backup.get();
    }
    // A vserver out of service after a failover never serves itself: its backup answers.
    disabled.then(|| plan.backup.get().map(|b| (b.clone(), diversion)))?
}

fn has_eligible(plan: &VserverPlan) -> bool {
    plan.group
        .as_ref()
        .is_some_and(|group| group.members.iter().any(|m| m.is_eligible()))
}

/// More client connections open than `sothreshold` (the one asking is counted already).
fn is_spilling(plan: &VserverPlan) -> bool {
    plan.spillover_threshold.is_some_and(|threshold| {
        plan.stats.current_client_connections.load(Relaxed) > u64::from(threshold)
    })
}
