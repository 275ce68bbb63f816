//! The `ballast` binary as a child process.
//!
//! Each test file names the binary cargo built for it once, as
//! `const BALLAST: Binary = Binary::new(env!("CARGO_BIN_EXE_ballast"));` (cargo sets that
//! variable only when it compiles an integration test of the package that owns the binary, the
//! root `ballast` package, and builds the binary first, so a test never runs a stale one).
//!
//! [`Binary::start`] writes the config into a fresh [`TempDir`], runs
//! `ballast run --config FILE --log-format json` and waits for `ballast ready`. A thread reads
//! stderr: every line is kept (parsed as JSON where it is JSON, else as a string) and echoed to
//! the test's stderr (shown by `cargo test` when a test fails). Waiting for a log event is
//! woken by each new line, with a deadline. Dropping a [`Ballast`] kills the process (SIGKILL)
//! and removes its directory. [`Binary::check`] runs `ballast check`, [`Binary::check_online`]
//! `ballast check --online`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use crate::files::TempDir;

/// How long `ballast run` may take to log `ballast ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a SIGHUP may take to log `config reloaded` or `config rejected`.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long SIGTERM may take to end the process (test configs use `shutdowntimeout = "5s"`).
const EXIT_TIMEOUT: Duration = Duration::from_secs(15);

/// The `ballast` binary under test.
#[derive(Debug, Clone, Copy)]
pub struct Binary {
    built: &'static str,
    /// Soft and hard `RLIMIT_NOFILE` to start it with (`None`: this process's).
    nofile: Option<u64>,
}

impl Binary {
    /// The binary at `built`: pass `env!("CARGO_BIN_EXE_ballast")`.
    pub const fn new(built: &'static str) -> Binary {
        Binary {
            built,
            nofile: None,
        }
    }

    /// The same binary, started with both its soft and hard file descriptor limits at
    /// `nofile` (through `prlimit`, which then execs it: the process is still Ballast).
    pub const fn with_nofile(self, nofile: u64) -> Binary {
        Binary {
            nofile: Some(nofile),
            ..self
        }
    }

    /// Its path: `BALLAST_BIN` if set (to test another build), else the one cargo built.
    pub fn path(&self) -> PathBuf {
        std::env::var_os("BALLAST_BIN").map_or_else(|| PathBuf::from(self.built), PathBuf::from)
    }

    /// Starts `ballast run` with `config_toml` and waits for `ballast ready`.
    pub async fn start(&self, config_toml: &str) -> Ballast {
        self.start_with_files(config_toml, &[]).await
    }

    /// Like [`Binary::start`], with extra files (certificates ...) written next to the config
    /// first, so the config can name them by relative path.
    pub async fn start_with_files(&self, config_toml: &str, files: &[(&str, &[u8])]) -> Ballast {
        Ballast::start(self.command(), "run", config_toml, files, "ballast ready").await
    }

    /// A command that runs the binary, under `prlimit` when [`Binary::with_nofile`] set a limit.
    fn command(&self) -> Command {
        match self.nofile {
            None => Command::new(self.path()),
            Some(nofile) => {
                let mut command = Command::new("prlimit");
                command
                    .arg(format!("--nofile={nofile}:{nofile}"))
                    .arg("--")
                    .arg(self.path());
                command
            }
        }
    }

    /// Starts `ballast localcloud` with `config_toml` (a local cloud config) and waits for
    /// `local cloud listening`. Its VMs end with it (they exit when its end of their stdin
    /// closes), also when it is killed.
    pub async fn start_localcloud(&self, config_toml: &str) -> Ballast {
        Ballast::start(
            self.command(),
            "localcloud",
            config_toml,
            &[],
            "local cloud listening",
        )
        .await
    }

    /// Runs `ballast check --config FILE` on `config_toml`: (exit code, stdout, stderr).
    pub fn check(&self, config_toml: &str) -> (i32, String, String) {
        let dir = TempDir::new("check");
        let path = dir.write("check.toml", config_toml);
        self.check_file(&path)
    }

