//! The read-only commands: `list*` and `queryAsyncJobResult`, with CloudStack's filters,
//! visibility (a user sees its account's VMs and jobs; an admin with `listall=true` sees all)
//! and paging (`page` is 1-based, `pagesize` at most 500, `-1` for everything).

use serde_json::{Value, json};

use super::api_error::ApiError;
use super::args::Args;
use super::config::ApiUser;
use super::state::{Shared, Vm};
use super::{jobs, render};
use crate::model::VmState;

const MAX_PAGE_SIZE: i64 = 500;

pub fn zones(shared: &Shared, args: &Args) -> Result<Value, ApiError> {
    let config = &shared.config;
    let items = (0..config.zones.len())
        .filter(|&i| {
            let zone = &config.zones[i];
            matches(args.get("id"), &zone.id)
                && matches(args.get("name"), &zone.name)
                && contains(args.get("keyword"), &zone.name)
        })
        .map(|i| render::zone(config, i))
        .collect();
    page(args, "zone", items)
}

pub fn service_offerings(shared: &Shared, args: &Args) -> Result<Value, ApiError> {
    let config = &shared.config;
    if args.bool("issystem", false)? {
        return page(args, "serviceoffering", Vec::new());
    }
    let items = (0..config.offerings.len())
        .filter(|&i| {
            let offering = &config.offerings[i];
            matches(args.get("id"), &offering.id)
                && matches(args.get("name"), &offering.name)
                && contains(args.get("keyword"), &offering.name)
        })
        .map(|i| render::offering(config, i))
        .collect();
    page(args, "serviceoffering", items)
}

pub fn templates(shared: &Shared, args: &Args) -> Result<Value, ApiError> {
    let config = &shared.config;
    let filter = args.require("templatefilter")?;
    // Every local-cloud template is public and featured, owned by the system account.
    let shown = match filter {
        "featured" | "executable" | "all" => true,
        "self" | "selfexecutable" | "sharedexecutable" | "community" => false,
        other => return Err(args.bad("templatefilter", other)),
    };
    let mut items = Vec::new();
    for template in config.templates.iter().filter(|_| shown) {
        if !matches(args.get("id"), &template.id)
            || !matches(args.get("name"), &template.name)
            || !contains(args.get("keyword"), &template.name)
        {
            continue;
        }
        for &zone in &template.zones {
            if matches(args.get("zoneid"), &config.zones[zone].id) {
                items.push(render::template(config, template, zone));
            }
        }
    }
    page(args, "template", items)
}

pub fn networks(shared: &Shared, args: &Args) -> Result<Value, ApiError> {
    let config = &shared.config;
    let items = (0..config.zones.len())
        .filter(|&i| {
            let zone = &config.zones[i];
            matches(args.get("id"), &zone.network_id)
                && matches(args.get("zoneid"), &zone.id)
                && contains(args.get("keyword"), &zone.network_name)
        })
        .map(|i| render::network(config, i))
        .collect();
    page(args, "network", items)
}

pub fn hosts(shared: &Shared, user: &ApiUser, args: &Args) -> Result<Value, ApiError> {
    if !user.admin {
        return Err(ApiError::unsupported(args.command()));
    }
    let config = &shared.config;
    let state = shared.lock();
    let items = (0..config.hosts.len())
        .filter(|&i| {
            let host = &config.hosts[i];
            matches(args.get("id"), &host.id)
                && matches(args.get("name"), &host.name)
                && matches(args.get("zoneid"), &config.zones[host.zone].id)
                && args
                    .get("type")
                    .is_none_or(|t| t.eq_ignore_ascii_case("Routing"))
        })
        .map(|i| render::host(config, &state, i))
        .collect();
    page(args, "host", items)
}

pub fn instance_groups(shared: &Shared, user: &ApiUser, args: &Args) -> Result<Value, ApiError> {
    let listall = args.bool("listall", false)?;
    let state = shared.lock();
    let items = state
        .groups
        .iter()
        .filter(|g| visible(user, &g.accountid, listall))
        .filter(|g| matches(args.get("id"), &g.id) && matches(args.get("name"), &g.name))
        .map(render::group)
        .collect();
    page(args, "instancegroup", items)
}

pub fn virtual_machines(shared: &Shared, user: &ApiUser, args: &Args) -> Result<Value, ApiError> {
    let listall = args.bool("listall", false)?;
    let ids = args.list("ids");
    let tags = args.map("tags");
    let state_filter = args.get("state");
    let state = shared.lock();
    let items = state
        .vms
        .iter()
        .filter(|vm| visible(user, &vm.accountid, listall))
        .filter(|vm| {
            matches(args.get("id"), &vm.id)
                && (ids.is_empty() || ids.contains(&vm.id))
                && contains(args.get("name"), &vm.name)
                && matches(args.get("zoneid"), &shared.config.zones[vm.zone].id)
                && matches(
                    args.get("templateid"),
                    &shared.config.templates[vm.template].id,
                )
                && matches(
                    args.get("serviceofferingid"),
                    &shared.config.offerings[vm.offering].id,
                )
                && args
                    .get("groupid")
                    .is_none_or(|g| vm.group.as_deref() == Some(g))
                && args.get("hostid").is_none_or(|h| {
                    vm.host
                        .is_some_and(|host| shared.config.hosts[host].id == h)
                })
                && args
                    .get("networkid")
                    .is_none_or(|n| shared.config.zones[vm.zone].network_id == n)
                && state_matches(state_filter, &vm.state)
                && keyword_matches(args.get("keyword"), vm)
                && tags.iter().all(|tag| vm.tags.contains(tag))
        })
        .map(|vm| render::vm(&shared.config, &state, vm))
        .collect();
    page(args, "virtualmachine", items)
}

