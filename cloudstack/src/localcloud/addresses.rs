//! VM addresses from the configured range. Allocation walks forward from the last address
//! handed out, so a freed address is reused as late as possible (a proxy that still has the
//! old VM as a member does not suddenly reach a new one).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use super::config::AddressRange;

#[derive(Debug)]
pub struct AddressPool {
    first: u32,
    last: u32,
    next: u32,
    used: BTreeSet<u32>,
}

impl AddressPool {
    pub fn new(range: AddressRange) -> Self {
        let (first, last) = range.usable();
        Self {
            first,
            last,
            next: first,
            used: BTreeSet::new(),
        }
    }

    /// A free address, or `None` when the range is full.
    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        let size = self.last - self.first + 1;
        for _ in 0..size {
            let candidate = self.next;
            self.next = if self.next >= self.last {
                self.first
            } else {
                self.next + 1
            };
            if self.used.insert(candidate) {
                return Some(Ipv4Addr::from(candidate));
            }
        }
        None
    }

    pub fn release(&mut self, address: Ipv4Addr) {
        self.used.remove(&u32::from(address));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_forward_and_reuses_late() {
        let range = AddressRange::parse("127.77.0.0/30").expect("valid"); // two usable
        let mut pool = AddressPool::new(range);
        let a = pool.allocate().expect("free");
        let b = pool.allocate().expect("free");
        assert_eq!(
            (a, b),
            (Ipv4Addr::new(127, 77, 0, 1), Ipv4Addr::new(127, 77, 0, 2))
        );
        assert_eq!(pool.allocate(), None);
        pool.release(a);
        assert_eq!(pool.allocate(), Some(a));
    }
}
