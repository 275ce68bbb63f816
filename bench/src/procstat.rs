//! Linux `/proc` accounting: CPU time of our processes, of the whole machine (to flag runs that
//! other tenants disturbed) and resident memory.
//!
//! `/proc/<pid>/stat` utime/stime and `/proc/stat` are in clock ticks (`USER_HZ`, read once with
//! `getconf CLK_TCK`; 100 on Linux if that fails). Ticks are sampled, so a 10 s window is exact to
//! about ±1%. With `CONFIG_IRQ_TIME_ACCOUNTING` off, softirq work (most of loopback TCP) is
//! charged to whatever task was running, which is why CPU per request is a property of the pair
//! (load generator, server) on one CPU and is only compared between runs measured the same way.

use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use tokio::time::{Duration, Instant};

/// `USER_HZ`: ticks per second of every counter read here.
pub fn clk_tck() -> u64 {
    static TCK: OnceLock<u64> = OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .filter(|&tck| tck > 0)
            .unwrap_or(100)
    })
}

/// CPU ticks one process (all its threads) has used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcTimes {
    pub utime: u64,
    pub stime: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) may hold spaces and parentheses, so
/// fields are counted after its last `)`: there `state` is field 3, `utime` 14 and `stime` 15.
pub fn parse_pid_stat(text: &str) -> Result<ProcTimes> {
    let rest = text
        .rfind(')')
        .map(|at| &text[at + 1..])
        .context("no `)` after the command name")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Result<u64> {
        fields
            .get(n - 3)
            .with_context(|| format!("field {n} missing"))?
            .parse()
            .with_context(|| format!("field {n} is not a number"))
    };
    Ok(ProcTimes {
        utime: field(14)?,
        stime: field(15)?,
    })
}

pub fn pid_times(pid: u32) -> Result<ProcTimes> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_pid_stat(&text).with_context(|| format!("parsing {path}"))
}

/// One `cpu` line of `/proc/stat`, in ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuLine {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

impl CpuLine {
    /// Ticks spent running something (guest time is already inside user/nice).
    pub fn busy(&self) -> u64 {
        self.user + self.nice + self.system + self.irq + self.softirq
    }
}

/// `/proc/stat`: the `cpu` total and each `cpuN`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineTimes {
    pub total: CpuLine,
    pub per_cpu: Vec<CpuLine>,
}

pub fn parse_proc_stat(text: &str) -> Result<MachineTimes> {
    let mut machine = MachineTimes::default();
    let mut saw_total = false;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(name) = words.next().filter(|name| name.starts_with("cpu")) else {
            continue;
        };
        let numbers: Vec<u64> = words
            .map(str::parse)
            .collect::<Result<_, _>>()
            .with_context(|| format!("bad `{name}` line"))?;
        if numbers.len() < 4 {
            bail!("`{name}` line has {} fields", numbers.len());
        }
        let at = |i: usize| numbers.get(i).copied().unwrap_or(0);
        let cpu = CpuLine {
            user: at(0),
            nice: at(1),
            system: at(2),
            idle: at(3),
            iowait: at(4),
            irq: at(5),
            softirq: at(6),
            steal: at(7),
        };
        if name == "cpu" {
            machine.total = cpu;
            saw_total = true;
        } else {
            machine.per_cpu.push(cpu);
        }
    }
    if !saw_total {
        bail!("no `cpu` line");
    }
    Ok(machine)
}

pub fn machine_times() -> Result<MachineTimes> {
    let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_proc_stat(&text)
}

/// `VmRSS` of a `/proc/<pid>/status` text, in bytes.
pub fn parse_vm_rss(status: &str) -> Result<u64> {
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .context("no VmRSS line")?;
    let mut words = line.split_whitespace();
    let value: u64 = words
        .next()
        .context("VmRSS has no value")?
        .parse()
        .context("VmRSS is not a number")?;
    match words.next() {
        Some("kB") | None => Ok(value * 1024),
        Some(unit) => bail!("VmRSS in unexpected unit {unit}"),
    }
}

