//! The poller: one tokio task that polls every watched member over a few UDP sockets, matches
//! replies through a request-id table, and sends a [`Sample`] per poll down a channel.
//!
//! - `core`: the protocol core (no I/O; takes `now`).
//! - `v3`: engine discovery and USM replies.
//! - `values`: reply → metric values.
//! - `driver`: the task: sockets, timers, commands.

mod core;
#[cfg(test)]
mod core_tests;
mod driver;
mod rng;
mod v3;
mod values;

use std::fmt;
use std::hash::Hash;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::sample::Sample;
use crate::spec::LoadMonitor;
use crate::stats::PollStats;

/// Sockets and limits of a [`Poller`].
#[derive(Debug, Clone)]
pub struct PollerConfig {
    /// UDP sockets per address family; members are spread over them (default 2).
    pub sockets: usize,
    /// Local address of the IPv4 sockets (default `0.0.0.0`, any port).
    pub bind_v4: Option<IpAddr>,
    /// Local address of the IPv6 sockets (default `::`; `None` polls no IPv6 members).
    pub bind_v6: Option<IpAddr>,
    /// SO_RCVBUF asked for each socket (default 4 MiB; the kernel caps it at `rmem_max`).
    /// Bursts of replies beyond the buffer are lost, so many members need a large one.
    pub recv_buffer: usize,
    /// Replies longer than this are dropped as oversized (default 16 KiB).
    pub max_datagram: usize,
}

impl Default for PollerConfig {
    fn default() -> Self {
        Self {
            sockets: 2,
            bind_v4: Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            bind_v6: Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
            recv_buffer: 4 << 20,
            max_datagram: 16 << 10,
        }
    }
}

/// Handle to a running poller. Cheap to clone; the task stops when the last handle is dropped.
pub struct Poller<K> {
    commands: mpsc::UnboundedSender<Command<K>>,
    stats: Arc<PollStats>,
    local_addrs: Arc<[SocketAddr]>,
}

impl<K> Clone for Poller<K> {
    fn clone(&self) -> Self {
        Self {
            commands: self.commands.clone(),
            stats: self.stats.clone(),
            local_addrs: self.local_addrs.clone(),
        }
    }
}

impl<K> fmt::Debug for Poller<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Poller")
            .field("local_addrs", &self.local_addrs)
            .finish()
    }
}

enum Command<K> {
    Watch {
        member: K,
        addr: SocketAddr,
        monitor: Arc<LoadMonitor>,
    },
    Unwatch {
        member: K,
    },
}

impl<K> Poller<K>
where
    K: Clone + Eq + Hash + Send + 'static,
{
    /// Binds the sockets and spawns the poller task on the current runtime. Samples go to
    /// `samples`; when it is full, samples are dropped and counted (the poller never waits).
    pub fn spawn(config: PollerConfig, samples: mpsc::Sender<Sample<K>>) -> io::Result<Self> {
        let stats = Arc::new(PollStats::default());
        let rng = rng::Rng::from_os().map_err(|error| {
            io::Error::other(format!(
                "no OS randomness for SNMP request ids and salts: {error}"
            ))
        })?;
        let sockets = driver::Sockets::bind(&config)?;
        let local_addrs = sockets.local_addrs().into();
        let (commands, rx) = mpsc::unbounded_channel();
        let core = core::Core::new(stats.clone(), config.max_datagram, sockets.counts(), rng);
        tokio::spawn(driver::run(core, sockets, rx, samples));
        Ok(Self {
            commands,
            stats,
            local_addrs,
        })
    }

    /// Polls `member` at `addr` with `monitor` from now on (replacing an earlier watch of the
    /// same member). Use [`LoadMonitor::target`] to build `addr` from the member's IP and
    /// `destport`.
    pub fn watch(&self, member: K, addr: SocketAddr, monitor: Arc<LoadMonitor>) {
        let _ = self.commands.send(Command::Watch {
            member,
            addr,
            monitor,
        });
    }

    /// Stops polling `member`.
    pub fn unwatch(&self, member: K) {
        let _ = self.commands.send(Command::Unwatch { member });
    }

    /// Counters and latency histogram, readable at any time without locks.
    pub fn stats(&self) -> &Arc<PollStats> {
        &self.stats
    }

    /// The local addresses of the sockets (what agents see as the source).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }
}
