//! The `SOURCEIP` persistence table of one vserver: masked client address → member, each entry
//! ending `timeout` after its last use.
//!
//! It is runtime state (kept in the vserver's [`crate::stats::VserverStats`], so it survives
//! every snapshot swap and reload) and names members by [`MemberKey`] (servicegroup and
//! `ip:port`), which a reload does not change. It is sharded (a few mutexes, each held for one
//! hash-map operation) and bounded: at [`MAX_ENTRIES`] a new entry evicts the entry closest to
//! expiry among a few (in constant time, so a flood of new sources costs no scans). Expired
//! entries are swept every few seconds by [`super::sweep`], and whenever the table is listed.

use std::collections::HashMap;
use std::collections::hash_map::{DefaultHasher, Entry as MapEntry};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::time::Instant;

use crate::member::MemberKey;

/// Entries at most, over all shards (about 100 bytes each).
pub const MAX_ENTRIES: usize = 1 << 20;

const SHARDS: usize = 16;

/// How many entries an eviction looks at to find the one closest to expiry.
const EVICTION_SAMPLE: usize = 8;

#[derive(Debug, Clone)]
struct Entry {
    member: MemberKey,
    expires: Instant,
}

/// One live entry, as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The masked client address.
    pub source: IpAddr,
    pub member: MemberKey,
    /// Until the entry ends, unless it is used again.
    pub remaining: Duration,
}

/// A vserver's `SOURCEIP` entries.
#[derive(Debug)]
pub struct SessionTable {
    shards: Box<[Mutex<HashMap<IpAddr, Entry>>]>,
    /// Entries in the table (expired ones count until they are swept).
    len: AtomicU64,
    cap_per_shard: usize,
}

impl Default for SessionTable {
    fn default() -> SessionTable {
        SessionTable::with_capacity(MAX_ENTRIES)
    }
}

impl SessionTable {
    pub fn with_capacity(max_entries: usize) -> SessionTable {
        SessionTable {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            len: AtomicU64::new(0),
            cap_per_shard: max_entries.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, source: &IpAddr) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Entry>> {
        let mut hasher = DefaultHasher::new();
        source.hash(&mut hasher);
        let index = hasher.finish() as usize % SHARDS;
        // A panic while holding a shard cannot leave a map half-changed (each operation is
        // one map call), so a poisoned shard is still good.
        self.shards[index]
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The member of `source` if its entry has not expired; using it restarts its `timeout`.
    pub fn get(&self, source: IpAddr, now: Instant, timeout: Duration) -> Option<MemberKey> {
        let mut shard = self.shard(&source);
        let entry = shard.get_mut(&source)?;
        if entry.expires <= now {
            shard.remove(&source);
            self.len.fetch_sub(1, Relaxed);
            return None;
        }
        entry.expires = now + timeout;
        Some(entry.member.clone())
    }

    /// Sends `source` to `member` from now on, for `timeout` after its last use.
    pub fn insert(&self, source: IpAddr, member: MemberKey, now: Instant, timeout: Duration) {
        let mut shard = self.shard(&source);
        let expires = now + timeout;
        if !shard.contains_key(&source) && shard.len() >= self.cap_per_shard {
            // O(1), so a flood of new sources at the cap costs no scan: the entry closest to
            // its end among a few (an expired one if there is one); the sweep removes the
            // other expired ones.
            let victim = shard
                .iter()
                .take(EVICTION_SAMPLE)
                .min_by_key(|(_, entry)| entry.expires)
                .map(|(source, _)| *source);
            if let Some(victim) = victim {
                shard.remove(&victim);
                self.len.fetch_sub(1, Relaxed);
            }
        }
        match shard.entry(source) {
            MapEntry::Occupied(mut occupied) => {
                *occupied.get_mut() = Entry { member, expires };
            }
            MapEntry::Vacant(vacant) => {
                vacant.insert(Entry { member, expires });
                self.len.fetch_add(1, Relaxed);
            }
        }
    }

    /// Removes expired entries; returns how many are left.
    pub fn sweep(&self, now: Instant) -> u64 {
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|poison| poison.into_inner());
            let before = shard.len();
            shard.retain(|_, entry| entry.expires > now);
            self.len.fetch_sub((before - shard.len()) as u64, Relaxed);
        }
        self.len()
    }

    /// Entries in the table, expired ones not swept yet included.
    pub fn len(&self) -> u64 {
        self.len.load(Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every live entry.
    pub fn list(&self, now: Instant) -> Vec<Session> {
        self.sweep(now);
        let mut sessions = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|poison| poison.into_inner());
            sessions.extend(shard.iter().map(|(source, entry)| Session {
                source: *source,
                member: entry.member.clone(),
                remaining: entry.expires.saturating_duration_since(now),
            }));
        }
        sessions.sort_by_key(|s| s.source);
        sessions
    }

    /// Live entries that send clients to `member`.
    pub fn count_for(&self, member: &MemberKey, now: Instant) -> u64 {
        let mut count = 0;
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|poison| poison.into_inner());
            count += shard
                .values()
                .filter(|e| e.expires > now && e.member == *member)
                .count() as u64;
        }
        count
    }

    /// Removes every entry; returns how many there were.
    pub fn clear(&self) -> u64 {
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|poison| poison.into_inner());
            removed += shard.len() as u64;
            shard.clear();
        }
        self.len.fetch_sub(removed, Relaxed);
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16) -> MemberKey {
        MemberKey {
            group: "g".into(),
            addr: ([127, 0, 0, 1], port).into(),
        }
    }

    fn ip(last: u8) -> IpAddr {
        [10, 0, 0, last].into()
    }

    #[tokio::test(start_paused = true)]
    async fn an_entry_lives_timeout_after_its_last_use() {
        let table = SessionTable::default();
        let timeout = Duration::from_secs(10);
        table.insert(ip(1), key(1), Instant::now(), timeout);
        tokio::time::advance(Duration::from_secs(8)).await;
        assert_eq!(table.get(ip(1), Instant::now(), timeout), Some(key(1)));
        tokio::time::advance(Duration::from_secs(8)).await;
        assert_eq!(table.get(ip(1), Instant::now(), timeout), Some(key(1)));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(table.get(ip(1), Instant::now(), timeout), None);
        assert!(table.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn sweeping_and_listing_drop_expired_entries() {
        let table = SessionTable::default();
        let now = Instant::now();
        table.insert(ip(1), key(1), now, Duration::from_secs(1));
        table.insert(ip(2), key(2), now, Duration::from_secs(60));
        assert_eq!(table.len(), 2);
        assert_eq!(table.count_for(&key(2), now), 1);
        let later = now + Duration::from_secs(5);
        let listed = table.list(later);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].source, ip(2));
        assert_eq!(listed[0].remaining, Duration::from_secs(55));
        assert_eq!(table.len(), 1);
        assert_eq!(table.clear(), 1);
        assert!(table.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_table_stays_within_its_bound() {
        let table = SessionTable::with_capacity(SHARDS * 4);
        let now = Instant::now();
        for i in 0..=255u8 {
            for j in 0..4u8 {
                let source = IpAddr::from([10, j, 0, i]);
                table.insert(source, key(1), now, Duration::from_secs(60));
            }
        }
        assert!(table.len() <= (SHARDS * 4) as u64, "{}", table.len());
        assert_eq!(table.list(now).len() as u64, table.len());
    }
}
