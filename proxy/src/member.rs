//! Per-member runtime state: health, drain, connection counts, response time and load.
//!
//! This lives outside the config snapshot, keyed by a stable [`MemberKey`], so it survives
//! every snapshot swap: the writer hands the same `Arc<MemberState>` to each new snapshot for as
//! long as the member stays bound. Everything here is atomics; the data plane never locks.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed, Ordering::SeqCst,
};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::http::pool::Pool;
use crate::surge::SurgeQueue;

/// A member is one `ip:port` bound to one servicegroup.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MemberKey {
    pub group: Arc<str>,
    pub addr: SocketAddr,
}

/// The state an operator sees, with NetScaler's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatus {
    Up,
    Down,
    OutOfService,
    GoingOutOfService,
    /// UP, but over an active LOAD monitor's threshold: kept, gets no new traffic.
    Busy,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Up => "UP",
            MemberStatus::Down => "DOWN",
            MemberStatus::OutOfService => "OUT OF SERVICE",
            MemberStatus::GoingOutOfService => "GOING OUT OF SERVICE",
            MemberStatus::Busy => "BUSY",
        }
    }
}

impl fmt::Display for MemberStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Runtime state of one member.
#[derive(Debug)]
pub struct MemberState {
    pub key: MemberKey,
    /// `ip:port`, the label used in logs and metrics.
    pub label: Arc<str>,
    /// How many bound monitors currently say DOWN.
    monitors_down: AtomicU32,
    /// Real connects failed `retries` times in a row.
    passive_down: AtomicBool,
    /// Disabled by config or the API, or unbound: takes no new traffic, finishes what it has.
    draining: AtomicBool,
    /// Over an active LOAD monitor's threshold: kept, but takes no new traffic.
    busy: AtomicBool,
    /// While draining, persistent clients still come until then (ms since `epoch`; 0: none).
    persist_until: AtomicU64,
    /// The persistence grace (ms) the next drain gets: a disable's `delay`, the autoscaler's
    /// `quiettime`.
    next_drain_grace: AtomicU64,
    /// In-flight requests (HTTP) or open connections (TCP).
    active: AtomicU64,
    /// The last status that was logged, so every change is logged exactly once
    /// ([`NOT_PROBED`] until a monitor first decided about a new member).
    reported: AtomicU8,
    /// Why the latest failed probe or connect failed, for `stat` (never cleared: it stays the
    /// *last* failure).
    last_failure: ArcSwapOption<String>,
    connect_failures_in_row: AtomicU32,
    /// When passive detection marked the member DOWN (ms since `epoch`).
    passive_down_at: AtomicU64,
    epoch: Instant,
    /// Response-time EWMA in microseconds (0: no sample yet).
    response_time_us: AtomicU64,
    /// Load reported by an SNMP LOAD monitor, in thousandths; `u32::MAX` when none was reported.
    load: AtomicU32,
    /// The metric values of the latest good LOAD poll.
    metrics: ArcSwapOption<MetricValues>,
    pub counters: MemberCounters,
    /// Keep-alive connections to this member (HTTP servicegroups).
    pub pool: Pool,
    /// Its servicegroup's surge queue, woken whenever a request or connection here ends.
    surge: OnceLock<Arc<SurgeQueue>>,
    /// `true` once a drain's time is up: the member's upgraded connections (WebSocket tunnels)
    /// close. Back to `false` when the member is enabled again.
    tunnels_cut: watch::Sender<bool>,
    /// Counts drains begun, so a drain's `delay` timer never cuts a later drain short.
    drains: AtomicU64,
}

/// Metric name → value, as a LOAD monitor read them.
pub type MetricValues = Vec<(Arc<str>, f64)>;

/// Lock-free counters, read by stats and metrics.
#[derive(Debug, Default)]
pub struct MemberCounters {
    pub requests: AtomicU64,
    pub responses: AtomicU64,
    pub connect_failures: AtomicU64,
    /// TLS handshakes with the member that failed (`SSL`/`SSL_TCP` groups); each is a connect
    /// failure too.
    pub tls_handshake_failures: AtomicU64,
    /// Requests the member failed after they were sent: it closed the connection or broke
    /// the protocol before its response head, or sent none within `svrtimeout`.
    pub errors: AtomicU64,
    /// Bytes of requests (or client-to-member bytes for TCP) sent to the member.
    pub request_bytes: AtomicU64,
    /// Bytes of responses (or member-to-client bytes for TCP) received from the member.
    pub response_bytes: AtomicU64,
}

