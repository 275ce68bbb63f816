//! What one `reconfig` run measured, and the table it makes.

use tokio::time::Duration;

use super::{HEAVY, Plan, WATCH};
use crate::histogram::Histogram;
use crate::loadgen::LoadResult;
use crate::markdown::Row;
use crate::report::median;

/// A member that starts taking requests: the API round trip, and the time from the call until
/// the member's first request.
#[derive(Debug, Clone, Copy)]
pub(super) struct Started {
    pub(super) api: Duration,
    pub(super) served: Duration,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Repetition {
    pub(super) bind: Started,
    pub(super) weight: Started,
    pub(super) disable_api: Duration,
    pub(super) unbind_api: Duration,
    /// Requests the disabled and the unbound member got after the API answered.
    pub(super) after_stop: usize,
}

impl Repetition {
    pub(super) fn round_trips(&self) -> [Duration; 4] {
        [
            self.bind.api,
            self.weight.api,
            self.disable_api,
            self.unbind_api,
        ]
    }
}

/// What one run measured.
pub(super) struct Outcome {
    pub(super) members: usize,
    /// From Ballast's start until the API said every member was UP.
    pub(super) startup: Duration,
    pub(super) rss: u64,
    pub(super) reps: Vec<Repetition>,
    /// The load with no change.
    pub(super) quiet: LoadResult,
    /// The load during the changes.
    pub(super) load: LoadResult,
    /// Summed over the group's members, after the changes.
    pub(super) connect_failures: u64,
}

impl Outcome {
    /// Requests of the load during the changes that failed or got no answer.
    pub(super) fn failed(&self) -> u64 {
        self.load.errors + self.load.unfinished
    }

    pub(super) fn sent(&self) -> u64 {
        self.load.requests + self.failed()
    }

    pub(super) fn rows(&self, plan: &Plan) -> Vec<Row> {
        let mut rows = vec![
            figure(
                "members in the servicegroup, all UP",
                "members",
                0,
                self.members as f64,
            ),
            figure(
                "Ballast start until every member is UP, s",
                "startup_s",
                1,
                self.startup.as_secs_f64(),
            ),
        ];
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let med =
            |f: fn(&Repetition) -> Duration| median(self.reps.iter().map(|r| ms(f(r))).collect());
        let n = self.members;
        rows.extend([
            figure(
                &format!("bind a member (weight {HEAVY}) to the {n}-member group: API round trip, ms"),
                "bind_api_ms",
                2,
                med(|r| r.bind.api),
            ),
            figure(
                "… from the call until the new member gets a request, ms",
                "bind_served_ms",
                2,
                med(|r| r.bind.served),
            ),
            figure(
                &format!("change a member's weight 1 → {HEAVY}: API round trip, ms"),
                "weight_api_ms",
                2,
                med(|r| r.weight.api),
            ),
            figure(
                "… from the call until that member gets a request, ms",
                "weight_served_ms",
                2,
                med(|r| r.weight.served),
            ),
            figure(
                "disable a member gracefully: API round trip, ms",
                "disable_api_ms",
                2,
                med(|r| r.disable_api),
            ),
            figure(
                "unbind a member: API round trip, ms",
                "unbind_api_ms",
                2,
                med(|r| r.unbind_api),
            ),
            figure(
                "slowest API round trip of all changes, ms",
                "api_max_ms",
                2,
                self.reps.iter()
                    .flat_map(Repetition::round_trips)
                    .map(ms)
                    .fold(0.0, f64::max),
            ),
            figure(
                "slowest time until a bound or reweighted member gets a request, ms",
                "served_max_ms",
                2,
                self.reps.iter()
                    .flat_map(|r| [r.bind.served, r.weight.served])
                    .map(ms)
                    .fold(0.0, f64::max),
            ),
            figure(
                &format!(
                    "requests a disabled or unbound member got after the API answered ({} ms watched)",
                    WATCH.as_millis()
                ),
                "requests_after_stop",
                0,
                self.reps.iter().map(|r| r.after_stop as f64).sum(),
            ),
            figure(
                &format!(
                    "requests during the changes ({} req/s, open loop)",
                    plan.rate
                ),
                "requests",
                0,
                self.sent() as f64,
            ),
            figure(
                "requests failed during the changes (non-2xx, transport error, no answer)",
                "requests_failed",
                0,
                self.failed() as f64,
            ),
            figure(
                "p99 latency during the changes, ms",
                "p99_ms",
                2,
                p99_ms(&self.load.latency),
            ),
            figure(
                &format!(
                    "p99 latency with no change ({:?} before them), ms",
                    plan.baseline
                ),
                "p99_no_change_ms",
                2,
                p99_ms(&self.quiet.latency),
            ),
            figure(
                "maximum latency during the changes, ms",
                "max_latency_ms",
                2,
                max_ms(&self.load.latency),
            ),
            figure(
                "maximum latency with no change, ms",
                "max_latency_no_change_ms",
                2,
                max_ms(&self.quiet.latency),
            ),
            figure(
                "connect failures to members (every member listens: 0)",
                "member_connect_failures",
                0,
                self.connect_failures as f64,
            ),
            figure(
                &format!("Ballast RSS with the {n}-member group, MB"),
                "rss_mb",
                1,
                self.rss as f64 / 1e6,
            ),
        ]);
        rows
    }
}

pub(super) fn p99_ms(latency: &Histogram) -> f64 {
    latency.quantile(0.99) as f64 / 1e6
}

pub(super) fn max_ms(latency: &Histogram) -> f64 {
    latency.max() as f64 / 1e6
}

/// A Ballast figure (no peer, so no ratio).
fn figure(label: &str, key: &str, decimals: usize, value: f64) -> Row {
    let mut row = Row::figure(label, key, None, decimals);
    row.set("ballast", value);
    row
}
