//! What the autoscale end-to-end tests share: a local cloud config whose VMs burn real CPU per
//! request, a Ballast config that scales a servicegroup on the VMs' SNMP CPU, a paced HTTP load
//! that counts every failure and which VM answered, and the local cloud's own endpoint (its
//! VMs, fault injection, crashing a VM).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::ballast::{Ballast, field, is_event};
use crate::client::H1;
use crate::{BALLAST_SECTION, Net};

/// A local cloud on `listen` whose VMs take addresses in `127.A.B.64/26` of `net`. The
/// template's VMs burn `request_cpu` per request on one vCPU, so their SNMP CPU figure rises
/// with the load they really serve.
pub fn localcloud_toml(net: &Net, listen: SocketAddr, request_cpu: &str) -> String {
    let IpAddr::V4(base) = net.ip(64) else {
        unreachable!("Net hands out IPv4 addresses")
    };
    format!(
        r#"listen = "{listen}"
address_range = "{base}/26"
boot_delay = "500ms"
start_timeout = "10s"
stop_timeout = "2s"
expunge_delay = "5s"

[[apiuser]]
username = "admin"
apikey = "test-key"
secretkey = "test-secret"
role = "admin"

[[zone]]
name = "local-zone"

[[host]]
name = "host-1"
zone = "local-zone"
cpunumber = 16
cpuspeed = 2000
memory = 16384

[[serviceoffering]]
name = "small"
cpunumber = 1
cpuspeed = 1000
memory = 256

[[template]]
name = "web"
port = 8000
request_cpu = "{request_cpu}"
response_bytes = 64
"#
    )
}

/// Addresses one autoscale test uses.
#[derive(Debug, Clone, Copy)]
pub struct Addrs {
    pub cloud: SocketAddr,
    pub vserver: SocketAddr,
    pub admin: SocketAddr,
    pub metrics: SocketAddr,
}

impl Addrs {
    pub fn new(net: &Net) -> Addrs {
        Addrs {
            cloud: net.free_addr(200),
            vserver: net.free_addr(201),
            admin: net.free_addr(202),
            metrics: net.free_addr(203),
        }
    }
}

/// Ballast in front of the local cloud: an HTTP vserver over servicegroup `app` (HTTP health
/// checks and a passive SNMP LOAD monitor on the VMs' agents), scaled by autoscale group `web`
/// on the VMs' CPU between `min` and `max`, with the short timings of the tests (interval 1 s,
/// watch 3 s, cooldown 5 s, quiet 3 s). Profile ids are given by name.
pub fn ballast_toml(addrs: &Addrs, min: u32, max: u32, upper: u32, lower: u32) -> String {
    let Addrs {
        cloud,
        vserver,
        admin,
        metrics,
    } = addrs;
    format!(
        r#"{BALLAST_SECTION}[admin]
listen = "{admin}"
passwordfile = "admin.pass"

[metrics]
listen = "{metrics}"

[[lbmonitor]]
monitorname = "health"
type = "HTTP"
httprequest = "GET /healthz"
interval = "250ms"
resptimeout = "200ms"
retries = 2

[[lbmonitor]]
monitorname = "load"
type = "LOAD"
interval = "500ms"
resptimeout = "300ms"
destport = 161
passive = true
metrics = [{{ metric = "cpu" }}]

[[servicegroup]]
servicegroupname = "app"
servicetype = "HTTP"
monitor = ["health", "load"]

[[lbvserver]]
name = "web"
servicetype = "HTTP"
ipv46 = "{vserver_ip}"
port = {vserver_port}
lbmethod = "LEASTCONNECTION"
servicegroupname = "app"

[[autoscaleprofile]]
name = "local"
url = "http://{cloud}/client/api"
apikey = "test-key"
sharedsecret = "test-secret"
zoneid = "local-zone"
templateid = "web"
serviceofferingid = "small"
memberport = 8000

[[autoscalegroup]]
name = "web"
vserver = "web"
servicegroupname = "app"
profilename = "local"
minmembers = {min}
maxmembers = {max}
interval = "1s"
watchtime = "3s"
cooldown = "5s"
quiettime = "3s"
warmup = "1s"
healthgraceperiod = "3s"
metrics = [{{ name = "cpu", source = "snmp", upper = {upper}, lower = {lower} }}]
"#,
        vserver_ip = vserver.ip(),
        vserver_port = vserver.port(),
    )
}

