//! Typed calls for what an autoscaler needs, each a thin layer over
//! [`CloudStackClient::call`]: parameters in, typed objects out.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::client::CloudStackClient;
use crate::envelope;
use crate::error::CloudError;
use crate::model::{
    AsyncJob, Capabilities, InstanceGroup, JobRef, Network, Page, ServiceOffering, Template,
    VirtualMachine, VmState, Zone,
};
use crate::params::Params;

/// Filters of `listZones`, `listServiceOfferings`, `listNetworks`: by id, by name or keyword,
/// within a zone.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub id: Option<String>,
    pub name: Option<String>,
    pub keyword: Option<String>,
    pub zoneid: Option<String>,
}

/// `listTemplates`' required `templatefilter`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TemplateFilter {
    Featured,
    SelfOwned,
    SelfExecutable,
    SharedExecutable,
    /// Owned or public, and deployable: what a deploy can use.
    #[default]
    Executable,
    Community,
    All,
}

impl TemplateFilter {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Featured => "featured",
            Self::SelfOwned => "self",
            Self::SelfExecutable => "selfexecutable",
            Self::SharedExecutable => "sharedexecutable",
            Self::Executable => "executable",
            Self::Community => "community",
            Self::All => "all",
        }
    }
}

/// `deployVirtualMachine` parameters.
#[derive(Debug, Clone, Default)]
pub struct DeployVirtualMachine {
    pub zoneid: String,
    pub templateid: String,
    pub serviceofferingid: String,
    pub networkids: Vec<String>,
    /// Host name (RFC 1123 label).
    pub name: Option<String>,
    pub displayname: Option<String>,
    /// Instance group; Ballast puts the autoscale group name here.
    pub group: Option<String>,
    /// User data, plain; the client Base64-encodes it as CloudStack wants.
    pub userdata: Option<String>,
    /// `startvm` (CloudStack's default: true).
    pub startvm: Option<bool>,
    /// Any other parameter (`details[0].key`, `keypair`, `affinitygroupids` ...).
    pub extra: Params,
}

/// `listVirtualMachines` filters and paging.
#[derive(Debug, Clone, Default)]
pub struct ListVirtualMachines {
    pub id: Option<String>,
    pub ids: Vec<String>,
    /// Instance group name; resolved to `groupid` through `listInstanceGroups`.
    pub group: Option<String>,
    pub groupid: Option<String>,
    pub name: Option<String>,
    pub state: Option<VmState>,
    pub zoneid: Option<String>,
    pub tags: Vec<(String, String)>,
    /// Admins: every account's VMs, not only the caller's.
    pub listall: bool,
    /// 1-based; `None` with `pagesize` `None` means the server's default page.
    pub page: Option<u32>,
    pub pagesize: Option<u32>,
}

/// `listAsyncJobs` filters.
#[derive(Debug, Clone, Default)]
pub struct ListAsyncJobs {
    /// Jobs started at or after this date (`2025-01-01T12:00:00+0000`).
    pub startdate: Option<String>,
    pub listall: bool,
}

/// The page size used when [`CloudStackClient::list_all_virtual_machines`] walks every page.
pub const PAGE_SIZE: u32 = 500;

impl CloudStackClient {
    /// `listCapabilities`: cheap, any user; a good credentials and reachability probe.
    pub async fn list_capabilities(&self) -> Result<Capabilities, CloudError> {
        const COMMAND: &str = "listCapabilities";
        let inner = self.call(COMMAND, &Params::new()).await?;
        envelope::object(COMMAND, inner, "capability")
    }

    pub async fn list_zones(&self, filter: &ListFilter) -> Result<Vec<Zone>, CloudError> {
        self.list("listZones", "zone", filter.to_params()).await
    }

    pub async fn list_service_offerings(
        &self,
        filter: &ListFilter,
    ) -> Result<Vec<ServiceOffering>, CloudError> {
        self.list(
            "listServiceOfferings",
            "serviceoffering",
            filter.to_params(),
        )
        .await
    }

