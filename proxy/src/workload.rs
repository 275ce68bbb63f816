//! `ballast vm`: the small HTTP workload that local-cloud VMs run (and that examples and tests
//! use as a backend). Every response names the VM, so an operator can see balancing at work.
//!
//! - `/healthz` → `200 ok`, at once.
//! - anything else → `200` with a body of `response_bytes` (the VM name, then filler), after
//!   burning `request_cpu` of CPU. Burns run on at most `vcpus` threads at once; more requests
//!   wait their turn. So a VM serves at most `vcpus / request_cpu` requests a second and more
//!   VMs really serve more. (A burn spins for `request_cpu` of wall time: on a host with fewer
//!   free cores than busy vCPUs it gets less real CPU, but the VM's capacity stays the same.)
//! - identity headers on every response: `x-ballast-vm` (name), `x-ballast-vm-id` (the
//!   local cloud's VM id, when given) and `x-ballast-vm-address` (the listen address).
//!
//! With `snmp_port`, an SNMP v2c agent (from `snmp-monitor`) answers on the same address with
//! the process's own CPU use (relative to its vCPUs) and resident memory (relative to its memory
//! size) at the UCD-SNMP-MIB OIDs, so LOAD monitors see each VM's load.
//!
//! With `exit_with_stdin` the program ends when its stdin closes: the local cloud holds the
//! other end of that pipe, so a VM never outlives the local cloud, however that one ends.

use std::convert::Infallible;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::sync::{Semaphore, oneshot};

/// What a VM's workload does.
#[derive(Debug, Clone)]
pub struct WorkloadOptions {
    pub listen: SocketAddr,
    pub name: String,
    /// The VM's id in the local cloud, reported in `x-ballast-vm-id`.
    pub id: Option<String>,
    /// The VM's vCPUs: how many requests burn CPU at the same time.
    pub vcpus: usize,
    /// CPU time each request burns (zero: none), as wall time on one of the VM's vCPUs.
    pub request_cpu: Duration,
    /// The share of one host core each vCPU gets (0 < share <= 1; 1: a whole core). A burn
    /// spins only this share of its wall time, and the SNMP agent reports CPU relative to
    /// `vcpus × cpu_share` cores, as a VM's guest sees its own vCPUs.
    pub cpu_share: f64,
    /// Body size of a `/` response (at least the name line).
    pub response_bytes: usize,
    /// The VM's memory size in MB (memTotalReal of the SNMP agent; 1024 if not given).
    pub memory_mb: Option<u32>,
    /// UDP port of the SNMP agent on the listen address; `None`: no agent.
    pub snmp_port: Option<u16>,
    /// The agent's v2c community.
    pub snmp_community: String,
    /// Exit when stdin reaches end of file.
    pub exit_with_stdin: bool,
}

impl WorkloadOptions {
    /// Name and address only: no CPU cost, a one-line body, runs until killed.
    pub fn new(listen: SocketAddr, name: String) -> Self {
        Self {
            listen,
            name,
            id: None,
            vcpus: 1,
            request_cpu: Duration::ZERO,
            cpu_share: 1.0,
            response_bytes: 0,
            memory_mb: None,
            snmp_port: None,
            snmp_community: "public".to_owned(),
            exit_with_stdin: false,
        }
    }
}

/// Serves until the process ends: `/healthz` → `200 ok`, anything else → `200 <name>`, with an
/// `X-Ballast-Vm` header.
pub async fn serve(listen: SocketAddr, name: String) -> std::io::Result<()> {
    run(WorkloadOptions::new(listen, name)).await
}

