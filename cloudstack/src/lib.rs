//! CloudStack API for Ballast: a signed client with async-job polling, and the embedded
//! CloudStack-compatible **local cloud** whose VMs are local processes on 127.x.y.z.
//!
//! The autoscaler always speaks the CloudStack protocol over HTTP, to a real management server
//! or to the local cloud; both sides of that conversation live here.
//!
//! Client, bottom to top:
//! - [`params`]: request parameters and Java-style URL encoding; [`signing`]: the HMAC-SHA1
//!   signature exactly as `ApiServer.verifyRequest` checks it; [`dates`]: `expires`/`created`.
//! - [`transport`]: one HTTP/1.1 exchange (TCP or TLS) with a deadline, telling a request
//!   not sent from one whose answer was lost.
//! - [`envelope`]: `{"<command>response": ...}` → the inner object or a [`CloudError`]
//!   ([`error`]); [`lenient`]: serde helpers for what real servers send; [`model`]: typed objects.
//! - [`client`]: [`CloudStackClient`], signed calls with retries for read-only commands;
//!   [`api`]: the typed commands; [`jobs`]: waiting for async jobs; [`backoff`].
//! - [`resolve`]: an autoscale profile's zone, template, offering and networks by name → UUIDs.
//!
//! Server: [`localcloud`] serves `/client/api` with the same signature check, runs each VM as a
//! `ballast vm` child process on its own loopback address, and has a fault-injection endpoint.

#![forbid(unsafe_code)]

pub mod api;
pub mod backoff;
pub mod client;
pub mod dates;
pub mod envelope;
pub mod error;
pub mod jobs;
pub mod lenient;
pub mod localcloud;
pub mod model;
pub mod params;
pub mod resolve;
pub mod signing;
pub mod transport;

pub use api::{
    DeployVirtualMachine, ListAsyncJobs, ListFilter, ListVirtualMachines, TemplateFilter,
};
pub use backoff::Backoff;
pub use client::{ClientConfig, CloudStackClient};
pub use error::CloudError;
pub use jobs::JobWait;
pub use model::{
    AsyncJob, Capabilities, InstanceGroup, JobRef, JobStatus, Network, Nic, Page, ServiceOffering,
    Tag, Template, VirtualMachine, VmState, Zone,
};
pub use params::Params;
pub use resolve::{ProfileIds, ResolveError, resolve_profile_ids};
pub use transport::{HttpMethod, TransportError};
