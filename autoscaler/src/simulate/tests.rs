//! The replay's timings, exactly, and the trace parser's errors.

use std::time::Duration;

use super::*;
use crate::event::EventKind;
use crate::policy::{MetricRule, MetricSource};

/// min 1, max 3; cpu above 70 scales out, below 20 scales in; the defaults' interval 10 s,
/// watch time 60 s, cooldown 120 s, quiet time 60 s, warm-up 30 s.
fn policy() -> Policy {
    Policy::new(
        1,
        3,
        vec![MetricRule {
            name: "cpu".into(),
            source: MetricSource::Snmp("cpu".into()),
            upper: Some(70.0),
            lower: Some(20.0),
        }],
    )
}

/// A trace every 10 s from 0 to `end`, cpu `cpu(t)` (and connections, if given).
fn trace(
    policy: &Policy,
    end: u64,
    cpu: impl Fn(u64) -> f64,
    connections: Option<&dyn Fn(u64) -> u64>,
) -> Trace {
    let mut text = String::from(if connections.is_some() {
        "t,cpu,connections\n"
    } else {
        "t,cpu\n"
    });
    for t in (0..=end).step_by(10) {
        match connections {
            Some(connections) => text += &format!("{t},{},{}\n", cpu(t), connections(t)),
            None => text += &format!("{t},{}\n", cpu(t)),
        }
    }
    Trace::parse(&text, policy).expect("a well-formed trace")
}

/// `"<t> <event> [vm]"` per event.
fn timeline(events: &[SimEvent]) -> Vec<String> {
    events
        .iter()
        .map(|SimEvent(e)| match &e.vm {
            Some(vm) => format!("{} {} {vm}", e.at.as_secs_f64(), e.kind),
            None => format!("{} {}", e.at.as_secs_f64(), e.kind),
        })
        .collect()
}

fn after(events: &[SimEvent], seconds: f64) -> Vec<String> {
    let later: Vec<SimEvent> = events
        .iter()
        .filter(|e| e.0.at.as_secs_f64() > seconds)
        .cloned()
        .collect();
    timeline(&later)
}

#[test]
fn the_first_member_is_deployed_at_the_provision_delay_and_cooldown_ends_at_its_end() {
    let mut policy = policy();
    // Ends at 60 + 125 = 185 s: between two samples.
    policy.cooldown = Duration::from_secs(125);
    let trace = trace(&policy, 200, |_| 50.0, None);
    let events = run(&policy, &trace, Options::default());
    assert_eq!(
        timeline(&events),
        [
            "0 reconciled",
            "0 scale_out_started",
            "60 vm_deployed vm-1",
            "60 member_bound vm-1",
            "60 member_up vm-1",
            "60 cooldown_started",
            "185 cooldown_ended",
        ]
    );
}

#[test]
fn a_member_is_up_at_the_first_sample_after_its_provision_delay() {
    let policy = policy();
    let trace = trace(&policy, 80, |_| 50.0, None);
    let options = Options {
        provision_delay: Duration::from_secs(65),
        ..Options::default()
    };
    let events = run(&policy, &trace, options);
    assert_eq!(
        timeline(&events)[2..],
        [
            "65 vm_deployed vm-1",
            "65 member_bound vm-1",
            "70 member_up vm-1",
            "70 cooldown_started",
        ]
    );
}

#[test]
fn a_breach_one_sample_shorter_than_the_watch_time_does_nothing() {
    let policy = policy();
    // The cooldown of the first member ends at 180; 180..=230 is six samples, 50 s.
    let short = trace(
        &policy,
        300,
        |t| if (180..=230).contains(&t) { 90.0 } else { 50.0 },
        None,
    );
    let events = run(&policy, &short, Options::default());
    assert_eq!(after(&events, 60.0), ["180 cooldown_ended"]);

    // One more sample over the threshold: 60 s, the whole watch time.
    let long = trace(
        &policy,
        300,
        |t| if (180..=240).contains(&t) { 90.0 } else { 50.0 },
        None,
    );
    let events = run(&policy, &long, Options::default());
    assert_eq!(
        after(&events, 60.0),
        [
            "180 cooldown_ended",
            "240 scale_out_started",
            "300 vm_deployed vm-2",
            "300 member_bound vm-2",
            "300 member_up vm-2",
            "300 cooldown_started",
        ]
    );
    let started = &events.iter().find(|e| e.0.at.as_secs() == 240).unwrap().0;
    assert_eq!(started.values, [("cpu".to_string(), 90.0)]);
    assert_eq!(started.members, 1);
}

/// vm-1 at 60, a breach from 180 brings vm-2 at 300 (cooldown to 420), cpu is low from 420:
/// the scale-in starts at 480 and drains vm-2.
fn two_members_then_low(t: u64) -> f64 {
    match t {
        180..=240 => 90.0,
        420.. => 10.0,
        _ => 50.0,
    }
}