pub fn vm_rss(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_vm_rss(&text).with_context(|| format!("parsing {path}"))
}

/// The soft limit on open files of this process (`/proc/self/limits`).
pub fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Everything read at one instant: the machine, this process (the load generator) and the
/// servers being measured.
#[derive(Debug, Clone)]
pub struct Snapshot {
    at: Instant,
    machine: MachineTimes,
    me: ProcTimes,
    pids: Vec<(u32, ProcTimes)>,
}

pub fn snapshot(pids: &[u32]) -> Result<Snapshot> {
    let at = Instant::now();
    let me = pid_times(std::process::id())?;
    let pids = pids
        .iter()
        .map(|&pid| Ok((pid, pid_times(pid)?)))
        .collect::<Result<_>>()?;
    Ok(Snapshot {
        at,
        machine: machine_times()?,
        me,
        pids,
    })
}

/// CPU used by one process over a window, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcCpu {
    pub user_s: f64,
    pub sys_s: f64,
}

impl ProcCpu {
    fn between(start: ProcTimes, end: ProcTimes, tck: f64) -> Self {
        Self {
            user_s: end.utime.saturating_sub(start.utime) as f64 / tck,
            sys_s: end.stime.saturating_sub(start.stime) as f64 / tck,
        }
    }

    pub fn total_s(&self) -> f64 {
        self.user_s + self.sys_s
    }
}

/// What the machine did between two snapshots.
#[derive(Debug, Clone, Default)]
pub struct CpuWindow {
    pub seconds: f64,
    /// This process: the load generator.
    pub generator: ProcCpu,
    /// The measured pids, in the order given to [`snapshot`].
    pub pids: Vec<(u32, ProcCpu)>,
    /// Busy fraction of each CPU (0..=1).
    pub cpu_busy: Vec<f64>,
    /// Cores' worth of CPU used by processes other than ours (clamped at 0).
    pub foreign_cores: f64,
    /// Cores' worth of time the hypervisor gave to other guests.
    pub steal_cores: f64,
}

impl CpuWindow {
    pub fn between(start: &Snapshot, end: &Snapshot) -> Self {
        let tck = clk_tck() as f64;
        let seconds = (end.at - start.at).as_secs_f64().max(1e-9);
        let generator = ProcCpu::between(start.me, end.me, tck);
        let pids: Vec<(u32, ProcCpu)> = start
            .pids
            .iter()
            .zip(&end.pids)
            .map(|(&(pid, a), &(_, b))| (pid, ProcCpu::between(a, b, tck)))
            .collect();
        let ours: f64 = generator.total_s() + pids.iter().map(|(_, c)| c.total_s()).sum::<f64>();
        let machine_busy = end
            .machine
            .total
            .busy()
            .saturating_sub(start.machine.total.busy()) as f64
            / tck;
        let steal = end
            .machine
            .total
            .steal
            .saturating_sub(start.machine.total.steal) as f64
            / tck;
        let cpu_busy = start
            .machine
            .per_cpu
            .iter()
            .zip(&end.machine.per_cpu)
            .map(|(a, b)| b.busy().saturating_sub(a.busy()) as f64 / tck / seconds)
            .collect();
        Self {
            seconds,
            generator,
            pids,
            cpu_busy,
            foreign_cores: ((machine_busy - ours) / seconds).max(0.0),
            steal_cores: steal / seconds,
        }
    }

    /// CPU of `pid` over the window (zero if it was not sampled).
    pub fn of(&self, pid: u32) -> ProcCpu {
        self.pids
            .iter()
            .find(|(p, _)| *p == pid)
            .map(|(_, c)| *c)
            .unwrap_or_default()
    }
}

