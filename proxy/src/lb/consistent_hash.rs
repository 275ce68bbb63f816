//! `SOURCEIPHASH` and `URLHASH`: consistent hashing on a ring of virtual nodes.
//!
//! Each member owns `weight × 160` points on a 64-bit ring; a key belongs to the first point at
//! or after its hash. Removing one of N members moves only the keys it owned (about 1/N), and a
//! member that is not eligible is skipped by walking on to the next point, so its keys spread
//! over the others and come back when it does.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::member::MemberState;

const POINTS_PER_WEIGHT: u32 = 160;

/// The ring: sorted `(point, member index)`.
#[derive(Debug)]
pub struct HashRing {
    points: Vec<(u64, usize)>,
}

impl HashRing {
    pub fn new(members: &[Arc<MemberState>], weights: &[u32]) -> HashRing {
        let mut points = Vec::new();
        for (index, (member, weight)) in members.iter().zip(weights).enumerate() {
            for replica in 0..weight * POINTS_PER_WEIGHT {
                points.push((hash(&(member.key.addr, replica)), index));
            }
        }
        points.sort_unstable();
        HashRing { points }
    }

    pub fn pick(&self, key: &impl Hash, usable: impl Fn(usize) -> bool) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let start = self.points.partition_point(|(point, _)| *point < hash(key));
        let len = self.points.len();
        (0..len)
            .map(|offset| self.points[(start + offset) % len].1)
            .find(|index| usable(*index))
    }
}

/// A stable 64-bit hash (SipHash with fixed keys).
fn hash(value: &impl Hash) -> u64 {
    #[allow(deprecated)]
    let mut hasher = std::hash::SipHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::MemberKey;

    fn members(n: usize) -> Vec<Arc<MemberState>> {
        (0..n)
            .map(|i| {
                MemberState::new(
                    MemberKey {
                        group: "g".into(),
                        addr: format!("127.0.0.{}:80", i + 1).parse().unwrap(),
                    },
                    0,
                )
            })
            .collect()
    }

    #[test]
    fn removing_one_of_four_moves_about_a_quarter() {
        let all = members(4);
        let before = HashRing::new(&all, &[1; 4]);
        let after = HashRing::new(&all[..3], &[1; 3]);
        let urls: Vec<String> = (0..1000).map(|i| format!("/item/{i}")).collect();
        let moved = urls
            .iter()
            .filter(|url| before.pick(url, |_| true) != after.pick(url, |_| true))
            .count();
        assert!(moved < 350, "{moved} of 1000 keys moved");
        // Only the removed member's keys move.
        for url in &urls {
            let was = before.pick(url, |_| true).unwrap();
            if was != 3 {
                assert_eq!(after.pick(url, |_| true), Some(was));
            }
        }
    }

    #[test]
    fn skips_ineligible_members() {
        let ring = HashRing::new(&members(3), &[1; 3]);
        for i in 0..100 {
            assert_ne!(ring.pick(&i, |index| index != 0), Some(0));
        }
    }
}
