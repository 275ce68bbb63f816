//! CloudStack's JSON shapes for the local cloud's objects, and the list wrapper
//! (`{"count": N, "<item>": [...]}`, or `{}` when nothing matched).

use serde_json::{Value, json};

use super::config::{LocalCloudConfig, TemplateSpec};
use super::state::{InstanceGroup, State, Vm};
use crate::dates;

pub const VERSION: &str = "4.20.0.0";
pub const DOMAIN_ID: &str = "2b3b3b52-7f4c-5f5e-9c4e-6c6f63616c00";
const HYPERVISOR: &str = "Simulator";
const OS_TYPE_ID: &str = "1d5e2a5e-0c7e-5e33-8a5e-6c696e757800";
const OS_TYPE_NAME: &str = "Other Linux (64-bit)";

/// A list answer: `{}` when `count` is 0, else `count` and the items under `key`.
pub fn list(key: &str, count: usize, items: Vec<Value>) -> Value {
    if count == 0 {
        return json!({});
    }
    let mut out = json!({ "count": count });
    out[key] = Value::Array(items);
    out
}

pub fn zone(config: &LocalCloudConfig, index: usize) -> Value {
    let zone = &config.zones[index];
    json!({
        "id": zone.id,
        "name": zone.name,
        "networktype": "Advanced",
        "allocationstate": "Enabled",
        "securitygroupsenabled": false,
        "localstorageenabled": true,
        "dhcpprovider": "VirtualRouter",
        "dns1": "127.0.0.1",
        "internaldns1": "127.0.0.1",
        "guestcidraddress": config.address_range.to_string(),
        "zonetoken": zone.id,
        "hasannotations": false,
        "tags": [],
    })
}

pub fn offering(config: &LocalCloudConfig, index: usize) -> Value {
    let offering = &config.offerings[index];
    json!({
        "id": offering.id,
        "name": offering.name,
        "displaytext": offering.displaytext,
        "cpunumber": offering.cpunumber,
        "cpuspeed": offering.cpuspeed,
        "memory": offering.memory,
        "offerha": offering.offerha,
        "limitcpuuse": false,
        "isvolatile": false,
        "iscustomized": false,
        "issystem": false,
        "defaultuse": false,
        "storagetype": "shared",
        "provisioningtype": "thin",
        "dynamicscalingenabled": false,
        "created": dates::format(std::time::UNIX_EPOCH),
    })
}

pub fn template(config: &LocalCloudConfig, template: &TemplateSpec, zone: usize) -> Value {
    let zone = &config.zones[zone];
    json!({
        "id": template.id,
        "name": template.name,
        "displaytext": template.displaytext,
        "ispublic": true,
        "isfeatured": true,
        "isextractable": false,
        "isready": true,
        "status": "Download Complete",
        "zoneid": zone.id,
        "zonename": zone.name,
        "hypervisor": HYPERVISOR,
        "format": "QCOW2",
        "ostypeid": OS_TYPE_ID,
        "ostypename": OS_TYPE_NAME,
        "passwordenabled": false,
        "sshkeyenabled": false,
        "isdynamicallyscalable": false,
        "templatetype": "USER",
        "account": "system",
        "domain": "ROOT",
        "domainid": DOMAIN_ID,
        "size": 2_147_483_648_u64,
        "crossZones": false,
        "created": dates::format(std::time::UNIX_EPOCH),
        "tags": [],
        "details": { "ballast.port": template.port.to_string() },
    })
}

pub fn network(config: &LocalCloudConfig, zone_index: usize) -> Value {
    let zone = &config.zones[zone_index];
    let range = config.address_range;
    let gateway = std::net::Ipv4Addr::from(range.usable().0);
    json!({
        "id": zone.network_id,
        "name": zone.network_name,
        "displaytext": zone.network_name,
        "zoneid": zone.id,
        "zonename": zone.name,
        "cidr": range.to_string(),
        "gateway": gateway.to_string(),
        "netmask": range.netmask().to_string(),
        "type": "Isolated",
        "traffictype": "Guest",
        "state": "Implemented",
        "isdefault": true,
        "ispersistent": true,
        "issystem": false,
        "broadcastdomaintype": "Vlan",
        "networkofferingname": "DefaultIsolatedNetworkOfferingWithSourceNatService",
        "acltype": "Account",
        "canusefordeploy": true,
        "tags": [],
    })
}

