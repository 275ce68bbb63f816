//! The local cloud's own endpoint, next to the API but not part of it. Only admin users may
//! use it, with their key pair as HTTP Basic credentials ([`super::admin_auth`], checked by
//! the server before it gets here):
//!
//! | request | effect |
//! |---|---|
//! | `GET /localcloud/v1/state` | VMs (state, address, host, pid), hosts, armed faults |
//! | `GET /localcloud/v1/faults` | the armed faults |
//! | `POST /localcloud/v1/faults` | arm faults: a JSON [`Faults`] patch |
//! | `DELETE /localcloud/v1/faults` | disarm everything |
//! | `POST /localcloud/v1/vms/<id>/crash` | kill the VM's process (it goes `Stopped`; HA restarts it) |
//! | `POST /localcloud/v1/hosts/<id or name>/fail` | the host goes `Down` and its VMs die |
//! | `POST /localcloud/v1/hosts/<id or name>/recover` | the host is `Up` again |

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::faults::Faults;
use super::lifecycle;
use super::state::Shared;

pub fn handle(shared: &Shared, method: &Method, path: &str, body: &[u8]) -> (StatusCode, Value) {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        (&Method::GET, ["state"]) => (StatusCode::OK, state(shared)),
        (&Method::GET, ["faults"]) => (StatusCode::OK, faults(shared)),
        (&Method::POST, ["faults"]) => match serde_json::from_slice::<Faults>(body) {
            Ok(patch) => {
                inject(shared, &patch);
                (StatusCode::OK, faults(shared))
            }
            Err(error) => (
                StatusCode::BAD_REQUEST,
                json!({"error": format!("faults: {error}")}),
            ),
        },
        (&Method::DELETE, ["faults"]) => {
            shared.lock().faults = Faults::default();
            (StatusCode::OK, faults(shared))
        }
        (&Method::POST, ["vms", id, "crash"]) => found(crash_vm(shared, id), "VM", id),
        (&Method::POST, ["hosts", host, "fail"]) => {
            found(set_host(shared, host, false), "host", host)
        }
        (&Method::POST, ["hosts", host, "recover"]) => {
            found(set_host(shared, host, true), "host", host)
        }
        _ => (
            StatusCode::NOT_FOUND,
            json!({"error": format!("no {method} /localcloud/v1/{path}; see docs/cloudstack.md")}),
        ),
    }
}

/// Arms the faults set in `patch`.
pub fn inject(shared: &Shared, patch: &Faults) {
    tracing::info!(?patch, "fault injection armed");
    shared.lock().faults.apply(patch);
}

/// Kills VM `id`'s process as a crash; false if it has none.
pub fn crash_vm(shared: &Shared, id: &str) -> bool {
    let state = shared.lock();
    match state.vm(id).and_then(|vm| vm.process.as_ref()) {
        Some(process) => {
            tracing::info!(vm = id, "fault injection: crashing a VM");
            process.crash();
            true
        }
        None => false,
    }
}

/// Fails (`up` false) or recovers a host named by id or name; false if there is none.
pub fn set_host(shared: &Shared, key: &str, up: bool) -> bool {
    let Some(index) = shared
        .config
        .hosts
        .iter()
        .position(|h| h.id == key || h.name == key)
    else {
        return false;
    };
    if up {
        shared.lock().hosts_up[index] = true;
        tracing::info!(host = key, "host recovered");
    } else {
        lifecycle::fail_host(shared, index);
    }
    true
}

/// VM ids and their process ids.
pub fn pids(shared: &Shared) -> Vec<(String, u32)> {
    shared
        .lock()
        .vms
        .iter()
        .filter_map(|vm| Some((vm.id.clone(), vm.process.as_ref()?.pid()?)))
        .collect()
}

fn state(shared: &Shared) -> Value {
    let config = &shared.config;
    let state = shared.lock();
    let vms: Vec<Value> = state
        .vms
        .iter()
        .map(|vm| {
            json!({
                "id": vm.id,
                "name": vm.name,
                "state": vm.state.as_str(),
                "ipaddress": vm.ip.to_string(),
                "host": vm.host.map(|h| config.hosts[h].name.clone()),
                "pid": vm.process.as_ref().and_then(|p| p.pid()),
                "job": vm.job,
            })
        })
        .collect();
    let hosts: Vec<Value> = config
        .hosts
        .iter()
        .enumerate()
        .map(|(i, host)| {
            json!({
                "id": host.id,
                "name": host.name,
                "zone": config.zones[host.zone].name,
                "state": if state.hosts_up[i] { "Up" } else { "Down" },
                "vms": state.vms.iter().filter(|vm| vm.host == Some(i)).count(),
            })
        })
        .collect();
    json!({ "vms": vms, "hosts": hosts, "faults": state.faults })
}

fn faults(shared: &Shared) -> Value {
    json!(shared.lock().faults)
}

fn found(ok: bool, what: &str, key: &str) -> (StatusCode, Value) {
    if ok {
        (StatusCode::OK, json!({"ok": true}))
    } else {
        (
            StatusCode::NOT_FOUND,
            json!({"error": format!("no running {what} {key:?}")}),
        )
    }
}
