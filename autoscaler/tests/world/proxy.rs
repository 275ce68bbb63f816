//! The proxy the world plays: one servicegroup's autoscaled members, keyed by address as the
//! config writer keys them (binding an address that is bound is `AlreadyBound`, which the
//! driver takes as done; unbind and drain name only the address).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Member {
    /// The VM the bind named (the proxy's autoscale mark).
    pub vm: String,
    pub bound_at: Duration,
    /// The first health check can pass this long after the bind.
    pub health_delay: Duration,
    pub draining: bool,
    /// While draining, connections are multiplied by this at every sample (0: gone at once,
    /// 1: busy past the quiet time).
    pub drain_decay: f64,
    pub connections: u64,
}

#[derive(Debug, Default)]
pub struct Proxy {
    pub members: BTreeMap<SocketAddr, Member>,
}

impl Proxy {
    /// Binds `vm` at `addr`; `false` when the address is bound already (nothing changes).
    pub fn bind(
        &mut self,
        now: Duration,
        vm: &str,
        addr: SocketAddr,
        health_delay: Duration,
    ) -> bool {
        if self.members.contains_key(&addr) {
            return false;
        }
        let member = Member {
            vm: vm.to_string(),
            bound_at: now,
            health_delay,
            draining: false,
            drain_decay: 1.0,
            connections: 0,
        };
        self.members.insert(addr, member);
        true
    }

    pub fn drain(&mut self, addr: SocketAddr, decay: f64) {
        if let Some(member) = self.members.get_mut(&addr)
            && !member.draining
        {
            member.draining = true;
            member.drain_decay = decay;
        }
    }

    /// The member bound for `vm`, if one is.
    pub fn member_of(&self, vm: &str) -> Option<(SocketAddr, &Member)> {
        self.members
            .iter()
            .find(|(_, m)| m.vm == vm)
            .map(|(addr, m)| (*addr, m))
    }
}
