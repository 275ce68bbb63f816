//! The poller's UDP sockets, bound to the local address that reaches the agents, never to the
//! wildcard `0.0.0.0` or `::` unless the operator asks for it.
//!
//! Agents are grouped by the source address the kernel picks for them (the route's `src`):
//! every agent on loopback shares the sockets bound to `127.0.0.1`, every agent behind one
//! interface shares that interface's. Each source gets [`PollerConfig::sockets`] sockets,
//! bound when its first agent is polled, so thousands of agents still use a handful of
//! sockets and none listens on an address no agent is polled from.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use super::PollerConfig;

/// Every socket the poller has, and which of them serve which source address.
pub(super) struct Sockets {
    pub all: Vec<UdpSocket>,
    by_source: HashMap<SocketAddr, Group>,
    per_source: usize,
    recv_buffer: usize,
    bind_v4: Option<IpAddr>,
    bind_v6: Option<IpAddr>,
    /// The local addresses of `all`, shared with every [`super::Poller`] handle.
    local_addrs: Arc<Mutex<Vec<SocketAddr>>>,
}

/// The sockets bound to one source address: `all[first..first + count]`, taken in turn.
struct Group {
    first: usize,
    count: usize,
    next: usize,
}

impl Sockets {
    pub fn new(config: &PollerConfig) -> Self {
        Self {
            all: Vec::new(),
            by_source: HashMap::new(),
            per_source: config.sockets.max(1),
            recv_buffer: config.recv_buffer,
            bind_v4: config.bind_v4.filter(IpAddr::is_ipv4),
            bind_v6: config.bind_v6.filter(IpAddr::is_ipv6),
            local_addrs: Arc::default(),
        }
    }

    pub fn local_addrs(&self) -> Arc<Mutex<Vec<SocketAddr>>> {
        self.local_addrs.clone()
    }

    /// The index in `all` of a socket that reaches `agent`, binding the sockets of its source
    /// address first if this is the first agent polled from there.
    pub fn for_agent(&mut self, agent: SocketAddr) -> io::Result<usize> {
        let configured = if agent.is_ipv4() {
            self.bind_v4
        } else {
            self.bind_v6
        };
        let source = match configured {
            Some(ip) => SocketAddr::new(ip, 0),
            None => source_for(agent)?,
        };
        if let Some(group) = self.by_source.get_mut(&source) {
            group.next = group.next.wrapping_add(1);
            return Ok(group.first + group.next % group.count);
        }
        let bound = (0..self.per_source)
            .map(|_| bind_one(source, self.recv_buffer))
            .collect::<io::Result<Vec<_>>>()?;
        let first = self.all.len();
        let mut local_addrs = self
            .local_addrs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        local_addrs.extend(bound.iter().filter_map(|s| s.local_addr().ok()));
        self.all.extend(bound);
        let count = self.all.len() - first;
        let group = Group {
            first,
            count,
            next: 0,
        };
        self.by_source.insert(source, group);
        Ok(first)
    }
}

/// The address (port 0) the kernel sends from to reach `agent`: a UDP socket connected to it
/// reports that as its local address. Connecting a UDP socket sends nothing.
fn source_for(agent: SocketAddr) -> io::Result<SocketAddr> {
    let probe = Socket::new(Domain::for_address(agent), Type::DGRAM, Some(Protocol::UDP))?;
    probe.connect(&agent.into())?;
    let mut source = probe
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("the probe socket has no IP address"))?;
    source.set_port(0);
    Ok(source)
}

fn bind_one(addr: SocketAddr, recv_buffer: usize) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Best effort: the kernel caps the size at net.core.rmem_max.
    let _ = socket.set_recv_buffer_size(recv_buffer);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loopback_agent_is_reached_from_loopback_not_the_wildcard() {
        for agent in ["127.0.0.7:161", "127.3.2.1:16100"] {
            let source = source_for(agent.parse().unwrap()).unwrap();
            assert_eq!(source, "127.0.0.1:0".parse().unwrap(), "{agent}");
        }
    }

    #[tokio::test]
    async fn agents_behind_one_source_share_its_sockets_in_turn() {
        let mut sockets = Sockets::new(&PollerConfig {
            sockets: 2,
            ..PollerConfig::default()
        });
        let picks: Vec<usize> = ["127.0.0.7:161", "127.0.0.8:161", "127.9.0.1:161"]
            .iter()
            .map(|agent| sockets.for_agent(agent.parse().unwrap()).unwrap())
            .collect();
        assert_eq!(picks, [0, 1, 0]);
        assert_eq!(sockets.all.len(), 2);
        let local = sockets.local_addrs().lock().unwrap().clone();
        assert_eq!(local.len(), 2);
        for addr in local {
            assert_eq!(addr.ip(), IpAddr::from([127, 0, 0, 1]));
            assert_ne!(addr.port(), 0);
        }
    }
}
