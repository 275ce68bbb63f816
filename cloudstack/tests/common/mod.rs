//! Test harness: a local cloud on free loopback ports whose VMs are real `ballast vm`
//! processes, clients for it, and helpers to look at processes and sockets.
//!
//! The tests that use it are integration tests of the root `ballast` package (see its
//! `Cargo.toml`), so cargo builds the binary the VMs run first (`BALLAST_BIN` overrides its
//! path). The Python tests need the virtualenv `.venv` at the workspace root with `cs` and
//! `apache-libcloud` (`scripts/test.sh` makes it).

#![allow(dead_code)] // Each test binary uses a different part of the harness.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cloudstack::localcloud::{LocalCloud, LocalCloudConfig};
use cloudstack::{ClientConfig, CloudStackClient, ListFilter, TemplateFilter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const ADMIN_KEY: &str = "admin-key";
pub const ADMIN_SECRET: &str = "admin-secret";
pub const USER_KEY: &str = "user-key";
pub const USER_SECRET: &str = "user-secret";

/// The `ballast` binary the VMs run: the one cargo built for this test run (these tests are
/// integration tests of the root `ballast` package), or `BALLAST_BIN`.
pub fn ballast_bin() -> PathBuf {
    std::env::var_os("BALLAST_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_ballast")),
        PathBuf::from,
    )
}

/// The virtualenv's Python with `cs` and `apache-libcloud`.
pub fn venv_python() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        path.exists(),
        "the Python CloudStack clients are missing: {} does not exist. Create it with \
         `python3 -m venv .venv && .venv/bin/pip install cs apache-libcloud` at the workspace \
         root (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A fresh /24 inside 127.0.0.0/8 for each cloud of this process, so parallel tests (and
/// other test processes) do not share VM addresses.
pub fn fresh_range() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let second = 100 + std::process::id() % 100;
    format!("127.{second}.{}.0/24", n % 256)
}

/// A TCP port that was free on 127.0.0.1 a moment ago (VMs listen on other 127.x addresses,
/// where it is free as well unless something odd runs there).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A running local cloud with clients and the catalog's ids.
pub struct TestCloud {
    pub cloud: LocalCloud,
    pub admin: CloudStackClient,
    pub user: CloudStackClient,
    pub zoneid: String,
    pub small: String,
    pub ha: String,
    pub templateid: String,
    pub port: u16,
    pub log_dir: LogDir,
}

/// The VMs' stderr logs; removed when the test passes, kept (and named) when it fails.
pub struct LogDir(pub PathBuf);

impl Drop for LogDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("VM logs: {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Options that tests change.
pub struct Setup {
    /// `[[host]]` blocks; default: two hosts of 2 vCPU × 2000 MHz, 2048 MB.
    pub hosts: String,
    pub boot_delay: &'static str,
    pub expunge_delay: &'static str,
    pub request_cpu: &'static str,
    /// `max_account_user_vms`.
    pub max_account_user_vms: i64,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            hosts: host_block("h1", 2, 2048) + &host_block("h2", 2, 2048),
            boot_delay: "200ms",
            expunge_delay: "60s",
            request_cpu: "1ms",
            max_account_user_vms: 20,
        }
    }
}

pub fn host_block(name: &str, cpunumber: u32, memory: u32) -> String {
    format!(
        "[[host]]\nname = \"{name}\"\nzone = \"z1\"\ncpunumber = {cpunumber}\ncpuspeed = 2000\nmemory = {memory}\n"
    )
}

impl TestCloud {
    pub async fn start() -> Self {
        Self::start_with(Setup::default()).await
    }

