//! SNMP LOAD monitors for Ballast.
//!
//! Where it sits: the monitors poll every backend member's SNMP agent and publish
//! `(member, time, metric → value)` samples that feed `CUSTOMLOAD` balancing and the
//! autoscaler. The crate will also hold the small SNMP agent that each local-cloud VM runs.
//!
//! Status: empty. The SNMP issue fills it (poller, metric tables, agent).