/// Serves `options` until the process ends or (with `exit_with_stdin`) stdin closes. Fails only
/// when the address cannot be bound.
pub async fn run(options: WorkloadOptions) -> std::io::Result<()> {
    let listener = crate::listener::bind(options.listen).map_err(|error| {
        std::io::Error::new(
            error.kind(),
            format!("vm cannot listen on {}: {error}", options.listen),
        )
    })?;
    tracing::info!(
        address = %options.listen,
        name = options.name,
        id = options.id.as_deref().unwrap_or(""),
        vcpus = options.vcpus,
        request_cpu = ?options.request_cpu,
        "vm workload listening"
    );
    if let Some(port) = options.snmp_port {
        start_agent(&options, port).await;
    }
    let app = Arc::new(App::new(&options));
    let stdin_closed = stdin_watch(options.exit_with_stdin);
    let stdin_closed = async move {
        match stdin_closed {
            Some(closed) => {
                let _ = closed.await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stdin_closed);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stdin_closed => {
                tracing::info!(name = options.name, "stdin closed; vm workload exiting");
                return Ok(());
            }
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: wait, do not die.
                tracing::warn!(%error, "vm workload: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| app.clone().respond(request));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Starts the SNMP agent next to the HTTP workload. A VM whose agent cannot bind still serves
/// HTTP (its LOAD monitor will report timeouts), so this only warns.
async fn start_agent(options: &WorkloadOptions, port: u16) {
    use snmp_monitor::agent::{self, AgentStats, ProcessSampler, VmShare};
    let addr = SocketAddr::new(options.listen.ip(), port);
    let socket = match tokio::net::UdpSocket::bind(addr).await {
        Ok(socket) => socket,
        Err(error) => {
            tracing::warn!(address = %addr, %error, "vm: SNMP agent cannot bind; serving HTTP only");
            return;
        }
    };
    let share = VmShare {
        vcpus: options.vcpus.max(1) as f64 * cpu_share(options.cpu_share),
        memory_bytes: u64::from(options.memory_mb.unwrap_or(1024)) << 20,
    };
    let values = ProcessSampler::spawn(share, Duration::from_secs(1));
    let community = options.snmp_community.clone();
    tokio::spawn(async move {
        let source = move || *values.borrow();
        if let Err(error) =
            agent::serve(socket, &community, source, Arc::new(AgentStats::default())).await
        {
            tracing::warn!(%error, "vm: SNMP agent stopped");
        }
    });
    tracing::info!(address = %addr, "vm SNMP agent listening");
}

/// What every request needs, built once.
struct App {
    body: Bytes,
    identity: Vec<(&'static str, HeaderValue)>,
    request_cpu: Duration,
    cpu_share: f64,
    vcpus: Arc<Semaphore>,
}

impl App {
    fn new(options: &WorkloadOptions) -> Self {
        let mut body = format!("{}\n", options.name).into_bytes();
        if body.len() < options.response_bytes {
            let filler = b"ballast-vm-payload-";
            let missing = options.response_bytes - body.len();
            body.extend(filler.iter().cycle().take(missing.saturating_sub(1)));
            body.push(b'\n');
        }
        let mut identity = Vec::new();
        let mut add = |name: &'static str, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                identity.push((name, value));
            }
        };
        add("x-ballast-vm", &options.name);
        if let Some(id) = &options.id {
            add("x-ballast-vm-id", id);
        }
        add("x-ballast-vm-address", &options.listen.to_string());
        Self {
            body: Bytes::from(body),
            identity,
            request_cpu: options.request_cpu,
            cpu_share: cpu_share(options.cpu_share),
            vcpus: Arc::new(Semaphore::new(options.vcpus.max(1))),
        }
    }

    async fn respond(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let body = if request.uri().path() == "/healthz" {
            Bytes::from_static(b"ok\n")
        } else {
            self.burn().await;
            self.body.clone()
        };
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = StatusCode::OK;
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain"),
        );
        for (name, value) in &self.identity {
            headers.insert(*name, value.clone());
        }
        Ok(response)
    }

    /// Burns `request_cpu` on one of the VM's vCPUs (waiting for a free one first).
    async fn burn(&self) {
        if self.request_cpu.is_zero() {
            return;
        }
        let Ok(permit) = self.vcpus.clone().acquire_owned().await else {
            return;
        };
        let (cost, share) = (self.request_cpu, self.cpu_share);
        let _ = tokio::task::spawn_blocking(move || {
            burn(cost, share);
            drop(permit);
        })
        .await;
    }
}

/// A share in (0, 1]; anything else (zero, negative, NaN, above 1) is a whole core.
fn cpu_share(share: f64) -> f64 {
    if share > 0.0 && share <= 1.0 {
        share
    } else {
        1.0
    }
}

/// Occupies a vCPU for `cost` of wall time, of which it really spins `share`: slices of at most
/// 1 ms of CPU, each followed by a sleep that keeps the pace of a vCPU with that share of a
/// core. The CPU spent is exact; a late wake-up only makes the request slower.
fn burn(cost: Duration, share: f64) {
    if share >= 1.0 {
        return spin(cost);
    }
    const SLICE: Duration = Duration::from_millis(1);
    let start = tokio::time::Instant::now();
    let cpu = cost.mul_f64(share);
    let mut done = Duration::ZERO;
    while done < cpu {
        let slice = SLICE.min(cpu - done);
        spin(slice);
        done += slice;
        let due = start + done.div_f64(share);
        let now = tokio::time::Instant::now();
        if due > now {
            #[expect(
                clippy::disallowed_methods,
                reason = "burns run on spawn_blocking threads, never on a runtime worker"
            )]
            std::thread::sleep(due - now);
        }
    }
}

