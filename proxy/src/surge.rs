//! Surge queues: a servicegroup's `maxclient` (requests or connections each member takes at
//! once) and the bounded FIFO queue in which the rest wait for a member under its limit.
//!
//! One [`SurgeQueue`] per servicegroup name lives in the writer's runtime state, like member
//! state, so it survives reloads and every snapshot (old and new) shares it; a reload sets its
//! limits in place ([`SurgeQueue::configure`]), so a changed `maxclient` applies at once, to
//! waiting requests too.
//!
//! The fast path is one atomic compare-and-swap on the member's active count
//! ([`MemberState::try_begin`]); the queue's lock is taken only while something waits. A
//! request that finds every eligible member at its limit takes a place at the back of the
//! queue; each finished request or connection of the group ([`SurgeQueue::released`]) wakes
//! the one at the front, which takes the slot or goes back to the front. While anything waits,
//! newcomers queue behind it (first come, first served). Past `maxsurgequeue` or
//! `surgequeuetimeout` the request is refused with `503` on Ballast's side: it never counts
//! against a member.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::SurgeSettings;
use crate::http::error::ExchangeError;
use crate::lb::{Balancer, PickKey};
use crate::member::ActiveGuard;
use crate::snapshot::GroupPlan;

/// Why a request or connection left the surge queue without a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// `maxsurgequeue` were waiting already.
    Full,
    /// It waited `surgequeuetimeout`.
    Timeout,
}

impl Rejection {
    pub const ALL: [Rejection; 2] = [Rejection::Full, Rejection::Timeout];

    /// The `reason` label of `ballast_surge_queue_rejected_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Full => "full",
            Rejection::Timeout => "timeout",
        }
    }

    fn error(self) -> ExchangeError {
        match self {
            Rejection::Full => ExchangeError::SurgeQueueFull,
            Rejection::Timeout => ExchangeError::SurgeQueueTimeout,
        }
    }
}

/// One servicegroup's limit and waiting line.
#[derive(Debug)]
pub struct SurgeQueue {
    /// `maxclient`; 0: no limit.
    max_client: AtomicU32,
    max_queue: AtomicU32,
    timeout_ms: AtomicU64,
    /// Requests or connections waiting now (`surgecount`).
    depth: AtomicU64,
    /// The waiting line, front first. A waiter that was woken is off it until it puts itself
    /// back at the front.
    line: Mutex<VecDeque<Arc<Notify>>>,
    /// Refusals, by [`Rejection`] (`Full`, `Timeout`).
    rejected: [AtomicU64; 2],
}

/// What one look for a member found.
#[derive(Debug)]
pub enum Attempt<T> {
    /// A member under its limit, taken.
    Taken(T),
    /// Eligible members exist, all at their limit.
    Full,
    /// No member is eligible at all: waiting would not help.
    NoneEligible,
}

impl Default for SurgeQueue {
    fn default() -> SurgeQueue {
        let defaults = SurgeSettings::default();
        let queue = SurgeQueue {
            max_client: AtomicU32::new(0),
            max_queue: AtomicU32::new(0),
            timeout_ms: AtomicU64::new(0),
            depth: AtomicU64::new(0),
            line: Mutex::new(VecDeque::new()),
            rejected: Default::default(),
        };
        queue.configure(&defaults);
        queue
    }
}

impl SurgeQueue {
    /// Sets the limits a (re)loaded config gives, and lets the front of the line look again
    /// (a higher `maxclient` may have room for it now).
    pub fn configure(&self, settings: &SurgeSettings) {
        self.max_client
            .store(settings.max_client.unwrap_or(0), SeqCst);
        self.max_queue.store(settings.max_queue, Relaxed);
        let timeout_ms = settings.queue_timeout.as_millis().min(u128::from(u64::MAX)) as u64;
        self.timeout_ms.store(timeout_ms, Relaxed);
        self.wake_front();
    }

    /// `maxclient`: each member's limit, `None` for none.
    pub fn max_client(&self) -> Option<u32> {
        Some(self.max_client.load(SeqCst)).filter(|max| *max != 0)
    }

    /// Requests or connections waiting now (NetScaler's `surgecount`).
    pub fn depth(&self) -> u64 {
        self.depth.load(Relaxed)
    }

    /// Refused so far for `reason`.
    pub fn rejected(&self, reason: Rejection) -> u64 {
        self.rejected[reason as usize].load(Relaxed)
    }

    /// A member of the group finished a request or connection: the front of the line may
    /// take its slot.
    pub fn released(&self) {
        if self.depth.load(SeqCst) > 0 {
            self.wake_front();
        }
    }

