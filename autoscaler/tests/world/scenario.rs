//! One seed's scenario: the group's policy, how often each fault strikes, and how long the
//! world runs (a chaotic part with faults, then a calm part in which the group must settle).

use std::time::Duration;

use autoscaler::{LaunchLimits, MetricRule, MetricSource, Policy, Victim};

use super::rng::Rng;

#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    pub policy: Policy,
    /// Faults strike until then ...
    pub chaos: Duration,
    /// ... then nothing fails, load is steady, and after `settle` the group must be settled.
    pub calm: Duration,
    pub settle: Duration,
    pub faults: Faults,
    /// A member from the config file (not autoscaled) is in the servicegroup too.
    pub config_member: bool,
}

/// Probabilities (per call, per VM per sample for crashes) and the mean time between engine
/// restarts, while the world is chaotic.
#[derive(Debug, Clone)]
pub struct Faults {
    pub deploy_refused: f64,
    /// A transport error before the request reached the cloud (no VM) ...
    pub lost_before: f64,
    /// ... or after the cloud created the VM: either way the core hears `Uncertain`.
    pub lost_after: f64,
    pub fails_leaving_vm: f64,
    pub fails_without_vm: f64,
    pub never_running: f64,
    /// Polling the deploy job fails for good: the driver gives the launch up (the VM boots).
    pub poll_fails: f64,
    /// Running, but its workload never answers a health check.
    pub never_healthy: f64,
    pub crash: f64,
    /// An operator destroys the VM behind the engine's back.
    pub vanish: f64,
    pub bind_fails: f64,
    pub unbind_fails: f64,
    pub destroy_fails: f64,
    pub list_fails: f64,
    pub restart_mean: Duration,
    /// At a restart, the proxy keeps its members (the engine alone restarted) rather than
    /// losing every autoscaled member (the whole process restarted).
    pub proxy_kept: f64,
}

impl Faults {
    /// The calm part: nothing fails.
    pub fn none() -> Faults {
        Faults {
            deploy_refused: 0.0,
            lost_before: 0.0,
            lost_after: 0.0,
            fails_leaving_vm: 0.0,
            fails_without_vm: 0.0,
            never_running: 0.0,
            poll_fails: 0.0,
            never_healthy: 0.0,
            crash: 0.0,
            vanish: 0.0,
            bind_fails: 0.0,
            unbind_fails: 0.0,
            destroy_fails: 0.0,
            list_fails: 0.0,
            restart_mean: Duration::MAX,
            proxy_kept: 1.0,
        }
    }
}

impl Scenario {
    pub fn from_seed(seed: u64) -> Scenario {
        let mut rng = Rng::new(seed ^ 0x5eed_5eed_5eed_5eed);
        let min = rng.pick(&[0, 1, 1, 2, 3]);
        let max = (min + rng.range(0, 4) as u32).max(1);
        let mut metrics = vec![MetricRule {
            name: "cpu".into(),
            source: MetricSource::Snmp("cpu".into()),
            upper: Some(70.0),
            lower: Some(30.0),
        }];
        match rng.range(0, 2) {
            0 => {}
            1 => metrics.push(MetricRule {
                name: "memory".into(),
                source: MetricSource::Snmp("memory".into()),
                upper: Some(85.0),
                lower: None,
            }),
            _ => metrics.push(MetricRule {
                name: "connections".into(),
                source: MetricSource::Connections,
                upper: Some(60.0),
                lower: Some(15.0),
            }),
        }
        let policy = Policy {
            min_members: min,
            max_members: max,
            interval: Duration::from_secs(10),
            watch_time: Duration::from_secs(rng.pick(&[20, 30, 60])),
            cooldown: Duration::from_secs(rng.pick(&[0, 60, 120, 120, 180])),
            quiet_time: Duration::from_secs(rng.pick(&[20, 60, 120])),
            destroy_grace_period: Duration::from_secs(rng.pick(&[0, 0, 15])),
            warmup: Duration::from_secs(rng.pick(&[0, 20, 30])),
            health_grace_period: Duration::from_secs(rng.pick(&[30, 60, 90])),
            step: rng.pick(&[1, 1, 2, 3]),
            victim: rng.pick(&[Victim::Newest, Victim::Oldest, Victim::LeastConnections]),
            enabled: true,
            observe: false,
            metrics,
            launch: LaunchLimits {
                retry_backoff: Duration::from_secs(10),
                max_retry_backoff: Duration::from_secs(80),
                suspend_after: rng.pick(&[3, 5]),
                suspension: Duration::from_secs(300),
                deploy_timeout: Duration::from_secs(120),
            },
        };
        let f = 0.5 + rng.unit();
        let faults = Faults {
            deploy_refused: 0.05 * f,
            lost_before: 0.05 * f,
            lost_after: 0.07 * f,
            fails_leaving_vm: 0.05 * f,
            fails_without_vm: 0.04 * f,
            never_running: 0.04 * f,
            poll_fails: 0.02 * f,
            never_healthy: 0.04 * f,
            crash: 0.002 * f,
            vanish: 0.0005 * f,
            bind_fails: 0.05 * f,
            unbind_fails: 0.1 * f,
            destroy_fails: 0.15 * f,
            list_fails: 0.15 * f,
            restart_mean: Duration::from_secs(rng.pick(&[600, 900, 1800])),
            proxy_kept: 0.5,
        };
        Scenario {
            seed,
            policy,
            chaos: Duration::from_secs(7200),
            calm: Duration::from_secs(1500),
            settle: Duration::from_secs(1000),
            faults,
            config_member: rng.chance(0.25),
        }
    }
}
