//! Ballast's autoscale engine: keeps a servicegroup's fleet of CloudStack VMs the right size.
//!
//! Where it sits: the driver reads member figures from the proxy (through [`Fleet`]) and feeds
//! them with `now` to the decision [`core`], which returns actions; the driver executes them
//! against a CloudStack-compatible API (through [`Cloud`]) and the proxy's config writer, and
//! records every step as an [`Event`].
//!
//! - [`policy`]: one group's rules, in the engine's own types.
//! - [`core`]: the sans-I/O decision core (no tokio, no I/O; `now` is an argument).
//! - [`event`]: event kinds and events; [`history`]: the bounded, shared event history and
//!   each group's latest status.
//! - [`driver`]: the async part: samples, reconcile, and each action as a task.
//! - [`cloud`] and [`fleet`]: the traits the driver reaches the world through;
//!   [`cloud_stack`]: [`Cloud`] over the CloudStack API.
//! - [`simulate`]: `ballast simulate`: a metric trace replayed through the same core in
//!   virtual time, against a simulated cloud; its events as JSON lines and an SVG chart.
//!
//! See `docs/architecture.md` for the rules and how a restart stays safe.

#![forbid(unsafe_code)]

pub mod cloud;
pub mod cloud_stack;
pub mod core;
pub mod driver;
pub mod event;
pub mod fleet;
pub mod history;
pub mod policy;
pub mod simulate;

pub use crate::core::{
    Action, CloudState, CloudVm, DeployError, GroupCore, GroupPhase, Inventory, LaunchId,
    MemberSample, Status,
};
pub use cloud::{Cloud, DeployRequest, Deployment, JobState};
pub use cloud_stack::{CloudStackCloud, VmProfile};
pub use driver::{Controls, Driver};
pub use event::{Event, EventKind};
pub use fleet::{Fleet, FleetError, MemberView};
pub use history::{EventRecord, GroupRecord, History};
pub use policy::{LaunchLimits, MetricRule, MetricSource, Policy, Victim};