pub fn host(config: &LocalCloudConfig, state: &State, index: usize) -> Value {
    let host = &config.hosts[index];
    let zone = &config.zones[host.zone];
    let (cpu, memory) = state.allocated(config, index);
    let total_cpu = u64::from(host.cpunumber) * u64::from(host.cpuspeed);
    let up = state.hosts_up[index];
    json!({
        "id": host.id,
        "name": host.name,
        "state": if up { "Up" } else { "Down" },
        "resourcestate": "Enabled",
        "type": "Routing",
        "hypervisor": HYPERVISOR,
        "ipaddress": "127.0.0.1",
        "zoneid": zone.id,
        "zonename": zone.name,
        "cpunumber": host.cpunumber,
        "cpuspeed": host.cpuspeed,
        "cpuallocated": format!("{:.2}%", cpu as f64 * 100.0 / total_cpu as f64),
        "memorytotal": u64::from(host.memory) * 1024 * 1024,
        "memoryallocated": memory * 1024 * 1024,
        "version": VERSION,
        "islocalstorageactive": true,
    })
}

pub fn group(group: &InstanceGroup) -> Value {
    json!({
        "id": group.id,
        "name": group.name,
        "account": group.account,
        "domainid": DOMAIN_ID,
        "domain": "ROOT",
        "created": dates::format(group.created),
    })
}

pub fn vm(config: &LocalCloudConfig, state: &State, vm: &Vm) -> Value {
    let zone = &config.zones[vm.zone];
    let offering = &config.offerings[vm.offering];
    let template = &config.templates[vm.template];
    let range = config.address_range;
    let group = vm
        .group
        .as_deref()
        .and_then(|id| state.groups.iter().find(|g| g.id == id));
    let mut out = json!({
        "id": vm.id,
        "name": vm.name,
        "displayname": vm.displayname,
        "instancename": format!("i-{}-VM", vm.id.get(..8).unwrap_or(&vm.id)),
        "account": vm.account,
        "userid": vm.userid,
        "username": vm.username,
        "domainid": DOMAIN_ID,
        "domain": "ROOT",
        "created": dates::format(vm.created),
        "state": vm.state.as_str(),
        "haenable": offering.offerha,
        "zoneid": zone.id,
        "zonename": zone.name,
        "templateid": template.id,
        "templatename": template.name,
        "templatedisplaytext": template.displaytext,
        "passwordenabled": false,
        "serviceofferingid": offering.id,
        "serviceofferingname": offering.name,
        "cpunumber": offering.cpunumber,
        "cpuspeed": offering.cpuspeed,
        "memory": offering.memory,
        "guestosid": OS_TYPE_ID,
        "ostypeid": OS_TYPE_ID,
        "rootdeviceid": 0,
        "rootdevicetype": "ROOT",
        "hypervisor": HYPERVISOR,
        "isdynamicallyscalable": false,
        "displayvm": true,
    });
    out["securitygroup"] = json!([]);
    out["affinitygroup"] = json!([]);
    out["nic"] = json!([{
        "id": vm.nic_id,
        "networkid": zone.network_id,
        "networkname": zone.network_name,
        "ipaddress": vm.ip.to_string(),
        "netmask": range.netmask().to_string(),
        "gateway": std::net::Ipv4Addr::from(range.usable().0).to_string(),
        "macaddress": vm.mac,
        "traffictype": "Guest",
        "type": "Isolated",
        "isdefault": true,
        "deviceid": "0",
    }]);
    let tags: Vec<Value> = vm
        .tags
        .iter()
        .map(|(key, value)| {
            json!({
                "key": key,
                "value": value,
                "resourcetype": "UserVm",
                "resourceid": vm.id,
                "account": vm.account,
                "domainid": DOMAIN_ID,
                "domain": "ROOT",
            })
        })
        .collect();
    out["tags"] = Value::Array(tags);
    if let Some(host) = vm.host {
        out["hostid"] = json!(config.hosts[host].id);
        out["hostname"] = json!(config.hosts[host].name);
    }
    if let Some(group) = group {
        out["group"] = json!(group.name);
        out["groupid"] = json!(group.id);
    }
    if let Some(job) = &vm.job {
        out["jobid"] = json!(job);
        out["jobstatus"] = json!(0);
    }
    out
}

pub fn capabilities(config: &LocalCloudConfig) -> Value {
    json!({
        "capability": {
            "cloudstackversion": VERSION,
            "securitygroupsenabled": false,
            "userpublictemplateenabled": true,
            "supportELB": "false",
            "projectinviterequired": false,
            "allowusercreateprojects": true,
            "customdiskofferingminsize": 1,
            "customdiskofferingmaxsize": 1024,
            "kvmsnapshotenabled": false,
            "regionsecondaryenabled": false,
            "apilimitinterval": 1,
            "apilimitmax": 0,
            "allowuserviewdestroyedvm": true,
            "allowuserexpungerecovervm": config.allow_user_expunge,
            "dynamicrolesenabled": true,
            "kubernetesserviceenabled": false,
            "kubernetesclusterexperimentalfeaturesenabled": false,
        }
    })
}
