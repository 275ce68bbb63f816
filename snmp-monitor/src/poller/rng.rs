//! A small non-cryptographic generator for request ids, salts and start jitter, seeded from the
//! OS. Request ids only need to be hard to guess for an off-path sender.

#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub fn from_os() -> Self {
        let mut seed = [0u8; 8];
        // Without OS randomness, fall back to the address of a stack value mixed with a
        // constant: still unique per process, merely guessable.
        if getrandom::getrandom(&mut seed).is_err() {
            seed = (&seed as *const _ as u64 ^ 0x9e37_79b9_7f4a_7c15).to_le_bytes();
        }
        Self(u64::from_le_bytes(seed) | 1)
    }

    /// xorshift64*.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform enough in `0..bound` (`bound > 0`).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }
}
