//! Open client connections per source address, for a vserver's `maxclientpersource`.
//!
//! Only vservers with that limit use the table (one short lock per connection opened and
//! closed); an address leaves it when its last connection closes, so it never grows beyond the
//! addresses connected now.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Connections per client address on one vserver.
#[derive(Debug, Default)]
pub struct SourceCounts {
    open: Mutex<HashMap<IpAddr, u32>>,
}

impl SourceCounts {
    /// Counts one more connection from `source` unless it already has `max`.
    pub fn try_open(self: &Arc<Self>, source: IpAddr, max: u32) -> Option<SourceConnection> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(source).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(SourceConnection {
            counts: self.clone(),
            source,
        })
    }

    /// Connections open now from `source`.
    pub fn open_from(&self, source: IpAddr) -> u32 {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&source).copied().unwrap_or(0)
    }

    fn close(&self, source: IpAddr) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&source) {
            *count -= 1;
            if *count == 0 {
                open.remove(&source);
            }
        }
    }
}

/// One counted connection; dropping it uncounts it.
#[derive(Debug)]
pub struct SourceConnection {
    counts: Arc<SourceCounts>,
    source: IpAddr,
}

impl Drop for SourceConnection {
    fn drop(&mut self) {
        self.counts.close(self.source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_at_its_limit_is_refused_until_one_of_its_connections_closes() {
        let counts = Arc::new(SourceCounts::default());
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let first = counts.try_open(a, 2).unwrap();
        let _second = counts.try_open(a, 2).unwrap();
        assert!(counts.try_open(a, 2).is_none());
        assert!(counts.try_open(b, 2).is_some());
        drop(first);
        assert_eq!(counts.open_from(a), 1);
        assert!(counts.try_open(a, 2).is_some());
    }
}