    fn wake_front(&self) {
        let front = self.lock().pop_front();
        if let Some(waiter) = front {
            waiter.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Notify>>> {
        // Nothing panics while holding it; a poisoned line is still a valid line.
        self.line
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `attempt` (which looks for a member under `maxclient` and takes it) at once, or,
    /// when every eligible member is at its limit, from a place in the line each time a slot
    /// frees, until it takes one, the line is full, or the wait times out.
    pub async fn acquire<T>(
        &self,
        mut attempt: impl FnMut(Option<u32>) -> Attempt<T>,
    ) -> Result<T, AcquireError> {
        if self.depth.load(SeqCst) == 0 {
            match attempt(self.max_client()) {
                Attempt::Taken(taken) => return Ok(taken),
                Attempt::NoneEligible => return Err(AcquireError::NoneEligible),
                Attempt::Full => {}
            }
        }
        let place = {
            let mut line = self.lock();
            if self.depth.load(SeqCst) >= u64::from(self.max_queue.load(Relaxed)) {
                drop(line);
                self.rejected[Rejection::Full as usize].fetch_add(1, Relaxed);
                return Err(AcquireError::Rejected(Rejection::Full));
            }
            let waiter = Arc::new(Notify::new());
            line.push_back(waiter.clone());
            self.depth.fetch_add(1, SeqCst);
            Place {
                queue: self,
                waiter,
            }
        };
        let deadline = Instant::now() + Duration::from_millis(self.timeout_ms.load(Relaxed));
        loop {
            match attempt(self.max_client()) {
                Attempt::Taken(taken) => {
                    drop(place);
                    // There may be room for the next one too (a reload raised maxclient).
                    self.released();
                    return Ok(taken);
                }
                Attempt::NoneEligible => return Err(AcquireError::NoneEligible),
                Attempt::Full => {}
            }
            let woken = tokio::time::timeout_at(deadline, place.waiter.notified()).await;
            if woken.is_err() {
                drop(place);
                self.rejected[Rejection::Timeout as usize].fetch_add(1, Relaxed);
                return Err(AcquireError::Rejected(Rejection::Timeout));
            }
            // Woken: off the line; back to its front while it looks.
            place.back_to_front();
        }
    }
}

/// Why [`SurgeQueue::acquire`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcquireError {
    NoneEligible,
    Rejected(Rejection),
}

impl AcquireError {
    /// What the client gets.
    pub fn exchange_error(self) -> ExchangeError {
        match self {
            AcquireError::NoneEligible => ExchangeError::NoMemberAvailable,
            AcquireError::Rejected(rejection) => rejection.error(),
        }
    }
}

/// A place in the line; leaving it (taken, refused, or the request dropped while it waited)
/// takes it off the line, and hands a wake-up it got but did not use to the next in line.
struct Place<'a> {
    queue: &'a SurgeQueue,
    waiter: Arc<Notify>,
}

impl Place<'_> {
    fn back_to_front(&self) {
        let mut line = self.queue.lock();
        if !line.iter().any(|w| Arc::ptr_eq(w, &self.waiter)) {
            line.push_front(self.waiter.clone());
        }
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let mut line = self.queue.lock();
        let position = line.iter().position(|w| Arc::ptr_eq(w, &self.waiter));
        let woken = match position {
            Some(position) => {
                line.remove(position);
                false
            }
            None => true,
        };
        self.queue.depth.fetch_sub(1, SeqCst);
        drop(line);
        if woken {
            // It was woken for a slot it did not take: the next one may.
            self.queue.released();
        }
    }
}

