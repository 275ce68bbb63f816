//! Before and around the demo: the run's own directory (a copy of the config and an admin
//! password made for this run, removed at the end), the log file, a check that every port is
//! free, the banner that says where everything listens, and the VM processes it leaves.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use super::load::Schedule;
use super::status::{GroupInfo, clock};
use super::summary::Files;
use crate::config::AppConfig;

/// The built-in config: `ballast demo` works from any directory.
pub const DEMO_CONFIG: &str = include_str!("../../configs/demo.toml");

/// Where `[admin] passwordfile` must point (beside the config).
const PASSWORD_FILE: &str = "admin.pass";

/// A directory for this run only: `demo.toml` and `admin.pass`. Removed on drop.
#[derive(Debug)]
pub struct RunDir {
    dir: PathBuf,
    /// Where the config came from, for the banner.
    source: String,
    password: String,
}

impl RunDir {
    /// Copies `config` (or the built-in one) and writes a new random admin password beside it.
    pub fn create(config: Option<&Path>) -> anyhow::Result<RunDir> {
        let (text, source) = match config {
            Some(path) => (
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                path.display().to_string(),
            ),
            None => (
                DEMO_CONFIG.to_string(),
                "built-in configs/demo.toml".to_string(),
            ),
        };
        let dir = std::env::temp_dir().join(format!("ballast-demo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let run = RunDir {
            dir,
            source,
            password: password()?,
        };
        std::fs::write(run.config_path(), text)?;
        write_private(&run.dir.join(PASSWORD_FILE), &run.password)?;
        Ok(run)
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("demo.toml")
    }

    /// The config, validated as `ballast run` validates it.
    pub fn load(&self) -> anyhow::Result<AppConfig> {
        let config = AppConfig::load(&self.config_path())
            .with_context(|| format!("{}: cannot start the demo", self.source))?;
        if config.local_cloud.is_none() {
            anyhow::bail!("{}: the demo needs a [localcloud] table", self.source);
        }
        Ok(config)
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// 20 letters and digits from the OS's random source.
fn password() -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
    let mut bytes = [0_u8; 20];
    getrandom::getrandom(&mut bytes)
        .map_err(|error| anyhow::anyhow!("no random source for the admin password: {error}"))?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect())
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// Sends the log (`RUST_LOG`, default `info`) to `path`: the terminal is the status's.
pub fn log_to(path: &Path) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .init();
    Ok(())
}

/// Every address the config listens on, named.
fn listeners(config: &AppConfig) -> Vec<(SocketAddr, String)> {
    let proxy = &config.proxy;
    let mut all: Vec<(SocketAddr, String)> = proxy
        .vservers
        .iter()
        .map(|v| (v.addr, format!("the vserver `{}`", v.name)))
        .collect();
    all.extend(
        proxy
            .admin
            .iter()
            .map(|a| (a.listen, "the admin API".into())),
    );
    all.extend(proxy.metrics.iter().map(|m| (m.listen, "/metrics".into())));
    all.extend(
        config
            .local_cloud
            .iter()
            .map(|c| (c.listen, "the local cloud".into())),
    );
    all
}

/// Fails, naming the address, if something already listens where the demo would.
pub fn check_ports(config: &AppConfig) -> anyhow::Result<()> {
    for (addr, what) in listeners(config) {
        if let Err(error) = std::net::TcpListener::bind(addr) {
            anyhow::bail!(
                "{addr} ({what}) is not free: {error}. Is another `ballast demo` running? Stop \
                 what listens there, or pass --config FILE with other addresses"
            );
        }
    }
    Ok(())
}

/// The one autoscale group the demo follows, and its first metric.
pub fn group_info(config: &AppConfig) -> anyhow::Result<GroupInfo> {
    let group = config
        .proxy
        .autoscale_groups
        .first()
        .context("the demo needs an [[autoscalegroup]]")?;
    let metric = group.metrics.first();
    Ok(GroupInfo {
        name: group.name.clone(),
        vserver: group.vserver.clone(),
        metric: metric.map_or("load".to_string(), |m| m.name.clone()),
        upper: metric.and_then(|m| m.upper),
        lower: metric.and_then(|m| m.lower),
        min_members: group.min_members,
        max_members: group.max_members,
    })
}

/// What the demo prints before it starts.
#[derive(Debug)]
pub struct Banner {
    text: String,
    /// Where the load goes.
    pub vserver: SocketAddr,
}

impl Banner {
    pub fn new(config: &AppConfig, run: &RunDir, files: &Files, group: &GroupInfo) -> Banner {
        let proxy = &config.proxy;
        let vserver = proxy
            .vservers
            .iter()
            .find(|v| v.name == group.vserver)
            .or(proxy.vservers.first())
            .map_or(SocketAddr::from(([127, 0, 0, 1], 80)), |v| v.addr);
        let mut text = format!(
            "Ballast demo ({}): a load balancer that sizes its own fleet of VMs.\n\n",
            run.source
        );
        text += &format!("  vserver      http://{vserver}/   try: curl -i http://{vserver}/\n");
        if let Some(admin) = &proxy.admin {
            let api = format!("http://{}/nitro/v1", admin.listen);
            text += &format!(
                "  admin API    {api}   user {}, password {} (this run only)\n",
                admin.user, run.password
            );
            text += &format!(
                "               curl -H X-NITRO-USER:{} -H X-NITRO-PASS:{} {api}/stat/autoscalegroup/{}\n",
                admin.user, run.password, group.name
            );
        }
        if let Some(metrics) = &proxy.metrics {
            text += &format!("  metrics      http://{}/metrics\n", metrics.listen);
        }
        if let Some(cloud) = &config.local_cloud {
            text += &format!(
                "  local cloud  http://{}/client/api   VMs on {}\n",
                cloud.listen, cloud.address_range
            );
        }
        text += &format!(
            "  group        {}: {}..{} members, {} upper {} lower {}\n",
            group.name,
            group.min_members,
            group.max_members,
            group.metric,
            group.upper.map_or("-".into(), |v| v.to_string()),
            group.lower.map_or("-".into(), |v| v.to_string()),
        );
        text += &format!("  log          {}\n", files.log.display());
        Banner { text, vserver }
    }

    pub fn print(&self) {
        println!("{}", self.text);
    }

    pub fn print_load(&self, schedule: &Schedule) {
        match schedule {
            Schedule::Ramp {
                duration,
                low,
                high,
            } => println!(
                "load: {low:.0} -> {high:.0} -> {low:.0} requests/s to http://{}/ over {} \
                 (Ctrl-C stops early)\n",
                self.vserver,
                clock(*duration)
            ),
            Schedule::None => println!(
                "load: yours. Try `curl http://{0}/` or `wrk -c 20 -d 60s http://{0}/`; \
                 Ctrl-C stops the demo\n",
                self.vserver
            ),
        }
    }
}

/// This process's children (the local cloud's VMs), from /proc.
pub fn vm_processes() -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| stat(*pid).is_some_and(|(_, ppid)| ppid == me))
        .collect()
}

/// Waits until none of `pids` runs (gone, or a zombie); returns those still running.
pub async fn wait_for_exit(pids: &[u32], timeout: Duration) -> Vec<u32> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let running: Vec<u32> = pids
            .iter()
            .copied()
            .filter(|pid| stat(*pid).is_some_and(|(state, _)| state != 'Z'))
            .collect();
        if running.is_empty() || tokio::time::Instant::now() >= deadline {
            return running;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A process's state letter and parent pid.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = text.rsplit_once(')')?.1.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((state, ppid))
}
