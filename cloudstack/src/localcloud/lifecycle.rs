//! VM lifecycle as CloudStack runs it, one async task per job:
//!
//! - deploy/start: place on the least-loaded `Up` host with room (none: 533) → `Starting` →
//!   boot delay → the VM process starts and its workload answers → `Running`;
//! - stop: `Stopping` → the process exits (stdin closed; killed after the grace time) →
//!   `Stopped`;
//! - destroy: stop, then `Expunging` → gone (with `expunge`), or `Destroyed` and expunged after
//!   `expunge_delay`;
//! - a process that dies on its own (or an injected crash, or a failed host): `Running` →
//!   `Stopped`, and with an HA offering a restart on another host after `ha_delay`.
//!
//! The synchronous half of each command (checks, job creation) is in [`super::vm_commands`].

use std::net::SocketAddr;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::api_error::ApiError;
use super::faults::DeployFault;
use super::process::{ProcessSpec, VmProcess};
use super::render;
use super::state::{Shared, Vm};
use crate::model::VmState;

/// How long a VM shows `Expunging` before it is gone.
const EXPUNGE_TIME: Duration = Duration::from_millis(200);
/// HA gives up after this many failed restarts (it tries again after the next crash).
const HA_ATTEMPTS: u32 = 3;

/// The job of `deployVirtualMachine`.
pub async fn deploy(
    shared: Arc<Shared>,
    vm_id: String,
    job_id: String,
    token: CancellationToken,
    fault: Option<DeployFault>,
    startvm: bool,
) {
    let outcome = match fault {
        Some(DeployFault::Hang) => {
            tokio::select! {
                () = token.cancelled() => {}
                () = shared.shutdown.cancelled() => {}
            }
            Err(ApiError::internal(format!(
                "Unable to start VM {vm_id}: it was destroyed while starting"
            )))
        }
        Some(DeployFault::Fail(code)) => {
            pause(
                &shared,
                &token,
                shared.config.boot_delay.min(Duration::from_millis(200)),
            )
            .await;
            let mut error = ApiError::injected(code);
            error.errortext = format!(
                "Unable to create a deployment for VM {vm_id}: {}",
                error.errortext
            );
            Err(error)
        }
        None if !startvm => Ok(()),
        None => boot(&shared, &vm_id, &token, None).await,
    };
    let mut state = shared.lock();
    match outcome {
        Ok(()) => {
            if !startvm && let Some(vm) = state.vm_mut(&vm_id) {
                vm.state = VmState::Stopped;
            }
            let result = vm_result(&shared, &state, &vm_id);
            state.succeed_job(&job_id, result);
        }
        Err(error) => {
            if !token.is_cancelled()
                && let Some(vm) = state.vm_mut(&vm_id)
            {
                vm.state = VmState::Error;
                vm.host = None;
            }
            tracing::warn!(vm = vm_id, error = error.errortext, "deploy failed");
            state.fail_job(&job_id, &error);
        }
    }
}

/// The job of `startVirtualMachine`.
pub async fn start(shared: Arc<Shared>, vm_id: String, job_id: String, token: CancellationToken) {
    let outcome = boot(&shared, &vm_id, &token, None).await;
    finish(&shared, &vm_id, &job_id, &token, outcome, VmState::Stopped);
}

/// The job of `stopVirtualMachine`.
pub async fn stop(shared: Arc<Shared>, vm_id: String, job_id: String, forced: bool) {
    let grace = if forced {
        Duration::ZERO
    } else {
        shared.config.stop_timeout
    };
    halt(&shared, &vm_id, grace).await;
    let mut state = shared.lock();
    let result = vm_result(&shared, &state, &vm_id);
    state.succeed_job(&job_id, result);
}

/// The job of `rebootVirtualMachine`: stop, then start again.
pub async fn reboot(shared: Arc<Shared>, vm_id: String, job_id: String, token: CancellationToken) {
    halt(&shared, &vm_id, shared.config.stop_timeout).await;
    let outcome = boot(&shared, &vm_id, &token, None).await;
    finish(&shared, &vm_id, &job_id, &token, outcome, VmState::Stopped);
}