/// Picks a member of `group` with `balancer` that is eligible, not in `tried` and under the
/// group's `maxclient`, and counts the request or connection on it; waits in the group's surge
/// queue when every such member is at its limit.
pub async fn admit(
    balancer: &Balancer,
    group: &GroupPlan,
    key: PickKey<'_>,
    tried: &[usize],
) -> Result<(usize, ActiveGuard), ExchangeError> {
    let members = &group.members;
    let eligible = |index: usize| members[index].is_eligible() && !tried.contains(&index);
    group
        .surge
        .acquire(|max| {
            // Pairs with the SeqCst release of a slot: the loads below see every slot freed
            // before this waiter took its place in the line.
            std::sync::atomic::fence(SeqCst);
            let room =
                |index: usize| max.is_none_or(|max| members[index].active() < u64::from(max));
            for _ in 0..members.len().max(1) {
                let picked =
                    balancer.pick_where(members, &group.weights, key, |i| eligible(i) && room(i));
                let Some(index) = picked else { break };
                if let Some(guard) = members[index].try_begin(max) {
                    return Attempt::Taken((index, guard));
                }
                // Another request took its last slot in between: look again.
            }
            if (0..members.len()).any(eligible) {
                Attempt::Full
            } else {
                Attempt::NoneEligible
            }
        })
        .await
        .map_err(AcquireError::exchange_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(max_client: u32, max_queue: u32, timeout: Duration) -> SurgeSettings {
        SurgeSettings {
            max_client: Some(max_client),
            max_queue,
            queue_timeout: timeout,
        }
    }

    /// A counter standing in for a member: `acquire` takes one of `max` slots.
    fn take(slots: &AtomicU64) -> impl FnMut(Option<u32>) -> Attempt<()> + '_ {
        move |max| {
            let max = u64::from(max.unwrap_or(u32::MAX));
            match slots.fetch_update(SeqCst, SeqCst, |n| (n < max).then_some(n + 1)) {
                Ok(_) => Attempt::Taken(()),
                Err(_) => Attempt::Full,
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_take_freed_slots_first_come_first_served() {
        let queue = Arc::new(SurgeQueue::default());
        queue.configure(&settings(1, 10, Duration::from_secs(5)));
        let slots = Arc::new(AtomicU64::new(0));
        queue.acquire(take(&slots)).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for n in 0..3 {
            let (queue, slots, order) = (queue.clone(), slots.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                queue.acquire(take(&slots)).await.unwrap();
                order.lock().unwrap().push(n);
            }));
            tokio::task::yield_now().await;
        }
        assert_eq!(queue.depth(), 3);
        for served in 1..=3 {
            slots.fetch_sub(1, SeqCst);
            queue.released();
            tokio::time::sleep(Duration::from_millis(1)).await;
            assert_eq!(order.lock().unwrap().len(), served);
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2]);
        assert_eq!(queue.depth(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_line_refuses_at_once_and_a_long_wait_times_out() {
        let queue = Arc::new(SurgeQueue::default());
        queue.configure(&settings(1, 1, Duration::from_millis(300)));
        let slots = Arc::new(AtomicU64::new(1));
        let waiting = {
            let (queue, slots) = (queue.clone(), slots.clone());
            tokio::spawn(async move { queue.acquire(take(&slots)).await })
        };
        tokio::task::yield_now().await;
        assert_eq!(queue.depth(), 1);
        let refused = queue.acquire(take(&slots)).await;
        assert_eq!(refused, Err(AcquireError::Rejected(Rejection::Full)));
        let started = Instant::now();
        assert_eq!(
            waiting.await.unwrap(),
            Err(AcquireError::Rejected(Rejection::Timeout))
        );
        assert_eq!(started.elapsed(), Duration::from_millis(300));
        assert_eq!(queue.depth(), 0);
        assert_eq!(queue.rejected(Rejection::Full), 1);
        assert_eq!(queue.rejected(Rejection::Timeout), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_higher_maxclient_lets_waiters_in_without_a_release() {
        let queue = Arc::new(SurgeQueue::default());
        queue.configure(&settings(1, 10, Duration::from_secs(5)));
        let slots = Arc::new(AtomicU64::new(1));
        let mut tasks = Vec::new();
        for _ in 0..2 {
            let (queue, slots) = (queue.clone(), slots.clone());
            tasks.push(tokio::spawn(
                async move { queue.acquire(take(&slots)).await },
            ));
        }
        tokio::task::yield_now().await;
        assert_eq!(queue.depth(), 2);
        queue.configure(&settings(3, 10, Duration::from_secs(5)));
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(()));
        }
        assert_eq!(slots.load(SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_waiter_leaves_the_line_and_passes_its_wake_up_on() {
        let queue = Arc::new(SurgeQueue::default());
        queue.configure(&settings(1, 10, Duration::from_secs(5)));
        let slots = Arc::new(AtomicU64::new(1));
        let first = {
            let (queue, slots) = (queue.clone(), slots.clone());
            tokio::spawn(async move { queue.acquire(take(&slots)).await })
        };
        tokio::task::yield_now().await;
        let second = {
            let (queue, slots) = (queue.clone(), slots.clone());
            tokio::spawn(async move { queue.acquire(take(&slots)).await })
        };
        tokio::task::yield_now().await;
        assert_eq!(queue.depth(), 2);
        // The slot frees and the first is woken, but its client went away before it ran.
        slots.fetch_sub(1, SeqCst);
        queue.released();
        first.abort();
        assert!(first.await.unwrap_err().is_cancelled());
        assert_eq!(second.await.unwrap(), Ok(()));
        assert_eq!(queue.depth(), 0);
    }
}
