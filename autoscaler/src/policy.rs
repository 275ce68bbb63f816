//! [`Policy`]: what one autoscale group asks for, in the engine's own terms (the binary
//! translates the proxy's validated `autoscalegroup` into it, so this crate never sees the
//! proxy's config types).

use std::time::Duration;

/// One autoscale group's rules. See `docs/config.md` for what each field means to an operator.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub min_members: u32,
    /// Counts every VM of the group that is not destroyed (deploying, serving, draining, error).
    pub max_members: u32,
    /// How often samples are taken and evaluated.
    pub interval: Duration,
    /// A threshold must be breached on every sample for this long before an action.
    pub watch_time: Duration,
    /// No decision for this long after a scale-out completed (its members are UP).
    pub cooldown: Duration,
    /// The longest a scale-in victim drains before its VM is destroyed.
    pub quiet_time: Duration,
    /// Extra wait between the end of a drain and the destroy call.
    pub destroy_grace_period: Duration,
    /// A new member's samples stay out of the group average for this long after it is UP.
    pub warmup: Duration,
    /// A member DOWN (after its warm-up) for longer than this is investigated and replaced.
    pub health_grace_period: Duration,
    /// VMs added per scale-out; scale-in always removes one.
    pub step: u32,
    pub victim: Victim,
    /// Disabled: no decisions, the VMs stay as they are.
    pub enabled: bool,
    /// Observe: decisions are computed and recorded, never acted on.
    pub observe: bool,
    pub metrics: Vec<MetricRule>,
    pub launch: LaunchLimits,
}

/// Which member a scale-in removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Victim {
    /// The member that joined last (the default: the least warmed-up cache goes first).
    Newest,
    Oldest,
    LeastConnections,
}

impl Victim {
    pub fn as_str(self) -> &'static str {
        match self {
            Victim::Newest => "newest",
            Victim::Oldest => "oldest",
            Victim::LeastConnections => "leastconnections",
        }
    }
}

/// One metric that drives scaling.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRule {
    pub name: String,
    pub source: MetricSource,
    /// Scale out when the group average stays above this (`None`: never scales out).
    pub upper: Option<f64>,
    /// Scale in when every metric stays below its `lower` (`None`: does not veto a scale-in).
    pub lower: Option<f64>,
}

/// Where a metric's per-member value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricSource {
    /// A metric of the servicegroup's SNMP LOAD monitor (by its name in the metric table).
    Snmp(String),
    /// Requests in flight on the member.
    Connections,
    /// Requests per second sent to the member.
    RequestRate,
    /// The member's response time (time to first byte), in milliseconds.
    ResponseTime,
}

impl MetricSource {
    pub fn as_str(&self) -> &str {
        match self {
            MetricSource::Snmp(_) => "snmp",
            MetricSource::Connections => "connections",
            MetricSource::RequestRate => "requestrate",
            MetricSource::ResponseTime => "responsetime",
        }
    }
}

/// How failed launches back off. Not in the config file: these keep a fleet and a bill safe
/// whatever the policy says.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchLimits {
    /// The wait after the first failed launch; it doubles with each further failure.
    pub retry_backoff: Duration,
    /// The longest retry wait.
    pub max_retry_backoff: Duration,
    /// After this many consecutive failed launches, launching is suspended ...
    pub suspend_after: u32,
    /// ... until an operator enables the group again, or this long has passed.
    pub suspension: Duration,
    /// A VM that is not Running with an address by then is destroyed: a failed launch.
    pub deploy_timeout: Duration,
}

impl Default for LaunchLimits {
    fn default() -> Self {
        LaunchLimits {
            retry_backoff: Duration::from_secs(10),
            max_retry_backoff: Duration::from_secs(300),
            suspend_after: 3,
            suspension: Duration::from_secs(1800),
            deploy_timeout: Duration::from_secs(600),
        }
    }
}

impl Policy {
    /// A policy with the documented defaults and the given bounds and metrics (for tests and
    /// `simulate`; the binary fills every field from the config).
    pub fn new(min_members: u32, max_members: u32, metrics: Vec<MetricRule>) -> Policy {
        Policy {
            min_members,
            max_members,
            interval: Duration::from_secs(10),
            watch_time: Duration::from_secs(60),
            cooldown: Duration::from_secs(120),
            quiet_time: Duration::from_secs(60),
            destroy_grace_period: Duration::ZERO,
            warmup: Duration::from_secs(30),
            health_grace_period: Duration::from_secs(120),
            step: 1,
            victim: Victim::Newest,
            enabled: true,
            observe: false,
            metrics,
            launch: LaunchLimits::default(),
        }
    }
}