/// The job of `destroyVirtualMachine` / `expungeVirtualMachine`.
pub async fn destroy(shared: Arc<Shared>, vm_id: String, job_id: String, expunge: bool) {
    let running = shared
        .lock()
        .vm(&vm_id)
        .is_some_and(|vm| vm.process.is_some() || vm.host.is_some());
    if running {
        halt(&shared, &vm_id, shared.config.stop_timeout).await;
    }
    if expunge {
        let result = {
            let mut state = shared.lock();
            if let Some(vm) = state.vm_mut(&vm_id) {
                vm.state = VmState::Expunging;
            }
            vm_result(&shared, &state, &vm_id)
        };
        tokio::time::sleep(EXPUNGE_TIME).await;
        let mut state = shared.lock();
        remove(&mut state, &vm_id);
        state.succeed_job(&job_id, result);
        tracing::info!(vm = vm_id, "VM expunged");
        return;
    }
    let generation = {
        let mut state = shared.lock();
        let generation = state.vm_mut(&vm_id).map(|vm| {
            vm.state = VmState::Destroyed;
            vm.generation += 1;
            vm.generation
        });
        let result = vm_result(&shared, &state, &vm_id);
        state.succeed_job(&job_id, result);
        generation
    };
    tracing::info!(vm = vm_id, "VM destroyed");
    if let Some(generation) = generation {
        let delay = shared.config.expunge_delay;
        let task = expunge_later(shared.clone(), vm_id, generation, delay);
        shared.tasks.spawn(task);
    }
}

/// A VM process exited without being asked to (called by its supervisor).
pub fn on_crash(shared: &Arc<Shared>, vm_id: &str, generation: u64, status: ExitStatus) {
    let mut state = shared.lock();
    let Some(vm) = state.vm_mut(vm_id) else {
        return;
    };
    if vm.generation != generation || vm.state != VmState::Running {
        return;
    }
    vm.process = None;
    vm.state = VmState::Stopped;
    vm.host = None;
    let ha = shared.config.offerings[vm.offering].offerha;
    tracing::warn!(vm = vm_id, %status, ha, "VM process died; VM is Stopped");
    if ha && !shared.shutdown.is_cancelled() {
        let token = CancellationToken::new();
        vm.op = Some(token.clone());
        let avoid = vm.last_host;
        shared
            .tasks
            .spawn(ha_restart(shared.clone(), vm_id.to_string(), token, avoid));
    }
}

/// Marks `host` down and kills its VMs (they go `Stopped`; HA ones restart elsewhere).
pub fn fail_host(shared: &Shared, host: usize) {
    let mut state = shared.lock();
    state.hosts_up[host] = false;
    for vm in state.vms.iter().filter(|vm| vm.host == Some(host)) {
        if let Some(process) = &vm.process {
            process.crash();
        }
    }
    tracing::warn!(host = shared.config.hosts[host].name, "host failed");
}

/// The `{"virtualmachine": {...}}` job result for `vm_id`, as it is now.
pub fn vm_result(shared: &Shared, state: &super::state::State, vm_id: &str) -> Value {
    match state.vm(vm_id) {
        Some(vm) => {
            let mut vm = render::vm(&shared.config, state, vm);
            // The job this result finishes is no longer pending on the VM.
            if let Some(fields) = vm.as_object_mut() {
                fields.remove("jobid");
                fields.remove("jobstatus");
            }
            json!({ "virtualmachine": vm })
        }
        None => json!({ "success": true }),
    }
}

