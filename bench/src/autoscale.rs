//! `autoscale`: how long the autoscale engine takes from a breach to a new member serving,
//! Ballast only (HAProxy and nginx have no autoscaler).
//!
//! It runs `ballast demo` (the local cloud with VMs as processes, the proxy, SNMP LOAD monitors
//! on each VM's CPU, the engine, and the demo's own open-loop ramp) on the built-in demo config
//! (`configs/demo.toml`, compiled in here too) moved to free ports and VM addresses of its own,
//! so it can run beside a demo or a test. From the demo's summary it reads each scale-out's
//! time from the start of its breach to the new member UP (the engine's
//! `lastscaleoutseconds`) and the requests that failed. From each time it subtracts what the
//! config imposes, read from that same config: the group's `watchtime` (a breach must last
//! that long) and the local cloud's `boot_delay` (a VM's Starting → Running). What remains is
//! the engine's and the member's own overhead: seeing the breach (SNMP polls, the engine's
//! interval), the deploy through the CloudStack API, the VM process's start, and the health
//! checks until UP.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::time::{Duration, Instant};

use crate::markdown::{Row, Table};
use crate::report::median;
use crate::targets::{Pinning, Workdir, free_addr};
use crate::units::parse_duration;

pub const TITLE: &str = "Autoscale reaction";
/// What `ballast demo` runs when given no `--config`.
const DEMO_CONFIG: &str = include_str!("../../configs/demo.toml");
/// Beyond `--duration`: the first VM's boot (the demo waits up to 60 s) and the shutdown.
const DEMO_SLACK: Duration = Duration::from_secs(90);

/// The ramp's length in `bench all`: 2 minutes (three scale-outs on 2 cores), or 40 s (quick:
/// one or two).
pub fn demo_duration(quick: bool) -> Duration {
    Duration::from_secs(if quick { 40 } else { 120 })
}

/// One line for the report's method section.
pub fn method(quick: bool) -> String {
    format!(
        "`autoscale` (Ballast only): `ballast demo --duration {}s` (local cloud, proxy, SNMP CPU monitors, \
         engine and an open-loop 30 → 240 → 30 req/s ramp) on `configs/demo.toml` moved to free ports; each \
         scale-out's breach-to-serving time from its summary, less the config's `watchtime` and `boot_delay`.",
        demo_duration(quick).as_secs()
    )
}

/// `autoscale` in `bench all`.
pub async fn scenario(quick: bool, ballast: &Path, pin: &Pinning) -> Result<Table> {
    let duration = demo_duration(quick);
    println!(
        "\n== autoscale: `ballast demo` with a {} s ramp",
        duration.as_secs()
    );
    let reaction = measure(ballast, duration, pin).await?;
    println!("{reaction}");
    Ok(reaction.table())
}

/// `bench autoscale`: one demo run, its figures on stdout.
pub async fn run(ballast: &Path, duration: Duration) -> Result<()> {
    let unpinned = Pinning {
        enabled: false,
        generator_cpu: 0,
        proxy_cpu: 0,
        nice: None,
    };
    let reaction = measure(ballast, duration, &unpinned).await?;
    println!("{reaction}");
    Ok(())
}

/// What one demo run showed.
#[derive(Debug, Clone, PartialEq)]
pub struct Reaction {
    pub duration: Duration,
    pub imposed: Imposed,
    pub summary: Summary,
}

impl Reaction {
    fn times(&self) -> &[f64] {
        &self.summary.breach_to_serving
    }

    /// Each breach-to-serving time less the watch time and the boot delay.
    pub fn overheads(&self) -> Vec<f64> {
        let imposed = (self.imposed.watchtime + self.imposed.boot_delay).as_secs_f64();
        self.times().iter().map(|t| t - imposed).collect()
    }

