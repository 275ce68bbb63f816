//! A small non-cryptographic generator for request ids, salts and start jitter, seeded from the
//! OS. Request ids only need to be hard to guess for an off-path sender, and AES salts only
//! need to differ from one message to the next (RFC 3826 §3.1.2.1).

#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    /// Seeded by the OS (`getrandom`). Without OS randomness there is no poller: a guessable
    /// seed would make request ids guessable.
    pub fn from_os() -> Result<Self, getrandom::Error> {
        let mut seed = [0u8; 8];
        getrandom::getrandom(&mut seed)?;
        Ok(Self(u64::from_le_bytes(seed) | 1))
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