/// Waits (at most `max_wait`) until the machine, less `pids` and this process, uses under
/// `threshold` cores over a 500 ms sample. Returns the last sample's foreign cores.
pub async fn wait_quiet(pids: &[u32], threshold: f64, max_wait: Duration) -> Result<f64> {
    let deadline = Instant::now() + max_wait;
    loop {
        let start = snapshot(pids)?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let foreign = CpuWindow::between(&start, &snapshot(pids)?).foreign_cores;
        if foreign < threshold || Instant::now() >= deadline {
            return Ok(foreign);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_stat_with_awkward_command_name() {
        // comm holds a space and a `)`; utime = 1234, stime = 567.
        let text = "4242 (my) proc 1) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 567 0 0 \
                    20 0 3 0 12345 1000000 250 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        assert_eq!(
            parse_pid_stat(text).unwrap(),
            ProcTimes {
                utime: 1234,
                stime: 567
            }
        );
        assert!(parse_pid_stat("4242 (x) S 1 2").is_err());
        assert!(parse_pid_stat("garbage").is_err());
    }

    #[test]
    fn own_stat_parses() {
        let me = pid_times(std::process::id()).unwrap();
        assert!(me.utime + me.stime < u64::MAX);
    }

    #[test]
    fn proc_stat_lines() {
        let text = "cpu  100 5 50 1000 10 1 4 2 0 0\n\
                    cpu0 60 5 30 500 5 1 2 1 0 0\n\
                    cpu1 40 0 20 500 5 0 2 1 0 0\n\
                    intr 12345 0 0\n\
                    ctxt 999\n";
        let m = parse_proc_stat(text).unwrap();
        assert_eq!(m.total.busy(), 100 + 5 + 50 + 1 + 4);
        assert_eq!(m.total.steal, 2);
        assert_eq!(m.per_cpu.len(), 2);
        assert_eq!(m.per_cpu[0].busy(), 60 + 5 + 30 + 1 + 2);
        assert!(parse_proc_stat("intr 1 2 3\n").is_err());
        assert!(parse_proc_stat("cpu 1 x 3 4\n").is_err());
        // The real file parses and has at least one CPU.
        assert!(!machine_times().unwrap().per_cpu.is_empty());
    }

    #[test]
    fn vm_rss_in_bytes() {
        let status = "Name:\tballast\nVmPeak:\t  20000 kB\nVmRSS:\t    2816 kB\nThreads:\t2\n";
        assert_eq!(parse_vm_rss(status).unwrap(), 2816 * 1024);
        assert!(parse_vm_rss("Name:\tx\n").is_err());
        assert!(vm_rss(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn window_accounts_foreign_time() {
        let tck = clk_tck() as f64;
        let line = |busy: u64| CpuLine {
            user: busy,
            ..CpuLine::default()
        };
        let at = Instant::now();
        let start = Snapshot {
            at,
            machine: MachineTimes {
                total: line(0),
                per_cpu: vec![line(0), line(0)],
            },
            me: ProcTimes::default(),
            pids: vec![(7, ProcTimes::default())],
        };
        // Over 10 s: the machine was busy 15 s; we used 4 + 8 s; 3 s were someone else's.
        let t = |s: f64| (s * tck) as u64;
        let end = Snapshot {
            at: at + Duration::from_secs(10),
            machine: MachineTimes {
                total: line(t(15.0)),
                per_cpu: vec![line(t(9.0)), line(t(6.0))],
            },
            me: ProcTimes {
                utime: t(3.0),
                stime: t(1.0),
            },
            pids: vec![(
                7,
                ProcTimes {
                    utime: t(2.0),
                    stime: t(6.0),
                },
            )],
        };
        let w = CpuWindow::between(&start, &end);
        assert!((w.seconds - 10.0).abs() < 1e-9);
        assert!((w.foreign_cores - 0.3).abs() < 1e-9);
        assert!((w.generator.total_s() - 4.0).abs() < 1e-9);
        assert!((w.of(7).sys_s - 6.0).abs() < 1e-9);
        assert_eq!(w.of(8), ProcCpu::default());
        assert!((w.cpu_busy[0] - 0.9).abs() < 1e-9);
    }
}