    fn table(&self) -> Table {
        let figure = |label: &str, key: &str, decimals: usize, value: f64| {
            let mut row = Row::figure(label, key, None, decimals);
            row.set("ballast", value);
            row
        };
        let imposed = format!(
            "`watchtime` {:?} + `boot_delay` {:?}",
            self.imposed.watchtime, self.imposed.boot_delay
        );
        let overheads = self.overheads();
        Table {
            scenario: "autoscale".into(),
            title: TITLE.into(),
            rows: vec![
                figure(
                    "scale-outs with the new member serving",
                    "scale_outs",
                    0,
                    self.times().len() as f64,
                ),
                figure(
                    "breach → new member serving, median, s",
                    "reaction_median_s",
                    1,
                    median(self.times().to_vec()),
                ),
                figure(
                    "breach → new member serving, max, s",
                    "reaction_max_s",
                    1,
                    max(self.times()),
                ),
                figure(
                    &format!("the same less {imposed}, median, s"),
                    "overhead_median_s",
                    1,
                    median(overheads.clone()),
                ),
                figure(
                    &format!("the same less {imposed}, max, s"),
                    "overhead_max_s",
                    1,
                    max(&overheads),
                ),
                figure(
                    &format!("requests failed (of {} sent)", self.summary.sent),
                    "requests_failed",
                    0,
                    self.summary.failed as f64,
                ),
            ],
            notes: vec![format!(
                "Ballast only: HAProxy and nginx have no autoscaler. One `ballast demo --duration {}s`; the \
                 times come from its summary, and the engine sees both ends on its evaluation `interval`, so \
                 each is good to about one interval. What is left after the config's delays is \
                 seeing the breach (SNMP polls and the engine's interval), the deploy through the CloudStack \
                 API, the VM process's start and the health checks until UP; on this machine the VMs, the \
                 proxy and the load share the same cores.",
                self.duration.as_secs()
            )],
        }
    }
}

impl fmt::Display for Reaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let times: Vec<String> = self.times().iter().map(|t| format!("{t:.1}")).collect();
        let overheads: Vec<String> = self.overheads().iter().map(|t| format!("{t:.1}")).collect();
        write!(
            f,
            "scale-outs serving: {}; breach → serving: [{}] s; less watchtime {:?} and boot_delay {:?}: [{}] s; \
             requests failed: {} of {}",
            self.times().len(),
            times.join(", "),
            self.imposed.watchtime,
            self.imposed.boot_delay,
            overheads.join(", "),
            self.summary.failed,
            self.summary.sent
        )
    }
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NAN, f64::max)
}

/// Runs the demo for `duration` on free addresses and reads its summary.
pub async fn measure(ballast: &Path, duration: Duration, pin: &Pinning) -> Result<Reaction> {
    let workdir = Workdir::new()?;
    let addresses = Addresses {
        vserver: free_addr()?,
        admin: free_addr()?,
        metrics: free_addr()?,
        cloud: free_addr()?,
        // 127.88.0.0/24 is the built-in demo's; one /24 of 127.88 per bench process.
        vm_range: format!("127.88.{}.0/24", 1 + std::process::id() % 254),
    };
    let config = relocate(DEMO_CONFIG, &addresses)?;
    let imposed = imposed(&config)?;
    let config_path = workdir.path().join("demo.toml");
    std::fs::write(&config_path, toml::to_string(&config)?)
        .with_context(|| format!("writing {}", config_path.display()))?;
    let stdout = run_demo(ballast, duration, pin, workdir.path(), &config_path).await?;
    let summary = parse_summary(&stdout)?;
    if summary.breach_to_serving.is_empty() {
        bail!(
            "no scale-out completed in a {} s demo ({} started); its output:\n{stdout}",
            duration.as_secs(),
            summary.scale_outs
        );
    }
    Ok(Reaction {
        duration,
        imposed,
        summary,
    })
}

/// Where the relocated demo listens.
#[derive(Debug, Clone)]
struct Addresses {
    vserver: SocketAddr,
    admin: SocketAddr,
    metrics: SocketAddr,
    cloud: SocketAddr,
    vm_range: String,
}

