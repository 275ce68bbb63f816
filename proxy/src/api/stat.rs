//! `/nitro/v1/stat/...`: live statistics read from the lock-free counters, with rates computed
//! by a sampler every [`SAMPLE_EVERY`] (NetScaler computes its rates over a window too).

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::autoscale::AutoscaleView;
use crate::backup::Diversion;
use crate::member::MemberStatus;
use crate::snapshot::{GroupPlan, Snapshot, VserverPlan};
use crate::surge::Rejection;
use crate::writer::EditError;

pub const SAMPLE_EVERY: Duration = Duration::from_secs(2);

/// Per-vserver rates (per second) over the last sampling window.
#[derive(Debug, Default)]
pub struct Rates {
    samples: Mutex<HashMap<String, Sample>>,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    totals: [u64; 4],
    rates: [f64; 4],
}

impl Rates {
    /// Samples every vserver's counters forever.
    pub async fn run(self: Arc<Self>, snapshot: Arc<ArcSwap<Snapshot>>) {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        loop {
            tick.tick().await;
            let now = Instant::now();
            let current = snapshot.load();
            let mut samples = self.samples.lock().expect("rates lock is never poisoned");
            samples.retain(|name, _| current.vservers.contains_key(name.as_str()));
            for (name, plan) in &current.vservers {
                let totals = totals(plan);
                let entry = samples.entry(name.to_string()).or_insert(Sample {
                    at: now,
                    totals,
                    rates: [0.0; 4],
                });
                let elapsed = now.duration_since(entry.at).as_secs_f64();
                if elapsed > 0.0 {
                    for ((rate, now), before) in
                        entry.rates.iter_mut().zip(totals).zip(entry.totals)
                    {
                        *rate = now.saturating_sub(before) as f64 / elapsed;
                    }
                }
                entry.at = now;
                entry.totals = totals;
            }
        }
    }

    pub(super) fn of(&self, vserver: &str) -> [f64; 4] {
        let samples = self.samples.lock().expect("rates lock is never poisoned");
        samples.get(vserver).map_or([0.0; 4], |s| s.rates)
    }
}

pub(super) fn totals(plan: &VserverPlan) -> [u64; 4] {
    let s = &plan.stats;
    [
        s.requests.load(Relaxed),
        s.responses_total(),
        s.request_bytes.load(Relaxed),
        s.response_bytes.load(Relaxed),
    ]
}

/// `stat/lbvserver[/name]` (csvservers are in `stat/csvserver`).
pub fn lbvservers(
    snapshot: &Snapshot,
    rates: &Rates,
    name: Option<&str>,
) -> Result<Value, EditError> {
    let mut plans: Vec<&Arc<VserverPlan>> = snapshot
        .vservers
        .values()
        .filter(|v| v.switch.is_none() && name.is_none_or(|n| *v.name == *n))
        .collect();
    if let Some(name) = name
        && plans.is_empty()
    {
        return Err(EditError::NotFound(format!(
            "no enabled lbvserver named `{name}`"
        )));
    }
    plans.sort_by(|a, b| a.name.cmp(&b.name));
    let items = plans.iter().map(|plan| {
        let [requests, responses, request_bytes, response_bytes] = totals(plan);
        let [
            requests_rate,
            responses_rate,
            request_bytes_rate,
            response_bytes_rate,
        ] = rates.of(&plan.name);
        let members = plan.group.as_ref().map_or(&[][..], |g| &g.members[..]);
        let up = members
            .iter()
            .filter(|m| m.status() == MemberStatus::Up)
            .count();
        let ttfb = &plan.stats.response_time;
        json!({
            "name": *plan.name,
            "state": if up > 0 { "UP" } else { "DOWN" },
            "type": plan.service_type.as_str(),
            "primaryipaddress": plan.addr.ip().to_string(),
            "primaryport": plan.addr.port(),
            "curclntconnections": plan.stats.current_client_connections.load(Relaxed),
            "cursrvrconnections": members.iter().map(|m| m.active()).sum::<u64>(),
            "totalrequests": requests,
            "totalresponses": responses,
            "totalrequestbytes": request_bytes,
            "totalresponsebytes": response_bytes,
            "requestsrate": round(requests_rate),
            "responsesrate": round(responses_rate),
            "requestbytesrate": round(request_bytes_rate),
            "responsebytesrate": round(response_bytes_rate),
            "actsvcs": up,
            "inactsvcs": members.len() - up,
            "vslbhealth": if members.is_empty() { 0 } else { up * 100 / members.len() },
            "avgsvrttfb": round(ttfb.sum_us() as f64 / 1000.0 / ttfb.count().max(1) as f64),
            "vsvrsurgecount": plan.group.as_ref().map_or(0, |g| g.surge.depth()),
            "backuphits": plan.stats.backup[Diversion::Down as usize].load(Relaxed),
            "totspillovers": plan.stats.backup[Diversion::Spillover as usize].load(Relaxed),
            "proxyprotocolrefused": proxy_protocol_refused(&plan.stats),
            "disabledondown": plan.disable_primary_on_down && plan.stats.disabled_on_down.load(Relaxed),
        })
    });
    Ok(Value::Array(items.collect()))
}

