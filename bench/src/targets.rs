//! The processes under test and how they are started: the backend (this binary again), Ballast
//! with a generated config, and the list of targets the load generator takes turns on.
//!
//! A target is `(name, address, proxy pid)`. `direct` is the backend itself (no proxy pid).
//! HAProxy and nginx (`peers.rs` writes their configs) start like Ballast, pinned to the proxy
//! CPU; a peer that is missing or cannot start is skipped with a reason, never an error.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};
use tokio::time::{Duration, Instant};

use crate::peers::{self, Peer};
use crate::tls::CertFiles;

/// Where each process runs. The load generator and the backend share `generator_cpu`; the proxy
/// under test gets `proxy_cpu` to itself, so its CPU is what limits its throughput.
#[derive(Debug, Clone)]
pub struct Pinning {
    pub enabled: bool,
    pub generator_cpu: usize,
    pub proxy_cpu: usize,
    pub nice: Option<i32>,
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

/// Pins this process to the generator CPU and renices it, before any thread exists (threads
/// and children inherit both). `workspace` lints forbid `unsafe`, so this uses `taskset -p` and
/// `renice` rather than `sched_setaffinity`/`setpriority`. Returns notes for the report.
pub fn pin_self(pin: &mut Pinning) -> Vec<String> {
    let mut notes = Vec::new();
    let pid = std::process::id().to_string();
    if pin.enabled {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        if !on_path("taskset") {
            notes.push("taskset not found: nothing is pinned".to_string());
            pin.enabled = false;
        } else if pin.generator_cpu.max(pin.proxy_cpu) >= cpus || pin.generator_cpu == pin.proxy_cpu
        {
            notes.push(format!(
                "{cpus} CPU(s) available: cannot give CPU {} and CPU {} their own; nothing is pinned",
                pin.generator_cpu, pin.proxy_cpu
            ));
            pin.enabled = false;
        } else {
            let cpu = pin.generator_cpu.to_string();
            let status = Command::new("taskset")
                .args(["-a", "-c", "-p", &cpu, &pid])
                .stdout(Stdio::null())
                .status();
            if !status.is_ok_and(|s| s.success()) {
                notes.push("`taskset -p` failed: nothing is pinned".to_string());
                pin.enabled = false;
            }
        }
    }
    if let Some(nice) = pin.nice {
        let status = Command::new("renice")
            .args(["--priority", &nice.to_string(), "-p", &pid])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !status.is_ok_and(|s| s.success()) {
            notes.push(format!(
                "could not renice to {nice} (needs root or CAP_SYS_NICE); running at the default priority"
            ));
            pin.nice = None;
        }
    }
    notes
}

/// A scratch directory for configs and logs, removed on drop.
#[derive(Debug)]
pub struct Workdir(PathBuf);

impl Workdir {
    pub fn new() -> Result<Self> {
        let path = std::env::temp_dir().join(format!("ballast-bench-{}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process, killed when dropped; its stderr goes to a log file.
#[derive(Debug)]
pub struct Server {
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl Server {
    /// Starts `program args` on `cpu` (when pinning) with stdout discarded and stderr logged.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        cpu: Option<usize>,
        workdir: &Workdir,
    ) -> Result<Self> {
        let log = workdir.path().join(format!("{name}.log"));
        let mut command = match cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.args(["-c", &cpu.to_string()]).arg(program);
                c
            }
            None => Command::new(program),
        };
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).with_context(|| format!("creating {}", log.display()))?);
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "warn");
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        Ok(Self {
            name: name.to_string(),
            child,
            log,
        })
    }

    /// The server's pid (`taskset` execs it, so it is the same process).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Fails, with the end of the log, if the process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); end of its log:\n{}",
                self.name,
                self.log_tail()
            );
        }
        Ok(())
    }

    /// Waits until `addr` accepts a connection.
    pub async fn wait_accepting(&mut self, addr: SocketAddr, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            self.check_alive()?;
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not accept on {addr} within {within:?}; end of its log:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_addr() -> Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// What the proxies listen for; the backend always speaks HTTP/1.1 (or the L4 protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// HTTP/1.1 (`bench http`).
    Http,
    /// HTTP/1.1 over TLS (the certificate of [`crate::tls::CertFiles`]).
    Tls,
    /// HTTP/2 with prior knowledge, no TLS.
    H2c,
    /// A `TCP` vserver relaying with `[ballast] l4relay` = this (`bench tcp`).
    Tcp(Relay),
}