/// The demo config with every listener moved to `to` (the autoscale profiles' URLs follow the
/// local cloud).
fn relocate(text: &str, to: &Addresses) -> Result<toml::Table> {
    let mut config: toml::Table = text.parse().context("parsing the demo config")?;
    let old_cloud = section(&mut config, "localcloud")?
        .get("listen")
        .and_then(toml::Value::as_str)
        .context("the demo config has no localcloud.listen")?
        .to_string();
    section(&mut config, "admin")?.insert("listen".into(), to.admin.to_string().into());
    section(&mut config, "metrics")?.insert("listen".into(), to.metrics.to_string().into());
    let cloud = section(&mut config, "localcloud")?;
    cloud.insert("listen".into(), to.cloud.to_string().into());
    cloud.insert("address_range".into(), to.vm_range.clone().into());
    let [vserver] = array(&mut config, "lbvserver")? else {
        bail!("the demo config should have exactly one [[lbvserver]]");
    };
    let vserver = vserver.as_table_mut().context("lbvserver is not a table")?;
    vserver.insert("ipv46".into(), to.vserver.ip().to_string().into());
    vserver.insert("port".into(), i64::from(to.vserver.port()).into());
    for profile in array(&mut config, "autoscaleprofile")? {
        if let Some(toml::Value::String(url)) = profile.get_mut("url") {
            *url = url.replace(&old_cloud, &to.cloud.to_string());
        }
    }
    Ok(config)
}

fn section<'a>(config: &'a mut toml::Table, name: &str) -> Result<&'a mut toml::Table> {
    config
        .get_mut(name)
        .and_then(toml::Value::as_table_mut)
        .with_context(|| format!("the demo config has no [{name}]"))
}

fn array<'a>(config: &'a mut toml::Table, name: &str) -> Result<&'a mut [toml::Value]> {
    config
        .get_mut(name)
        .and_then(toml::Value::as_array_mut)
        .map(Vec::as_mut_slice)
        .with_context(|| format!("the demo config has no [[{name}]]"))
}

/// The delays a config imposes on every scale-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imposed {
    /// The first autoscale group's (the one the demo follows): how long a breach must last.
    pub watchtime: Duration,
    /// The local cloud's Starting → Running.
    pub boot_delay: Duration,
}

fn imposed(config: &toml::Table) -> Result<Imposed> {
    let duration = |value: Option<&toml::Value>, what: &str| -> Result<Duration> {
        let text = value
            .and_then(toml::Value::as_str)
            .with_context(|| format!("the demo config sets no {what}"))?;
        parse_duration(text).map_err(|e| anyhow::anyhow!("{what}: {e}"))
    };
    let group = config
        .get("autoscalegroup")
        .and_then(toml::Value::as_array)
        .and_then(|groups| groups.first())
        .context("the demo config has no [[autoscalegroup]]")?;
    let cloud = config.get("localcloud");
    Ok(Imposed {
        watchtime: duration(group.get("watchtime"), "autoscalegroup[0].watchtime")?,
        boot_delay: duration(
            cloud.and_then(|c| c.get("boot_delay")),
            "localcloud.boot_delay",
        )?,
    })
}

