//! NITRO bindings: `lbvserver_servicegroup_binding`, `servicegroup_servicegroupmember_binding`,
//! `servicegroup_lbmonitor_binding` and `csvserver_cspolicy_binding` (in
//! [`super::content_switch`]). Added with PUT, removed with DELETE and
//! `?args=k:v,…`, listed with GET `/<binding>/<primary key>` (or all of them without one).
//! Members are bound, changed and unbound through the writer's typed member operations
//! ([`crate::writer::members`]).

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::request::Target;
use super::resources::parse;
use crate::config::file::{FileConfig, MemberFile};
use crate::config::lenient;
use crate::member::MemberKey;
use crate::snapshot::Snapshot;
use crate::writer::EditError;
use crate::writer::members::{self, MemberBinding, MemberChange, MemberOpError};

pub const NAMES: [&str; 4] = [
    "lbvserver_servicegroup_binding",
    "servicegroup_servicegroupmember_binding",
    "servicegroup_lbmonitor_binding",
    super::content_switch::BINDING,
];

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VserverGroup {
    name: String,
    servicegroupname: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupMember {
    servicegroupname: String,
    #[serde(alias = "servername")]
    ip: String,
    #[serde(deserialize_with = "lenient::int")]
    port: i64,
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    weight: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    /// `ENABLED` or `DISABLED` (the default): the autoscaler never scales in a protected member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scaleinprotection: Option<String>,
}

/// A member binding request in typed values.
struct MemberRequest {
    group: String,
    addr: SocketAddr,
    weight: Option<u32>,
    enabled: Option<bool>,
    scale_in_protection: Option<bool>,
}

impl GroupMember {
    fn typed(self) -> Result<MemberRequest, EditError> {
        let at = |field: &str, message: String| {
            EditError::Rejected(format!("{}.{field}: {message}", NAMES[1]))
        };
        let ip: IpAddr = self.ip.parse().map_err(|_| {
            at(
                "ip",
                format!("`{}` is not an IPv4 or IPv6 address", self.ip),
            )
        })?;
        let port = u16::try_from(self.port)
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| at("port", format!("expected 1..=65535, got {}", self.port)))?;
        let weight = self
            .weight
            .map(|w| {
                u32::try_from(w).map_err(|_| at("weight", format!("expected 1..=100, got {w}")))
            })
            .transpose()?;
        let enabled = switch(self.state.as_deref()).map_err(|message| at("state", message))?;
        let scale_in_protection = switch(self.scaleinprotection.as_deref())
            .map_err(|message| at("scaleinprotection", message))?;
        Ok(MemberRequest {
            group: self.servicegroupname,
            addr: SocketAddr::new(ip, port),
            weight,
            enabled,
            scale_in_protection,
        })
    }
}

/// `ENABLED` → true, `DISABLED` → false.
fn switch(text: Option<&str>) -> Result<Option<bool>, String> {
    match text {
        None => Ok(None),
        Some("ENABLED") => Ok(Some(true)),
        Some("DISABLED") => Ok(Some(false)),
        Some(other) => Err(format!("expected ENABLED or DISABLED, got `{other}`")),
    }
}

fn enabled_word(enabled: bool) -> &'static str {
    if enabled { "ENABLED" } else { "DISABLED" }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupMonitor {
    servicegroupname: String,
    monitor_name: String,
}

