//! `LEASTCONNECTION`, `LEASTRESPONSETIME` and `CUSTOMLOAD`: the member with the lowest score.
//!
//! Scores are compared as fractions so weights count without division: a member with weight 2
//! and 4 active requests ties with a member of weight 1 and 2. The scan starts at a rotating
//! offset, so ties are shared instead of always going to the first member.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::member::MemberState;

/// What "least" means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Score {
    /// Active requests (HTTP) or connections (TCP), per unit of weight.
    Connections,
    /// Response-time EWMA × (active + 1), per unit of weight; NetScaler's LRTM.
    ResponseTime,
    /// SNMP load (lower is better); members that reported none yet score as LEASTCONNECTION.
    Load,
}

/// Where the next scan starts.
#[derive(Debug, Default)]
pub struct Rotation(AtomicUsize);

pub fn pick(
    score: Score,
    rotation: &Rotation,
    members: &[Arc<MemberState>],
    weights: &[u32],
    usable: impl Fn(usize) -> bool,
) -> Option<usize> {
    let len = members.len();
    if len == 0 {
        return None;
    }
    // Load only ranks members once every usable one reported a load.
    let by_load = score == Score::Load
        && (0..len)
            .filter(|i| usable(*i))
            .all(|i| members[i].load().is_some());
    let start = rotation.0.fetch_add(1, Relaxed);
    let mut best: Option<(usize, u128)> = None;
    for offset in 0..len {
        let index = (start + offset) % len;
        if !usable(index) {
            continue;
        }
        let member = &members[index];
        let active = u128::from(member.active());
        let raw = match score {
            Score::Load if by_load => u128::from(member.load().unwrap_or(u32::MAX)),
            Score::Connections | Score::Load => active,
            Score::ResponseTime => u128::from(member.response_time_us()) * (active + 1),
        };
        // Score per unit of weight; ×100 keeps two digits through the integer division.
        let scaled = raw * 100 / u128::from(weights[index].max(1));
        if best.is_none_or(|(_, b)| scaled < b) {
            best = Some((index, scaled));
        }
    }
    best.map(|(index, _)| index)
}
