//! A csvserver's switching as one snapshot holds it ([`SwitchPlan`]), compiled once per
//! config, and choosing the target lbvserver of a request from its head ([`SwitchPlan::choose`]).
//!
//! Policies are evaluated lowest priority first; the first whose rule matches names the target.
//! No match goes to `defaultlbvserver`, or, without one, is answered `404`. Hits are counted
//! per bound policy in [`SwitchStats`], which the writer keeps across snapshots.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use http::Request;
use http::header::HOST;
use http::uri::Authority;

use super::rule::{RequestHead, Rule};
use crate::accesslog::Trace;
use crate::http::error::ExchangeError;
use crate::snapshot::VserverPlan;

/// The policies of one csvserver, in the order they are evaluated.
#[derive(Debug)]
pub struct SwitchPlan {
    pub policies: Vec<PolicyPlan>,
    /// `defaultlbvserver`: its name, and its plan (`None` while it is disabled).
    pub default: Option<(Arc<str>, Option<Arc<VserverPlan>>)>,
    pub stats: Arc<SwitchStats>,
}

/// One bound policy.
#[derive(Debug)]
pub struct PolicyPlan {
    pub name: Arc<str>,
    pub priority: u32,
    pub rule: Arc<Rule>,
    pub target_name: Arc<str>,
    /// The target's plan; `None` while the target lbvserver is disabled.
    pub target: Option<Arc<VserverPlan>>,
    /// Requests this binding matched (kept across snapshots).
    pub hits: Arc<AtomicU64>,
}

/// Where a request goes.
#[derive(Debug)]
pub enum Choice<'a> {
    /// A policy matched, or the default took it: the target's name and plan (`None`: the
    /// target is disabled).
    Target {
        name: &'a Arc<str>,
        plan: Option<&'a Arc<VserverPlan>>,
    },
    /// No policy matched and there is no default.
    NoMatch,
}

/// A csvserver's switching counters; they outlive snapshots, like the vserver's own.
#[derive(Debug, Default)]
pub struct SwitchStats {
    /// Requests no policy matched that went to `defaultlbvserver`.
    pub default_hits: AtomicU64,
    /// Requests no policy matched, without a default (answered `404`).
    pub unmatched: AtomicU64,
    /// Hits per policy name (locked only while a snapshot is compiled).
    policy_hits: Mutex<HashMap<String, Arc<AtomicU64>>>,
}

impl SwitchStats {
    /// The hit counter of `policy` on this csvserver, the same one in every snapshot.
    pub fn policy_hits(&self, policy: &str) -> Arc<AtomicU64> {
        let mut hits = self
            .policy_hits
            .lock()
            .expect("policy hit lock is never poisoned");
        hits.entry(policy.to_owned()).or_default().clone()
    }
}

impl SwitchPlan {
    /// The target of `request`, counted as a policy hit, a default hit or a miss.
    pub fn choose<B>(&self, request: &Request<B>) -> Choice<'_> {
        let host = request_host(request);
        let head = RequestHead {
            host: &host,
            path_and_query: request.uri().path_and_query().map_or("/", |pq| pq.as_str()),
            method: request.method().as_str(),
            headers: request.headers(),
        };
        if let Some(policy) = self.policies.iter().find(|p| p.rule.matches(&head)) {
            policy.hits.fetch_add(1, Relaxed);
            return Choice::Target {
                name: &policy.target_name,
                plan: policy.target.as_ref(),
            };
        }
        match &self.default {
            Some((name, plan)) => {
                self.stats.default_hits.fetch_add(1, Relaxed);
                Choice::Target {
                    name,
                    plan: plan.as_ref(),
                }
            }
            None => {
                self.stats.unmatched.fetch_add(1, Relaxed);
                Choice::NoMatch
            }
        }
    }
}