/// Connections refused for their PROXY protocol header, by reason.
fn proxy_protocol_refused(stats: &crate::stats::VserverStats) -> Value {
    use crate::proxy_protocol::accept::Refusal;
    let by_reason = Refusal::ALL.iter().map(|reason| {
        let count = stats.proxy_protocol_refused[reason.index()].load(Relaxed);
        (reason.as_str().to_owned(), json!(count))
    });
    Value::Object(by_reason.collect())
}

/// `stat/servicegroup[/name][?statbindings=yes]`.
pub fn servicegroups(
    snapshot: &Snapshot,
    name: Option<&str>,
    bindings: bool,
) -> Result<Value, EditError> {
    let mut groups: Vec<&Arc<GroupPlan>> = snapshot
        .groups
        .values()
        .filter(|g| name.is_none_or(|n| *g.name == *n))
        .collect();
    if let Some(name) = name
        && groups.is_empty()
    {
        return Err(EditError::NotFound(format!(
            "no servicegroup named `{name}`"
        )));
    }
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    let items = groups.iter().map(|group| {
        let up = group.members.iter().filter(|m| m.status() == MemberStatus::Up).count();
        let state = match (up, group.members.len()) {
            (0, _) => "DOWN",
            (up, all) if up == all => "UP",
            _ => "PARTIAL-UP",
        };
        let mut item = json!({"servicegroupname": *group.name, "state": state, "members": group.members.len(), "upmembers": up});
        let surge = &group.surge;
        item["maxclient"] = json!(surge.max_client().unwrap_or(0));
        item["surgecount"] = json!(surge.depth());
        item["surgerejectedfull"] = json!(surge.rejected(Rejection::Full));
        item["surgerejectedtimeout"] = json!(surge.rejected(Rejection::Timeout));
        if bindings {
            let configured = snapshot.config.service_group(&group.name);
            let configured = configured.map_or(&[][..], |g| &g.members[..]);
            item["servicegroupmember"] = group
                .members
                .iter()
                .zip(configured)
                .map(|(m, member)| {
                    let c = &m.counters;
                    let mut entry = json!({
                        "ip": m.key.addr.ip().to_string(),
                        "port": m.key.addr.port(),
                        "state": m.status().as_str(),
                        "curclntconnections": m.active(),
                        "totalrequests": c.requests.load(Relaxed),
                        "totalresponses": c.responses.load(Relaxed),
                        "totalrequestbytes": c.request_bytes.load(Relaxed),
                        "totalresponsebytes": c.response_bytes.load(Relaxed),
                        "connectfailures": c.connect_failures.load(Relaxed),
                        "tlshandshakefailures": c.tls_handshake_failures.load(Relaxed),
                        "lastfailurereason": m.last_failure().as_deref(),
                        "avgsvrttfb": round(m.response_time_us() as f64 / 1000.0),
                        "load": m.load().map(|l| f64::from(l) / 1000.0),
                        "metrics": m.metrics().map(|values| {
                            let named = values.iter().map(|(k, v)| (k.to_string(), json!(round(*v))));
                            named.collect::<serde_json::Map<_, _>>()
                        }),
                        "autoscaled": member.autoscale.is_some(),
                        "scaleinprotection": if member.scale_in_protection { "ENABLED" } else { "DISABLED" },
                    });
                    if let Some(mark) = &member.autoscale {
                        entry["vmid"] = json!(mark.vm_id);
                        entry["autoscalegroup"] = json!(mark.group);
                    }
                    entry
                })
                .collect();
        }
        item
    });
    Ok(Value::Array(items.collect()))
}

/// `stat/autoscalegroup[/name]`: bounds and current membership, and the engine's live figures
/// (phase, members by state, averages ...) when it runs the group.
pub fn autoscalegroups(
    snapshot: &Snapshot,
    name: Option<&str>,
    engine: Option<&dyn AutoscaleView>,
) -> Result<Value, EditError> {
    let groups: Vec<_> = snapshot
        .config
        .autoscale_groups
        .iter()
        .filter(|g| name.is_none_or(|n| g.name == n))
        .collect();
    if let Some(name) = name
        && groups.is_empty()
    {
        return Err(EditError::NotFound(format!(
            "no autoscalegroup named `{name}`"
        )));
    }
    let items = groups.iter().map(|group| {
        let members = snapshot
            .groups
            .get(&group.service_group)
            .map_or(&[][..], |g| &g.members[..]);
        let mut item = json!({
            "name": group.name,
            "state": if group.enabled { "ENABLED" } else { "DISABLED" },
            "minmembers": group.min_members,
            "maxmembers": group.max_members,
            "members": members.len(),
            "upmembers": members.iter().filter(|m| m.status() == MemberStatus::Up).count(),
        });
        let live = engine.and_then(|engine| engine.group_stats(&group.name));
        if let (Some(live), Some(object)) = (live, item.as_object_mut()) {
            object.extend(live);
        }
        item
    });
    Ok(Value::Array(items.collect()))
}

pub(super) fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