/// How Ballast's `TCP` vserver moves bytes (`[ballast] l4relay`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Relay {
    /// User-space copy (`copy_bidirectional`).
    Copy,
    /// `splice(2)` through a kernel pipe.
    Splice,
}

/// The Ballast config for one vserver in front of the backend, on one worker thread.
/// `maxconn` is set like HAProxy's, to the connections the bench will open: Ballast's own
/// default, `(RLIMIT_NOFILE - 256) / 3`, would refuse idle connections that HAProxy and nginx
/// are configured to accept.
pub fn ballast_config(
    layer: Layer,
    listen: SocketAddr,
    backend: SocketAddr,
    maxconn: usize,
) -> String {
    // (vserver, servicegroup, relay); an HTTP vserver also answers HTTP/2 with prior knowledge.
    let (vserver, group, relay) = match layer {
        Layer::Http | Layer::H2c => ("HTTP", "HTTP", "copy"),
        Layer::Tls => ("SSL", "HTTP", "copy"),
        Layer::Tcp(Relay::Copy) => ("TCP", "TCP", "copy"),
        Layer::Tcp(Relay::Splice) => ("TCP", "TCP", "splice"),
    };
    // The certificate files sit beside the config (`CertFiles::create` in the lab's directory).
    let (certkey, bind) = if layer == Layer::Tls {
        (
            "\n[[sslcertkey]]\ncertkey = \"bench\"\ncert = \"bench-cert.pem\"\nkey = \"bench-key.pem\"\n",
            "sslcertkey = [\"bench\"]\n",
        )
    } else {
        ("", "")
    };
    format!(
        r#"# Written by `bench`: one {vserver} vserver, one member, one worker thread.
[ballast]
workers = 1
l4relay = "{relay}"
maxconn = {maxconn}
{certkey}
[[servicegroup]]
servicegroupname = "bench-backend"
servicetype = "{group}"
members = [{{ ip = "{ip}", port = {port} }}]

[[lbvserver]]
name = "bench"
servicetype = "{vserver}"
ipv46 = "{lip}"
port = {lport}
lbmethod = "ROUNDROBIN"
servicegroupname = "bench-backend"
{bind}"#,
        ip = backend.ip(),
        port = backend.port(),
        lip = listen.ip(),
        lport = listen.port(),
    )
}

/// Which targets to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetKind {
    /// The backend, with no proxy in between.
    Direct,
    /// Ballast in front of the backend.
    Ballast,
    /// HAProxy in front of the backend (skipped if not installed).
    Haproxy,
    /// nginx in front of the backend (skipped if not installed, or for L4 without `stream`).
    Nginx,
}

impl TargetKind {
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Direct => "direct",
            TargetKind::Ballast => "ballast",
            TargetKind::Haproxy => "haproxy",
            TargetKind::Nginx => "nginx",
        }
    }
}

/// What [`Lab::start`] needs besides the layer and the targets.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// The `ballast` binary.
    pub ballast: PathBuf,
    /// Install a missing HAProxy/nginx with apt-get (as root only).
    pub install_peers: bool,
    /// Client connections each proxy must accept at once (idle-connection test included).
    pub max_conns: usize,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub addr: SocketAddr,
    /// The proxy process; `None` for `direct`.
    pub proxy_pid: Option<u32>,
}

/// Client connections a proxy accepts beyond `LabConfig::max_conns` (checks, stragglers).
pub const PEER_SPARE_CONNS: usize = 64;

/// A multi-line reason (an error with a log tail) as its first and last lines, for one-line
/// reports.
fn one_line(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match lines.as_slice() {
        [] => String::new(),
        [only] => only.to_string(),
        [first, .., last] => format!("{first} … {last}"),
    }
}

