//! `ROUNDROBIN`: smooth weighted round robin.
//!
//! A heavy member's turns are spread evenly over the cycle instead of coming in a run: weights
//! 5/1/1 give a b a a c a a, not a a a a a b c. The cycle has as many places as the weights'
//! total, and a member of weight `w` has `w` turns in it, its `k`-th for the slice `k/w` to
//! `(k+1)/w` of the cycle. Each place goes to the turn that ends soonest among those whose
//! slice has begun (the lower index first on a tie): fair queueing's rule, which keeps every
//! member within a turn of its share at any point of the cycle. With two heaps that is
//! `total × log(members)` steps, so a 10,000-member group is ready in a few milliseconds. The
//! sequence is computed once per snapshot, so picking is one atomic increment; ineligible
//! members are skipped, which keeps the others' proportions.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The precomputed smooth sequence of member indices, and where the next pick starts.
#[derive(Debug)]
pub struct SmoothWeighted {
    sequence: Vec<usize>,
    next: AtomicUsize,
}

/// Sequences longer than this are scaled down (weights are at most 100 each, so only very
/// large groups reach it).
const MAX_SEQUENCE: u64 = 1 << 16;

/// Member `index`'s `k`-th turn of `weight`: its slice of the cycle is `k/weight` to
/// `(k+1)/weight`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Turn {
    k: u64,
    weight: u64,
    index: usize,
}

/// `a/b` against `c/d`, exactly.
fn cmp_fractions(a: u64, b: u64, c: u64, d: u64) -> Ordering {
    (u128::from(a) * u128::from(d)).cmp(&(u128::from(c) * u128::from(b)))
}

/// Turns whose slice has not begun, soonest beginning first.
#[derive(Debug, PartialEq, Eq)]
struct ByStart(Turn);

impl Ord for ByStart {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.0, other.0);
        cmp_fractions(a.k, a.weight, b.k, b.weight).then(a.index.cmp(&b.index))
    }
}

impl PartialOrd for ByStart {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Turns whose slice has begun, soonest ending first.
#[derive(Debug, PartialEq, Eq)]
struct ByEnd(Turn);

impl Ord for ByEnd {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.0, other.0);
        cmp_fractions(a.k + 1, a.weight, b.k + 1, b.weight).then(a.index.cmp(&b.index))
    }
}

impl PartialOrd for ByEnd {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl SmoothWeighted {
    pub fn new(weights: &[u32]) -> SmoothWeighted {
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        let scale = total.div_ceil(MAX_SEQUENCE).max(1);
        let weights: Vec<u64> = weights
            .iter()
            .map(|w| (u64::from(*w) / scale).max(1))
            .collect();
        let total: u64 = weights.iter().sum();
        // Every first turn begins at 0.
        let mut begun: BinaryHeap<Reverse<ByEnd>> = weights
            .iter()
            .enumerate()
            .map(|(index, &weight)| {
                Reverse(ByEnd(Turn {
                    k: 0,
                    weight,
                    index,
                }))
            })
            .collect();
        let mut waiting: BinaryHeap<Reverse<ByStart>> = BinaryHeap::new();
        let mut sequence = Vec::with_capacity(total as usize);
        for place in 0..total {
            // The turns whose slice has begun by this place (`place / total` of the cycle).
            while let Some(Reverse(ByStart(turn))) = waiting.peek()
                && cmp_fractions(turn.k, turn.weight, place, total) != Ordering::Greater
            {
                begun.push(Reverse(ByEnd(*turn)));
                waiting.pop();
            }
            let turn = match begun.pop() {
                Some(Reverse(ByEnd(turn))) => turn,
                // Not reached (some slice always has begun), but a turn is never lost.
                None => match waiting.pop() {
                    Some(Reverse(ByStart(turn))) => turn,
                    None => break,
                },
            };
            sequence.push(turn.index);
            if turn.k + 1 < turn.weight {
                let next = Turn {
                    k: turn.k + 1,
                    ..turn
                };
                waiting.push(Reverse(ByStart(next)));
            }
        }
        SmoothWeighted {
            sequence,
            next: AtomicUsize::new(0),
        }
    }

    pub fn pick(&self, usable: impl Fn(usize) -> bool) -> Option<usize> {
        let len = self.sequence.len();
        if len == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Relaxed);
        for offset in 0..len {
            let index = self.sequence[(start + offset) % len];
            if usable(index) {
                if offset > 0 {
                    self.next.fetch_add(offset, Relaxed);
                }
                return Some(index);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_a_heavy_member_evenly() {
        let rr = SmoothWeighted::new(&[5, 1, 1]);
        assert_eq!(rr.sequence, vec![0, 1, 0, 0, 2, 0, 0]);
        let rr = SmoothWeighted::new(&[1, 1, 2]);
        assert_eq!(rr.sequence, vec![2, 0, 1, 2]);
        let rr = SmoothWeighted::new(&[3, 1]);
        assert_eq!(rr.sequence, vec![0, 1, 0, 0]);
    }

    #[test]
    fn equal_weights_take_turns_in_order() {
        let rr = SmoothWeighted::new(&[1; 5]);
        assert_eq!(rr.sequence, vec![0, 1, 2, 3, 4]);
        let rr = SmoothWeighted::new(&[3; 3]);
        assert_eq!(rr.sequence, vec![0, 1, 2, 0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn a_large_group_gets_every_member_its_share() {
        // 10,000 members of weight 1 and one of weight 100: quick to build, and exact.
        let mut weights = vec![1; 10_000];
        weights.push(100);
        let rr = SmoothWeighted::new(&weights);
        assert_eq!(rr.sequence.len(), 10_100);
        let heavy = rr.sequence.iter().filter(|&&i| i == 10_000).count();
        assert_eq!(heavy, 100);
        // Its turns are spread out: never two within 50 picks of each other.
        let turns: Vec<usize> = (0..rr.sequence.len())
            .filter(|&at| rr.sequence[at] == 10_000)
            .collect();
        assert!(
            turns.windows(2).all(|pair| pair[1] - pair[0] >= 50),
            "{turns:?}"
        );
    }

    #[test]
    fn keeps_weight_proportions() {
        let rr = SmoothWeighted::new(&[1, 1, 2]);
        let mut counts = [0; 3];
        for _ in 0..4000 {
            counts[rr.pick(|_| true).unwrap()] += 1;
        }
        assert_eq!(counts, [1000, 1000, 2000]);
    }

    #[test]
    fn skips_unusable_members() {
        let rr = SmoothWeighted::new(&[1, 1, 1]);
        for _ in 0..10 {
            assert_ne!(rr.pick(|index| index != 1), Some(1));
        }
        assert_eq!(rr.pick(|_| false), None);
    }
}
