//! The synchronous half of the VM commands: check the parameters and the VM's state, record
//! the change, create the async job, and hand the rest to a [`super::lifecycle`] task.

use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::api_error::ApiError;
use super::args::Args;
use super::config::ApiUser;
use super::ids;
use super::lifecycle;
use super::limits;
use super::state::{Shared, State, Vm};
use crate::model::VmState;

const DEPLOY_CMD: &str = "org.apache.cloudstack.api.command.user.vm.DeployVMCmd";
const START_CMD: &str = "org.apache.cloudstack.api.command.user.vm.StartVMCmd";
const STOP_CMD: &str = "org.apache.cloudstack.api.command.user.vm.StopVMCmd";
const REBOOT_CMD: &str = "org.apache.cloudstack.api.command.user.vm.RebootVMCmd";
const DESTROY_CMD: &str = "org.apache.cloudstack.api.command.user.vm.DestroyVMCmd";
const EXPUNGE_CMD: &str = "org.apache.cloudstack.api.command.admin.vm.ExpungeVMCmd";
const TAGS_CMD: &str = "org.apache.cloudstack.api.command.user.tag.CreateTagsCmd";
const UNTAG_CMD: &str = "org.apache.cloudstack.api.command.user.tag.DeleteTagsCmd";

/// User data larger than this is refused (CloudStack's default for POST is 1 MB, Base64).
const MAX_USERDATA: usize = 1024 * 1024;

pub fn deploy(shared: &Arc<Shared>, user: &ApiUser, args: &Args) -> Result<Value, ApiError> {
    let config = &shared.config;
    let zone = find(args, "zoneid", config.zones.iter().map(|z| z.id.as_str()))?;
    let offering = find(
        args,
        "serviceofferingid",
        config.offerings.iter().map(|o| o.id.as_str()),
    )?;
    let template = find(
        args,
        "templateid",
        config.templates.iter().map(|t| t.id.as_str()),
    )?;
    if !config.templates[template].zones.contains(&zone) {
        return Err(ApiError::invalid(format!(
            "Please specify a valid template: template {} is not available in zone {}",
            config.templates[template].name, config.zones[zone].name
        )));
    }
    for network in args.list("networkids") {
        if network != config.zones[zone].network_id {
            return Err(args.bad("networkids", &network));
        }
    }
    let startvm = args.bool("startvm", true)?;
    if let Some(name) = args.get("name") {
        check_hostname(name)?;
    }
    let userdata = args.get("userdata").map(str::to_string);
    if let Some(data) = &userdata
        && (data.len() > MAX_USERDATA || STANDARD.decode(data).is_err())
    {
        return Err(ApiError::invalid(
            "User data is not base64 encoded or is too long",
        ));
    }

    let mut state = shared.lock();
    limits::check_user_vm(config, &state, &user.account, &user.accountid)?;
    let id = ids::random();
    let name = args
        .get("name")
        .map_or_else(|| format!("VM-{id}"), str::to_string);
    let taken = state.vms.iter().any(|vm| {
        vm.zone == zone && vm.name.eq_ignore_ascii_case(&name) && vm.state != VmState::Expunging
    });
    if taken {
        return Err(ApiError::invalid(format!(
            "The vm with hostName {name} already exists in the network domain: cs.internal; network={}",
            config.zones[zone].network_name
        )));
    }
    let ip = state.addresses.allocate().ok_or_else(|| {
        ApiError::address_capacity(format!(
            "Insufficient address capacity: no free address left in {}",
            config.address_range
        ))
    })?;
    let group = args
        .get("group")
        .map(|g| state.group_for(g, &user.account, &user.accountid));
    let fault = state.faults.take_deploy_fault();
    let token = CancellationToken::new();
    let job = state.create_job(user, DEPLOY_CMD, &id);
    let octets = ip.octets();
    state.vms.push(Vm {
        id: id.clone(),
        displayname: args.get("displayname").unwrap_or(&name).to_string(),
        name,
        account: user.account.clone(),
        accountid: user.accountid.clone(),
        userid: user.id.clone(),
        username: user.username.clone(),
        group,
        zone,
        offering,
        template,
        host: None,
        last_host: None,
        ip,
        mac: format!(
            "02:00:{:02x}:{:02x}:{:02x}:{:02x}",
            octets[0], octets[1], octets[2], octets[3]
        ),
        nic_id: ids::random(),
        state: if startvm {
            VmState::Starting
        } else {
            VmState::Stopped
        },
        created: SystemTime::now(),
        tags: Vec::new(),
        userdata,
        job: Some(job.clone()),
        op: Some(token.clone()),
        process: None,
        generation: 0,
    });
    drop(state);
    let task = lifecycle::deploy(
        shared.clone(),
        id.clone(),
        job.clone(),
        token,
        fault,
        startvm,
    );
    shared.tasks.spawn(task);
    Ok(json!({ "id": id, "jobid": job }))
}

