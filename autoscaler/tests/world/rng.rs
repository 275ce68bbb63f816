//! A tiny seeded PRNG (SplitMix64): the whole world is a function of one `u64`.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Uniform in `[lo, hi]` seconds, to the millisecond.
    pub fn secs(&mut self, lo: f64, hi: f64) -> Duration {
        let lo = (lo * 1000.0) as u64;
        let hi = (hi * 1000.0) as u64;
        Duration::from_millis(self.range(lo, hi))
    }

    /// Exponentially distributed with the given mean, to the millisecond.
    pub fn exp(&mut self, mean: Duration) -> Duration {
        let u = 1.0 - self.unit();
        Duration::from_millis((-u.ln() * mean.as_millis() as f64) as u64)
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.next_u64() as usize % items.len()]
    }

    /// A normal deviate (Box-Muller), for the load walk.
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}