    pub async fn list_templates(
        &self,
        templatefilter: TemplateFilter,
        filter: &ListFilter,
    ) -> Result<Vec<Template>, CloudError> {
        let params = filter
            .to_params()
            .with("templatefilter", templatefilter.as_str());
        self.list("listTemplates", "template", params).await
    }

    /// `listNetworks` (`name` is matched client-side: the command has only `keyword`).
    pub async fn list_networks(&self, filter: &ListFilter) -> Result<Vec<Network>, CloudError> {
        let without_name = ListFilter {
            name: None,
            keyword: filter.keyword.clone().or_else(|| filter.name.clone()),
            ..filter.clone()
        };
        let params = without_name.to_params();
        let networks: Vec<Network> = self.list("listNetworks", "network", params).await?;
        Ok(match &filter.name {
            Some(name) => networks.into_iter().filter(|n| &n.name == name).collect(),
            None => networks,
        })
    }

    pub async fn list_instance_groups(
        &self,
        name: Option<&str>,
    ) -> Result<Vec<InstanceGroup>, CloudError> {
        let mut params = Params::new();
        params.set_opt("name", name);
        self.list("listInstanceGroups", "instancegroup", params)
            .await
    }

    /// `deployVirtualMachine`: returns the new VM's `id` and the `jobid` to wait for
    /// (see [`CloudStackClient::wait_for_virtual_machine`]).
    pub async fn deploy_virtual_machine(
        &self,
        request: &DeployVirtualMachine,
    ) -> Result<JobRef, CloudError> {
        const COMMAND: &str = "deployVirtualMachine";
        let mut params = Params::new();
        params
            .set("zoneid", request.zoneid.as_str())
            .set("templateid", request.templateid.as_str())
            .set("serviceofferingid", request.serviceofferingid.as_str())
            .set_list("networkids", &request.networkids)
            .set_opt("name", request.name.as_deref())
            .set_opt("displayname", request.displayname.as_deref())
            .set_opt("group", request.group.as_deref())
            .set_opt(
                "userdata",
                request.userdata.as_ref().map(|u| STANDARD.encode(u)),
            )
            .set_opt("startvm", request.startvm)
            .extend(&request.extra);
        let inner = self.call(COMMAND, &params).await?;
        envelope::decode(COMMAND, "job", inner)
    }

    /// `destroyVirtualMachine`; `expunge` removes it at once instead of leaving it `Destroyed`.
    pub async fn destroy_virtual_machine(
        &self,
        id: &str,
        expunge: bool,
    ) -> Result<JobRef, CloudError> {
        let params = Params::new()
            .with("id", id)
            .with("expunge", expunge.to_string());
        self.async_call("destroyVirtualMachine", params).await
    }

    pub async fn start_virtual_machine(&self, id: &str) -> Result<JobRef, CloudError> {
        self.async_call("startVirtualMachine", Params::new().with("id", id))
            .await
    }

    /// `stopVirtualMachine`; `forced` stops it even if the guest does not shut down.
    pub async fn stop_virtual_machine(&self, id: &str, forced: bool) -> Result<JobRef, CloudError> {
        let params = Params::new()
            .with("id", id)
            .with("forced", forced.to_string());
        self.async_call("stopVirtualMachine", params).await
    }

