//! [`Fleet`] over the proxy: binds, drains and unbinds an autoscale group's members through
//! the config writer's typed operations (the same ones the admin API uses), and reads the
//! servicegroup's members from the published snapshot.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use autoscaler::{Fleet, FleetError, MemberView};
use ballast_proxy::config::AutoscaleMark;
use ballast_proxy::member::MemberStatus;
use ballast_proxy::persistence::DrainGrace;
use ballast_proxy::snapshot::Snapshot;
use ballast_proxy::writer::{ConfigWriter, MemberBinding, MemberOpError};

/// One servicegroup, as the autoscale group that scales it sees it.
#[derive(Debug)]
pub struct WriterFleet {
    writer: ConfigWriter,
    snapshot: Arc<ArcSwap<Snapshot>>,
    service_group: String,
    autoscale_group: String,
}

impl WriterFleet {
    pub fn new(
        writer: ConfigWriter,
        snapshot: Arc<ArcSwap<Snapshot>>,
        service_group: &str,
        autoscale_group: &str,
    ) -> WriterFleet {
        WriterFleet {
            writer,
            snapshot,
            service_group: service_group.to_string(),
            autoscale_group: autoscale_group.to_string(),
        }
    }
}

impl Fleet for WriterFleet {
    async fn bind(&self, vm: &str, addr: SocketAddr) -> Result<(), FleetError> {
        let mark = AutoscaleMark {
            vm_id: vm.to_string(),
            group: self.autoscale_group.clone(),
        };
        let binding = MemberBinding::autoscaled(mark);
        let result = self
            .writer
            .bind_member(&self.service_group, addr, binding)
            .await;
        result.map_err(fleet_error)
    }

    /// Disables the member; its persistent clients keep coming for the group's `quiettime`
    /// (the drain's length), as a NITRO `disable` with that `delay` would.
    async fn drain(&self, addr: SocketAddr) -> Result<(), FleetError> {
        let mut grace = DrainGrace::default();
        {
            let snapshot = self.snapshot.load();
            let quiet = (snapshot.config.autoscale_groups.iter())
                .find(|g| g.name == self.autoscale_group)
                .map(|g| g.quiet_time);
            // Only a group behind a vserver with persistence has persistent clients to keep.
            let persistent = snapshot.vservers.values().any(|v| {
                v.persistence.is_some()
                    && (v.group.as_ref()).is_some_and(|g| *g.name == *self.service_group)
            });
            if let Some(quiet) = quiet.filter(|_| persistent) {
                grace.arm(&snapshot, &self.service_group, Some(addr), quiet);
            }
        }
        let result = self.writer.disable_member(&self.service_group, addr).await;
        drop(grace);
        result.map_err(fleet_error)
    }

    async fn unbind(&self, addr: SocketAddr) -> Result<(), FleetError> {
        let result = self.writer.unbind_member(&self.service_group, addr).await;
        result.map_err(fleet_error)
    }

    fn members(&self) -> Vec<MemberView> {
        let snapshot = self.snapshot.load();
        snapshot
            .members_of(&self.service_group)
            .into_iter()
            // Members another autoscale group bound are not this group's VMs.
            .filter(|m| {
                m.autoscale
                    .as_ref()
                    .is_none_or(|mark| mark.group == self.autoscale_group)
            })
            .map(|m| MemberView {
                addr: m.addr,
                vm: m.autoscale.map(|mark| mark.vm_id),
                up: m.status == MemberStatus::Up,
                // A draining member whose persistent clients may still come is not idle.
                connections: m.active_connections + m.persistent_sessions,
                requests: m.total_requests,
                response_time_ms: m.response_time_ms.unwrap_or_default(),
                snmp: m
                    .metrics
                    .map(|values| values.iter().map(|(k, v)| (k.to_string(), *v)).collect())
                    .unwrap_or_default(),
                protected: m.scale_in_protection,
                draining: matches!(
                    m.status,
                    MemberStatus::GoingOutOfService | MemberStatus::OutOfService
                ),
            })
            .collect()
    }
}

fn fleet_error(error: MemberOpError) -> FleetError {
    match error {
        MemberOpError::AlreadyBound { .. } => FleetError::AlreadyBound,
        MemberOpError::NotBound { .. } => FleetError::NotBound,
        other => FleetError::Rejected(other.to_string()),
    }
}
