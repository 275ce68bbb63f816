//! Load-balancing methods: which eligible member gets the next request or connection.
//!
//! A [`Balancer`] is compiled once per snapshot from the vserver's `lbmethod` and its group's
//! members; picking only reads atomics (member state, a rotation counter), never locks.
//!
//! - [`round_robin`]: smooth weighted round robin, precomputed as a sequence.
//! - [`least`]: `LEASTCONNECTION`, `LEASTRESPONSETIME` and `CUSTOMLOAD`, by score.
//! - [`consistent_hash`]: `SOURCEIPHASH` and `URLHASH` on a ring with virtual nodes.

pub mod consistent_hash;
pub mod least;
pub mod round_robin;

use std::net::IpAddr;
use std::sync::Arc;

use crate::config::LbMethod;
use crate::member::MemberState;

use consistent_hash::HashRing;
use round_robin::SmoothWeighted;

/// What a pick may look at.
#[derive(Debug, Clone, Copy)]
pub struct PickKey<'a> {
    pub client: IpAddr,
    /// The request's path and query (HTTP only).
    pub url: Option<&'a str>,
}

/// A vserver's balancing state for one snapshot.
#[derive(Debug)]
pub enum Balancer {
    RoundRobin(SmoothWeighted),
    Least(least::Score, least::Rotation),
    SourceIpHash(HashRing),
    UrlHash(HashRing),
}

impl Balancer {
    pub fn new(method: LbMethod, members: &[Arc<MemberState>], weights: &[u32]) -> Balancer {
        match method {
            LbMethod::RoundRobin => Balancer::RoundRobin(SmoothWeighted::new(weights)),
            LbMethod::LeastConnection => {
                Balancer::Least(least::Score::Connections, least::Rotation::default())
            }
            LbMethod::LeastResponseTime => {
                Balancer::Least(least::Score::ResponseTime, least::Rotation::default())
            }
            LbMethod::CustomLoad => Balancer::Least(least::Score::Load, least::Rotation::default()),
            LbMethod::SourceIpHash => Balancer::SourceIpHash(HashRing::new(members, weights)),
            LbMethod::UrlHash => Balancer::UrlHash(HashRing::new(members, weights)),
        }
    }

    /// The index of the member to use, skipping ineligible ones and those in `tried`.
    pub fn pick(
        &self,
        members: &[Arc<MemberState>],
        weights: &[u32],
        key: PickKey<'_>,
        tried: &[usize],
    ) -> Option<usize> {
        let usable = |index: usize| members[index].is_eligible() && !tried.contains(&index);
        self.pick_where(members, weights, key, usable)
    }

    /// The index of the member to use among those `usable` says may take it.
    pub fn pick_where(
        &self,
        members: &[Arc<MemberState>],
        weights: &[u32],
        key: PickKey<'_>,
        usable: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        match self {
            Balancer::RoundRobin(sequence) => sequence.pick(usable),
            Balancer::Least(score, rotation) => {
                least::pick(*score, rotation, members, weights, usable)
            }
            Balancer::SourceIpHash(ring) => ring.pick(&key.client, usable),
            Balancer::UrlHash(ring) => ring.pick(&key.url.unwrap_or("/"), usable),
        }
    }
}
