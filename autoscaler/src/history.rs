//! The engine's shared record: a bounded history of every group's events (NITRO
//! `autoscaleevent`), per-kind counts (Prometheus), and each group's latest [`Status`]
//! (`stat/autoscalegroup`). Drivers write; the admin API and `/metrics` read.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::SystemTime;

use crate::core::Status;
use crate::event::{Event, EventKind};

/// How many events the history keeps (the oldest go first).
pub const HISTORY_CAPACITY: usize = 2000;

/// An event with its group and wall-clock time.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// Increases by one with each event, across groups.
    pub seq: u64,
    pub time: SystemTime,
    pub group: String,
    pub event: Event,
}

/// Everything the drivers publish.
#[derive(Debug, Default)]
pub struct History {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next_seq: u64,
    events: VecDeque<EventRecord>,
    counts: BTreeMap<(String, EventKind), u64>,
    groups: BTreeMap<String, GroupRecord>,
}

/// A group's latest status and the controls it is under.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRecord {
    pub status: Status,
    pub min_members: u32,
    pub max_members: u32,
}

impl History {
    pub fn new() -> History {
        History::default()
    }

    /// Records `event` of `group`; returns the record.
    pub fn record(&self, group: &str, event: Event) -> EventRecord {
        let mut inner = self.lock();
        inner.next_seq += 1;
        let record = EventRecord {
            seq: inner.next_seq,
            time: SystemTime::now(),
            group: group.to_string(),
            event,
        };
        *inner
            .counts
            .entry((group.to_string(), record.event.kind))
            .or_insert(0) += 1;
        if inner.events.len() == HISTORY_CAPACITY {
            inner.events.pop_front();
        }
        inner.events.push_back(record.clone());
        record
    }

    /// Events, oldest first, that `keep` accepts.
    pub fn events(&self, keep: impl Fn(&EventRecord) -> bool) -> Vec<EventRecord> {
        self.lock()
            .events
            .iter()
            .filter(|r| keep(r))
            .cloned()
            .collect()
    }

    /// Events recorded so far, by group and kind.
    pub fn counts(&self) -> BTreeMap<(String, EventKind), u64> {
        self.lock().counts.clone()
    }

    pub fn publish(&self, group: &str, record: GroupRecord) {
        self.lock().groups.insert(group.to_string(), record);
    }

    /// A group stopped (removed from the config): it has no status any more.
    pub fn forget(&self, group: &str) {
        self.lock().groups.remove(group);
    }

    pub fn group(&self, group: &str) -> Option<GroupRecord> {
        self.lock().groups.get(group).cloned()
    }

    pub fn groups(&self) -> BTreeMap<String, GroupRecord> {
        self.lock().groups.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the history half-written in a way
        // that matters to readers, so a poisoned lock is still used.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