/// The autoscale events Ballast logged so far: `(kind, vm)` in order.
pub fn events(ballast: &Ballast) -> Vec<(String, String)> {
    ballast
        .logs()
        .iter()
        .filter(|line| is_event(line, "autoscale event"))
        .map(|line| {
            (
                field(line, "kind").unwrap_or_default().to_string(),
                field(line, "vm").unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Waits until Ballast logs autoscale event `kind` at log index `mark` or later.
pub async fn wait_for_event(
    ballast: &Ballast,
    mark: usize,
    kind: &str,
    timeout: Duration,
) -> Option<Value> {
    ballast
        .wait_for_log_since(
            mark,
            |line| is_event(line, "autoscale event") && field(line, "kind") == Some(kind),
            timeout,
        )
        .await
}

/// Polls an async condition every 200 ms until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The local cloud's VMs (`GET /localcloud/v1/state`): id, state, ipaddress ...
pub async fn cloud_vms(cloud: SocketAddr) -> Vec<Value> {
    let state = localcloud_call(cloud, "GET", "state", "").await;
    state["vms"].as_array().cloned().unwrap_or_default()
}

/// VMs that exist: not Destroyed or Expunging (what `maxmembers` counts).
pub async fn live_vms(cloud: SocketAddr) -> Vec<Value> {
    cloud_vms(cloud)
        .await
        .into_iter()
        .filter(|vm| !matches!(vm["state"].as_str(), Some("Destroyed" | "Expunging")))
        .collect()
}

/// `POST /localcloud/v1/faults` with a JSON patch.
pub async fn inject(cloud: SocketAddr, faults: &str) {
    localcloud_call(cloud, "POST", "faults", faults).await;
}

/// Kills a VM's process (`POST /localcloud/v1/vms/<id>/crash`).
pub async fn crash(cloud: SocketAddr, vm: &str) {
    localcloud_call(cloud, "POST", &format!("vms/{vm}/crash"), "").await;
}

/// The fault endpoint takes an admin key pair as HTTP Basic credentials: those of
/// [`localcloud_toml`]'s `test-key` / `test-secret` user, Base64-encoded.
const ADMIN_BASIC_AUTH: &str = "Basic dGVzdC1rZXk6dGVzdC1zZWNyZXQ=";

async fn localcloud_call(cloud: SocketAddr, method: &str, path: &str, body: &str) -> Value {
    let mut client = H1::connect(cloud)
        .await
        .expect("connect to the local cloud");
    let request = Request::builder()
        .method(method)
        .uri(format!("/localcloud/v1/{path}"))
        .header("host", cloud.to_string())
        .header("authorization", ADMIN_BASIC_AUTH)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("a valid request");
    let reply = client.send(request).await.expect("the local cloud answers");
    assert!(
        reply.status.is_success(),
        "{method} /localcloud/v1/{path}: {} {}",
        reply.status,
        reply.text()
    );
    serde_json::from_slice(&reply.body).expect("the local cloud answers JSON")
}

/// An open-loop HTTP load: `rate` requests per second in all, spread over `connections`
/// keep-alive clients (a slow answer delays only its own client). A request fails when it
/// gets no response or a status other than 200. Counts answers per VM (`x-ballast-vm-id`).
#[derive(Debug)]
pub struct PacedLoad {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
    shared: Arc<PacedShared>,
}

#[derive(Debug, Default)]
struct PacedShared {
    ok: AtomicU64,
    failed: AtomicU64,
    errors: Mutex<Vec<String>>,
    by_vm: Mutex<BTreeMap<String, u64>>,
}

/// What a [`PacedLoad`] saw.
#[derive(Debug, Clone)]
pub struct PacedReport {
    pub ok: u64,
    pub failed: u64,
    pub errors: Vec<String>,
    pub by_vm: BTreeMap<String, u64>,
}

impl PacedLoad {
    pub fn start(addr: SocketAddr, rate: u32, connections: u32) -> PacedLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(PacedShared::default());
        let period = Duration::from_secs_f64(f64::from(connections) / f64::from(rate.max(1)));
        let tasks = (0..connections)
            .map(|index| {
                let (stop, shared) = (stop.clone(), shared.clone());
                tokio::spawn(async move {
                    let offset = period.mul_f64(f64::from(index) / f64::from(connections));
                    tokio::time::sleep(offset).await;
                    let mut ticks = tokio::time::interval(period);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    let mut client: Option<H1> = None;
                    while !stop.load(Relaxed) {
                        ticks.tick().await;
                        match one_request(&mut client, addr).await {
                            Ok(vm) => {
                                shared.ok.fetch_add(1, Relaxed);
                                *shared.by_vm.lock().expect("lock").entry(vm).or_default() += 1;
                            }
                            Err(error) => {
                                shared.failed.fetch_add(1, Relaxed);
                                let mut errors = shared.errors.lock().expect("lock");
                                if errors.len() < 20 {
                                    errors.push(format!("{error:#}"));
                                }
                                client = None;
                            }
                        }
                    }
                })
            })
            .collect();
        PacedLoad {
            stop,
            tasks,
            shared,
        }
    }

    pub fn ok(&self) -> u64 {
        self.shared.ok.load(Relaxed)
    }

    pub fn failed(&self) -> u64 {
        self.shared.failed.load(Relaxed)
    }

    /// Answers per VM id so far.
    pub fn by_vm(&self) -> BTreeMap<String, u64> {
        self.shared.by_vm.lock().expect("lock").clone()
    }

    pub async fn stop(self) -> PacedReport {
        self.stop.store(true, Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
        PacedReport {
            ok: self.shared.ok.load(Relaxed),
            failed: self.shared.failed.load(Relaxed),
            errors: self.shared.errors.lock().expect("lock").clone(),
            by_vm: self.shared.by_vm.lock().expect("lock").clone(),
        }
    }
}

/// One GET on a kept-alive connection (reopened when the proxy closed it between requests,
/// which is not a failure: nothing was sent). Returns the VM that answered.
async fn one_request(client: &mut Option<H1>, addr: SocketAddr) -> anyhow::Result<String> {
    for _ in 0..2 {
        if client.as_ref().is_none_or(H1::is_closed) {
            *client = Some(H1::connect(addr).await?);
        }
        let connection = client.as_mut().expect("connected above");
        let request = Request::get("/")
            .header("host", addr.to_string())
            .body(Full::new(Bytes::new()))?;
        match connection.try_send(request).await? {
            Some(reply) if reply.status == http::StatusCode::OK => {
                let vm = reply
                    .headers
                    .get("x-ballast-vm-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("?");
                return Ok(vm.to_string());
            }
            Some(reply) => anyhow::bail!("status {}: {}", reply.status, reply.text()),
            None => *client = None,
        }
    }
    anyhow::bail!("the connection closed twice before the request went out")
}