#[test]
fn a_drain_whose_connections_reach_zero_finishes_early_and_starts_no_cooldown() {
    let policy = policy();
    let connections = |t: u64| match t {
        ..=480 => 5,
        490 => 3,
        _ => 0,
    };
    let trace = trace(&policy, 600, two_members_then_low, Some(&connections));
    let events = run(&policy, &trace, Options::default());
    assert_eq!(
        after(&events, 420.0),
        [
            "480 scale_in_started vm-2",
            "500 drain_finished vm-2",
            "500 member_unbound vm-2",
            "510 vm_destroyed vm-2",
        ]
    );
    let drained = events.iter().find(|e| e.0.kind == EventKind::DrainFinished);
    assert_eq!(drained.unwrap().0.reason, "no connections left");
}

#[test]
fn without_a_connections_column_a_drain_lasts_its_quiet_time_and_the_cooldown_follows() {
    let policy = policy();
    let trace = trace(&policy, 700, two_members_then_low, None);
    let events = run(&policy, &trace, Options::default());
    assert_eq!(
        after(&events, 420.0),
        [
            "480 scale_in_started vm-2",
            "540 drain_finished vm-2",
            "540 member_unbound vm-2",
            "550 vm_destroyed vm-2",
            "550 cooldown_started",
            "670 cooldown_ended",
        ]
    );
}

#[test]
fn a_deploy_slower_than_the_deploy_timeout_fails_and_backs_off() {
    let mut policy = policy();
    policy.launch.deploy_timeout = Duration::from_secs(30);
    let trace = trace(&policy, 80, |_| 50.0, None);
    let events = run(&policy, &trace, Options::default());
    assert_eq!(
        timeline(&events),
        [
            "0 reconciled",
            "0 scale_out_started",
            "30 deploy_failed vm-1",
            // No member reports a value.
            "30 load_unknown",
            // The failed VM is destroyed; the next launch waits for the 10 s back-off.
            "40 vm_destroyed vm-1",
            "40 scale_out_started",
            "70 deploy_failed vm-2",
            "80 vm_destroyed vm-2",
        ]
    );
    let failed = &events[2].0;
    assert_eq!(
        failed.reason,
        "not Running within the deploy timeout 30s (1 in a row; next launch in 10s at the earliest)"
    );
}

#[test]
fn events_print_as_one_json_object_per_line() {
    let mut policy = policy();
    policy.observe = true;
    let trace = trace(&policy, 10, |_| 50.0, None);
    let lines: Vec<String> = run(&policy, &trace, Options::default())
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        [
            r#"{"t": 0.0, "event": "reconciled", "members": 0, "reason": "0 VMs in the cloud, nothing to change", "values": {}}"#,
            r#"{"t": 0.0, "event": "scale_out_started", "members": 0, "reason": "observe mode, not acted on: 0 members, below minmembers 1", "values": {}, "observed": true}"#,
            r#"{"t": 0.0, "event": "load_unknown", "members": 0, "reason": "no member reports a known value for any metric: no decision", "values": {}}"#,
        ]
    );
    for line in &lines {
        let parsed: serde_json::Value = serde_json::from_str(line).expect("valid JSON");
        assert!(parsed["t"].is_number());
    }
}

#[test]
fn a_vm_event_names_its_vm_and_the_values_behind_it() {
    let policy = policy();
    let trace = trace(&policy, 300, two_members_then_low, None);
    let events = run(&policy, &trace, Options::default());
    let line = events
        .iter()
        .find(|e| e.0.kind == EventKind::MemberUp && e.0.at.as_secs() == 300)
        .unwrap()
        .to_string();
    assert_eq!(
        line,
        r#"{"t": 300.0, "event": "member_up", "members": 2, "vm": "vm-2", "reason": "first health check UP", "values": {"cpu": 50.0}}"#
    );
}

#[test]
fn the_same_input_gives_the_same_output() {
    let policy = policy();
    let trace = trace(&policy, 700, two_members_then_low, None);
    assert_eq!(
        run(&policy, &trace, Options::default()),
        run(&policy, &trace, Options::default())
    );
}

#[test]
fn the_chart_is_an_svg_with_the_metric_and_the_members() {
    let policy = policy();
    let trace = trace(&policy, 700, two_members_then_low, None);
    let events = run(&policy, &trace, Options::default());
    let svg = chart::svg("app-scale", &policy, &trace, &events).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
    for text in [
        "app-scale",
        "cpu (group average)",
        "upper 70",
        "lower 20",
        "members in service",
        "scale-out",
        "scale-in",
    ] {
        assert!(svg.contains(text), "no `{text}` in the chart");
    }
}

mod parse {
    use super::*;