/// How long a member marked DOWN by passive detection stays DOWN when no monitor is bound.
pub const PASSIVE_DOWNTIME: Duration = Duration::from_secs(5);

/// `reported` of a new member that its monitors have not probed yet: its first verdict, UP or
/// DOWN, is logged as a change `from="UNKNOWN"`.
const NOT_PROBED: u8 = u8::MAX;

const STATUSES: [MemberStatus; 5] = [
    MemberStatus::Up,
    MemberStatus::Down,
    MemberStatus::OutOfService,
    MemberStatus::GoingOutOfService,
    MemberStatus::Busy,
];

impl MemberState {
    /// A new member; `monitors_down` monitors start out saying DOWN until their first probe.
    pub fn new(key: MemberKey, monitors_down: u32) -> Arc<MemberState> {
        let label: Arc<str> = key.addr.to_string().into();
        let member = MemberState {
            label,
            monitors_down: AtomicU32::new(monitors_down),
            passive_down: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            busy: AtomicBool::new(false),
            persist_until: AtomicU64::new(0),
            next_drain_grace: AtomicU64::new(0),
            active: AtomicU64::new(0),
            reported: AtomicU8::new(NOT_PROBED),
            last_failure: ArcSwapOption::empty(),
            connect_failures_in_row: AtomicU32::new(0),
            passive_down_at: AtomicU64::new(0),
            epoch: Instant::now(),
            response_time_us: AtomicU64::new(0),
            load: AtomicU32::new(u32::MAX),
            metrics: ArcSwapOption::empty(),
            counters: MemberCounters::default(),
            pool: Pool::new(key.addr),
            surge: OnceLock::new(),
            tunnels_cut: watch::Sender::new(false),
            drains: AtomicU64::new(0),
            key,
        };
        if monitors_down == 0 {
            member.reported.store(member.status() as u8, Relaxed);
        }
        Arc::new(member)
    }

    /// UP, enabled, not draining and not busy: may take new traffic.
    #[inline]
    pub fn is_eligible(&self) -> bool {
        self.is_up() && !self.draining.load(Relaxed) && !self.busy.load(Relaxed)
    }

    #[inline]
    fn is_up(&self) -> bool {
        self.monitors_down.load(Relaxed) == 0 && !self.passive_down.load(Relaxed)
    }

    /// May take a client that persists to it (`SOURCEIP` entry, `COOKIEINSERT` cookie): UP
    /// (busy or not), and enabled or draining within its persistence grace.
    #[inline]
    pub fn accepts_persistent(&self) -> bool {
        self.is_up() && (!self.draining.load(Relaxed) || self.in_drain_grace())
    }

    /// Draining, and its persistent clients may still come (a disable's `delay`).
    fn in_drain_grace(&self) -> bool {
        let until = self.persist_until.load(Relaxed);
        until != 0 && (self.epoch.elapsed().as_millis() as u64) < until
    }

    /// The next drain keeps this member's persistent clients for `grace` (NetScaler's
    /// `disable servicegroup ... -delay`): call before the edit that disables it.
    pub fn set_next_drain_grace(&self, grace: Duration) {
        let millis = grace.as_millis().min(u128::from(u64::MAX / 2)) as u64;
        self.next_drain_grace.store(millis, Relaxed);
    }

    /// How long the current drain still keeps persistent clients (zero when it does not).
    pub fn drain_grace_left(&self) -> Duration {
        let until = self.persist_until.load(Relaxed);
        let now = self.epoch.elapsed().as_millis() as u64;
        if !self.draining.load(Relaxed) || until <= now {
            return Duration::ZERO;
        }
        Duration::from_millis(until - now)
    }

    /// Logs the state change a drain's persistence grace ending makes (GOING OUT OF SERVICE to
    /// OUT OF SERVICE when nothing is in flight); a no-op if nothing changed.
    pub fn drain_grace_ended(&self) {
        self.report("drain delay over");
    }

    pub fn status(&self) -> MemberStatus {
        if self.draining.load(Relaxed) {
            if self.active.load(Relaxed) > 0 || self.in_drain_grace() {
                MemberStatus::GoingOutOfService
            } else {
                MemberStatus::OutOfService
            }
        } else if !self.is_up() {
            MemberStatus::Down
        } else if self.busy.load(Relaxed) {
            MemberStatus::Busy
        } else {
            MemberStatus::Up
        }
    }

