//! What the core knows about each VM of its group, and where it is in its life.

use std::net::SocketAddr;
use std::time::Duration;

use super::LaunchId;

/// A VM of the group (deployed by this engine, or found in the cloud and adopted).
#[derive(Debug, Clone)]
pub(crate) struct Vm {
    pub id: String,
    pub addr: Option<SocketAddr>,
    pub phase: Phase,
    /// The launch that created it, when this engine deployed it (it completes a scale-out).
    pub launch: Option<LaunchId>,
    /// Creation order, for victim choice (higher is newer).
    pub order: u64,
    /// Found in the cloud rather than deployed by this run: no warm-up once UP
    /// ([`Vm::warmup`]).
    pub adopted: bool,
    /// Scale-in protection, as the fleet reports it.
    pub protected: bool,
    /// Requests in flight, from the latest sample.
    pub connections: u64,
    /// Why it is going away, once it is.
    pub retire: Option<Retire>,
    /// When the core learned of it (a listing taken before then cannot say it is gone).
    pub known_since: Duration,
    /// A deploy task will still report on it ([`super::GroupCore::on_deploy_finished`]);
    /// otherwise listings drive it from Starting to Running.
    pub awaited: bool,
    /// Its address still belongs to a member whose VM is gone: the bind waits for that
    /// member's unbind.
    pub waits_for_address: bool,
}

/// A VM's lifecycle, as the engine drives it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Phase {
    /// Deploy accepted (or found Starting); not Running with an address yet.
    Deploying { since: Duration },
    /// Running; the bind is requested.
    Binding,
    /// Bound; waiting for the first health check UP.
    Joining { since: Duration },
    /// Bound and (was) UP.
    Serving {
        up_since: Duration,
        down_since: Option<Duration>,
        investigating: bool,
    },
    /// Takes no new traffic; destroyed at `until` or when its connections reach zero.
    Draining { until: Duration },
    /// Drained; the destroy call waits for `destroygraceperiod`.
    Grace { until: Duration },
    /// The unbind is requested (`false`: to be requested again).
    Unbinding { requested: bool },
    /// The destroy (with expunge) is requested (`false`: to be requested again).
    Destroying { requested: bool },
}

/// Why a VM is being removed, and how that ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retire {
    pub cause: Cause,
    /// The drain ended at the quiet time with connections still open.
    pub cut_short: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    ScaleIn,
    OverMax,
    /// DOWN beyond the health grace period (or never came UP): fenced and replaced.
    Fence,
    /// Its deploy failed or timed out: whatever it created is destroyed.
    FailedLaunch,
    /// Found in the cloud in a state that cannot serve (Stopped, Error).
    Orphan,
    /// The cloud no longer has it: only the member is unbound.
    Gone,
}

impl Vm {
    /// A VM the core just learned of, in `phase`; the caller sets what else it knows.
    pub fn new(id: &str, phase: Phase, order: u64, now: Duration) -> Vm {
        Vm {
            id: id.to_string(),
            addr: None,
            phase,
            launch: None,
            order,
            adopted: false,
            protected: false,
            connections: 0,
            retire: None,
            known_since: now,
            awaited: false,
            waits_for_address: false,
        }
    }

    /// Counts toward `minmembers`: alive and not on its way out.
    pub fn is_live(&self) -> bool {
        self.retire.is_none()
            && matches!(
                self.phase,
                Phase::Deploying { .. }
                    | Phase::Binding
                    | Phase::Joining { .. }
                    | Phase::Serving { .. }
            )
    }

    /// Bound, UP, past nothing: takes traffic and counts as a member in service.
    pub fn is_serving(&self) -> bool {
        self.retire.is_none() && matches!(self.phase, Phase::Serving { .. })
    }

    /// Not serving yet, but on its way: a decision waits for it.
    pub fn is_provisioning(&self) -> bool {
        self.retire.is_none()
            && matches!(
                self.phase,
                Phase::Deploying { .. } | Phase::Binding | Phase::Joining { .. }
            )
    }

    /// The member is bound in the servicegroup (so it must be unbound before it goes).
    pub fn is_bound(&self) -> bool {
        matches!(
            self.phase,
            Phase::Joining { .. }
                | Phase::Serving { .. }
                | Phase::Draining { .. }
                | Phase::Grace { .. }
                | Phase::Unbinding { .. }
        )
    }

    /// How long its samples stay out of the group average after it turns UP: the policy's
    /// `warmup`, or none for a VM adopted from the cloud (it was serving before this engine
    /// started).
    pub fn warmup(&self, policy: Duration) -> Duration {
        if self.adopted { Duration::ZERO } else { policy }
    }

    /// The state name an operator sees (`stat/autoscalegroup`, metrics).
    pub fn state_name(&self) -> &'static str {
        match self.phase {
            Phase::Deploying { .. } | Phase::Binding | Phase::Joining { .. } => "provisioning",
            Phase::Serving {
                down_since: Some(_),
                ..
            } => "down",
            Phase::Serving { .. } => "up",
            Phase::Draining { .. } | Phase::Grace { .. } => "draining",
            Phase::Unbinding { .. } | Phase::Destroying { .. } => "destroying",
        }
    }
}
