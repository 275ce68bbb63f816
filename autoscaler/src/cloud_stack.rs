//! [`Cloud`] over the CloudStack API ([`CloudStackClient`]): `deployVirtualMachine` into the
//! profile's zone, template, offering and networks; `queryAsyncJobResult`;
//! `listVirtualMachines` by group; `destroyVirtualMachine` with `expunge=true`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use cloudstack::envelope;
use cloudstack::{
    CloudError, CloudStackClient, DeployVirtualMachine, JobStatus, JobWait, ListVirtualMachines,
    VirtualMachine, VmState,
};

use crate::cloud::{Cloud, DeployRequest, Deployment, JobState};
use crate::core::{CloudState, CloudVm};

/// Where the group's VMs are created (ids already resolved from names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmProfile {
    pub zone: String,
    pub template: String,
    pub service_offering: String,
    pub networks: Vec<String>,
    /// The port members serve on.
    pub member_port: u16,
}

/// A CloudStack endpoint and the profile its VMs are made from.
#[derive(Debug)]
pub struct CloudStackCloud {
    client: CloudStackClient,
    profile: VmProfile,
    destroy_wait: Duration,
}

impl CloudStackCloud {
    pub fn new(client: CloudStackClient, profile: VmProfile) -> CloudStackCloud {
        CloudStackCloud {
            client,
            profile,
            destroy_wait: Duration::from_secs(300),
        }
    }

    fn cloud_vm(&self, vm: &VirtualMachine) -> CloudVm {
        cloud_vm(vm, self.profile.member_port)
    }
}

impl Cloud for CloudStackCloud {
    async fn deploy(&self, request: &DeployRequest) -> Result<Deployment, CloudError> {
        let deploy = DeployVirtualMachine {
            zoneid: self.profile.zone.clone(),
            templateid: self.profile.template.clone(),
            serviceofferingid: self.profile.service_offering.clone(),
            networkids: self.profile.networks.clone(),
            displayname: Some(request.displayname.clone()),
            group: Some(request.group.clone()),
            ..DeployVirtualMachine::default()
        };
        let job = self.client.deploy_virtual_machine(&deploy).await?;
        let vm = job.id.ok_or_else(|| CloudError::Protocol {
            command: "deployVirtualMachine".into(),
            message: format!("job {} came without the VM's id", job.jobid),
        })?;
        Ok(Deployment { vm, job: job.jobid })
    }

    async fn job_status(&self, job: &str) -> Result<JobState, CloudError> {
        const COMMAND: &str = "deployVirtualMachine";
        let found = self.client.query_async_job_result(job).await?;
        match found.status() {
            JobStatus::Pending => Ok(JobState::Pending),
            JobStatus::Succeeded if found.jobresultcode == 0 => {
                let result = found.jobresult.unwrap_or_default();
                let vm: VirtualMachine = envelope::object(COMMAND, result, "virtualmachine")?;
                Ok(JobState::Done(self.cloud_vm(&vm)))
            }
            JobStatus::Succeeded | JobStatus::Failed => {
                let fields = found.jobresult.as_ref().and_then(envelope::error_fields);
                let (errorcode, cserrorcode, errortext) = fields.unwrap_or_else(|| {
                    let code = u16::try_from(found.jobresultcode).unwrap_or(530);
                    (code, None, "the job failed without an error text".into())
                });
                Ok(JobState::Failed(CloudError::JobFailed {
                    command: COMMAND.into(),
                    jobid: job.into(),
                    errorcode,
                    cserrorcode,
                    errortext,
                }))
            }
        }
    }

    async fn list_group(&self, group: &str) -> Result<Vec<CloudVm>, CloudError> {
        let request = ListVirtualMachines {
            group: Some(group.into()),
            ..ListVirtualMachines::default()
        };
        let vms = self.client.list_all_virtual_machines(&request).await?;
        Ok(vms.iter().map(|vm| self.cloud_vm(vm)).collect())
    }

    async fn destroy(&self, vm: &str) -> Result<(), CloudError> {
        const COMMAND: &str = "destroyVirtualMachine";
        let job = self.client.destroy_virtual_machine(vm, true).await?;
        self.client
            .wait_for_job(COMMAND, &job.jobid, JobWait::new(self.destroy_wait))
            .await?;
        Ok(())
    }
}

/// A CloudStack VM as the engine sees it; its member address is its IP and `port`.
pub fn cloud_vm(vm: &VirtualMachine, port: u16) -> CloudVm {
    let state = match vm.state {
        VmState::Starting => CloudState::Starting,
        VmState::Running => CloudState::Running,
        VmState::Destroyed | VmState::Expunging => CloudState::Gone,
        // Migrating keeps serving; Unknown is what a server sent without a state.
        VmState::Migrating => CloudState::Running,
        _ => CloudState::Broken,
    };
    CloudVm {
        id: vm.id.clone(),
        state,
        addr: vm
            .ip_address()
            .map(|ip| SocketAddr::new(IpAddr::V4(ip), port)),
        created: vm.created.clone(),
        displayname: vm.displayname.clone(),
    }
}
