//! [`Event`]: every decision and step of the engine, with the figures behind it. The core
//! produces them; the driver stamps the wall-clock time and group, logs them and keeps a
//! bounded history ([`crate::history`]).

use std::fmt;
use std::time::Duration;

/// What happened. The names are part of the product: operators filter and alert on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    ScaleOutStarted,
    VmDeployed,
    MemberBound,
    MemberUp,
    CooldownStarted,
    CooldownEnded,
    ScaleInStarted,
    DrainFinished,
    VmDestroyed,
    MemberUnbound,
    DeployFailed,
    LaunchSuspended,
    LaunchResumed,
    MemberReplaced,
    Reconciled,
    /// Every member's load is unknown: no decision can be taken.
    LoadUnknown,
    /// A step failed (a bind, a destroy, a list call); it is retried.
    ActionFailed,
}

impl EventKind {
    pub const ALL: [EventKind; 17] = [
        EventKind::ScaleOutStarted,
        EventKind::VmDeployed,
        EventKind::MemberBound,
        EventKind::MemberUp,
        EventKind::CooldownStarted,
        EventKind::CooldownEnded,
        EventKind::ScaleInStarted,
        EventKind::DrainFinished,
        EventKind::VmDestroyed,
        EventKind::MemberUnbound,
        EventKind::DeployFailed,
        EventKind::LaunchSuspended,
        EventKind::LaunchResumed,
        EventKind::MemberReplaced,
        EventKind::Reconciled,
        EventKind::LoadUnknown,
        EventKind::ActionFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ScaleOutStarted => "scale_out_started",
            EventKind::VmDeployed => "vm_deployed",
            EventKind::MemberBound => "member_bound",
            EventKind::MemberUp => "member_up",
            EventKind::CooldownStarted => "cooldown_started",
            EventKind::CooldownEnded => "cooldown_ended",
            EventKind::ScaleInStarted => "scale_in_started",
            EventKind::DrainFinished => "drain_finished",
            EventKind::VmDestroyed => "vm_destroyed",
            EventKind::MemberUnbound => "member_unbound",
            EventKind::DeployFailed => "deploy_failed",
            EventKind::LaunchSuspended => "launch_suspended",
            EventKind::LaunchResumed => "launch_resumed",
            EventKind::MemberReplaced => "member_replaced",
            EventKind::Reconciled => "reconciled",
            EventKind::LoadUnknown => "load_unknown",
            EventKind::ActionFailed => "action_failed",
        }
    }

    pub fn parse(text: &str) -> Option<EventKind> {
        EventKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event, as the core reports it (time is the engine's clock: since its origin).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub at: Duration,
    pub kind: EventKind,
    pub reason: String,
    /// Members in service after the event (bound, UP, not draining).
    pub members: u32,
    /// The VM the event is about, if one.
    pub vm: Option<String>,
    /// The group averages behind the decision (metric name → value); empty when none apply.
    pub values: Vec<(String, f64)>,
    /// Observe mode: the decision was recorded, not acted on.
    pub observed: bool,
}