/// Runs `ballast demo` to its end and returns its stdout; its event lines are echoed as they
/// come. If the bench stops first, the demo gets SIGTERM and stops its VMs itself.
async fn run_demo(
    ballast: &Path,
    duration: Duration,
    pin: &Pinning,
    dir: &Path,
    config: &Path,
) -> Result<String> {
    // It runs in `dir`: a relative path would no longer name the binary.
    let ballast =
        &std::path::absolute(ballast).with_context(|| format!("finding {}", ballast.display()))?;
    let mut command = Command::new(if pin.enabled {
        PathBuf::from("taskset")
    } else {
        ballast.to_path_buf()
    });
    if pin.enabled {
        // The bench is pinned to one CPU and its children inherit that: the demo (its VMs and
        // load too) gets every online CPU back, as a user's demo has.
        let online = std::fs::read_to_string("/sys/devices/system/cpu/online")
            .context("reading the online CPUs")?;
        command.args(["-c", online.trim()]).arg(ballast);
    }
    command
        .arg("demo")
        .args(["--load", "ramp"])
        .args(["--duration", &format!("{}s", duration.as_secs())])
        .arg("--config")
        .arg(config)
        .arg("--out")
        .arg(dir)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {} demo", ballast.display()))?;
    let mut guard = Terminate(child.id());
    let stdout = child.stdout.take().context("the demo's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut text = String::new();
    let deadline = Instant::now() + duration + DEMO_SLACK;
    loop {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .with_context(|| {
                format!("the demo did not finish within {duration:?} + {DEMO_SLACK:?}; its output:\n{text}")
            })?
            .context("reading the demo's output")?;
        let Some(line) = line else { break };
        if line.starts_with("event ") {
            println!("  demo {line}");
        }
        text.push_str(&line);
        text.push('\n');
    }
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .context("the demo closed its output but did not exit")??;
    guard.0 = None;
    if !status.success() {
        bail!("ballast demo failed ({status}); its output:\n{text}");
    }
    Ok(text)
}

/// Sends SIGTERM to a demo still running when dropped.
struct Terminate(Option<u32>);

impl Drop for Terminate {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
}

/// What the demo's summary says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub sent: u64,
    pub failed: u64,
    /// Scale-outs started on load (not those that filled `minmembers`).
    pub scale_outs: u64,
    /// Each completed scale-out's breach-to-serving time, seconds.
    pub breach_to_serving: Vec<f64>,
}