/// Lists bindings; members carry their live `svrstate`, whether the autoscaler bound them
/// (`autoscaled`, with `vmid` and `autoscalegroup`) and their `scaleinprotection`.
pub fn get(
    file: &FileConfig,
    snapshot: &Snapshot,
    binding: &str,
    key: Option<&str>,
) -> Result<Vec<Value>, EditError> {
    let matches = |name: &str| key.is_none_or(|k| k == name);
    let values = match binding {
        "lbvserver_servicegroup_binding" => {
            if let Some(key) = key
                && !file.lbvserver.iter().any(|v| v.name == key)
            {
                return Err(EditError::NotFound(format!("no lbvserver named `{key}`")));
            }
            file.lbvserver
                .iter()
                .filter(|v| matches(&v.name))
                .filter_map(|v| {
                    Some(json!({"name": v.name, "servicegroupname": v.servicegroupname.as_ref()?}))
                })
                .collect()
        }
        "servicegroup_servicegroupmember_binding" => groups_named(file, key)?
            .flat_map(|group| {
                group.members.iter().map(|member| {
                    let state = member_status(snapshot, &group.servicegroupname, member);
                    let mut item = json!({
                        "servicegroupname": group.servicegroupname,
                        "ip": member.ip,
                        "port": member.port,
                        "weight": member.weight.unwrap_or(1),
                        "state": member.state.as_deref().unwrap_or("ENABLED"),
                        "svrstate": state,
                        "autoscaled": member.autoscale.is_some(),
                        "scaleinprotection": enabled_word(member.scale_in_protection),
                    });
                    if let Some(mark) = &member.autoscale {
                        item["vmid"] = json!(mark.vm_id);
                        item["autoscalegroup"] = json!(mark.group);
                    }
                    item
                })
            })
            .collect(),
        "servicegroup_lbmonitor_binding" => groups_named(file, key)?
            .flat_map(|group| {
                group.monitor.iter().map(|monitor| {
                    json!({"servicegroupname": group.servicegroupname, "monitor_name": monitor})
                })
            })
            .collect(),
        super::content_switch::BINDING => super::content_switch::get(file, key)?,
        other => return Err(EditError::NotFound(format!("no binding named `{other}`"))),
    };
    Ok(values)
}

/// Adds a binding (a member that is already bound gets its weight, state and scale-in
/// protection updated). Returns true if something new was bound.
pub fn add(file: &mut FileConfig, binding: &str, object: Value) -> Result<bool, EditError> {
    match binding {
        "lbvserver_servicegroup_binding" => {
            let b: VserverGroup = parse(binding, object)?;
            let vserver = file
                .lbvserver
                .iter_mut()
                .find(|v| v.name == b.name)
                .ok_or_else(|| EditError::NotFound(format!("no lbvserver named `{}`", b.name)))?;
            let new = vserver.servicegroupname.as_deref() != Some(b.servicegroupname.as_str());
            vserver.servicegroupname = Some(b.servicegroupname);
            Ok(new)
        }
        "servicegroup_servicegroupmember_binding" => {
            let b = parse::<GroupMember>(binding, object)?.typed()?;
            let new = MemberBinding {
                weight: b.weight.unwrap_or(1),
                enabled: b.enabled.unwrap_or(true),
                scale_in_protection: b.scale_in_protection.unwrap_or(false),
                autoscale: None,
            };
            match members::bind(file, &b.group, b.addr, new) {
                Ok(()) => Ok(true),
                Err(MemberOpError::AlreadyBound { .. }) => {
                    let change = MemberChange {
                        weight: b.weight,
                        enabled: b.enabled,
                        scale_in_protection: b.scale_in_protection,
                    };
                    members::change(file, &b.group, b.addr, change)?;
                    Ok(false)
                }
                Err(error) => Err(error.into()),
            }
        }
        "servicegroup_lbmonitor_binding" => {
            let b: GroupMonitor = parse(binding, object)?;
            let group = group_mut(file, &b.servicegroupname)?;
            if group.monitor.contains(&b.monitor_name) {
                return Err(EditError::Exists(format!(
                    "lbmonitor `{}` is already bound to servicegroup `{}`",
                    b.monitor_name, b.servicegroupname
                )));
            }
            group.monitor.push(b.monitor_name);
            Ok(true)
        }
        super::content_switch::BINDING => super::content_switch::add(file, object),
        other => Err(EditError::NotFound(format!("no binding named `{other}`"))),
    }
}