pub fn start(shared: &Arc<Shared>, user: &ApiUser, args: &Args) -> Result<Value, ApiError> {
    let mut state = shared.lock();
    let id = owned_vm(&state, user, args)?;
    let vm_state = state.vm(&id).map(|vm| vm.state.clone()).unwrap_or_default();
    match vm_state {
        VmState::Running => return Ok(done_at_once(shared, &mut state, user, START_CMD, &id)),
        VmState::Stopped => {}
        _ if busy(&state, &id) => return Err(concurrent(&id)),
        other => {
            return Err(ApiError::invalid(format!(
                "Unable to start VM {id}: it is {other}"
            )));
        }
    }
    let job = state.create_job(user, START_CMD, &id);
    let token = CancellationToken::new();
    if let Some(vm) = state.vm_mut(&id) {
        vm.job = Some(job.clone());
        vm.op = Some(token.clone());
        vm.state = VmState::Starting;
    }
    drop(state);
    shared
        .tasks
        .spawn(lifecycle::start(shared.clone(), id, job.clone(), token));
    Ok(json!({ "jobid": job }))
}

pub fn stop(shared: &Arc<Shared>, user: &ApiUser, args: &Args) -> Result<Value, ApiError> {
    let forced = args.bool("forced", false)?;
    let mut state = shared.lock();
    let id = owned_vm(&state, user, args)?;
    let vm_state = state.vm(&id).map(|vm| vm.state.clone()).unwrap_or_default();
    match vm_state {
        VmState::Stopped => return Ok(done_at_once(shared, &mut state, user, STOP_CMD, &id)),
        VmState::Running if !busy(&state, &id) => {}
        _ if busy(&state, &id) => return Err(concurrent(&id)),
        other => {
            return Err(ApiError::invalid(format!(
                "Unable to stop VM {id}: it is {other}"
            )));
        }
    }
    let job = state.create_job(user, STOP_CMD, &id);
    if let Some(vm) = state.vm_mut(&id) {
        vm.job = Some(job.clone());
        vm.state = VmState::Stopping;
    }
    drop(state);
    shared
        .tasks
        .spawn(lifecycle::stop(shared.clone(), id, job.clone(), forced));
    Ok(json!({ "jobid": job }))
}

pub fn reboot(shared: &Arc<Shared>, user: &ApiUser, args: &Args) -> Result<Value, ApiError> {
    let mut state = shared.lock();
    let id = owned_vm(&state, user, args)?;
    let vm_state = state.vm(&id).map(|vm| vm.state.clone()).unwrap_or_default();
    if busy(&state, &id) {
        return Err(concurrent(&id));
    }
    if vm_state != VmState::Running {
        return Err(ApiError::invalid(format!(
            "Unable to reboot VM {id}: it is {vm_state}"
        )));
    }
    let job = state.create_job(user, REBOOT_CMD, &id);
    let token = CancellationToken::new();
    if let Some(vm) = state.vm_mut(&id) {
        vm.job = Some(job.clone());
        vm.op = Some(token.clone());
    }
    drop(state);
    shared
        .tasks
        .spawn(lifecycle::reboot(shared.clone(), id, job.clone(), token));
    Ok(json!({ "jobid": job }))
}

/// `destroyVirtualMachine`, and `expungeVirtualMachine` (`expunge_only`: a `Destroyed` VM).
pub fn destroy(
    shared: &Arc<Shared>,
    user: &ApiUser,
    args: &Args,
    expunge_only: bool,
) -> Result<Value, ApiError> {
    let expunge = expunge_only || args.bool("expunge", false)?;
    if expunge && !user.admin && !shared.config.allow_user_expunge {
        return Err(ApiError::permission(
            "Parameter expunge can be passed by Admin only. Or when the allow.user.expunge.recover.vm key is set.",
        ));
    }
    let mut state = shared.lock();
    let id = owned_vm(&state, user, args)?;
    let vm_state = state.vm(&id).map(|vm| vm.state.clone()).unwrap_or_default();
    match vm_state {
        VmState::Expunging => return Err(ApiError::invalid(format!("VM {id} is being expunged"))),
        VmState::Destroyed if !expunge => {
            return Err(ApiError::invalid(format!("VM {id} is already destroyed")));
        }
        VmState::Destroyed | VmState::Error => {}
        _ if expunge_only => {
            return Err(ApiError::invalid(format!(
                "Please destroy VM {id} before expunging it"
            )));
        }
        _ => {}
    }
    let cmd = if expunge_only {
        EXPUNGE_CMD
    } else {
        DESTROY_CMD
    };
    let job = state.create_job(user, cmd, &id);
    if let Some(vm) = state.vm_mut(&id) {
        if let Some(op) = vm.op.take() {
            op.cancel();
        }
        vm.job = Some(job.clone());
        vm.generation += 1;
    }
    drop(state);
    shared
        .tasks
        .spawn(lifecycle::destroy(shared.clone(), id, job.clone(), expunge));
    Ok(json!({ "jobid": job }))
}

