//! [`Fleet`]: what the driver needs from the proxy: bind, drain and unbind a servicegroup's
//! members, and read their figures. The binary implements it over the config writer's typed
//! operations; the tests' in-memory fakes implement it too.

use std::future::Future;
use std::net::SocketAddr;

/// One servicegroup's members.
pub trait Fleet: Send + Sync + 'static {
    /// Binds the VM `vm` at `addr` as an autoscaled member.
    fn bind(
        &self,
        vm: &str,
        addr: SocketAddr,
    ) -> impl Future<Output = Result<(), FleetError>> + Send;

    /// Stops new traffic to the member; in-flight requests finish.
    fn drain(&self, addr: SocketAddr) -> impl Future<Output = Result<(), FleetError>> + Send;

    /// Removes the member.
    fn unbind(&self, addr: SocketAddr) -> impl Future<Output = Result<(), FleetError>> + Send;

    /// Every member of the servicegroup now (cheap: called every interval).
    fn members(&self) -> Vec<MemberView>;
}

/// Why a member operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FleetError {
    #[error("already bound")]
    AlreadyBound,
    #[error("not bound")]
    NotBound,
    #[error("{0}")]
    Rejected(String),
}

/// One member's state and figures.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberView {
    pub addr: SocketAddr,
    /// The VM behind an autoscaled member; `None` for members from the config file.
    pub vm: Option<String>,
    pub up: bool,
    /// Requests in flight.
    pub connections: u64,
    /// Requests sent to it since it was bound (a counter).
    pub requests: u64,
    /// Response time (time to first byte) in milliseconds.
    pub response_time_ms: f64,
    /// The latest SNMP metric values of its LOAD monitor, by metric name.
    pub snmp: Vec<(String, f64)>,
    pub protected: bool,
    /// Takes no new traffic (disabled: an engine was scaling it in).
    pub draining: bool,
}