    /// Runs `ballast check --config path`: (exit code, stdout, stderr).
    pub fn check_file(&self, path: &Path) -> (i32, String, String) {
        self.check_file_with(path, &[])
    }

    /// Runs `ballast check --online` on `config_toml`: (exit code, stdout, stderr).
    pub fn check_online(&self, config_toml: &str) -> (i32, String, String) {
        self.check_online_with_files(config_toml, &[])
    }

    /// Like [`Binary::check_online`], with `files` (the admin password ...) written beside the
    /// config first.
    pub fn check_online_with_files(
        &self,
        config_toml: &str,
        files: &[(&str, &[u8])],
    ) -> (i32, String, String) {
        let dir = TempDir::new("check");
        for (name, contents) in files {
            dir.write(name, contents);
        }
        let path = dir.write("check.toml", config_toml);
        self.check_file_with(&path, &["--online"])
    }

    /// Runs `ballast check --config path` with extra flags: (exit code, stdout, stderr).
    pub fn check_file_with(&self, path: &Path, flags: &[&str]) -> (i32, String, String) {
        let output = Command::new(self.path())
            .arg("check")
            .arg("--config")
            .arg(path)
            .args(flags)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("cannot run {} check: {error}", self.built));
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

/// What a SIGHUP led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// `config reloaded`.
    Reloaded,
    /// `config rejected`, with its `problems` field.
    Rejected(String),
}

/// A running `ballast run`.
#[derive(Debug)]
pub struct Ballast {
    child: Child,
    exit: Option<ExitStatus>,
    dir: TempDir,
    config_path: PathBuf,
    logs: Arc<Mutex<Vec<Value>>>,
    /// Bumped by the stderr thread on every line; closed when stderr closes.
    lines: watch::Receiver<usize>,
}

