//! The poller: one tokio task that polls every watched member over a few UDP sockets, matches
//! replies through a request-id table, and sends a [`Sample`] per poll down a channel.
//!
//! - `core`: the protocol core (no I/O; takes `now`).
//! - `v3`: engine discovery and USM replies.
//! - `values`: reply → metric values.
//! - `sockets`: UDP sockets bound to the source address that reaches each agent.
//! - `driver`: the task: timers, commands, sending and receiving.

mod core;
#[cfg(test)]
mod core_tests;
mod driver;
mod rng;
mod sockets;
mod v3;
mod values;

use std::fmt;
use std::hash::Hash;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

use crate::sample::Sample;
use crate::spec::LoadMonitor;
use crate::stats::PollStats;

/// Sockets and limits of a [`Poller`].
#[derive(Debug, Clone)]
pub struct PollerConfig {
    /// UDP sockets per local source address; the members polled from that address are spread
    /// over them (default 2).
    pub sockets: usize,
    /// Local address of the sockets polling IPv4 members. `None` (default): for each member,
    /// the address the kernel sends from to reach it (`127.0.0.1` for a member on loopback,
    /// the outgoing interface's address otherwise), so no socket listens on `0.0.0.0`.
    pub bind_v4: Option<IpAddr>,
    /// Local address of the sockets polling IPv6 members; `None` (default) as for IPv4.
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
            bind_v4: None,
            bind_v6: None,
            recv_buffer: 4 << 20,
            max_datagram: 16 << 10,
        }
    }
}

/// Handle to a running poller. Cheap to clone; the task stops when the last handle is dropped.
pub struct Poller<K> {
    commands: mpsc::UnboundedSender<Command<K>>,
    stats: Arc<PollStats>,
    local_addrs: Arc<Mutex<Vec<SocketAddr>>>,
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
    /// Spawns the poller task on the current runtime; it binds its sockets as members are
    /// polled. Samples go to `samples`; when it is full, samples are dropped and counted (the
    /// poller never waits). Fails only without OS randomness.
    pub fn spawn(config: PollerConfig, samples: mpsc::Sender<Sample<K>>) -> io::Result<Self> {
        let stats = Arc::new(PollStats::default());
        let rng = rng::Rng::from_os().map_err(|error| {
            io::Error::other(format!(
                "no OS randomness for SNMP request ids and salts: {error}"
            ))
        })?;
        let sockets = sockets::Sockets::new(&config);
        let local_addrs = sockets.local_addrs();
        let (commands, rx) = mpsc::unbounded_channel();
        let core = core::Core::new(stats.clone(), config.max_datagram, rng);
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

    /// The local addresses of the sockets bound so far (what agents see as the source).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.local_addrs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
