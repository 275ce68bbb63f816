//! [`MemberView`]: one servicegroup's members as the autoscaler sees them, read from a
//! [`Snapshot`] and the members' runtime state. Cheap enough to call every second: a few
//! atomic loads and an `Arc` clone per member, no lock.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use crate::config::AutoscaleMark;
use crate::member::{MemberState, MemberStatus, MetricValues};
use crate::snapshot::Snapshot;

/// One member now.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberView {
    pub addr: SocketAddr,
    /// The VM and autoscale group, for a member the autoscaler bound.
    pub autoscale: Option<AutoscaleMark>,
    /// `UP`, `DOWN`, `BUSY`, `OUT OF SERVICE`, `GOING OUT OF SERVICE`.
    pub status: MemberStatus,
    /// In-flight requests (HTTP) or open connections (TCP).
    pub active_connections: u64,
    /// Requests sent to it since it was bound (a counter).
    pub total_requests: u64,
    /// Response-time EWMA (time to first byte) in milliseconds; `None` before the first
    /// response.
    pub response_time_ms: Option<f64>,
    /// The metric values of its LOAD monitor's latest good poll, by name; `None` before one.
    pub metrics: Option<Arc<MetricValues>>,
    pub scale_in_protection: bool,
    /// While it drains within its persistence grace: the `SOURCEIP` entries that still send
    /// clients to it (0 otherwise).
    pub persistent_sessions: u64,
}

impl Snapshot {
    /// The `SOURCEIP` entries of every vserver in front of `member`'s group that name it,
    /// counted only while it drains within its persistence grace (the entries are honoured
    /// then, and only then).
    fn persistent_sessions(&self, member: &MemberState) -> u64 {
        if member.drain_grace_left().is_zero() {
            return 0;
        }
        let now = tokio::time::Instant::now();
        self.vservers
            .values()
            .filter(|v| v.group.as_ref().is_some_and(|g| g.name == member.key.group))
            .map(|v| v.stats.sessions.count_for(&member.key, now))
            .sum()
    }

    /// Every member of servicegroup `group`, in config order; empty if there is no such group.
    pub fn members_of(&self, group: &str) -> Vec<MemberView> {
        let (Some(config), Some(plan)) = (self.config.service_group(group), self.groups.get(group))
        else {
            return Vec::new();
        };
        // The plan was compiled from this config's members, in the same order.
        config
            .members
            .iter()
            .zip(&plan.members)
            .map(|(member, state)| {
                debug_assert_eq!(member.addr, state.key.addr);
                let response_time_us = state.response_time_us();
                MemberView {
                    addr: member.addr,
                    autoscale: member.autoscale.clone(),
                    status: state.status(),
                    active_connections: state.active(),
                    total_requests: state.counters.requests.load(Relaxed),
                    response_time_ms: (response_time_us > 0)
                        .then(|| response_time_us as f64 / 1000.0),
                    metrics: state.metrics(),
                    scale_in_protection: member.scale_in_protection,
                    persistent_sessions: self.persistent_sessions(state),
                }
            })
            .collect()
    }
}
