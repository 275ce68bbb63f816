//! The engine's Prometheus families, added to `/metrics` as one collector that reads the
//! shared [`History`] at scrape time:
//!
//! - `ballast_autoscale_members{group,state}`: VMs by state (provisioning, up, down, draining,
//!   destroying); `ballast_autoscale_desired_members{group}`;
//! - `ballast_autoscale_phase{group,phase}`: 1 for the group's current phase;
//! - `ballast_autoscale_events_total{group,kind}`;
//! - `ballast_autoscale_metric_average{group,metric}`: the group averages the rules compare;
//! - `ballast_autoscale_last_scale_out_seconds{group}`: from the start of the breach to the
//!   last new member UP, of the last scale-out;
//! - `ballast_autoscale_launch_suspended{group}`: 1 while launching is suspended.

use std::sync::Arc;

use autoscaler::{EventKind, GroupPhase, History};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

const STATES: [&str; 5] = ["provisioning", "up", "down", "draining", "destroying"];
const PHASES: [GroupPhase; 8] = [
    GroupPhase::Starting,
    GroupPhase::Disabled,
    GroupPhase::Idle,
    GroupPhase::Watching,
    GroupPhase::Provisioning,
    GroupPhase::Cooldown,
    GroupPhase::Draining,
    GroupPhase::Suspended,
];

/// Reads the engine's history at each scrape.
#[derive(Debug)]
pub struct AutoscaleCollector {
    history: Arc<History>,
}

impl AutoscaleCollector {
    pub fn new(history: Arc<History>) -> AutoscaleCollector {
        AutoscaleCollector { history }
    }
}

type Labels<'a> = Vec<(&'static str, &'a str)>;

impl Collector for AutoscaleCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let groups = self.history.groups();
        let counts = self.history.counts();

        let members = groups.iter().flat_map(|(group, record)| {
            STATES.iter().map(move |state| {
                let count = record.status.members.get(state).copied().unwrap_or(0);
                (
                    vec![("group", group.as_str()), ("state", *state)],
                    f64::from(count),
                )
            })
        });
        family(
            &mut encoder,
            "autoscale_members",
            "VMs of an autoscale group by state.",
            None,
            MetricType::Gauge,
            members,
        )?;
        let desired = groups.iter().map(|(group, record)| {
            (
                vec![("group", group.as_str())],
                f64::from(record.status.desired),
            )
        });
        family(
            &mut encoder,
            "autoscale_desired_members",
            "Members an autoscale group is working toward.",
            None,
            MetricType::Gauge,
            desired,
        )?;
        let phases = groups.iter().flat_map(|(group, record)| {
            PHASES.iter().map(move |phase| {
                let current = f64::from(u8::from(record.status.phase == *phase));
                (
                    vec![("group", group.as_str()), ("phase", phase.as_str())],
                    current,
                )
            })
        });
        family(
            &mut encoder,
            "autoscale_phase",
            "1 for the phase an autoscale group is in.",
            None,
            MetricType::Gauge,
            phases,
        )?;
        let events = groups.keys().flat_map(|group| {
            let counts = &counts;
            EventKind::ALL.iter().map(move |kind| {
                let count = counts.get(&(group.clone(), *kind)).copied().unwrap_or(0);
                (
                    vec![("group", group.as_str()), ("kind", kind.as_str())],
                    count as f64,
                )
            })
        });
        family(
            &mut encoder,
            "autoscale_events",
            "Autoscale events by kind.",
            None,
            MetricType::Counter,
            events,
        )?;
        let averages = groups.iter().flat_map(|(group, record)| {
            record
                .status
                .averages
                .iter()
                .filter_map(move |(metric, value)| {
                    Some((
                        vec![("group", group.as_str()), ("metric", metric.as_str())],
                        (*value)?,
                    ))
                })
        });
        family(
            &mut encoder,
            "autoscale_metric_average",
            "Group average of a scaling metric (members in service, past warm-up).",
            None,
            MetricType::Gauge,
            averages,
        )?;
        let latency = groups.iter().filter_map(|(group, record)| {
            let seconds = record.status.last_scale_out?.as_secs_f64();
            Some((vec![("group", group.as_str())], seconds))
        });
        family(
            &mut encoder,
            "autoscale_last_scale_out",
            "From the start of the breach to the last new member UP, of the last scale-out.",
            Some(Unit::Seconds),
            MetricType::Gauge,
            latency,
        )?;
        let suspended = groups.iter().map(|(group, record)| {
            let held = f64::from(u8::from(record.status.phase == GroupPhase::Suspended));
            (vec![("group", group.as_str())], held)
        });
        family(
            &mut encoder,
            "autoscale_launch_suspended",
            "1 while an autoscale group's launching is suspended after failed launches.",
            None,
            MetricType::Gauge,
            suspended,
        )?;
        Ok(())
    }
}

fn family<'a>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    kind: MetricType,
    series: impl IntoIterator<Item = (Labels<'a>, f64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, unit.as_ref(), kind)?;
    for (labels, value) in series {
        let encoder = family.encode_family(&labels)?;
        match kind {
            MetricType::Counter => ConstCounter::new(value as u64).encode(encoder)?,
            _ => ConstGauge::new(value).encode(encoder)?,
        }
    }
    Ok(())
}