/// Places the VM, waits the boot delay, starts its process and waits for its workload.
/// On failure the VM has no host (the caller sets its state), unless `token` was cancelled:
/// then whoever cancelled owns the VM.
async fn boot(
    shared: &Arc<Shared>,
    vm_id: &str,
    token: &CancellationToken,
    avoid: Option<usize>,
) -> Result<(), ApiError> {
    let cancelled = || {
        ApiError::internal(format!(
            "Unable to start VM {vm_id}: the operation was cancelled"
        ))
    };
    let spec = {
        let mut state = shared.lock();
        let Some(vm) = state.vm(vm_id) else {
            return Err(cancelled());
        };
        let (zone, offering, name) = (vm.zone, vm.offering, vm.name.clone());
        let host = state
            .place(&shared.config, zone, offering, avoid)
            .ok_or_else(|| {
                ApiError::capacity(format!("Unable to create a deployment for VM[User|{name}]"))
            })?;
        let Some(vm) = state.vm_mut(vm_id) else {
            return Err(cancelled());
        };
        vm.host = Some(host);
        vm.last_host = Some(host);
        vm.state = VmState::Starting;
        process_spec(shared, vm)
    };
    if !pause(shared, token, shared.config.boot_delay).await {
        return Err(cancelled());
    }
    let generation = {
        let mut state = shared.lock();
        let Some(vm) = state.vm_mut(vm_id) else {
            return Err(cancelled());
        };
        vm.generation += 1;
        vm.generation
    };
    let weak = Arc::downgrade(shared);
    let id = vm_id.to_string();
    let on_crash_report = move |status| {
        if let Some(shared) = weak.upgrade() {
            on_crash(&shared, &id, generation, status);
        }
    };
    let process = match VmProcess::spawn(
        &spec,
        &shared.tasks,
        shared.shutdown.clone(),
        on_crash_report,
    ) {
        Ok(process) => process,
        Err(error) => {
            release_host(shared, vm_id, token);
            let program = spec.command.first().map_or("", String::as_str);
            return Err(ApiError::internal(format!(
                "Unable to start VM {vm_id}: cannot run {program}: {error}"
            )));
        }
    };
    let up = tokio::select! {
        up = process.wait_listening(spec.listen, shared.config.start_timeout) => up,
        () = token.cancelled() => Err("cancelled".to_string()),
        () = shared.shutdown.cancelled() => Err("shutting down".to_string()),
    };
    let mut state = shared.lock();
    if token.is_cancelled() || shared.shutdown.is_cancelled() {
        return Err(cancelled()); // `process` is dropped: killed.
    }
    let Some(vm) = state.vm_mut(vm_id) else {
        return Err(cancelled());
    };
    // Checked under the lock: a crash reported after this sees the VM Running and stops it.
    let up = up.and_then(|()| match process.has_exited() {
        true => Err("the VM process exited right after it started listening".to_string()),
        false => Ok(()),
    });
    if let Err(why) = up {
        vm.host = None;
        return Err(ApiError::internal(format!(
            "Unable to start VM {vm_id}: {why}"
        )));
    }
    tracing::info!(vm = vm_id, name = vm.name, address = %spec.listen, pid = process.pid(), "VM running");
    vm.process = Some(process);
    vm.state = VmState::Running;
    Ok(())
}

/// `Stopping` → the process exits → `Stopped`, host capacity released.
async fn halt(shared: &Shared, vm_id: &str, grace: Duration) {
    let process = {
        let mut state = shared.lock();
        let Some(vm) = state.vm_mut(vm_id) else {
            return;
        };
        vm.state = VmState::Stopping;
        vm.process.take()
    };
    if let Some(process) = process {
        process.stop(grace).await;
    }
    let mut state = shared.lock();
    if let Some(vm) = state.vm_mut(vm_id) {
        vm.state = VmState::Stopped;
        vm.host = None;
    }
}

/// Ends a start-like job: success with the VM, or failure with the VM back in `on_failure`.
fn finish(
    shared: &Shared,
    vm_id: &str,
    job_id: &str,
    token: &CancellationToken,
    outcome: Result<(), ApiError>,
    on_failure: VmState,
) {
    let mut state = shared.lock();
    match outcome {
        Ok(()) => {
            let result = vm_result(shared, &state, vm_id);
            state.succeed_job(job_id, result);
        }
        Err(error) => {
            if !token.is_cancelled()
                && let Some(vm) = state.vm_mut(vm_id)
            {
                vm.state = on_failure;
                vm.host = None;
            }
            state.fail_job(job_id, &error);
        }
    }
}

