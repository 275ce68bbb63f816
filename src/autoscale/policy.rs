//! A validated `[[autoscalegroup]]` → the engine's [`Policy`]. `ballast run` and
//! `ballast simulate` use the same conversion, so a simulated policy is the one that runs.

use std::time::Duration;

use autoscaler::{LaunchLimits, MetricRule, MetricSource, Policy, Victim};
use ballast_proxy::config::{self, AutoscaleGroup};

/// The engine's view of `group`. Failed launches back off from twice the interval (at least
/// 1 s, at most 1 min) and double up to 5 min; three in a row suspend launching for 30 min
/// or until an operator enables the group again.
pub fn policy(group: &AutoscaleGroup) -> Policy {
    let retry_backoff = (group.interval * 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
    Policy {
        min_members: group.min_members,
        max_members: group.max_members,
        interval: group.interval,
        watch_time: group.watch_time,
        cooldown: group.cooldown,
        quiet_time: group.quiet_time,
        destroy_grace_period: group.destroy_grace_period,
        warmup: group.warmup,
        health_grace_period: group.health_grace_period,
        step: group.step,
        victim: match group.victim {
            config::Victim::Newest => Victim::Newest,
            config::Victim::Oldest => Victim::Oldest,
            config::Victim::LeastConnections => Victim::LeastConnections,
        },
        enabled: group.enabled,
        observe: group.observe,
        metrics: group.metrics.iter().map(rule).collect(),
        launch: LaunchLimits {
            retry_backoff,
            deploy_timeout: group.deploy_timeout,
            ..LaunchLimits::default()
        },
    }
}

fn rule(metric: &config::ScalingMetric) -> MetricRule {
    let source = match metric.source {
        config::MetricSource::Snmp => MetricSource::Snmp(metric.name.clone()),
        config::MetricSource::Connections => MetricSource::Connections,
        config::MetricSource::RequestRate => MetricSource::RequestRate,
        config::MetricSource::ResponseTime => MetricSource::ResponseTime,
    };
    MetricRule {
        name: metric.name.clone(),
        source,
        upper: metric.upper,
        lower: metric.lower,
    }
}
