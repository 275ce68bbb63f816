//! What the `ballast demo` tests share: the demo config moved onto a test's own addresses, a
//! run of `ballast demo` as a child process that records the VM processes it starts (its
//! children, read from /proc while it runs), and a check that none of them outlives it.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::Net;

/// The built-in demo config (`configs/demo.toml`) with its addresses moved into `net`: free
/// ports for the vserver, admin API, metrics and local cloud, and VMs in `127.A.B.64/26`.
pub fn demo_config(net: &Net) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/demo.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    let IpAddr::V4(vms) = net.ip(64) else {
        unreachable!("Net hands out IPv4 addresses")
    };
    let vserver = net.free_addr(1);
    let replaced = [
        ("127.0.0.1:8481", net.free_addr(2).to_string()),
        ("127.0.0.1:8482", net.free_addr(3).to_string()),
        ("127.0.0.1:8483", net.free_addr(4).to_string()),
        ("127.88.0.0/24", format!("{vms}/26")),
        (
            "ipv46 = \"127.0.0.1\"\nport = 8480",
            format!("ipv46 = \"{}\"\nport = {}", vserver.ip(), vserver.port()),
        ),
    ];
    let mut config = text;
    for (from, to) in replaced {
        assert!(
            config.contains(from),
            "configs/demo.toml no longer has {from}"
        );
        config = config.replace(from, &to);
    }
    config
}

/// The addresses the built-in demo config listens on.
pub const DEMO_ADDRESSES: [&str; 4] = [
    "127.0.0.1:8480",
    "127.0.0.1:8481",
    "127.0.0.1:8482",
    "127.0.0.1:8483",
];

/// A finished `ballast demo`.
#[derive(Debug)]
pub struct DemoRun {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// Every child process seen while it ran (the local cloud's VMs).
    pub vm_pids: BTreeSet<u32>,
}

impl DemoRun {
    /// The number after `label` at the start of a summary line (`  scale-outs   3 ...`).
    pub fn summary_count(&self, label: &str) -> Option<u64> {
        self.stdout.lines().find_map(|line| {
            line.trim_start()
                .strip_prefix(label)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
    }
}

/// Runs `binary args` in `dir` until it exits (killed, and the test failed, after `timeout`).
pub async fn run_demo(binary: &Path, args: &[&str], dir: &Path, timeout: Duration) -> DemoRun {
    run_demo_interrupted(binary, args, dir, timeout, None).await
}

/// [`run_demo`], and SIGINT (what Ctrl-C sends) to the demo alone as soon as its stdout
/// contains `interrupt_when`.
pub async fn run_demo_interrupted(
    binary: &Path,
    args: &[&str],
    dir: &Path,
    timeout: Duration,
    interrupt_when: Option<&str>,
) -> DemoRun {
    let mut child = tokio::process::Command::new(binary)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
    let pid = child.id().expect("a child that was just spawned has a pid");
    let stdout = read_all(child.stdout.take());
    let stderr = read_all(child.stderr.take());
    let mut vm_pids = BTreeSet::new();
    let mut interrupt_when = interrupt_when;
    let deadline = tokio::time::Instant::now() + timeout;
    let status = loop {
        vm_pids.extend(children(pid));
        if let Some(text) = interrupt_when
            && stdout.text().contains(text)
        {
            let sent = std::process::Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status()
                .is_ok_and(|status| status.success());
            assert!(sent, "kill -INT {pid} failed");
            interrupt_when = None;
        }
        match tokio::time::timeout(Duration::from_millis(200), child.wait()).await {
            Ok(status) => break status.expect("waiting for ballast demo"),
            Err(_) if tokio::time::Instant::now() < deadline => {}
            Err(_) => {
                let _ = child.kill().await;
                let stdout = stdout.finish().await;
                panic!("ballast demo did not finish within {timeout:?}; stdout:\n{stdout}");
            }
        }
    };
    DemoRun {
        status,
        stdout: stdout.finish().await,
        stderr: stderr.finish().await,
        vm_pids,
    }
}

/// Those of `pids` that still run as `ballast vm` processes (a reused pid is not one).
pub fn still_running(pids: &BTreeSet<u32>) -> Vec<u32> {
    pids.iter()
        .copied()
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            cmdline.contains("--exit-with-stdin") && process_state(*pid) != Some('Z')
        })
        .collect()
}

/// Whether every address the built-in demo config uses can be bound now.
pub fn demo_addresses_free() -> Result<(), String> {
    for addr in DEMO_ADDRESSES {
        let addr: SocketAddr = addr.parse().expect("a valid address");
        if let Err(error) = std::net::TcpListener::bind(addr) {
            return Err(format!("{addr} is in use ({error})"));
        }
    }
    Ok(())
}

/// A child's output, read as it comes.
struct Output {
    text: Arc<Mutex<Vec<u8>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Output {
    /// What was read so far.
    fn text(&self) -> String {
        let text = self.text.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&text).into_owned()
    }

    /// Everything, once the stream has ended.
    async fn finish(self) -> String {
        let Output { text, reader } = self;
        let _ = reader.await;
        let text = text.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&text).into_owned()
    }
}

fn read_all<R: tokio::io::AsyncRead + Unpin + Send + 'static>(stream: Option<R>) -> Output {
    let text = Arc::new(Mutex::new(Vec::new()));
    let sink = text.clone();
    let reader = tokio::spawn(async move {
        let Some(mut stream) = stream else { return };
        let mut buffer = [0_u8; 4096];
        while let Ok(read @ 1..) = stream.read(&mut buffer).await {
            sink.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(&buffer[..read]);
        }
    });
    Output { text, reader }
}

/// Processes whose parent is `parent`.
fn children(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let rest = stat.rsplit_once(')')?.1.to_string();
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .chars()
        .next()
}