/// Reads the summary the demo prints at its end:
///
/// ```text
/// Summary (load finished after 0:40)
///   requests     1234 sent, 1234 answered 200, 0 failed
///   scale-outs   2 (plus 0 to reach minmembers)
///   breach to new member serving: 7.3s, 7.8s
/// ```
pub fn parse_summary(stdout: &str) -> Result<Summary> {
    let (_, tail) = stdout
        .split_once("\nSummary (")
        .context("the demo printed no summary")?;
    let heading = tail.lines().next().unwrap_or_default();
    if !heading.starts_with("load finished") {
        bail!("the demo did not finish its load: Summary ({heading}");
    }
    let field = |label: &str| {
        tail.lines()
            .find_map(|line| line.trim_start().strip_prefix(label))
            .map(str::trim)
            .with_context(|| format!("the summary has no `{label}` line"))
    };
    let number = |text: &str, what: &str| -> Result<u64> {
        text.parse()
            .with_context(|| format!("the summary's {what} `{text}` is not a number"))
    };
    let requests = field("requests")?;
    let count_before = |word: &str| -> Result<u64> {
        let part = requests
            .split(", ")
            .find_map(|part| part.strip_suffix(word))
            .with_context(|| format!("no `{word}` in `{requests}`"))?;
        number(part.trim(), word.trim())
    };
    let scale_outs = field("scale-outs")?;
    let times = field("breach to new member serving:")?;
    let breach_to_serving = if times.starts_with("no scale-out") {
        Vec::new()
    } else {
        times
            .split(", ")
            .map(|t| {
                t.strip_suffix('s')
                    .and_then(|s| s.parse().ok())
                    .with_context(|| format!("`{t}` is not a time in seconds"))
            })
            .collect::<Result<_>>()?
    };
    Ok(Summary {
        sent: count_before(" sent")?,
        failed: count_before(" failed")?,
        scale_outs: number(
            scale_outs.split_whitespace().next().unwrap_or_default(),
            "scale-outs",
        )?,
        breach_to_serving,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
t=58 rps=30 p99_ms=3.1 errors=0 cpu=30.2 members=3/5 (...) phase=cooldown
event 0:59 scale-in: cpu average 20.10 below 25 for 5.0s

stopping: the load, the proxy, the local cloud and its VMs ...

Summary (load finished after 1:00)
  requests     9876 sent, 9874 answered 200, 2 failed
               failure: connection reset
  scale-outs   2 (plus 0 to reach minmembers)
  scale-ins    1
  breach to new member serving: 7.3s, 8.1s
  members      at most 3 in service
  VMs          3 running at the end, all stopped
";

    #[test]
    fn the_summary_gives_requests_scale_outs_and_times() {
        let summary = parse_summary(OUTPUT).expect("a summary");
        assert_eq!(
            summary,
            Summary {
                sent: 9876,
                failed: 2,
                scale_outs: 2,
                breach_to_serving: vec![7.3, 8.1],
            }
        );
    }

    #[test]
    fn no_completed_scale_out_is_an_empty_list_and_an_interrupted_demo_an_error() {
        let none = OUTPUT.replace("7.3s, 8.1s", "no scale-out completed");
        assert_eq!(
            parse_summary(&none).expect("a summary").breach_to_serving,
            Vec::<f64>::new()
        );
        let stopped = OUTPUT.replace("load finished", "stopped early");
        assert!(parse_summary(&stopped).is_err());
        assert!(parse_summary("t=1 rps=30\n").is_err());
    }

    #[test]
    fn watch_time_and_boot_delay_are_subtracted_from_each_scale_out() {
        let reaction = Reaction {
            duration: Duration::from_secs(40),
            imposed: Imposed {
                watchtime: Duration::from_secs(5),
                boot_delay: Duration::from_millis(1500),
            },
            summary: parse_summary(OUTPUT).expect("a summary"),
        };
        let overheads = reaction.overheads();
        assert_eq!(overheads.len(), 2);
        assert!((overheads[0] - 0.8).abs() < 1e-9, "{overheads:?}");
        assert!((overheads[1] - 1.6).abs() < 1e-9, "{overheads:?}");
        let table = reaction.table();
        let json = crate::markdown::flat_json(&crate::markdown::Report {
            tables: vec![table],
            ..Default::default()
        });
        assert_eq!(json["autoscale.scale_outs.ballast"], 2.0);
        assert_eq!(json["autoscale.reaction_max_s.ballast"], 8.1);
        assert_eq!(json["autoscale.requests_failed.ballast"], 2.0);
    }

    #[test]
    fn the_built_in_config_moves_to_other_addresses_and_keeps_its_delays() {
        let to = Addresses {
            vserver: "127.0.0.1:1001".parse().expect("an address"),
            admin: "127.0.0.1:1002".parse().expect("an address"),
            metrics: "127.0.0.1:1003".parse().expect("an address"),
            cloud: "127.0.0.1:1004".parse().expect("an address"),
            vm_range: "127.88.9.0/24".into(),
        };
        let original: toml::Table = DEMO_CONFIG.parse().expect("the demo config parses");
        let mut config = relocate(DEMO_CONFIG, &to).expect("the demo config relocates");
        for (name, addr) in [
            ("admin", to.admin),
            ("metrics", to.metrics),
            ("localcloud", to.cloud),
        ] {
            let listen = section(&mut config, name).expect("a section")["listen"].clone();
            assert_eq!(listen.as_str(), Some(addr.to_string().as_str()), "{name}");
        }
        let range = section(&mut config, "localcloud").expect("a section")["address_range"].clone();
        assert_eq!(range.as_str(), Some("127.88.9.0/24"));
        let text = toml::to_string(&config).expect("serializes");
        assert!(
            text.contains("url = \"http://127.0.0.1:1004/client/api\""),
            "{text}"
        );
        assert!(text.contains("port = 1001"), "{text}");
        assert_eq!(
            imposed(&config).expect("delays"),
            imposed(&original).expect("delays")
        );
    }

    #[test]
    fn delays_are_read_from_the_first_group_and_the_local_cloud() {
        let config: toml::Table = "[localcloud]\nboot_delay = \"1500ms\"\n\
             [[autoscalegroup]]\nwatchtime = \"5s\"\n[[autoscalegroup]]\nwatchtime = \"9s\"\n"
            .parse()
            .expect("a config");
        assert_eq!(
            imposed(&config).expect("delays"),
            Imposed {
                watchtime: Duration::from_secs(5),
                boot_delay: Duration::from_millis(1500),
            }
        );
        let no_boot_delay: toml::Table = "[localcloud]\n[[autoscalegroup]]\nwatchtime = \"5s\"\n"
            .parse()
            .expect("a config");
        assert!(imposed(&no_boot_delay).is_err());
    }
}