    /// One page of `listVirtualMachines`. Filtering by `group` name costs one
    /// `listInstanceGroups` call first; an unknown group is an empty page.
    pub async fn list_virtual_machines(
        &self,
        request: &ListVirtualMachines,
    ) -> Result<Page<VirtualMachine>, CloudError> {
        const COMMAND: &str = "listVirtualMachines";
        let mut params = Params::new();
        let mut groupid = request.groupid.clone();
        if let (Some(group), None) = (&request.group, &groupid) {
            let groups = self.list_instance_groups(Some(group)).await?;
            match groups.into_iter().find(|g| &g.name == group) {
                Some(found) => groupid = Some(found.id),
                None => {
                    return Ok(Page {
                        count: 0,
                        items: Vec::new(),
                    });
                }
            }
        }
        params
            .set_opt("id", request.id.as_deref())
            .set_list("ids", &request.ids)
            .set_opt("groupid", groupid)
            .set_opt("name", request.name.as_deref())
            .set_opt("state", request.state.as_ref().map(VmState::as_str))
            .set_opt("zoneid", request.zoneid.as_deref())
            .set_map("tags", &request.tags)
            .set_opt("page", request.page)
            .set_opt("pagesize", request.pagesize);
        if request.listall {
            params.set("listall", "true");
        }
        let inner = self.call(COMMAND, &params).await?;
        let mut page: Page<VirtualMachine> = envelope::page(COMMAND, inner, "virtualmachine")?;
        // `name` is a substring match on the server; callers mean the exact name.
        if let Some(name) = &request.name {
            page.items.retain(|vm| &vm.name == name);
        }
        Ok(page)
    }

    /// Every matching VM, walking the pages (`page`/`pagesize` of `request` are ignored).
    pub async fn list_all_virtual_machines(
        &self,
        request: &ListVirtualMachines,
    ) -> Result<Vec<VirtualMachine>, CloudError> {
        let mut all = Vec::new();
        let mut request = request.clone();
        request.pagesize = Some(PAGE_SIZE);
        for page in 1.. {
            request.page = Some(page);
            let Page { count, items } = self.list_virtual_machines(&request).await?;
            let done = items.len() < PAGE_SIZE as usize;
            all.extend(items);
            if done || all.len() as u64 >= count {
                break;
            }
        }
        Ok(all)
    }

    pub async fn query_async_job_result(&self, jobid: &str) -> Result<AsyncJob, CloudError> {
        const COMMAND: &str = "queryAsyncJobResult";
        let inner = self
            .call(COMMAND, &Params::new().with("jobid", jobid))
            .await?;
        envelope::decode(COMMAND, "job", inner)
    }

    pub async fn list_async_jobs(
        &self,
        request: &ListAsyncJobs,
    ) -> Result<Vec<AsyncJob>, CloudError> {
        let mut params = Params::new();
        params.set_opt("startdate", request.startdate.as_deref());
        if request.listall {
            params.set("listall", "true");
        }
        self.list("listAsyncJobs", "asyncjobs", params).await
    }

    /// `createTags` on VMs (`resourcetype=UserVm`); returns the job.
    pub async fn tag_virtual_machines(
        &self,
        ids: &[String],
        tags: &[(String, String)],
    ) -> Result<JobRef, CloudError> {
        let mut params = Params::new();
        params
            .set("resourcetype", "UserVm")
            .set_list("resourceids", ids)
            .set_map("tags", tags);
        self.async_call("createTags", params).await
    }

    async fn async_call(&self, command: &str, params: Params) -> Result<JobRef, CloudError> {
        let inner = self.call(command, &params).await?;
        envelope::decode(command, "job", inner)
    }

    async fn list<T: serde::de::DeserializeOwned>(
        &self,
        command: &str,
        key: &str,
        params: Params,
    ) -> Result<Vec<T>, CloudError> {
        let inner = self.call(command, &params).await?;
        Ok(envelope::page(command, inner, key)?.items)
    }
}

impl ListFilter {
    pub fn by_id(id: impl Into<String>) -> Self {
        Self {
            id: Some(id.into()),
            ..Self::default()
        }
    }

    pub fn by_name(name: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            ..Self::default()
        }
    }

    fn to_params(&self) -> Params {
        let mut params = Params::new();
        params
            .set_opt("id", self.id.as_deref())
            .set_opt("name", self.name.as_deref())
            .set_opt("keyword", self.keyword.as_deref())
            .set_opt("zoneid", self.zoneid.as_deref());
        params
    }
}
