//! `config/persistentsessions`: the `SOURCEIP` persistence entries of the vservers, as
//! NetScaler's `show persistentSessions` lists them, and `?action=clear` to drop them.
//!
//! - `GET /nitro/v1/config/persistentsessions[?args=vserver:<name>]`: one object per entry:
//!   `vserver`, `type`, `srcip` (the masked client address), `destip`, `destport` (the member),
//!   `servicegroupname`, `timeout` (seconds left unless it is used again).
//! - `POST /nitro/v1/config/persistentsessions?action=clear` with
//!   `{"persistentsessions": {"vserver": "<name>"}}` (or no `vserver`: every vserver).
//!
//! `COOKIEINSERT` keeps nothing on Ballast's side (the client holds the cookie), so it has no
//! entries to list or clear.

use std::net::SocketAddr;
use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::reply::{NitroError, done};
use super::request::{self, Target};
use super::{AdminApi, Reply};
use crate::persistence::DrainGrace;
use crate::snapshot::{Snapshot, VserverPlan};

pub const NAME: &str = "persistentsessions";

/// A servicegroup and one of its members, or all of them (`None`).
pub type MemberTarget = (String, Option<SocketAddr>);

/// Arms the persistence grace of the members a `disable` with a `delay` is about to drain
/// (`targets`: servicegroup, one member or all, `delay`); what the edit does not use is
/// disarmed when the returned guard drops.
pub fn arm_drain_grace(
    snapshot: &Snapshot,
    targets: &[(MemberTarget, Option<Duration>)],
) -> DrainGrace {
    let mut grace = DrainGrace::default();
    for ((group, member), delay) in targets {
        if let Some(delay) = delay {
            grace.arm(snapshot, group, *member, *delay);
        }
    }
    grace
}

pub fn handle(api: &AdminApi, method: &Method, target: &Target, body: &Value) -> Reply {
    let snapshot = api.snapshot.load();
    match (method, target.action.as_deref()) {
        (&Method::GET, None) => {
            let vservers = chosen(&snapshot, target.arg("vserver"))?;
            let now = Instant::now();
            let items: Vec<Value> = vservers
                .iter()
                .flat_map(|plan| sessions(plan, now))
                .collect();
            let items = super::filtered(items, &target.filter);
            Ok(done(StatusCode::OK, Some((NAME, Value::Array(items)))))
        }
        (&Method::POST, Some("clear")) => {
            let objects = request::objects(body, NAME)?;
            for object in &objects {
                if let Some(key) = object
                    .as_object()
                    .and_then(|o| o.keys().find(|k| *k != "vserver"))
                {
                    return Err(NitroError::invalid(format!(
                        "{NAME}.{key}: unknown field for action clear (give `vserver`, or nothing for every vserver)"
                    )));
                }
                let name = match object.get("vserver") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(name)) => Some(name.as_str()),
                    Some(other) => {
                        return Err(NitroError::invalid(format!(
                            "{NAME}.vserver: expected a vserver name, got {other}"
                        )));
                    }
                };
                for plan in chosen(&snapshot, name)? {
                    let cleared = plan.stats.sessions.clear();
                    tracing::info!(vserver = %plan.name, cleared, "persistent sessions cleared through the admin API");
                }
            }
            Ok(done(StatusCode::OK, None))
        }
        (_, Some(action)) => Err(NitroError::invalid(format!(
            "{NAME} has no action `{action}` (it has `clear`)"
        ))),
        (method, None) => Err(NitroError::method(format!(
            "{method} is not supported on {NAME}: GET lists, POST ?action=clear clears"
        ))),
    }
}

/// The lbvserver `name`, or every lbvserver (not a csvserver, which balances nothing itself).
fn chosen<'a>(
    snapshot: &'a Snapshot,
    name: Option<&str>,
) -> Result<Vec<&'a VserverPlan>, NitroError> {
    match name {
        Some(name) => {
            let plan = snapshot
                .vserver(name)
                .filter(|plan| is_lbvserver(snapshot, plan))
                .ok_or_else(|| NitroError::not_found(format!("no lbvserver named `{name}`")))?;
            Ok(vec![plan.as_ref()])
        }
        None => {
            let mut all: Vec<&VserverPlan> = snapshot
                .vservers
                .values()
                .filter(|plan| is_lbvserver(snapshot, plan))
                .map(|plan| plan.as_ref())
                .collect();
            all.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(all)
        }
    }
}

fn is_lbvserver(snapshot: &Snapshot, plan: &VserverPlan) -> bool {
    snapshot
        .config
        .vservers
        .iter()
        .any(|v| *v.name == *plan.name)
}

fn sessions(plan: &VserverPlan, now: Instant) -> Vec<Value> {
    plan.stats
        .sessions
        .list(now)
        .into_iter()
        .map(|session| {
            json!({
                "vserver": &*plan.name,
                "type": "SOURCEIP",
                "srcip": session.source.to_string(),
                "destip": session.member.addr.ip().to_string(),
                "destport": session.member.addr.port(),
                "servicegroupname": &*session.member.group,
                "timeout": session.remaining.as_secs(),
            })
        })
        .collect()
}
