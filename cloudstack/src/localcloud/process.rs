//! A VM's process: `ballast vm --listen <ip>:<port> ... --exit-with-stdin`, supervised by one
//! task.
//!
//! The process can never outlive the local cloud: its stdin is a pipe from us and it exits when
//! that pipe closes (which the kernel does when we die, however we die), the `Child` is
//! `kill_on_drop`, and shutdown kills and reaps every process. A graceful stop closes stdin
//! and waits; a kill is SIGKILL. An exit nobody asked for (a crash, a kill from outside, an
//! injected crash) is reported through the `on_crash` callback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What to start.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// Program and leading arguments (`["/usr/bin/ballast", "vm"]`).
    pub command: Vec<String>,
    pub listen: SocketAddr,
    pub vm_id: String,
    pub name: String,
    pub vcpus: u32,
    pub request_cpu: Duration,
    /// The share of one host core each vCPU gets: offering cpuspeed / host cpuspeed (at most 1).
    pub cpu_share: f64,
    pub response_bytes: u32,
    pub memory_mb: u32,
    pub extra_args: Vec<String>,
    /// stderr goes here (appended); `None`: discarded.
    pub log_file: Option<PathBuf>,
}

/// Handle to a running VM process. Dropping it kills the process.
#[derive(Debug)]
pub struct VmProcess {
    pid: Option<u32>,
    control: mpsc::UnboundedSender<Control>,
    exited: watch::Receiver<bool>,
}

#[derive(Debug)]
enum Control {
    /// Close stdin, wait up to the grace period, then kill. An expected exit.
    Stop(Duration),
    /// SIGKILL now, reported as a crash (fault injection, failed host).
    Crash,
}

impl VmProcess {
    /// Starts the process and its supervisor (tracked by `tasks`, stopped by `shutdown`).
    pub fn spawn(
        spec: &ProcessSpec,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
        on_crash: impl FnOnce(ExitStatus) + Send + 'static,
    ) -> std::io::Result<Self> {
        let (program, leading) = spec
            .command
            .split_first()
            .ok_or_else(|| std::io::Error::other("empty VM command"))?;
        let mut command = Command::new(program);
        command
            .args(leading)
            .arg("--listen")
            .arg(spec.listen.to_string())
            .arg("--name")
            .arg(&spec.name)
            .arg("--id")
            .arg(&spec.vm_id)
            .arg("--vcpus")
            .arg(spec.vcpus.to_string())
            .arg("--request-cpu-us")
            .arg(spec.request_cpu.as_micros().to_string())
            .arg("--cpu-share")
            .arg(spec.cpu_share.to_string())
            .arg("--response-bytes")
            .arg(spec.response_bytes.to_string())
            .arg("--memory-mb")
            .arg(spec.memory_mb.to_string())
            .arg("--exit-with-stdin")
            .args(&spec.extra_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            // Its own process group: a Ctrl-C in the terminal goes to the local cloud's process,
            // which drains and stops its VMs, not straight to every VM at once.
            .process_group(0)
            .kill_on_drop(true);
        match &spec.log_file {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                command.stderr(file);
            }
            None => {
                command.stderr(Stdio::null());
            }
        }
        let mut child = command.spawn()?;
        let pid = child.id();
        let stdin = child.stdin.take();
        let (control, requests) = mpsc::unbounded_channel();
        let (exited_tx, exited) = watch::channel(false);
        tasks.spawn(supervise(
            child, stdin, requests, shutdown, exited_tx, on_crash,
        ));
        Ok(Self {
            pid,
            control,
            exited,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    pub fn has_exited(&self) -> bool {
        *self.exited.borrow()
    }

    /// Kills the process as a crash would (reported through `on_crash`).
    pub fn crash(&self) {
        let _ = self.control.send(Control::Crash);
    }

    /// Asks the process to exit (stdin closes), kills it after `grace`, and waits until it is
    /// gone. Not reported as a crash.
    pub async fn stop(mut self, grace: Duration) {
        let _ = self.control.send(Control::Stop(grace));
        let _ = self.exited.wait_for(|exited| *exited).await;
    }

    /// Waits until something accepts TCP connections on `address`; the error says why not
    /// (the process exited, or `timeout` passed).
    pub async fn wait_listening(
        &self,
        address: SocketAddr,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let exited = || {
            "the VM process exited before it listened (with vm_log_dir set, its stderr is there)"
                .to_string()
        };
        loop {
            if self.has_exited() {
                return Err(exited());
            }
            let attempt =
                tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(address));
            if let Ok(Ok(_)) = attempt.await {
                return if self.has_exited() {
                    Err(exited())
                } else {
                    Ok(())
                };
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("nothing listened on {address} within {timeout:?}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn supervise(
    mut child: Child,
    mut stdin: Option<ChildStdin>,
    mut requests: mpsc::UnboundedReceiver<Control>,
    shutdown: CancellationToken,
    exited: watch::Sender<bool>,
    on_crash: impl FnOnce(ExitStatus) + Send + 'static,
) {
    let mut expected = false;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            () = shutdown.cancelled() => {
                expected = true;
                let _ = child.start_kill();
                break child.wait().await;
            }
            request = requests.recv() => match request {
                Some(Control::Crash) => {
                    let _ = child.start_kill();
                }
                Some(Control::Stop(grace)) => {
                    expected = true;
                    drop(stdin.take());
                    match tokio::time::timeout(grace, child.wait()).await {
                        Ok(status) => break status,
                        Err(_) => {
                            let _ = child.start_kill();
                            break child.wait().await;
                        }
                    }
                }
                None => {
                    // The handle was dropped: nobody owns this VM any more.
                    expected = true;
                    let _ = child.start_kill();
                    break child.wait().await;
                }
            },
        }
    };
    let _ = exited.send(true);
    if !expected {
        match status {
            Ok(status) => on_crash(status),
            Err(error) => {
                tracing::warn!(%error, "waiting for a VM process failed");
                on_crash(ExitStatus::default());
            }
        }
    }
}