/// Removes the binding that `/<binding>/<key>?args=…` names.
pub fn delete(file: &mut FileConfig, target: &Target) -> Result<(), EditError> {
    let key = target.name.as_deref().ok_or_else(|| {
        EditError::Rejected(format!(
            "DELETE {} needs the primary key in the path",
            target.resource
        ))
    })?;
    let arg = |name: &str| {
        target.arg(name).ok_or_else(|| {
            EditError::Rejected(format!(
                "DELETE {} needs ?args={name}:<value>",
                target.resource
            ))
        })
    };
    match target.resource.as_str() {
        "lbvserver_servicegroup_binding" => {
            let group = arg("servicegroupname")?;
            let vserver = file
                .lbvserver
                .iter_mut()
                .find(|v| v.name == key)
                .ok_or_else(|| EditError::NotFound(format!("no lbvserver named `{key}`")))?;
            if vserver.servicegroupname.as_deref() != Some(group) {
                return Err(EditError::NotFound(format!(
                    "servicegroup `{group}` is not bound to lbvserver `{key}`"
                )));
            }
            vserver.servicegroupname = None;
            Ok(())
        }
        "servicegroup_servicegroupmember_binding" => {
            let ip = target.arg("ip").or(target.arg("servername")).ok_or_else(|| {
                EditError::Rejected("DELETE servicegroup_servicegroupmember_binding needs ?args=ip:<ip>,port:<port>".to_owned())
            })?;
            let ip: IpAddr = ip.parse().map_err(|_| {
                EditError::Rejected(format!("args ip: `{ip}` is not an IPv4 or IPv6 address"))
            })?;
            let port: u16 = arg("port")?
                .parse()
                .map_err(|_| EditError::Rejected("args port: expected 1..=65535".to_owned()))?;
            Ok(members::unbind(file, key, SocketAddr::new(ip, port))?)
        }
        "servicegroup_lbmonitor_binding" => {
            let monitor = arg("monitor_name")?;
            let group = group_mut(file, key)?;
            let before = group.monitor.len();
            group.monitor.retain(|m| m != monitor);
            if group.monitor.len() == before {
                return Err(EditError::NotFound(format!(
                    "lbmonitor `{monitor}` is not bound to servicegroup `{key}`"
                )));
            }
            Ok(())
        }
        super::content_switch::BINDING => {
            super::content_switch::delete(file, key, target.arg("policyname"))
        }
        other => Err(EditError::NotFound(format!("no binding named `{other}`"))),
    }
}

fn groups_named<'a>(
    file: &'a FileConfig,
    key: Option<&'a str>,
) -> Result<impl Iterator<Item = &'a crate::config::file::ServiceGroupFile>, EditError> {
    if let Some(key) = key
        && !file.servicegroup.iter().any(|g| g.servicegroupname == key)
    {
        return Err(EditError::NotFound(format!(
            "no servicegroup named `{key}`"
        )));
    }
    Ok(file
        .servicegroup
        .iter()
        .filter(move |g| key.is_none_or(|k| g.servicegroupname == k)))
}

fn group_mut<'a>(
    file: &'a mut FileConfig,
    name: &str,
) -> Result<&'a mut crate::config::file::ServiceGroupFile, EditError> {
    file.servicegroup
        .iter_mut()
        .find(|g| g.servicegroupname == name)
        .ok_or_else(|| EditError::NotFound(format!("no servicegroup named `{name}`")))
}

fn member_status(snapshot: &Snapshot, group: &str, member: &MemberFile) -> &'static str {
    let Ok(ip) = member.ip.parse() else {
        return "UNKNOWN";
    };
    let key = MemberKey {
        group: group.into(),
        addr: std::net::SocketAddr::new(ip, member.port as u16),
    };
    snapshot
        .groups
        .get(group)
        .and_then(|g| g.members.iter().find(|m| m.key == key))
        .map_or("UNKNOWN", |m| m.status().as_str())
}