async fn ha_restart(
    shared: Arc<Shared>,
    vm_id: String,
    token: CancellationToken,
    avoid: Option<usize>,
) {
    for attempt in 0..HA_ATTEMPTS {
        let delay = shared.config.ha_delay * 2_u32.pow(attempt);
        if !pause(&shared, &token, delay).await {
            return;
        }
        let ready = shared
            .lock()
            .vm(&vm_id)
            .is_some_and(|vm| vm.state == VmState::Stopped && vm.job.is_none());
        if !ready {
            return;
        }
        match boot(&shared, &vm_id, &token, avoid).await {
            Ok(()) => {
                tracing::info!(vm = vm_id, "VM restarted by HA");
                return;
            }
            Err(error) => {
                if token.is_cancelled() {
                    return;
                }
                if let Some(vm) = shared.lock().vm_mut(&vm_id) {
                    vm.state = VmState::Stopped;
                    vm.host = None;
                }
                tracing::warn!(
                    vm = vm_id,
                    attempt,
                    error = error.errortext,
                    "HA restart failed"
                );
            }
        }
    }
}

async fn expunge_later(shared: Arc<Shared>, vm_id: String, generation: u64, delay: Duration) {
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        () = shared.shutdown.cancelled() => return,
    }
    let mut state = shared.lock();
    let still_destroyed = state
        .vm(&vm_id)
        .is_some_and(|vm| vm.generation == generation && vm.state == VmState::Destroyed);
    if still_destroyed {
        remove(&mut state, &vm_id);
        tracing::info!(vm = vm_id, "destroyed VM expunged");
    }
}

/// Sleeps `delay` unless the operation or the cloud is cancelled first (then false).
async fn pause(shared: &Shared, token: &CancellationToken, delay: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(delay) => true,
        () = token.cancelled() => false,
        () = shared.shutdown.cancelled() => false,
    }
}

fn release_host(shared: &Shared, vm_id: &str, token: &CancellationToken) {
    if token.is_cancelled() {
        return;
    }
    if let Some(vm) = shared.lock().vm_mut(vm_id) {
        vm.host = None;
    }
}

fn remove(state: &mut super::state::State, vm_id: &str) {
    if let Some(index) = state.vms.iter().position(|vm| vm.id == vm_id) {
        let vm = state.vms.remove(index);
        state.addresses.release(vm.ip);
    }
}

fn process_spec(shared: &Shared, vm: &Vm) -> ProcessSpec {
    let config = &shared.config;
    let offering = &config.offerings[vm.offering];
    let template = &config.templates[vm.template];
    // The template's cost is CPU time on a 1000 MHz vCPU; a faster vCPU needs less.
    let request_cpu = template
        .request_cpu
        .mul_f64(1000.0 / f64::from(offering.cpuspeed.max(1)));
    // A vCPU gets its offering's speed out of one of its host's cores: a 500 MHz vCPU on a
    // 2000 MHz host is busy at a quarter of a real core, so small hosts hold many busy VMs.
    let cpu_share = vm
        .host
        .map(|host| config.hosts[host].cpuspeed)
        .map_or(1.0, |host_speed| {
            (f64::from(offering.cpuspeed) / f64::from(host_speed.max(1))).min(1.0)
        });
    ProcessSpec {
        command: shared.vm_command.clone(),
        listen: SocketAddr::new(vm.ip.into(), template.port),
        vm_id: vm.id.clone(),
        name: vm.name.clone(),
        vcpus: offering.cpunumber,
        request_cpu,
        cpu_share,
        response_bytes: template.response_bytes,
        memory_mb: offering.memory,
        extra_args: template.vm_args.clone(),
        log_file: config
            .vm_log_dir
            .as_ref()
            .map(|dir| dir.join(format!("{}.log", vm.id))),
    }
}
