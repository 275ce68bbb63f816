//! Content switching in the admin API: the `csvserver_cspolicy_binding` (bind a policy to a
//! csvserver with its target lbvserver and priority), and `stat/csvserver` and `stat/cspolicy`.
//! The `csvserver` and `cspolicy` resources themselves are plain [`super::resources`].

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::resources::parse;
use super::stat::{Rates, round, totals};
use crate::config::content_switch::{CsPolicyBindingFile, CsVserverFile};
use crate::config::file::FileConfig;
use crate::config::lenient;
use crate::snapshot::{Snapshot, VserverPlan};
use crate::writer::EditError;

pub const BINDING: &str = "csvserver_cspolicy_binding";

/// One `csvserver_cspolicy_binding` as the API reads and shows it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Binding {
    /// The csvserver.
    name: String,
    policyname: String,
    targetlbvserver: String,
    #[serde(deserialize_with = "lenient::int")]
    priority: i64,
}

fn csvserver<'a>(file: &'a FileConfig, name: &str) -> Result<&'a CsVserverFile, EditError> {
    file.csvserver
        .iter()
        .find(|cs| cs.name == name)
        .ok_or_else(|| EditError::NotFound(format!("no csvserver named `{name}`")))
}

fn csvserver_mut<'a>(
    file: &'a mut FileConfig,
    name: &str,
) -> Result<&'a mut CsVserverFile, EditError> {
    file.csvserver
        .iter_mut()
        .find(|cs| cs.name == name)
        .ok_or_else(|| EditError::NotFound(format!("no csvserver named `{name}`")))
}

/// The bindings of csvserver `key`, or of every csvserver.
pub fn get(file: &FileConfig, key: Option<&str>) -> Result<Vec<Value>, EditError> {
    if let Some(key) = key {
        csvserver(file, key)?;
    }
    let values = file
        .csvserver
        .iter()
        .filter(|cs| key.is_none_or(|k| cs.name == k))
        .flat_map(|cs| {
            cs.policies.iter().map(|b| {
                json!({"name": cs.name, "policyname": b.policyname,
                       "targetlbvserver": b.targetlbvserver, "priority": b.priority})
            })
        })
        .collect();
    Ok(values)
}

/// Binds a policy; binding one that is bound already changes its target and priority. Returns
/// true if the binding is new. The whole config is validated afterwards (the policy and target
/// must exist, the priority must be free).
pub fn add(file: &mut FileConfig, object: Value) -> Result<bool, EditError> {
    let b: Binding = parse(BINDING, object)?;
    let cs = csvserver_mut(file, &b.name)?;
    let binding = CsPolicyBindingFile {
        policyname: b.policyname,
        targetlbvserver: b.targetlbvserver,
        priority: b.priority,
    };
    match cs
        .policies
        .iter_mut()
        .find(|bound| bound.policyname == binding.policyname)
    {
        Some(bound) => {
            *bound = binding;
            Ok(false)
        }
        None => {
            cs.policies.push(binding);
            Ok(true)
        }
    }
}

/// `DELETE csvserver_cspolicy_binding/<csvserver>?args=policyname:<policy>`.
pub fn delete(file: &mut FileConfig, key: &str, policy: Option<&str>) -> Result<(), EditError> {
    let policy = policy.ok_or_else(|| {
        EditError::Rejected(format!("DELETE {BINDING} needs ?args=policyname:<value>"))
    })?;
    let cs = csvserver_mut(file, key)?;
    let before = cs.policies.len();
    cs.policies.retain(|b| b.policyname != policy);
    if cs.policies.len() == before {
        return Err(EditError::NotFound(format!(
            "cspolicy `{policy}` is not bound to csvserver `{key}`"
        )));
    }
    Ok(())
}

/// `stat/csvserver[/name]`: the csvserver's own request and connection counters, its policy
/// hits, and the requests that went to the default or matched nothing.
pub fn csvservers(
    snapshot: &Snapshot,
    rates: &Rates,
    name: Option<&str>,
) -> Result<Value, EditError> {
    let mut plans: Vec<&Arc<VserverPlan>> = snapshot
        .vservers
        .values()
        .filter(|v| v.switch.is_some() && name.is_none_or(|n| *v.name == *n))
        .collect();
    if let Some(name) = name
        && plans.is_empty()
    {
        return Err(EditError::NotFound(format!(
            "no enabled csvserver named `{name}`"
        )));
    }
    plans.sort_by(|a, b| a.name.cmp(&b.name));
    let items = plans.iter().filter_map(|plan| {
        let switch = plan.switch.as_ref()?;
        let [requests, responses, request_bytes, response_bytes] = totals(plan);
        let [requests_rate, responses_rate, ..] = rates.of(&plan.name);
        let policies: Vec<Value> = switch
            .policies
            .iter()
            .map(|p| {
                json!({"policyname": *p.name, "priority": p.priority,
                       "targetlbvserver": *p.target_name, "hits": p.hits.load(Relaxed)})
            })
            .collect();
        Some(json!({
            "name": *plan.name,
            "state": "UP",
            "type": plan.service_type.as_str(),
            "primaryipaddress": plan.addr.ip().to_string(),
            "primaryport": plan.addr.port(),
            "curclntconnections": plan.stats.current_client_connections.load(Relaxed),
            "totalrequests": requests,
            "totalresponses": responses,
            "totalrequestbytes": request_bytes,
            "totalresponsebytes": response_bytes,
            "requestsrate": round(requests_rate),
            "responsesrate": round(responses_rate),
            "defaulthits": switch.stats.default_hits.load(Relaxed),
            "unmatched": switch.stats.unmatched.load(Relaxed),
            "cspolicy": policies,
        }))
    });
    Ok(Value::Array(items.collect()))
}

/// `stat/cspolicy[/name]`: hits of each policy (`pipolicyhits`), over every enabled csvserver
/// that binds it, and per binding.
pub fn cspolicies(snapshot: &Snapshot, name: Option<&str>) -> Result<Value, EditError> {
    let policies: Vec<&str> = snapshot
        .config
        .cs_policies
        .iter()
        .map(|p| p.name.as_str())
        .filter(|p| name.is_none_or(|n| *p == n))
        .collect();
    if let Some(name) = name
        && policies.is_empty()
    {
        return Err(EditError::NotFound(format!("no cspolicy named `{name}`")));
    }
    let mut switches: Vec<&Arc<VserverPlan>> = snapshot
        .vservers
        .values()
        .filter(|v| v.switch.is_some())
        .collect();
    switches.sort_by(|a, b| a.name.cmp(&b.name));
    let items = policies.into_iter().map(|policy| {
        let bindings: Vec<Value> = switches
            .iter()
            .filter_map(|cs| {
                let switch = cs.switch.as_ref()?;
                let bound = switch.policies.iter().find(|p| *p.name == *policy)?;
                Some(json!({"csvserver": *cs.name, "priority": bound.priority,
                            "targetlbvserver": *bound.target_name,
                            "hits": bound.hits.load(Relaxed)}))
            })
            .collect();
        let hits: u64 = bindings.iter().filter_map(|b| b["hits"].as_u64()).sum();
        json!({"policyname": policy, "pipolicyhits": hits, "bindings": bindings})
    });
    Ok(Value::Array(items.collect()))
}
