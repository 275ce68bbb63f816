//! Ballast's autoscale engine.
//!
//! Where it sits: a sans-I/O decision core (takes samples and `now`, returns actions) and a
//! thin async driver that executes those actions against a CloudStack-compatible API and the
//! proxy's config writer. See `DESIGN.md`, "Autoscale engine".
//!
//! Status: empty. The autoscaler issue fills it.
