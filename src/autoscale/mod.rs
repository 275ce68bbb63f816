//! The autoscale engine in the binary: what joins the `autoscaler` crate to the proxy.
//!
//! - [`engine`]: one driver per `[[autoscalegroup]]`, kept in step with the running config.
//! - [`policy`]: a validated `autoscalegroup` → the engine's [`autoscaler::Policy`].
//! - [`fleet`]: [`autoscaler::Fleet`] over the config writer's typed member operations.
//! - [`view`]: the engine as the admin API shows it; [`metrics`]: its Prometheus families.

pub mod engine;
pub mod fleet;
pub mod metrics;
pub mod policy;
pub mod view;

pub use engine::Autoscale;
