//! The VM process's own load: CPU time from `/proc/self/stat` over the last interval, relative
//! to the VM's vCPU share, and resident memory from `/proc/self/status`, relative to its memory
//! size.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::AgentValues;

/// Clock ticks per second of `/proc/*/stat` (USER_HZ, 100 on every Linux ABI Ballast targets).
const USER_HZ: f64 = 100.0;

/// The size of the VM this process stands for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VmShare {
    /// vCPUs of the service offering; 100 % CPU means all of them busy.
    pub vcpus: f64,
    /// Memory of the service offering, in bytes (memTotalReal).
    pub memory_bytes: u64,
}

/// Turns two readings of the process's counters into [`AgentValues`].
#[derive(Debug)]
pub struct ProcessSampler {
    share: VmShare,
    last: Option<(Instant, CpuTicks)>,
    values: AgentValues,
}

/// utime and stime, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTicks {
    pub user: u64,
    pub system: u64,
}

impl ProcessSampler {
    pub fn new(share: VmShare) -> Self {
        let total_kb = share.memory_bytes / 1024;
        let values = AgentValues {
            mem_total_kb: total_kb,
            mem_avail_kb: total_kb,
            ..AgentValues::default()
        };
        Self {
            share,
            last: None,
            values,
        }
    }

    /// Reads `/proc/self` and updates the values (CPU covers the time since the last refresh).
    pub fn refresh(&mut self, now: Instant) -> AgentValues {
        let ticks = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|t| parse_stat(&t));
        let rss_kb = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|t| parse_rss_kb(&t));
        self.update(now, ticks, rss_kb)
    }

    /// The latest values.
    pub fn values(&self) -> AgentValues {
        self.values
    }

    /// Applies one reading (split out so tests can feed numbers).
    pub fn update(
        &mut self,
        now: Instant,
        ticks: Option<CpuTicks>,
        rss_kb: Option<u64>,
    ) -> AgentValues {
        if let Some(ticks) = ticks {
            if let Some((then, before)) = self.last {
                let seconds = now.saturating_duration_since(then).as_secs_f64();
                if seconds > 0.0 {
                    let capacity = seconds * self.share.vcpus.max(0.01) * USER_HZ;
                    let percent =
                        |delta: u64| ((delta as f64 / capacity) * 100.0).clamp(0.0, 100.0);
                    let user = percent(ticks.user.saturating_sub(before.user));
                    let system = percent(ticks.system.saturating_sub(before.system));
                    let busy_ticks = ticks.user.saturating_sub(before.user)
                        + ticks.system.saturating_sub(before.system);
                    self.values.cpu_user = user.round() as u32;
                    self.values.cpu_system = system.round() as u32;
                    self.values.cpu_idle =
                        100u32.saturating_sub(self.values.cpu_user + self.values.cpu_system);
                    self.values.load = Some(busy_ticks as f64 / USER_HZ / seconds);
                }
            }
            self.last = Some((now, ticks));
        }
        if let Some(rss_kb) = rss_kb {
            self.values.mem_avail_kb = self.values.mem_total_kb.saturating_sub(rss_kb);
        }
        self.values
    }

    /// Refreshes every `every` on a tokio task; read the latest with `receiver.borrow()`. The
    /// task ends when every receiver is dropped.
    pub fn spawn(share: VmShare, every: Duration) -> watch::Receiver<AgentValues> {
        let mut sampler = Self::new(share);
        let (tx, rx) = watch::channel(sampler.refresh(Instant::now()));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            loop {
                ticker.tick().await;
                if tx.send(sampler.refresh(Instant::now())).is_err() {
                    break;
                }
            }
        });
        rx
    }
}

/// utime and stime (fields 14 and 15) of a `/proc/PID/stat` line; the command name may hold
/// spaces and parentheses, so fields are counted after the last `)`.
pub fn parse_stat(text: &str) -> Option<CpuTicks> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let user = fields.next()?.parse().ok()?;
    let system = fields.next()?.parse().ok()?;
    Some(CpuTicks { user, system })
}

/// `VmRSS:  1234 kB` from `/proc/PID/status`.
pub fn parse_rss_kb(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat = "4242 (my (odd) vm) S 1 2 3 4 5 6 7 8 9 10 250 40 0 0 20 0 1 0";
        assert_eq!(
            parse_stat(stat),
            Some(CpuTicks {
                user: 250,
                system: 40
            })
        );
        assert_eq!(parse_rss_kb("Name:\tx\nVmRSS:\t  5120 kB\n"), Some(5120));
        assert!(parse_stat(&std::fs::read_to_string("/proc/self/stat").unwrap()).is_some());
    }

    #[test]
    fn cpu_is_relative_to_the_vcpu_share_and_memory_to_the_size() {
        let mut sampler = ProcessSampler::new(VmShare {
            vcpus: 2.0,
            memory_bytes: 1 << 30,
        });
        let t0 = Instant::now();
        sampler.update(t0, Some(CpuTicks { user: 0, system: 0 }), Some(1024));
        // 1 s, 100 user ticks + 20 system ticks on 2 vCPUs: 50 % user, 10 % system.
        let v = sampler.update(
            t0 + Duration::from_secs(1),
            Some(CpuTicks {
                user: 100,
                system: 20,
            }),
            Some(262_144),
        );
        assert_eq!((v.cpu_user, v.cpu_system, v.cpu_idle), (50, 10, 40));
        assert_eq!(v.mem_total_kb, 1_048_576);
        assert_eq!(v.mem_avail_kb, 1_048_576 - 262_144);
        assert_eq!(v.load, Some(1.2));
    }
}