    pub async fn start_with(setup: Setup) -> Self {
        let port = free_port();
        let log_dir = std::env::temp_dir().join(format!(
            "ballast-localcloud-test-{}-{}",
            std::process::id(),
            free_port()
        ));
        let text = format!(
            r#"
            listen = "127.0.0.1:0"
            address_range = "{range}"
            boot_delay = "{boot_delay}"
            expunge_delay = "{expunge_delay}"
            ha_delay = "200ms"
            stop_timeout = "2s"
            max_account_user_vms = {max_account_user_vms}
            vm_command = ["{bin}", "vm"]
            vm_log_dir = "{log_dir}"

            [[apiuser]]
            username = "admin"
            apikey = "{ADMIN_KEY}"
            secretkey = "{ADMIN_SECRET}"

            [[apiuser]]
            username = "alice"
            apikey = "{USER_KEY}"
            secretkey = "{USER_SECRET}"
            role = "user"

            [[zone]]
            name = "z1"

            {hosts}

            [[serviceoffering]]
            name = "small"
            cpunumber = 1
            cpuspeed = 1000
            memory = 512

            [[serviceoffering]]
            name = "small-ha"
            cpunumber = 1
            cpuspeed = 1000
            memory = 512
            offerha = true

            [[template]]
            name = "web"
            port = {port}
            request_cpu = "{request_cpu}"
            response_bytes = 128
            "#,
            range = fresh_range(),
            boot_delay = setup.boot_delay,
            expunge_delay = setup.expunge_delay,
            bin = ballast_bin().display(),
            log_dir = log_dir.display(),
            hosts = setup.hosts,
            request_cpu = setup.request_cpu,
            max_account_user_vms = setup.max_account_user_vms,
        );
        let config = LocalCloudConfig::from_toml_str(&text).expect("the test config is valid");
        let cloud = LocalCloud::start(config)
            .await
            .expect("the local cloud starts");
        let admin = client(&cloud.endpoint(), ADMIN_KEY, ADMIN_SECRET);
        let user = client(&cloud.endpoint(), USER_KEY, USER_SECRET);
        let zoneid = admin
            .list_zones(&ListFilter::by_name("z1"))
            .await
            .expect("zones")[0]
            .id
            .clone();
        let offerings = admin
            .list_service_offerings(&ListFilter::default())
            .await
            .expect("offerings");
        let offering = |name: &str| {
            offerings
                .iter()
                .find(|o| o.name == name)
                .map(|o| o.id.clone())
                .expect("offering exists")
        };
        let templateid = admin
            .list_templates(TemplateFilter::Executable, &ListFilter::by_name("web"))
            .await
            .expect("templates")[0]
            .id
            .clone();
        Self {
            small: offering("small"),
            ha: offering("small-ha"),
            cloud,
            admin,
            user,
            zoneid,
            templateid,
            port,
            log_dir: LogDir(log_dir),
        }
    }

    /// A deploy request for the web template in z1.
    pub fn deploy(&self, name: &str, offering: &str) -> cloudstack::DeployVirtualMachine {
        cloudstack::DeployVirtualMachine {
            zoneid: self.zoneid.clone(),
            templateid: self.templateid.clone(),
            serviceofferingid: offering.to_string(),
            name: Some(name.to_string()),
            group: Some("web".to_string()),
            ..Default::default()
        }
    }

    /// Deploys and waits until Running; returns the VM.
    pub async fn running_vm(&self, name: &str, offering: &str) -> cloudstack::VirtualMachine {
        let job = self
            .admin
            .deploy_virtual_machine(&self.deploy(name, offering))
            .await
            .expect("deploy accepted");
        self.admin
            .wait_for_virtual_machine("deployVirtualMachine", &job.jobid, wait(20))
            .await
            .expect("deploy job succeeds")
    }

    /// The VM as the API reports it now.
    pub async fn vm(&self, id: &str) -> Option<cloudstack::VirtualMachine> {
        let request = cloudstack::ListVirtualMachines {
            id: Some(id.to_string()),
            ..Default::default()
        };
        let page = self
            .admin
            .list_virtual_machines(&request)
            .await
            .expect("listVirtualMachines");
        page.items.into_iter().next()
    }