/// The plan that serves `request`: an lbvserver's own, or for a csvserver the target its
/// policies choose (counted as one of the target's requests, and noted in `trace` for the access
/// log). A csvserver's failure to choose is counted on the csvserver.
pub fn route<B>(
    front: Arc<VserverPlan>,
    request: &Request<B>,
    trace: &mut Trace,
) -> Result<Arc<VserverPlan>, ExchangeError> {
    let Some(switch) = &front.switch else {
        return Ok(front);
    };
    let failed = |error: ExchangeError| {
        front.stats.record_error(error);
        Err(error)
    };
    match switch.choose(request) {
        Choice::Target {
            name,
            plan: Some(plan),
        } => {
            trace.switched(name);
            plan.stats.requests.fetch_add(1, Relaxed);
            Ok(plan.clone())
        }
        Choice::Target { name, plan: None } => {
            trace.switched(name);
            tracing::debug!(csvserver = %front.name, lbvserver = %name, "the target lbvserver is disabled: 503");
            failed(ExchangeError::NotConfigured)
        }
        Choice::NoMatch => {
            tracing::debug!(csvserver = %front.name, uri = %request.uri(), "no cspolicy matched and there is no defaultlbvserver: 404");
            failed(ExchangeError::NoSwitchMatch)
        }
    }
}

/// The host a request is for, without its port: the target's authority (HTTP/2's
/// `:authority`, an absolute-form URI) or else `Host`; empty when there is none or it is not a
/// valid host (such a request fails the checks before it reaches a member).
fn request_host<B>(request: &Request<B>) -> String {
    if let Some(authority) = request.uri().authority() {
        return authority.host().to_owned();
    }
    request
        .headers()
        .get(HOST)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<Authority>().ok())
        .map_or_else(String::new, |authority| authority.host().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(rules: &[(&str, &str)], default: bool) -> SwitchPlan {
        let stats = Arc::new(SwitchStats::default());
        let policies = rules
            .iter()
            .enumerate()
            .map(|(i, (name, rule))| PolicyPlan {
                name: (*name).into(),
                priority: i as u32 + 1,
                rule: Arc::new(Rule::parse(rule).unwrap()),
                target_name: format!("to-{name}").into(),
                target: None,
                hits: stats.policy_hits(name),
            })
            .collect();
        SwitchPlan {
            policies,
            default: default.then(|| ("fallback".into(), None)),
            stats,
        }
    }

    fn target<'a>(choice: Choice<'a>) -> Option<&'a str> {
        match choice {
            Choice::Target { name, .. } => Some(name),
            Choice::NoMatch => None,
        }
    }

    fn get(uri: &str, host: Option<&str>) -> Request<()> {
        let mut request = Request::get(uri);
        if let Some(host) = host {
            request = request.header(HOST, host);
        }
        request.body(()).unwrap()
    }

    #[test]
    fn the_first_matching_policy_wins_with_the_host_without_port_or_case() {
        let switch = plan(
            &[
                ("shop", r#"HTTP.REQ.HOSTNAME.EQ("shop.example.com")"#),
                ("api", r#"HTTP.REQ.URL.PATH.STARTSWITH("/api/")"#),
            ],
            true,
        );
        let choose = |uri, host| target(switch.choose(&get(uri, host)));
        assert_eq!(
            choose("/api/x", Some("Shop.Example.COM:8443")),
            Some("to-shop")
        );
        assert_eq!(choose("/api/x", Some("other.example.com")), Some("to-api"));
        assert_eq!(
            choose("http://SHOP.example.com:80/", None),
            Some("to-shop"),
            "absolute-form: its authority is the host"
        );
        assert_eq!(choose("/", Some("[::1]:8080")), Some("fallback"));
        assert_eq!(choose("/", None), Some("fallback"));
        assert_eq!(switch.stats.policy_hits("shop").load(Relaxed), 2);
        assert_eq!(switch.stats.policy_hits("api").load(Relaxed), 1);
        assert_eq!(switch.stats.default_hits.load(Relaxed), 2);
    }

    #[test]
    fn no_match_without_a_default_is_counted_as_unmatched() {
        let switch = plan(&[("api", r#"HTTP.REQ.URL.STARTSWITH("/api")"#)], false);
        assert!(matches!(
            switch.choose(&get("/web", Some("a"))),
            Choice::NoMatch
        ));
        assert_eq!(switch.stats.unmatched.load(Relaxed), 1);
    }
}