fn spin(cost: Duration) {
    let end = tokio::time::Instant::now() + cost;
    let mut x: u64 = 1;
    while tokio::time::Instant::now() < end {
        for _ in 0..256 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
    }
    std::hint::black_box(x);
}

/// With `enabled`, a receiver that resolves when stdin reaches end of file (or fails).
fn stdin_watch(enabled: bool) -> Option<oneshot::Receiver<()>> {
    if !enabled {
        return None;
    }
    let (closed, receiver) = oneshot::channel();
    std::thread::spawn(move || {
        let mut sink = [0_u8; 256];
        let mut stdin = std::io::stdin();
        loop {
            match stdin.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = closed.send(());
    });
    Some(receiver)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str, response_bytes: usize) -> App {
        let options = WorkloadOptions {
            response_bytes,
            id: Some("vm-id".into()),
            ..WorkloadOptions::new(([127, 0, 0, 1], 8000).into(), name.into())
        };
        App::new(&options)
    }

    #[test]
    fn bodies_have_the_configured_size_and_start_with_the_name() {
        assert_eq!(&app("web-1", 0).body[..], b"web-1\n");
        let padded = app("web-1", 100);
        assert_eq!(padded.body.len(), 100);
        assert!(padded.body.starts_with(b"web-1\n"));
        assert!(padded.body.ends_with(b"\n"));
    }

    #[test]
    fn a_burn_with_a_quarter_core_spins_a_quarter_of_its_wall_time() {
        let cpu = || {
            let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
            let fields: Vec<&str> = stat
                .rsplit(')')
                .next()
                .unwrap()
                .split_whitespace()
                .collect();
            let ticks: u64 =
                fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
            Duration::from_millis(ticks * 10)
        };
        let (cpu_before, wall_before) = (cpu(), tokio::time::Instant::now());
        burn(Duration::from_millis(400), 0.25);
        let (spent, wall) = (cpu() - cpu_before, wall_before.elapsed());
        assert!(wall >= Duration::from_millis(400), "{wall:?}");
        // 100 ms of CPU, measured in 10 ms clock ticks.
        assert!(
            spent >= Duration::from_millis(80) && spent <= Duration::from_millis(130),
            "{spent:?}"
        );
    }

    #[test]
    fn shares_outside_zero_to_one_mean_a_whole_core() {
        assert_eq!(cpu_share(0.25), 0.25);
        for bad in [0.0, -1.0, 1.5, f64::NAN] {
            assert_eq!(cpu_share(bad), 1.0);
        }
    }

    #[test]
    fn identity_headers_name_the_vm() {
        let names: Vec<&str> = app("web-1", 0).identity.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            ["x-ballast-vm", "x-ballast-vm-id", "x-ballast-vm-address"]
        );
    }
}