    /// Polls until VM `id` is in `state` (by name), for at most `seconds`.
    pub async fn wait_state(
        &self,
        id: &str,
        state: &str,
        seconds: u64,
    ) -> cloudstack::VirtualMachine {
        self.wait_vm(id, seconds, state, |vm| vm.state.as_str() == state)
            .await
    }

    /// Polls until VM `id` satisfies `done` (described by `what`), for at most `seconds`.
    pub async fn wait_vm(
        &self,
        id: &str,
        seconds: u64,
        what: &str,
        done: impl Fn(&cloudstack::VirtualMachine) -> bool,
    ) -> cloudstack::VirtualMachine {
        let mut last = None;
        for _ in 0..seconds * 20 {
            if let Some(vm) = self.vm(id).await {
                if done(&vm) {
                    return vm;
                }
                last = Some(format!("{} on {:?}", vm.state, vm.hostid));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("VM {id} did not become {what} within {seconds}s (last seen: {last:?})");
    }

    /// Polls until VM `id` runs again with a process other than `old_pid`.
    pub async fn wait_restarted(
        &self,
        id: &str,
        old_pid: u32,
        seconds: u64,
    ) -> (cloudstack::VirtualMachine, u32) {
        let vm = self
            .wait_vm(id, seconds, "Running with a new process", |vm| {
                vm.state.as_str() == "Running" && self.pid(id).is_some_and(|pid| pid != old_pid)
            })
            .await;
        let pid = self.pid(id).expect("a process");
        (vm, pid)
    }

    pub fn pid(&self, id: &str) -> Option<u32> {
        self.cloud
            .vm_pids()
            .into_iter()
            .find(|(vm, _)| vm == id)
            .map(|(_, pid)| pid)
    }

    pub fn workload_addr(&self, vm: &cloudstack::VirtualMachine) -> SocketAddr {
        SocketAddr::new(
            vm.ip_address().expect("the VM has an address").into(),
            self.port,
        )
    }
}

pub fn client(endpoint: &str, key: &str, secret: &str) -> CloudStackClient {
    let mut config = ClientConfig::new(endpoint, key, secret);
    config.timeout = Duration::from_secs(10);
    CloudStackClient::new(config).expect("valid client config")
}

pub fn wait(seconds: u64) -> cloudstack::JobWait {
    let mut wait = cloudstack::JobWait::new(Duration::from_secs(seconds));
    wait.poll =
        cloudstack::Backoff::new(Duration::from_millis(50), Duration::from_millis(250), 1.5);
    wait
}

/// Whether process `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state is the field after the parenthesised command name.
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next());
            state != Some("Z")
        }
        Err(_) => false,
    }
}

/// Polls `alive(pid)` until false, for at most `seconds`.
pub async fn wait_dead(pid: u32, seconds: u64) -> bool {
    for _ in 0..seconds * 20 {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Sends `kill -<signal> <pid>` (a process "from outside"), with the shell's built-in `kill`
/// so no procps is needed.
pub fn kill(signal: &str, pid: u32) {
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("kill -{signal} {pid}"))
        .status()
        .expect("run sh -c kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// `GET path` over HTTP/1.0; returns the status line, the headers (lower-cased names) and body.
pub async fn http_get(
    addr: SocketAddr,
    path: &str,
) -> std::io::Result<(u16, Vec<(String, String)>, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_lowercase(), value.trim().to_string()))
        .collect();
    Ok((status, headers, body.to_string()))
}

/// `method path` on the local cloud's fault endpoint over HTTP/1.0, with a key pair as HTTP
/// Basic credentials; returns the status and the body.
pub async fn fault_endpoint(
    addr: SocketAddr,
    method: &str,
    path: &str,
    (key, secret): (&str, &str),
) -> (u16, String) {
    use base64::Engine as _;
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{key}:{secret}"));
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Basic {credentials}\r\n\
         Content-Length: 0\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, body.to_string())
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}