/// `getVirtualMachineUserData`: the Base64 user data the VM was deployed with.
pub fn user_data(shared: &Shared, user: &ApiUser, args: &Args) -> Result<Value, ApiError> {
    let id = args.require("virtualmachineid")?;
    let state = shared.lock();
    match state.vm(id) {
        Some(vm) if user.admin || vm.accountid == user.accountid => Ok(json!({
            "virtualmachineuserdata": {
                "virtualmachineid": vm.id,
                "userdata": vm.userdata.clone().unwrap_or_default(),
            }
        })),
        _ => Err(args.bad("virtualmachineid", id)),
    }
}

pub fn query_job(shared: &Shared, user: &ApiUser, args: &Args) -> Result<Value, ApiError> {
    let jobid = args.require("jobid")?;
    let state = shared.lock();
    match state.job(jobid) {
        Some(job) if visible(user, &job.accountid, true) => Ok(jobs::render(job)),
        _ => Err(args.bad("jobid", jobid)),
    }
}

pub fn async_jobs(shared: &Shared, user: &ApiUser, args: &Args) -> Result<Value, ApiError> {
    let listall = args.bool("listall", false)?;
    let since = match args.get("startdate") {
        Some(text) => Some(crate::dates::parse(text).ok_or_else(|| args.bad("startdate", text))?),
        None => None,
    };
    let state = shared.lock();
    let items = state
        .jobs
        .iter()
        .filter(|job| visible(user, &job.accountid, listall))
        .filter(|job| since.is_none_or(|since| crate::dates::unix_seconds(job.created) >= since))
        .map(jobs::render)
        .collect();
    page(args, "asyncjobs", items)
}

/// Lists of things the local cloud does not have (what libcloud's `list_nodes` also asks for).
pub fn nothing(_args: &Args) -> Result<Value, ApiError> {
    Ok(json!({}))
}

/// Applies `page`/`pagesize` and wraps the items.
fn page(args: &Args, key: &str, items: Vec<Value>) -> Result<Value, ApiError> {
    let count = items.len();
    let pagesize = args.number("pagesize")?;
    let page = args.number("page")?;
    let size = match pagesize {
        Some(-1) => None,
        Some(size) if (1..=MAX_PAGE_SIZE).contains(&size) => Some(size),
        Some(size) if size > MAX_PAGE_SIZE => {
            return Err(ApiError::invalid(format!(
                "Page size can't exceed max allowed page size value: {MAX_PAGE_SIZE}"
            )));
        }
        Some(size) => return Err(args.bad("pagesize", &size.to_string())),
        None => page.map(|_| MAX_PAGE_SIZE),
    };
    let items = match size {
        None => items,
        Some(size) => {
            let page = page.unwrap_or(1);
            if page < 1 {
                return Err(args.bad("page", &page.to_string()));
            }
            let skip = usize::try_from((page - 1).saturating_mul(size)).unwrap_or(usize::MAX);
            let take = usize::try_from(size).unwrap_or(usize::MAX);
            items.into_iter().skip(skip).take(take).collect()
        }
    };
    Ok(render::list(key, count, items))
}

fn visible(user: &ApiUser, accountid: &str, listall: bool) -> bool {
    (user.admin && listall) || user.accountid == accountid
}

fn matches(filter: Option<&str>, value: &str) -> bool {
    filter.is_none_or(|f| f == value)
}

fn contains(filter: Option<&str>, value: &str) -> bool {
    filter.is_none_or(|f| value.to_lowercase().contains(&f.to_lowercase()))
}

fn state_matches(filter: Option<&str>, state: &VmState) -> bool {
    match filter {
        None => true,
        Some(f) if f.eq_ignore_ascii_case("Present") => {
            !matches!(state, VmState::Destroyed | VmState::Expunging)
        }
        Some(f) => state.as_str().eq_ignore_ascii_case(f),
    }
}

fn keyword_matches(keyword: Option<&str>, vm: &Vm) -> bool {
    keyword.is_none_or(|k| {
        let k = k.to_lowercase();
        [vm.name.as_str(), vm.displayname.as_str(), vm.state.as_str()]
            .iter()
            .any(|field| field.to_lowercase().contains(&k))
            || vm.ip.to_string().contains(&k)
    })
}
