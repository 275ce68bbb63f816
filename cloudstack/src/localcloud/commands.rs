//! Command name → handler. Names are matched exactly, as CloudStack does; anything else is 432.

use std::sync::Arc;

use serde_json::Value;

use super::api_error::ApiError;
use super::args::Args;
use super::config::ApiUser;
use super::state::Shared;
use super::{queries, render, vm_commands};

/// Every command the local cloud answers.
pub const COMMANDS: &[&str] = &[
    "listCapabilities",
    "listZones",
    "listServiceOfferings",
    "listTemplates",
    "listNetworks",
    "listHosts",
    "listInstanceGroups",
    "listVirtualMachines",
    "getVirtualMachineUserData",
    "queryAsyncJobResult",
    "listAsyncJobs",
    "deployVirtualMachine",
    "startVirtualMachine",
    "stopVirtualMachine",
    "rebootVirtualMachine",
    "destroyVirtualMachine",
    "expungeVirtualMachine",
    "recoverVirtualMachine",
    "createTags",
    "deleteTags",
    "listPublicIpAddresses",
    "listPortForwardingRules",
    "listIpForwardingRules",
];

/// Runs one authenticated command; the value is the inner object of the answer.
pub fn dispatch(shared: &Arc<Shared>, user: &ApiUser, args: &Args) -> Result<Value, ApiError> {
    match args.command() {
        "listCapabilities" => Ok(render::capabilities(&shared.config)),
        "listZones" => queries::zones(shared, args),
        "listServiceOfferings" => queries::service_offerings(shared, args),
        "listTemplates" => queries::templates(shared, args),
        "listNetworks" => queries::networks(shared, args),
        "listHosts" => queries::hosts(shared, user, args),
        "listInstanceGroups" => queries::instance_groups(shared, user, args),
        "listVirtualMachines" => queries::virtual_machines(shared, user, args),
        "getVirtualMachineUserData" => queries::user_data(shared, user, args),
        "queryAsyncJobResult" => queries::query_job(shared, user, args),
        "listAsyncJobs" => queries::async_jobs(shared, user, args),
        "deployVirtualMachine" => vm_commands::deploy(shared, user, args),
        "startVirtualMachine" => vm_commands::start(shared, user, args),
        "stopVirtualMachine" => vm_commands::stop(shared, user, args),
        "rebootVirtualMachine" => vm_commands::reboot(shared, user, args),
        "destroyVirtualMachine" => vm_commands::destroy(shared, user, args, false),
        "expungeVirtualMachine" => vm_commands::destroy(shared, user, args, true),
        "recoverVirtualMachine" => vm_commands::recover(shared, user, args),
        "createTags" => vm_commands::tags(shared, user, args, true),
        "deleteTags" => vm_commands::tags(shared, user, args, false),
        "listPublicIpAddresses" | "listPortForwardingRules" | "listIpForwardingRules" => {
            queries::nothing(args)
        }
        other => Err(ApiError::unsupported(other)),
    }
}
