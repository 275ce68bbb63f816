//! Admitting an accepted connection: `maxconn`, then `maxclientpersource`, then `maxclient`.
//!
//! Each check counts the connection as it passes (an atomic add, or one short lock for the
//! per-source table), so concurrent accepts never overshoot a limit; a refusal undoes what was
//! counted and is itself counted on the vserver, by [`Limit`].

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::fds;
use super::sources::SourceConnection;
use crate::config::Settings;
use crate::snapshot::VserverPlan;
use crate::stats::ClientConnection;

/// Refused connections answered `503` at once, at most (they come out of the 256 descriptors
/// kept free, see [`fds`]).
pub const ANSWERED_REFUSALS: u64 = 64;

/// Client connections open in this process (all vservers), and the descriptor limit that
/// `maxconn` defaults from.
#[derive(Debug)]
pub struct Connections {
    open: AtomicU64,
    /// HTTP requests in flight (each holds a connection to a member), also kept under `maxconn`.
    requests: AtomicU64,
    /// Refused connections being answered `503` now.
    answering: AtomicU64,
    /// `TCP` relays that hold `splice` pipes now.
    spliced: AtomicU64,
    nofile: u64,
}

impl Connections {
    /// Reads the descriptor limit now: create this after raising it.
    pub fn new() -> Arc<Connections> {
        Arc::new(Connections {
            open: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            answering: AtomicU64::new(0),
            spliced: AtomicU64::new(0),
            nofile: fds::nofile_limit(),
        })
    }

    /// Client connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(Relaxed)
    }

    /// The `maxconn` in force: the config's, or the one derived from the descriptor limit.
    pub fn max(&self, settings: &Settings) -> u64 {
        settings
            .max_conn
            .unwrap_or_else(|| fds::default_max_conn(self.nofile))
    }

    /// A place for one `splice` relay (four pipe descriptors): at most a quarter of `max_conn`
    /// relays splice at once, the others copy (see [`fds`]).
    pub fn try_splice(self: &Arc<Self>, max_conn: u64) -> Option<SpliceSlot> {
        let max = (max_conn / 4).max(1);
        self.spliced
            .fetch_update(Relaxed, Relaxed, |open| (open < max).then_some(open + 1))
            .ok()
            .map(|_| SpliceSlot(self.clone()))
    }

    /// A place for one HTTP request in flight, unless `max_conn` are in flight already: HTTP/2
    /// carries many requests on one client connection, and each holds a member connection.
    pub fn try_request(self: &Arc<Self>, max_conn: u64) -> Option<RequestSlot> {
        self.requests
            .fetch_update(Relaxed, Relaxed, |open| {
                (open < max_conn).then_some(open + 1)
            })
            .ok()
            .map(|_| RequestSlot(self.clone()))
    }

    /// A place for answering one refused connection (a `503` takes its descriptor for up to
    /// half a second): at most [`ANSWERED_REFUSALS`] at once, so a flood at a limit cannot
    /// take descriptors of its own; the others are closed without an answer.
    pub fn try_answer_refusal(self: &Arc<Self>) -> Option<RefusalSlot> {
        self.answering
            .fetch_update(Relaxed, Relaxed, |open| {
                (open < ANSWERED_REFUSALS).then_some(open + 1)
            })
            .ok()
            .map(|_| RefusalSlot(self.clone()))
    }

    fn try_open(self: &Arc<Self>, max: u64) -> Option<GlobalConnection> {
        self.open
            .fetch_update(Relaxed, Relaxed, |open| (open < max).then_some(open + 1))
            .ok()
            .map(|_| GlobalConnection(self.clone()))
    }
}

/// The limit a refused connection hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `[ballast] maxconn`.
    MaxConn,
    /// The vserver's `maxclient`.
    MaxClient,
    /// The vserver's `maxclientpersource`.
    MaxClientPerSource,
}

impl Limit {
    pub const ALL: [Limit; 3] = [Limit::MaxConn, Limit::MaxClient, Limit::MaxClientPerSource];

    /// The config key's name, also the `limit` label in `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::MaxConn => "maxconn",
            Limit::MaxClient => "maxclient",
            Limit::MaxClientPerSource => "maxclientpersource",
        }
    }

    /// Index into per-limit counters, in the order of [`Limit::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// An admitted connection: holds its place under every limit until dropped.
#[derive(Debug)]
pub struct Admitted {
    _global: GlobalConnection,
    _vserver: ClientConnection,
    _source: Option<SourceConnection>,
}

#[derive(Debug)]
struct GlobalConnection(Arc<Connections>);

/// A refused connection's place among those being answered.
#[derive(Debug)]
pub struct RefusalSlot(Arc<Connections>);

impl Drop for RefusalSlot {
    fn drop(&mut self) {
        self.0.answering.fetch_sub(1, Relaxed);
    }
}

/// A request's place among those in flight.
#[derive(Debug)]
pub struct RequestSlot(Arc<Connections>);

impl Drop for RequestSlot {
    fn drop(&mut self) {
        self.0.requests.fetch_sub(1, Relaxed);
    }
}

/// A relay's place among those that may hold `splice` pipes.
#[derive(Debug)]
pub struct SpliceSlot(Arc<Connections>);

impl Drop for SpliceSlot {
    fn drop(&mut self) {
        self.0.spliced.fetch_sub(1, Relaxed);
    }
}

impl Drop for GlobalConnection {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Relaxed);
    }
}

/// Admits a connection from `client` to `plan`'s vserver, or says which limit refused it (and
/// counts the refusal).
pub fn admit(
    connections: &Arc<Connections>,
    max_conn: u64,
    plan: &VserverPlan,
    client: IpAddr,
) -> Result<Admitted, Limit> {
    let stats = &plan.stats;
    let admitted = (|| -> Result<Admitted, Limit> {
        let global = connections.try_open(max_conn).ok_or(Limit::MaxConn)?;
        let source = match plan.max_client_per_source {
            Some(max) => Some(
                stats
                    .sources
                    .try_open(client, max)
                    .ok_or(Limit::MaxClientPerSource)?,
            ),
            None => None,
        };
        // Last, so that only admitted connections count as accepted.
        let vserver = stats
            .try_client_connected(plan.max_client)
            .ok_or(Limit::MaxClient)?;
        Ok(Admitted {
            _global: global,
            _vserver: vserver,
            _source: source,
        })
    })();
    if let Err(limit) = admitted {
        stats.refused[limit.index()].fetch_add(1, Relaxed);
    }
    admitted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_64_refusals_are_answered_at_once() {
        let connections = Connections::new();
        let answering: Vec<_> = (0..ANSWERED_REFUSALS)
            .map(|_| connections.try_answer_refusal().expect("a place"))
            .collect();
        assert!(connections.try_answer_refusal().is_none());
        drop(answering);
        assert!(connections.try_answer_refusal().is_some());
    }

    #[test]
    fn requests_in_flight_and_splice_relays_have_their_own_caps() {
        let connections = Connections::new();
        let requests: Vec<_> = (0..8).filter_map(|_| connections.try_request(5)).collect();
        assert_eq!(requests.len(), 5);
        let spliced: Vec<_> = (0..8).filter_map(|_| connections.try_splice(12)).collect();
        assert_eq!(spliced.len(), 3, "a quarter of maxconn");
        drop(requests);
        assert!(connections.try_request(5).is_some());
    }
}
