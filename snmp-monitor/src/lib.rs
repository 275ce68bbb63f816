//! SNMP LOAD monitors for Ballast, and the agent its local-cloud VMs run.
//!
//! # Where it sits
//!
//! The proxy's `lbmonitor type LOAD` polls every member of a servicegroup over SNMP. Each poll
//! becomes a [`Sample`] (member, time, metric → value, load, BUSY) on a `tokio::sync::mpsc`
//! channel; the proxy keeps the latest per member for `CUSTOMLOAD`, BUSY, NITRO `stat` and
//! Prometheus, and the autoscaler averages them. On the VM side, [`agent::serve`] answers the
//! same OIDs with the VM process's own CPU and memory use.
//!
//! ```text
//! LoadMonitorSpec ──LoadMonitor::new──► Arc<LoadMonitor> ──Poller::watch(member, addr, monitor)
//!                                                              │  UDP (a few sockets, request-id table)
//!                     snmpd / agent::serve ◄──────────────────┘
//!                                                              │
//!           mpsc::Receiver<Sample<K>> ◄── one Sample per poll ─┘   + PollStats (atomics)
//! ```
//!
//! # Using it
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use snmp_monitor::{LoadMonitor, LoadMonitorSpec, MetricBinding, MetricTable, Poller, PollerConfig, Security};
//!
//! let mut spec = LoadMonitorSpec::new("load-mon", Security::V2c { community: "public".into() }, MetricTable::linux());
//! spec.bindings.push(MetricBinding::new("cpu", Some(80.0), 1.0));
//! let monitor = LoadMonitor::new(spec)?;
//!
//! let (tx, mut samples) = tokio::sync::mpsc::channel(1024);
//! let poller = Poller::<u64>::spawn(PollerConfig::default(), tx)?;
//! poller.watch(1, monitor.target("10.0.0.5".parse()?), monitor.clone());
//! while let Some(sample) = samples.recv().await {
//!     println!("{:?} {:?} load={:?} busy={}", sample.result, sample.values, sample.load, sample.busy);
//! }
//! # Ok(()) }
//! ```
//!
//! # Map
//!
//! - [`spec`]: `LoadMonitorSpec` (version, community or v3 user, table, thresholds, interval,
//!   resptimeout, retries, destport) and the checked `LoadMonitor`.
//! - [`table`]: `lbmetrictable` and the built-in `linux` table.
//! - [`load`]: load = Σ weight·value/threshold, BUSY, and CUSTOMLOAD's least-loaded choice.
//! - [`poller`]: the multiplexed poller (protocol core without I/O + a tokio driver).
//! - [`sample`], [`stats`]: what the poller publishes and counts.
//! - [`agent`]: the VM-side v2c agent.
//! - Codec: [`ber`], [`oid`], [`value`], [`pdu`] (v1/v2c), [`usm`] (v3 USM: SHA-1/SHA-2 auth,
//!   AES-128/192/256 privacy). Decoding never panics on any input.

pub mod agent;
pub mod ber;
pub mod error;
pub mod load;
pub mod oid;
pub mod pdu;
pub mod poller;
pub mod sample;
pub mod spec;
pub mod stats;
pub mod table;
pub mod usm;
pub mod value;

pub use error::{DecodeError, KeyLengthError, SpecError};
pub use load::{MetricBinding, Verdict, least_loaded};
pub use oid::Oid;
pub use poller::{Poller, PollerConfig};
pub use sample::{PollResult, ResultClass, Sample};
pub use spec::{LoadMonitor, LoadMonitorSpec, Security};
pub use stats::{DropReason, PollStats, StatsSnapshot};
pub use table::{Derived, Metric, MetricKind, MetricTable};
pub use usm::{AuthFailure, AuthProtocol, PrivProtocol, UsmUser};