impl Ballast {
    async fn start(
        mut command: Command,
        subcommand: &str,
        config_toml: &str,
        files: &[(&str, &[u8])],
        ready: &str,
    ) -> Ballast {
        let dir = TempDir::new("ballast");
        for (name, contents) in files {
            dir.write(name, contents);
        }
        let config_path = dir.write("ballast.toml", config_toml);
        let binary = format!("{command:?}");
        let mut child = command
            .arg(subcommand)
            .arg("--config")
            .arg(&config_path)
            .args(["--log-format", "json"])
            .env(
                "RUST_LOG",
                std::env::var("BALLAST_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {binary}: {error}"));
        let stderr = child.stderr.take().expect("stderr is piped");
        let pid = child.id();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = watch::channel(0usize);
        let kept = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("[ballast {pid}] {line}");
                let value = serde_json::from_str::<Value>(&line)
                    .ok()
                    .filter(Value::is_object)
                    .unwrap_or(Value::String(line));
                let mut logs = kept.lock().expect("log lock");
                logs.push(value);
                let count = logs.len();
                drop(logs);
                tx.send_replace(count);
            }
        });
        let ballast = Ballast {
            child,
            exit: None,
            dir,
            config_path,
            logs,
            lines,
        };
        if ballast
            .wait_for_log(|line| is_event(line, ready), READY_TIMEOUT)
            .await
            .is_none()
        {
            panic!(
                "ballast {subcommand} did not log `{ready}` within {READY_TIMEOUT:?}; its log:\n{}",
                ballast.log_text()
            );
        }
        ballast
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The directory that holds the config (and any extra files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every log line so far (JSON objects; non-JSON lines as strings).
    pub fn logs(&self) -> Vec<Value> {
        self.logs.lock().expect("log lock").clone()
    }

    /// How many log lines there are so far: a mark for [`Ballast::wait_for_log_since`].
    pub fn log_mark(&self) -> usize {
        self.logs.lock().expect("log lock").len()
    }

    /// The whole log as text, one line each, for panic messages.
    pub fn log_text(&self) -> String {
        self.logs()
            .iter()
            .map(|line| match line {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The first log line (from the start) that satisfies `predicate`, waiting up to `timeout`.
    pub async fn wait_for_log(
        &self,
        predicate: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Option<Value> {
        self.wait_for_log_since(0, predicate, timeout).await
    }

    /// The first log line at index `mark` or later that satisfies `predicate`, waiting up to
    /// `timeout`. `None` at the deadline, or when the process closed stderr (exited) first.
    pub async fn wait_for_log_since(
        &self,
        mark: usize,
        predicate: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut lines = self.lines.clone();
        loop {
            lines.borrow_and_update();
            if let Some(found) = self.find_since(mark, &predicate) {
                return Some(found);
            }
            match tokio::time::timeout_at(deadline, lines.changed()).await {
                Ok(Ok(())) => continue,
                // stderr closed (the process is gone) or the deadline passed: one last look.
                Ok(Err(_)) | Err(_) => return self.find_since(mark, &predicate),
            }
        }
    }

    /// Index and line of every log line that satisfies `predicate`.
    pub fn find_all(&self, predicate: impl Fn(&Value) -> bool) -> Vec<(usize, Value)> {
        let logs = self.logs.lock().expect("log lock");
        logs.iter()
            .enumerate()
            .filter(|(_, line)| predicate(line))
            .map(|(index, line)| (index, line.clone()))
            .collect()
    }

    fn find_since(&self, mark: usize, predicate: &impl Fn(&Value) -> bool) -> Option<Value> {
        let logs = self.logs.lock().expect("log lock");
        logs.iter().skip(mark).find(|line| predicate(line)).cloned()
    }

    /// Replaces the config file with `new_toml`, sends SIGHUP and waits for `config reloaded` or
    /// `config rejected`.
    pub async fn reload(&self, new_toml: &str) -> Reload {
        let mark = self.log_mark();
        self.dir.replace("ballast.toml", new_toml);
        self.signal("HUP");
        let outcome = self
            .wait_for_log_since(
                mark,
                |line| is_event(line, "config reloaded") || is_event(line, "config rejected"),
                RELOAD_TIMEOUT,
            )
            .await
            .unwrap_or_else(|| {
                panic!(
                    "no `config reloaded` or `config rejected` within {RELOAD_TIMEOUT:?} of SIGHUP; log:\n{}",
                    self.log_text()
                )
            });
        if is_event(&outcome, "config reloaded") {
            Reload::Reloaded
        } else {
            Reload::Rejected(field(&outcome, "problems").unwrap_or_default().to_owned())
        }
    }

    /// Sends a signal by name (`HUP`, `TERM`, `INT`, `KILL`) with `kill(1)`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap_or_else(|error| panic!("cannot run kill -{name}: {error}"));
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    /// SIGTERM, then waits for the process to exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit(EXIT_TIMEOUT).await.unwrap_or_else(|| {
            panic!(
                "ballast did not exit within {EXIT_TIMEOUT:?} of SIGTERM; log:\n{}",
                self.log_text()
            )
        })
    }

    /// Waits up to `timeout` for the process to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit_status() {
                return Some(status);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The exit status if the process has exited.
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("waitpid on our own child");
        }
        self.exit
    }

    /// Panics (with the log) if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.try_exit_status() {
            panic!("ballast exited ({status}); log:\n{}", self.log_text());
        }
    }
}

impl Drop for Ballast {
    fn drop(&mut self) {
        if self.try_exit_status().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether a log line is the event `message`.
pub fn is_event(line: &Value, message: &str) -> bool {
    line.get("message").and_then(Value::as_str) == Some(message)
}

/// A string field of a log line.
pub fn field<'a>(line: &'a Value, name: &str) -> Option<&'a str> {
    line.get(name).and_then(Value::as_str)
}

/// Matches `member state changed` for `member` (`ip:port`) to the state `to`.
pub fn member_state_changed(member: SocketAddr, to: &str) -> impl Fn(&Value) -> bool + '_ {
    move |line| {
        is_event(line, "member state changed")
            && field(line, "member") == Some(member.to_string().as_str())
            && field(line, "to") == Some(to)
    }
}
