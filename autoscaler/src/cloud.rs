//! [`Cloud`]: what the driver needs from a CloudStack-compatible API. The CloudStack client
//! implements it ([`crate::cloudstack`]); the tests' in-memory fakes implement it too.

use std::future::Future;

use cloudstack::CloudError;

use crate::core::CloudVm;

/// Deploys, watches and destroys the VMs of one autoscale group.
pub trait Cloud: Send + Sync + 'static {
    /// Asks for one VM in the group. Returns as soon as the cloud accepted the request.
    fn deploy(
        &self,
        request: &DeployRequest,
    ) -> impl Future<Output = Result<Deployment, CloudError>> + Send;

    /// Where the deploy's job stands.
    fn job_status(&self, job: &str) -> impl Future<Output = Result<JobState, CloudError>> + Send;

    /// Every VM of the group (by CloudStack's `group` field), whatever its state.
    fn list_group(
        &self,
        group: &str,
    ) -> impl Future<Output = Result<Vec<CloudVm>, CloudError>> + Send;

    /// Destroys a VM with expunge and waits for the job.
    fn destroy(&self, vm: &str) -> impl Future<Output = Result<(), CloudError>> + Send;
}

/// One VM to deploy: ownership is visible in the cloud's UI through `group` and `displayname`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployRequest {
    /// CloudStack's instance group: the autoscale group's name.
    pub group: String,
    pub displayname: String,
}

/// A deploy the cloud accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub vm: String,
    pub job: String,
}

/// A deploy job's state.
#[derive(Debug)]
pub enum JobState {
    Pending,
    /// Done: the VM as the job reports it (Running, with its address).
    Done(CloudVm),
    Failed(CloudError),
}
