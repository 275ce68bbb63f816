//! Content switching (NetScaler's `csvserver` and `cspolicy`): choosing the `lbvserver` that
//! serves a request from its head. [`rule`] is the policy rule language, [`plan`] a
//! csvserver's compiled policies and the choice they make for a request.

pub mod plan;
pub mod rule;