    fn error(text: &str) -> String {
        let mut policy = policy();
        policy.metrics.push(MetricRule {
            name: "rt".into(),
            source: MetricSource::ResponseTime,
            upper: Some(500.0),
            lower: None,
        });
        Trace::parse(text, &policy).unwrap_err().to_string()
    }

    #[test]
    fn a_good_trace_in_any_column_order_with_comments() {
        let text = "# recorded on the 3rd\n\nrt, t ,cpu,connections\n120,0,12.5,3\n\n# later\n130,10.1,20,0\n";
        let mut policy = policy();
        policy.metrics.push(MetricRule {
            name: "rt".into(),
            source: MetricSource::ResponseTime,
            upper: None,
            lower: None,
        });
        let trace = Trace::parse(text, &policy).unwrap();
        assert_eq!(trace.metrics, ["cpu", "rt"]);
        assert!(trace.has_connections);
        assert_eq!(
            trace.samples,
            [
                Sample {
                    at: Duration::ZERO,
                    values: vec![12.5, 120.0],
                    connections: Some(3),
                },
                Sample {
                    at: Duration::from_millis(10_100),
                    values: vec![20.0, 130.0],
                    connections: Some(0),
                },
            ]
        );
    }

    #[test]
    fn a_metric_named_connections_also_gives_the_open_connections() {
        let policy = Policy::new(
            1,
            2,
            vec![MetricRule {
                name: "connections".into(),
                source: MetricSource::Connections,
                upper: Some(200.0),
                lower: Some(10.0),
            }],
        );
        let trace = Trace::parse("t,connections\n0,2.5\n10,0\n", &policy).unwrap();
        assert!(trace.has_connections);
        let connections: Vec<_> = trace.samples.iter().map(|s| s.connections).collect();
        assert_eq!(connections, [Some(3), Some(0)]);
        assert_eq!(trace.samples[0].values, [2.5]);
    }

    #[test]
    fn a_header_without_t() {
        assert_eq!(
            error("cpu,rt\n1,2\n"),
            "line 1: the header has no `t` column (seconds since the start of the trace)"
        );
    }

    #[test]
    fn a_metric_of_the_group_missing_from_the_header() {
        assert_eq!(
            error("t,cpu\n0,1\n"),
            "line 1: the header has no column for the group's metric `rt`"
        );
        assert_eq!(
            error("t\n0\n"),
            "line 1: the header has no column for the group's metrics `cpu`, `rt`"
        );
    }

    #[test]
    fn an_unknown_column_is_an_error() {
        assert_eq!(
            error("t,cpu,rt,conections\n0,1,2,3\n"),
            "line 1, column 4: unknown column `conections`; expected `t`, the group's metrics \
             (cpu, rt) or `connections`"
        );
        assert_eq!(
            error("t,cpu,rt,cpu\n"),
            "line 1, column 4: column `cpu` appears twice"
        );
    }

    #[test]
    fn a_value_that_is_not_a_number() {
        assert_eq!(
            error("t,cpu,rt\n0,1,2\n# note\n10,high,2\n"),
            "line 4, column 2: `high` is not a number"
        );
        assert_eq!(
            error("t,cpu,rt\n0,NaN,2\n"),
            "line 2, column 2: `NaN` is not a number"
        );
        assert_eq!(
            error("t,cpu,rt\n0,1,\n"),
            "line 2, column 3: `` is not a number"
        );
        assert_eq!(
            error("t,cpu,rt,connections\n0,1,2,1.5\n"),
            "line 2, column 4: connections `1.5` is not a whole number"
        );
    }

    #[test]
    fn t_must_increase() {
        assert_eq!(
            error("t,cpu,rt\n0,1,2\n10,1,2\n10,1,2\n"),
            "line 4, column 1: t = 10 is not after the previous sample's t = 10"
        );
        assert_eq!(
            error("t,cpu,rt\n10,1,2\n5,1,2\n"),
            "line 3, column 1: t = 5 is not after the previous sample's t = 10"
        );
        assert_eq!(
            error("t,cpu,rt\n-1,1,2\n"),
            "line 2, column 1: t = -1: expected seconds from 0 to 31536000"
        );
    }

    #[test]
    fn a_row_with_too_few_or_too_many_cells() {
        assert_eq!(
            error("t,cpu,rt\n0,1\n"),
            "line 2: 2 values, but the header has 3 columns"
        );
        assert_eq!(
            error("t,cpu,rt\n0,1,2,3\n"),
            "line 2: 4 values, but the header has 3 columns"
        );
    }

    #[test]
    fn an_empty_trace() {
        assert_eq!(
            error("# nothing\n\n"),
            "the trace is empty: it needs a header such as `t,cpu` and one line per sample"
        );
        assert_eq!(
            error("t,cpu,rt\n"),
            "line 1: the header has a header but no samples"
                .replace("the header has a header", "the trace has a header")
        );
    }
}
