//! Content switching (NetScaler's `csvserver` and `cspolicy`): choosing the `lbvserver` that
//! serves a request from its head. [`rule`] is the policy rule language.

pub mod rule;