/// Starts HAProxy or nginx in front of the backend. `Err` is why the peer is skipped: not
/// installed, no `stream` module, or it did not come up (with the end of its log).
async fn start_peer(
    peer: Peer,
    layer: Layer,
    backend: SocketAddr,
    certs: Option<&CertFiles>,
    config: &LabConfig,
    cpu: Option<usize>,
    workdir: &Workdir,
) -> Result<(Server, Target, String), String> {
    let binary = peers::locate(peer, config.install_peers)?;
    let listen = free_addr().map_err(|e| e.to_string())?;
    let conns = config.max_conns + PEER_SPARE_CONNS;
    let nofile = peers::fd_budget(conns);
    let (text, file) = match peer {
        Peer::Haproxy => (
            peers::haproxy_config(layer, listen, backend, certs, conns, nofile),
            "haproxy.cfg",
        ),
        Peer::Nginx => (
            peers::nginx_config(layer, listen, backend, certs, workdir.path(), conns, nofile),
            "nginx.conf",
        ),
    };
    let path = workdir.path().join(file);
    std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    let args: Vec<String> = match peer {
        Peer::Haproxy => vec!["-db".into(), "-f".into(), path.display().to_string()],
        Peer::Nginx => {
            peers::nginx_accepts(&binary, &path, workdir.path())?;
            vec![
                "-p".into(),
                workdir.path().display().to_string(),
                "-c".into(),
                path.display().to_string(),
            ]
        }
    };
    let mut server =
        Server::spawn(peer.name(), &binary, &args, cpu, workdir).map_err(|e| format!("{e:#}"))?;
    server
        .wait_accepting(listen, Duration::from_secs(20))
        .await
        .map_err(|e| format!("did not start: {e:#}"))?;
    let target = Target {
        name: peer.name().to_string(),
        addr: listen,
        proxy_pid: Some(server.pid()),
    };
    Ok((server, target, peers::version(&binary)))
}

/// Everything started for one bench: backend, proxies and the targets that reach them.
/// Fields drop in order: proxies, then the backend, then the scratch directory.
#[derive(Debug)]
pub struct Lab {
    pub targets: Vec<Target>,
    /// Targets asked for but not measured, with why (`nginx: no stream module`).
    pub skipped: Vec<(String, String)>,
    /// Peer versions (`haproxy`, first line of `haproxy -v`), for the report.
    pub versions: Vec<(String, String)>,
    /// The certificate the proxies serve, for [`Layer::Tls`].
    pub certs: Option<CertFiles>,
    proxies: Vec<Server>,
    pub backend: Server,
    _workdir: Workdir,
}