/// `recoverVirtualMachine` (synchronous): `Destroyed` → `Stopped`.
pub fn recover(shared: &Arc<Shared>, user: &ApiUser, args: &Args) -> Result<Value, ApiError> {
    let mut state = shared.lock();
    let id = owned_vm(&state, user, args)?;
    let Some(vm) = state.vm(&id) else {
        return Err(args.bad("id", &id));
    };
    if vm.state != VmState::Destroyed {
        return Err(ApiError::invalid(format!(
            "VM {id} is not destroyed; it is {}",
            vm.state
        )));
    }
    // A recovered VM counts again, against its owner's limit.
    limits::check_user_vm(&shared.config, &state, &vm.account, &vm.accountid)?;
    let Some(vm) = state.vm_mut(&id) else {
        return Err(args.bad("id", &id));
    };
    vm.state = VmState::Stopped;
    vm.generation += 1;
    Ok(lifecycle::vm_result(shared, &state, &id))
}

/// `createTags` / `deleteTags` on VMs (`resourcetype=UserVm`); done at once, reported as a job.
pub fn tags(
    shared: &Arc<Shared>,
    user: &ApiUser,
    args: &Args,
    add: bool,
) -> Result<Value, ApiError> {
    let resourcetype = args.require("resourcetype")?;
    if !resourcetype.eq_ignore_ascii_case("UserVm") {
        return Err(ApiError::invalid(format!(
            "The local cloud only tags UserVm resources, not {resourcetype}"
        )));
    }
    let ids = args.list("resourceids");
    if ids.is_empty() {
        return Err(ApiError::missing(args.command(), "resourceids"));
    }
    let tags = args.map("tags");
    if add && tags.is_empty() {
        return Err(ApiError::missing(args.command(), "tags"));
    }
    let mut state = shared.lock();
    for id in &ids {
        if !state
            .vm(id)
            .is_some_and(|vm| user.admin || vm.accountid == user.accountid)
        {
            return Err(args.bad("resourceids", id));
        }
    }
    for id in &ids {
        let Some(vm) = state.vm_mut(id) else { continue };
        if add {
            for (key, value) in &tags {
                vm.tags.retain(|(k, _)| k != key);
                vm.tags.push((key.clone(), value.clone()));
            }
        } else if tags.is_empty() {
            vm.tags.clear();
        } else {
            vm.tags.retain(|(k, v)| {
                !tags
                    .iter()
                    .any(|(key, value)| key == k && (value.is_empty() || value == v))
            });
        }
    }
    let cmd = if add { TAGS_CMD } else { UNTAG_CMD };
    let job = state.create_job(user, cmd, &ids[0]);
    state.succeed_job(&job, json!({ "success": true }));
    Ok(json!({ "jobid": job }))
}

/// A job that is already done (start a running VM, stop a stopped one).
fn done_at_once(
    shared: &Shared,
    state: &mut State,
    user: &ApiUser,
    cmd: &'static str,
    id: &str,
) -> Value {
    let job = state.create_job(user, cmd, id);
    let result = lifecycle::vm_result(shared, state, id);
    state.succeed_job(&job, result);
    json!({ "jobid": job })
}

/// The `id` parameter, naming a VM the user may act on.
fn owned_vm(state: &State, user: &ApiUser, args: &Args) -> Result<String, ApiError> {
    let id = args.require("id")?;
    match state.vm(id) {
        Some(vm) if user.admin || vm.accountid == user.accountid => Ok(id.to_string()),
        _ => Err(args.bad("id", id)),
    }
}

fn busy(state: &State, id: &str) -> bool {
    state
        .vm(id)
        .is_some_and(|vm| vm.job.is_some() || vm.state.is_transitional())
}

fn concurrent(id: &str) -> ApiError {
    ApiError::concurrent(format!(
        "There is other active operation on VM {id}; try again when it has finished"
    ))
}

/// The index of the entity whose id is the (required) parameter `name`.
fn find<'a>(
    args: &Args,
    name: &str,
    ids: impl Iterator<Item = &'a str>,
) -> Result<usize, ApiError> {
    let wanted = args.require(name)?;
    ids.into_iter()
        .position(|id| id == wanted)
        .ok_or_else(|| args.bad(name, wanted))
}

/// CloudStack's host name rule.
fn check_hostname(name: &str) -> Result<(), ApiError> {
    let ok = (1..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "Invalid name. Vm name can contain ASCII letters 'a' through 'z', the digits '0' through '9', and the hyphen ('-'), must be between 1 and 63 characters long, and can't start or end with \"-\" and can't start with digit",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        for good in ["web-1", "a", "Web-X"] {
            assert!(check_hostname(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "a-", "1a", "a_b", "a.b", &"a".repeat(64)] {
            assert_eq!(
                check_hostname(bad).expect_err("bad").errorcode,
                431,
                "{bad}"
            );
        }
    }
}
