//! A member's load and its BUSY state, as NetScaler computes them for `LOAD` monitors and
//! `CUSTOMLOAD`: each bound metric is normalised to its `metricthreshold` and weighted by its
//! `metricweight`; a member whose metric passes its threshold is BUSY.

use std::sync::Arc;

/// `lbmonitor_metric_binding`: a metric of the monitor's table with its threshold and weight.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricBinding {
    pub metric: Arc<str>,
    /// `metricthreshold`. `None`: the metric is polled and published but counts for nothing.
    pub threshold: Option<f64>,
    /// `metricweight` (NetScaler: 1–100, default 1).
    pub weight: f64,
}

impl MetricBinding {
    pub fn new(metric: &str, threshold: Option<f64>, weight: f64) -> Self {
        Self {
            metric: metric.into(),
            threshold,
            weight,
        }
    }
}

/// What one sample says about a member.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// `Σ weight · value / threshold` over the bound metrics that have a threshold and a value;
    /// `None` when none had both.
    pub load: Option<f64>,
    /// At least one metric is above its threshold. Only active bindings act on it; a passive
    /// binding (`servicegroup_lbmonitor_binding passive`) only informs.
    pub busy: bool,
    /// The metrics above their thresholds.
    pub over: Vec<Arc<str>>,
}

/// Evaluates `values` (metric name → number) against the bindings.
pub fn evaluate(bindings: &[MetricBinding], values: &[(Arc<str>, f64)]) -> Verdict {
    let mut load = None;
    let mut over = Vec::new();
    for binding in bindings {
        let Some(threshold) = binding.threshold else {
            continue;
        };
        let Some(&(_, value)) = values.iter().find(|(name, _)| *name == binding.metric) else {
            continue;
        };
        *load.get_or_insert(0.0) += binding.weight * value / threshold;
        if value > threshold {
            over.push(binding.metric.clone());
        }
    }
    Verdict {
        load,
        busy: !over.is_empty(),
        over,
    }
}

/// CUSTOMLOAD's choice: the member with the lowest load. Members without a load yet (no
/// sample, or none of the bound metrics answered) come after every member with one; ties go to
/// the first in iteration order, so a caller that rotates its start spreads them.
pub fn least_loaded<K>(members: impl IntoIterator<Item = (K, Option<f64>)>) -> Option<K> {
    let mut best: Option<(K, Option<f64>)> = None;
    for (member, load) in members {
        let better = match (&best, load) {
            (None, _) => true,
            (Some((_, None)), Some(_)) => true,
            (Some((_, Some(current))), Some(load)) => load < *current,
            _ => false,
        };
        if better {
            best = Some((member, load));
        }
    }
    best.map(|(member, _)| member)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(cpu: f64, memory: f64) -> Vec<(Arc<str>, f64)> {
        vec![("cpu".into(), cpu), ("memory".into(), memory)]
    }

    fn bindings() -> Vec<MetricBinding> {
        vec![
            MetricBinding::new("cpu", Some(80.0), 2.0),
            MetricBinding::new("memory", Some(90.0), 1.0),
            MetricBinding::new("load", None, 1.0),
        ]
    }

    #[test]
    fn load_is_the_weighted_sum_of_metrics_over_their_thresholds() {
        let verdict = evaluate(&bindings(), &values(40.0, 45.0));
        assert_eq!(verdict.load, Some(2.0 * 40.0 / 80.0 + 45.0 / 90.0));
        assert!(!verdict.busy);
    }

    #[test]
    fn a_metric_over_its_threshold_makes_the_member_busy() {
        let verdict = evaluate(&bindings(), &values(85.0, 10.0));
        assert!(verdict.busy);
        assert_eq!(verdict.over, vec![Arc::<str>::from("cpu")]);
        let at_threshold = evaluate(&bindings(), &values(80.0, 90.0));
        assert!(
            !at_threshold.busy,
            "busy means above, not at, the threshold"
        );
    }

    #[test]
    fn no_value_for_any_bound_metric_means_no_load() {
        let verdict = evaluate(&bindings(), &[("load".into(), 3.0)]);
        assert_eq!(verdict.load, None);
        assert!(!verdict.busy);
    }

    #[test]
    fn customload_picks_the_least_loaded_of_three_members() {
        let samples = [
            ("a", values(70.0, 50.0)),
            ("b", values(20.0, 30.0)),
            ("c", values(40.0, 10.0)),
        ];
        let loads: Vec<_> = samples
            .iter()
            .map(|(m, v)| (*m, evaluate(&bindings(), v).load))
            .collect();
        assert_eq!(least_loaded(loads.clone()), Some("b"));
        // b gets busier: c is now the lightest.
        let mut loads = loads;
        loads[1].1 = evaluate(&bindings(), &values(75.0, 30.0)).load;
        assert_eq!(least_loaded(loads), Some("c"));
    }

    #[test]
    fn members_without_a_load_come_last() {
        assert_eq!(
            least_loaded([("new", None), ("old", Some(3.0))]),
            Some("old")
        );
        assert_eq!(least_loaded([("x", None), ("y", None)]), Some("x"));
        assert_eq!(least_loaded(Vec::<(&str, Option<f64>)>::new()), None);
    }
}
