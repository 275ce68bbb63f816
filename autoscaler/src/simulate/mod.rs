//! `ballast simulate`: replays a metric trace through the decision [`core`](crate::core) in
//! virtual time, with no cloud, no proxy and no sleeping, so an operator can see what a
//! policy would have done with a recorded day before it runs on a real fleet.
//!
//! The replay drives the same [`GroupCore`] the driver drives, the same way:
//!
//! - At t = 0 the core lists the group and finds it empty.
//! - Each row of the [`Trace`] is one sample at its `t`: every bound member is UP and reports
//!   the row's metric values (so the group average is the row's value) and the row's
//!   `connections` (1 without that column: a draining member stays busy for its whole quiet
//!   time). After each sample the group is listed again, as the driver does every interval.
//!   The policy's `interval` plays no part: the trace's rows are the samples.
//! - A simulated cloud and servicegroup ([`world`]) execute the actions: a deploy is accepted
//!   at once and its VM is Running, bound and UP [`Options::provision_delay`] later (so
//!   `vm_deployed` and `member_bound` come then, and `member_up` at the first sample at or
//!   after then: samples are the health checks); a deploy slower than the policy's deploy
//!   timeout fails at the timeout, as the driver fails it; binds, drains and unbinds succeed
//!   at once; a destroy ends [`Options::deprovision_delay`] after it was asked for.
//! - Between samples, the core's timers fire at their exact deadlines (a cooldown ends at its
//!   end, not at the next sample). At one instant, finished cloud steps come first, then the
//!   core's timers, then the sample.
//! - The replay ends at the last row's `t`; what would happen after it is not reported.
//!
//! The result is deterministic: the same policy, trace and options give the same events.
//! Each is printed as one JSON object per line ([`SimEvent`]'s `Display`), and [`chart`]
//! draws them over the trace as an SVG.
//!
//! - [`trace`]: the CSV format and its errors; [`world`]: the simulated cloud and
//!   servicegroup; [`chart`]: the SVG timeline.

pub mod chart;
pub mod trace;
mod world;

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

use crate::core::GroupCore;
use crate::event::Event;
use crate::policy::Policy;

pub use self::trace::{Sample, Trace, TraceError};
use self::world::World;

/// How the simulated cloud behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// From the deploy call (`scale_out_started`) to the VM Running, bound and UP.
    pub provision_delay: Duration,
    /// From the destroy call to `vm_destroyed`.
    pub deprovision_delay: Duration,
}

impl Options {
    /// A CloudStack VM from a template typically boots and passes its first health check in
    /// about a minute.
    pub const DEFAULT_PROVISION_DELAY: Duration = Duration::from_secs(60);
    /// A destroy with expunge typically finishes within seconds.
    pub const DEFAULT_DEPROVISION_DELAY: Duration = Duration::from_secs(10);
}

impl Default for Options {
    fn default() -> Self {
        Options {
            provision_delay: Options::DEFAULT_PROVISION_DELAY,
            deprovision_delay: Options::DEFAULT_DEPROVISION_DELAY,
        }
    }
}

/// One event of a replay: the core's [`Event`], its time counted from the trace's `t = 0`.
#[derive(Debug, Clone, PartialEq)]
pub struct SimEvent(pub Event);

/// Replays `trace` through a [`GroupCore`] for `policy`; returns every event, in order.
pub fn run(policy: &Policy, trace: &Trace, options: Options) -> Vec<SimEvent> {
    let mut replay = Replay {
        core: GroupCore::new(policy.clone()),
        world: World::new(options, policy.launch.deploy_timeout),
        events: Vec::new(),
    };
    replay.settle(Duration::ZERO);
    for sample in &trace.samples {
        replay.advance_to(sample.at);
        let members = replay.world.sample(sample);
        replay.core.on_sample(sample.at, &members);
        replay.settle(sample.at);
        // The driver lists the group after every sample.
        let inventory = replay.world.inventory();
        replay.core.on_inventory(sample.at, Ok(inventory));
        replay.settle(sample.at);
    }
    replay.events
}

#[derive(Debug)]
struct Replay {
    core: GroupCore,
    world: World,
    events: Vec<SimEvent>,
}

impl Replay {
    /// Finishes cloud steps and fires the core's timers, in time order, up to `until`.
    fn advance_to(&mut self, until: Duration) {
        loop {
            let cloud = self.world.next_due().filter(|at| *at <= until);
            let timer = self.core.next_timeout().filter(|at| *at <= until);
            let (at, cloud_first) = match (cloud, timer) {
                (None, None) => return,
                (Some(cloud), Some(timer)) => (cloud.min(timer), cloud <= timer),
                (Some(cloud), None) => (cloud, true),
                (None, Some(timer)) => (timer, false),
            };
            if cloud_first {
                self.world.finish_next(&mut self.core);
                self.settle(at);
                continue;
            }
            let before = self.events.len();
            self.core.handle_timeout(at);
            let acted = self.settle(at);
            // A deadline the core does not clear must not spin the replay.
            if !acted && self.events.len() == before && self.core.next_timeout() == Some(at) {
                return;
            }
        }
    }

    /// Executes every action the core asks for at `now` and collects its events; returns
    /// whether there was any action.
    fn settle(&mut self, now: Duration) -> bool {
        let mut acted = false;
        while let Some(action) = self.core.poll_action() {
            acted = true;
            self.world.execute(now, action, &mut self.core);
        }
        while let Some(event) = self.core.poll_event() {
            self.events.push(SimEvent(event));
        }
        acted
    }
}

impl fmt::Display for SimEvent {
    /// One JSON object: `t` (seconds), `event`, `members` (in service after it), `vm` (when
    /// the event is about one), `reason`, `values` (the group averages behind it) and, in
    /// observe mode only, `"observed": true`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let event = &self.0;
        write!(
            f,
            "{{\"t\": {}, \"event\": {}, \"members\": {}",
            number(event.at.as_secs_f64()),
            text(event.kind.as_str()),
            event.members
        )?;
        if let Some(vm) = &event.vm {
            write!(f, ", \"vm\": {}", text(vm))?;
        }
        write!(f, ", \"reason\": {}, \"values\": {{", text(&event.reason))?;
        for (index, (name, value)) in event.values.iter().enumerate() {
            let comma = if index == 0 { "" } else { ", " };
            write!(f, "{comma}{}: {}", text(name), number(*value))?;
        }
        f.write_str("}")?;
        if event.observed {
            f.write_str(", \"observed\": true")?;
        }
        f.write_str("}")
    }
}

/// A JSON number (`12.0`, `0.5`); `null` where JSON has none.
fn number(value: f64) -> serde_json::Value {
    serde_json::Value::from(value)
}

/// A JSON string, quoted and escaped.
fn text(value: &str) -> serde_json::Value {
    serde_json::Value::from(value)
}