impl Lab {
    pub async fn start(
        layer: Layer,
        kinds: &[TargetKind],
        config: &LabConfig,
        pin: &Pinning,
    ) -> Result<Self> {
        let ballast = config.ballast.as_path();
        let workdir = Workdir::new()?;
        let me = std::env::current_exe().context("finding the bench binary")?;
        let backend_addr = free_addr()?;
        let subcommand = match layer {
            Layer::Http | Layer::Tls | Layer::H2c => "backend",
            Layer::Tcp(_) => "tcp-backend",
        };
        let certs = match layer {
            Layer::Tls => Some(CertFiles::create(workdir.path())?),
            _ => None,
        };
        let generator_cpu = pin.enabled.then_some(pin.generator_cpu);
        let proxy_cpu = pin.enabled.then_some(pin.proxy_cpu);
        let mut backend = Server::spawn(
            "backend",
            &me,
            &[
                subcommand.to_string(),
                "--listen".to_string(),
                backend_addr.to_string(),
            ],
            generator_cpu,
            &workdir,
        )?;
        backend
            .wait_accepting(backend_addr, Duration::from_secs(10))
            .await?;

        let mut targets = Vec::new();
        let mut proxies = Vec::new();
        let mut skipped = Vec::new();
        let mut versions = Vec::new();
        for kind in kinds {
            match kind {
                TargetKind::Direct if matches!(layer, Layer::Tls | Layer::H2c) => skipped.push((
                    "direct".to_string(),
                    "the backend speaks plain HTTP/1.1 only".to_string(),
                )),
                TargetKind::Direct => targets.push(Target {
                    name: "direct".to_string(),
                    addr: backend_addr,
                    proxy_pid: None,
                }),
                TargetKind::Ballast => {
                    if !ballast.is_file() {
                        bail!(
                            "no Ballast binary at {}: build it (`cargo build --release -p ballast`), \
                             pass --ballast PATH, or measure only `--targets direct`",
                            ballast.display()
                        );
                    }
                    let listen = free_addr()?;
                    let path = workdir.path().join("ballast.toml");
                    std::fs::write(
                        &path,
                        ballast_config(
                            layer,
                            listen,
                            backend_addr,
                            config.max_conns + PEER_SPARE_CONNS,
                        ),
                    )?;
                    let args = [
                        "run".to_string(),
                        "--config".to_string(),
                        path.display().to_string(),
                    ];
                    let mut server = Server::spawn("ballast", ballast, &args, proxy_cpu, &workdir)?;
                    server
                        .wait_accepting(listen, Duration::from_secs(20))
                        .await?;
                    targets.push(Target {
                        name: "ballast".to_string(),
                        addr: listen,
                        proxy_pid: Some(server.pid()),
                    });
                    proxies.push(server);
                }
                TargetKind::Haproxy | TargetKind::Nginx => {
                    let peer = if *kind == TargetKind::Haproxy {
                        Peer::Haproxy
                    } else {
                        Peer::Nginx
                    };
                    let started = start_peer(
                        peer,
                        layer,
                        backend_addr,
                        certs.as_ref(),
                        config,
                        proxy_cpu,
                        &workdir,
                    )
                    .await;
                    match started {
                        Ok((server, target, version)) => {
                            versions.push((peer.name().to_string(), version));
                            targets.push(target);
                            proxies.push(server);
                        }
                        Err(why) => {
                            let why = one_line(&why);
                            println!("{}: {why}, skipped", peer.name());
                            skipped.push((peer.name().to_string(), why));
                        }
                    }
                }
            }
        }
        Ok(Self {
            targets,
            skipped,
            versions,
            certs,
            proxies,
            backend,
            _workdir: workdir,
        })
    }

    /// Every pid whose CPU counts as ours (backend and proxies).
    pub fn pids(&self) -> Vec<u32> {
        std::iter::once(self.backend.pid())
            .chain(self.proxies.iter().map(Server::pid))
            .collect()
    }

    /// Fails if any server has died.
    pub fn check_alive(&mut self) -> Result<()> {
        self.backend.check_alive()?;
        for proxy in &mut self.proxies {
            proxy.check_alive()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_backend_and_listener() {
        let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let backend: SocketAddr = "127.0.0.1:9001".parse().unwrap();
        let text = ballast_config(Layer::Tcp(Relay::Splice), listen, backend, 1000);
        assert!(text.contains("workers = 1"));
        assert!(text.contains("maxconn = 1000"));
        assert!(text.contains(r#"members = [{ ip = "127.0.0.1", port = 9001 }]"#));
        assert!(text.contains("port = 8080"));
        assert_eq!(text.matches(r#"servicetype = "TCP""#).count(), 2);
    }

    #[test]
    fn tls_config_binds_the_certificate_beside_it() {
        let listen: SocketAddr = "127.0.0.1:8443".parse().unwrap();
        let backend: SocketAddr = "127.0.0.1:9001".parse().unwrap();
        let text = ballast_config(Layer::Tls, listen, backend, 100);
        assert!(text.contains("[[sslcertkey]]\ncertkey = \"bench\"\ncert = \"bench-cert.pem\""));
        assert!(text.contains("servicetype = \"SSL\""));
        assert!(text.contains("sslcertkey = [\"bench\"]"));
        // The members still speak plain HTTP.
        assert!(text.contains("servicetype = \"HTTP\""));
    }
}
