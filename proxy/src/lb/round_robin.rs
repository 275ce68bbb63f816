//! `ROUNDROBIN`: smooth weighted round robin.
//!
//! nginx's algorithm (each step, every member gains its weight; the largest is picked and loses
//! the total) spreads a heavy member's turns out evenly: weights 5/1/1 give a a b a c a a, not
//! a a a a a b c. The sequence is computed once per snapshot, so picking is one atomic
//! increment; ineligible members are skipped, which keeps the others' proportions.

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

impl SmoothWeighted {
    pub fn new(weights: &[u32]) -> SmoothWeighted {
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        let scale = total.div_ceil(MAX_SEQUENCE).max(1);
        let weights: Vec<i64> = weights
            .iter()
            .map(|w| (u64::from(*w) / scale).max(1) as i64)
            .collect();
        let total: i64 = weights.iter().sum();
        let mut current = vec![0i64; weights.len()];
        let mut sequence = Vec::with_capacity(total as usize);
        for _ in 0..total {
            for (c, w) in current.iter_mut().zip(&weights) {
                *c += w;
            }
            let (best, _) = current
                .iter()
                .enumerate()
                .max_by_key(|(index, c)| (**c, std::cmp::Reverse(*index)))
                .expect("total > 0 means at least one member");
            current[best] -= total;
            sequence.push(best);
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
        assert_eq!(rr.sequence, vec![0, 0, 1, 0, 2, 0, 0]);
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