    pub fn active(&self) -> u64 {
        self.active.load(Relaxed)
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Relaxed)
    }

    /// Starts (or ends) a drain. Idle pooled connections are closed at once; busy ones close
    /// after their current response.
    pub fn set_draining(&self, draining: bool, reason: &str) {
        if self.draining.swap(draining, Relaxed) != draining {
            if draining {
                self.drains.fetch_add(1, Relaxed);
                self.pool.close();
                let grace = self.next_drain_grace.swap(0, Relaxed);
                let until = if grace == 0 {
                    0
                } else {
                    self.epoch.elapsed().as_millis() as u64 + grace
                };
                self.persist_until.store(until, Relaxed);
            } else {
                self.persist_until.store(0, Relaxed);
                self.tunnels_cut.send_replace(false);
                self.pool.reopen();
            }
            self.report(reason);
        }
    }

    /// Tells the member's upgraded connections (WebSocket tunnels) to close: its drain's time
    /// is up. Does nothing unless the member is draining.
    pub fn cut_tunnels(&self, reason: &str) {
        if self.is_draining() && !self.tunnels_cut.send_replace(true) {
            tracing::info!(servicegroup = %self.key.group, member = %self.label, reason, "closing the member's upgraded connections");
        }
    }

    /// Cuts the tunnels `delay` from now, if the drain that is on now still is then (the
    /// NITRO `disable` action's `delay`).
    pub fn cut_tunnels_after(self: &Arc<Self>, delay: Duration) {
        let member = self.clone();
        let drain = self.drains.load(Relaxed);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if member.drains.load(Relaxed) == drain {
                member.cut_tunnels(&format!("drain delay of {delay:?} is over"));
            }
        });
    }

    /// Resolves once the member's tunnels must close (at once if they already must).
    pub fn tunnels_cut(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut cut = self.tunnels_cut.subscribe();
        async move {
            // An error means the member is gone: nothing will cut the tunnel any more.
            if cut.wait_for(|cut| *cut).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Marks the member busy (over a LOAD threshold) or not.
    pub fn set_busy(&self, busy: bool, reason: &str) {
        if self.busy.swap(busy, Relaxed) != busy {
            self.report(reason);
        }
    }

    pub fn response_time_us(&self) -> u64 {
        self.response_time_us.load(Relaxed)
    }

    /// Folds one time-to-first-byte sample into the EWMA (weight 1/8).
    pub fn record_response_time(&self, elapsed: Duration) {
        let sample = (elapsed.as_micros().min(u64::MAX as u128) as u64).max(1);
        let old = self.response_time_us.load(Relaxed);
        let new = if old == 0 {
            sample
        } else {
            (old * 7 + sample) / 8
        };
        self.response_time_us.store(new.max(1), Relaxed);
    }

    /// SNMP load in thousandths (lower is better); `None` until a LOAD monitor reported one.
    pub fn load(&self) -> Option<u32> {
        Some(self.load.load(Relaxed)).filter(|load| *load != u32::MAX)
    }

    /// Records the load a LOAD monitor computed (Σ weight · value / threshold).
    pub fn set_load(&self, load: Option<f64>) {
        let milli = load.map_or(u32::MAX, |l| {
            (l.max(0.0) * 1000.0).min(f64::from(u32::MAX - 1)) as u32
        });
        self.load.store(milli, Relaxed);
    }

    /// The latest metric values a LOAD monitor read (for stats and metrics).
    pub fn metrics(&self) -> Option<Arc<MetricValues>> {
        self.metrics.load_full()
    }

    pub fn set_metrics(&self, values: Option<MetricValues>) {
        self.metrics.store(values.map(Arc::new));
    }

    /// Counts one in-flight request or connection until the guard drops.
    pub fn begin(self: &Arc<Self>) -> ActiveGuard {
        self.active.fetch_add(1, Relaxed);
        ActiveGuard(self.clone())
    }

    /// [`MemberState::begin`], unless `max` (`maxclient`) are in flight already.
    pub fn try_begin(self: &Arc<Self>, max: Option<u32>) -> Option<ActiveGuard> {
        let max = max.map_or(u64::MAX, u64::from);
        self.active
            .fetch_update(SeqCst, SeqCst, |open| (open < max).then_some(open + 1))
            .ok()?;
        Some(ActiveGuard(self.clone()))
    }

    /// Joins the surge queue of its servicegroup (the writer does, once per member).
    pub fn join_surge_queue(&self, queue: &Arc<SurgeQueue>) {
        let _ = self.surge.set(queue.clone());
    }

    /// One monitor changed its verdict.
    pub fn monitor_verdict(&self, up: bool, reason: &str) {
        if up {
            self.monitors_down.fetch_sub(1, Relaxed);
            // A monitor that sees the member healthy also ends a passive DOWN.
            self.clear_passive_down();
        } else {
            self.monitors_down.fetch_add(1, Relaxed);
        }
        self.report(reason);
    }

    /// A monitor probe failed with `reason`. A member that was never probed logs its first
    /// verdict (DOWN) now, so a member that never comes UP is not silent.
    pub fn probe_failed(&self, reason: &str) {
        self.last_failure.store(Some(Arc::new(reason.to_owned())));
        self.report(reason);
    }

    /// Why the latest failed probe (or real connect) failed.
    pub fn last_failure(&self) -> Option<Arc<String>> {
        self.last_failure.load_full()
    }

    /// A monitor probe succeeded: a passive DOWN is over.
    pub fn probe_succeeded(&self) {
        if self.passive_down.load(Relaxed) {
            self.clear_passive_down();
            self.report("monitor probe succeeded");
        }
    }

    /// A real connect to the member worked.
    #[inline]
    pub fn connect_succeeded(&self) {
        if self.connect_failures_in_row.load(Relaxed) != 0 {
            self.connect_failures_in_row.store(0, Relaxed);
        }
    }

    /// A real connect to the member failed (passive detection): `retries` in a row mark it DOWN.
    pub fn connect_failed(&self, retries: u32, reason: &str) {
        self.counters.connect_failures.fetch_add(1, Relaxed);
        self.last_failure.store(Some(Arc::new(reason.to_owned())));
        let failures = self.connect_failures_in_row.fetch_add(1, Relaxed) + 1;
        if failures >= retries && !self.passive_down.swap(true, Relaxed) {
            let now = self.epoch.elapsed().as_millis() as u64;
            self.passive_down_at.store(now, Relaxed);
            self.report(reason);
        }
    }

    /// A TLS handshake with the member failed: a connect failure (passive detection) whose
    /// reason says why.
    pub fn tls_handshake_failed(&self, retries: u32, why: &str) {
        self.counters.tls_handshake_failures.fetch_add(1, Relaxed);
        self.connect_failed(retries, &format!("TLS handshake failed: {why}"));
    }

    /// With no monitor bound, a passively-DOWN member comes back after [`PASSIVE_DOWNTIME`].
    pub fn expire_passive_down(&self) {
        if !self.passive_down.load(Relaxed) {
            return;
        }
        let now = self.epoch.elapsed().as_millis() as u64;
        if now.saturating_sub(self.passive_down_at.load(Relaxed))
            >= PASSIVE_DOWNTIME.as_millis() as u64
        {
            self.clear_passive_down();
            self.report("passive downtime over");
        }
    }

    fn clear_passive_down(&self) {
        self.connect_failures_in_row.store(0, Relaxed);
        self.passive_down.store(false, Relaxed);
    }

    /// Logs the status if it changed since the last report.
    fn report(&self, reason: &str) {
        let status = self.status();
        let previous = self.reported.swap(status as u8, Relaxed);
        if previous == status as u8 {
            return;
        }
        let from = STATUSES
            .get(usize::from(previous))
            .map_or("UNKNOWN", |from| from.as_str());
        if status == MemberStatus::Down {
            tracing::warn!(servicegroup = %self.key.group, member = %self.label, from = %from, to = %status, reason, "member state changed");
        } else {
            tracing::info!(servicegroup = %self.key.group, member = %self.label, from = %from, to = %status, reason, "member state changed");
        }
    }
}

/// One in-flight request or connection on a member.
#[derive(Debug)]
pub struct ActiveGuard(Arc<MemberState>);

impl ActiveGuard {
    pub fn member(&self) -> &Arc<MemberState> {
        &self.0
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        // SeqCst, with the queue's depth: a waiter either sees this slot free or is woken.
        let before = self.0.active.fetch_sub(1, SeqCst);
        if let Some(queue) = self.0.surge.get() {
            queue.released();
        }
        if before == 1 && self.0.is_draining() {
            self.0.report("drained: no connections left");
        }
    }
}
