//! What one access log line says ([`Record`]), why the exchange ended ([`Termination`]), and
//! the [`Trace`] that a request or connection fills on its way to a member.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::http::error::ExchangeError;

/// One finished HTTP request or TCP connection.
#[derive(Debug, Clone)]
pub struct Record {
    /// When the request head (HTTP) or the connection (TCP) arrived.
    pub time: SystemTime,
    pub client: SocketAddr,
    pub vserver: Arc<str>,
    /// The lbvserver a csvserver (`vserver`) switched the request to.
    pub target: Option<Arc<str>>,
    /// The servicegroup and member that served it, or were tried last.
    pub servicegroup: Option<Arc<str>>,
    pub member: Option<Arc<str>>,
    /// From arrival until Ballast started connecting to that member (checks, earlier members
    /// that failed, waiting for a place).
    pub queue: Option<Duration>,
    /// Taking a connection to the member: a new connect, or a pooled one (near 0).
    pub connect: Option<Duration>,
    /// From arrival until the last byte went to the client (or the exchange ended).
    pub total: Duration,
    pub termination: Termination,
    pub kind: Kind,
}

/// What kind of exchange a [`Record`] is about.
#[derive(Debug, Clone)]
pub enum Kind {
    Http(HttpFields),
    Tcp(TcpFields),
}

/// What only an HTTP line has.
#[derive(Debug, Clone)]
pub struct HttpFields {
    pub method: http::Method,
    /// The request target as the client sent it.
    pub uri: String,
    pub version: http::Version,
    pub status: u16,
    /// Body bytes sent to the client.
    pub bytes_sent: u64,
    /// From the member having the whole request until its response head.
    pub first_byte: Option<Duration>,
}

/// What only a TCP line has.
#[derive(Debug, Clone)]
pub struct TcpFields {
    /// Bytes from the client to the member.
    pub bytes_received: u64,
    /// Bytes from the member to the client.
    pub bytes_sent: u64,
}

/// Why an exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// The whole response went out (HTTP), or both sides closed (TCP).
    Complete,
    /// It ended without a member's response: the side and kind of
    /// `ballast_vserver_errors_total`, e.g. `member/timeout` for a `504`.
    Failed(ExchangeError),
    /// The client went away before it had the whole response.
    ClientAborted,
    /// The member's response broke off in the middle of its body.
    MemberAborted,
    /// TCP: nothing moved for the idle timeout (`clttimeout` or `svrtimeout`).
    IdleTimeout,
    /// TCP: a side reset the connection, or a read or write failed.
    Reset,
    /// An upgraded connection (`101`) that Ballast closed: its member's drain was over, or
    /// Ballast shut down.
    Drained,
}

impl fmt::Display for Termination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Termination::Complete => f.write_str("ok"),
            Termination::Failed(error) => write!(f, "{}/{}", error.side(), error.kind()),
            Termination::ClientAborted => f.write_str("client/aborted"),
            Termination::MemberAborted => f.write_str("member/aborted"),
            Termination::IdleTimeout => f.write_str("idle_timeout"),
            Termination::Reset => f.write_str("reset"),
            Termination::Drained => f.write_str("drained"),
        }
    }
}

/// The member side of one exchange, filled as it happens: which member, when connecting
/// started, how long it took, how long the member took to answer.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// The lbvserver a csvserver passed the request to.
    pub target: Option<Arc<str>>,
    pub servicegroup: Option<Arc<str>>,
    pub member: Option<Arc<str>>,
    connect_started: Option<Instant>,
    pub connect: Option<Duration>,
    pub first_byte: Option<Duration>,
}

impl Trace {
    /// Ballast starts taking a connection to `member` of `servicegroup` (a later member, after
    /// a failure, replaces it).
    pub fn connecting(&mut self, servicegroup: &Arc<str>, member: &Arc<str>) {
        *self = Trace {
            target: self.target.take(),
            servicegroup: Some(servicegroup.clone()),
            member: Some(member.clone()),
            connect_started: Some(Instant::now()),
            connect: None,
            first_byte: None,
        };
    }

    /// A csvserver passed the request to lbvserver `target`.
    pub fn switched(&mut self, target: &Arc<str>) {
        self.target = Some(target.clone());
    }

    /// The connection to the member is there.
    pub fn connected(&mut self) {
        self.connect = self.connect_started.map(|started| started.elapsed());
    }

    /// The member's response head came `elapsed` after it had the request.
    pub fn first_byte(&mut self, elapsed: Duration) {
        self.first_byte = Some(elapsed);
    }

    /// From `arrived` until connecting to the member started.
    pub fn queue(&self, arrived: Instant) -> Option<Duration> {
        self.connect_started
            .map(|started| started.saturating_duration_since(arrived))
    }
}
