//! Resource limits, as CloudStack's `ResourceLimitManager` applies them: an account may have
//! at most `max_account_user_vms` VMs (`user_vm`). Every VM of the account counts, whatever its
//! state, until it is destroyed. A deploy (or a recover) over the limit is refused at once with
//! CloudStack's `ResourceAllocationException` (535, cserrorcode 4370), before anything exists.
//!
//! Unlike CloudStack, where the root admin has no limits, admin accounts are limited too: each
//! local-cloud VM is a process on this machine.

use super::api_error::ApiError;
use super::config::LocalCloudConfig;
use super::state::State;
use crate::model::VmState;

/// Whether account `account` (id `accountid`) may have one more VM.
pub fn check_user_vm(
    config: &LocalCloudConfig,
    state: &State,
    account: &str,
    accountid: &str,
) -> Result<(), ApiError> {
    let Some(limit) = config.max_account_user_vms else {
        return Ok(());
    };
    let current = state
        .vms
        .iter()
        .filter(|vm| vm.accountid == accountid)
        .filter(|vm| !matches!(vm.state, VmState::Destroyed | VmState::Expunging))
        .count();
    if current < usize::try_from(limit).unwrap_or(usize::MAX) {
        return Ok(());
    }
    tracing::info!(
        account,
        limit,
        current,
        "deploy refused: the account's VM limit is reached"
    );
    Err(ApiError::resource_allocation(format!(
        "Maximum amount of resources of Type = 'user_vm' for Account Name = {account} in Domain Id = 1 \
         is exceeded: Account Resource Limit = {limit}, Current Account Resource Amount = \
         {current}, Requested Resource Amount = 1."
    )))
}
