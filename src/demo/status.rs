//! The demo's live status, once a second. On a terminal: a block redrawn in place (cursor up,
//! clear each line, autowrap off so a narrow window cannot break the count) with the load, the
//! group's metric against its thresholds, every member and its state, the engine's phase and
//! the last events. Anywhere else (a pipe, a file, CI): one plain line a second, and each
//! event on its own line as it happens.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, SystemTime};

use autoscaler::{EventKind, EventRecord};

use super::Sample;

/// Events shown in the terminal block.
const EVENT_LINES: usize = 5;
/// The block's width when the terminal does not say.
const WIDTH: usize = 80;

/// What the group is configured to do, for the display.
#[derive(Debug, Clone)]
pub struct GroupInfo {
    pub name: String,
    pub vserver: String,
    pub metric: String,
    pub upper: Option<f64>,
    pub lower: Option<f64>,
    pub min_members: u32,
    pub max_members: u32,
}

/// Writes the status to stdout.
#[derive(Debug)]
pub struct StatusView {
    tty: bool,
    drawn: usize,
    shown_events: u64,
    started: SystemTime,
}

impl StatusView {
    pub fn new(tty: bool, started: SystemTime) -> StatusView {
        StatusView {
            tty,
            drawn: 0,
            shown_events: 0,
            started,
        }
    }

    /// Shows one second: `events` are all the group's events so far, oldest first.
    pub fn show(&mut self, sample: &Sample, group: &GroupInfo, events: &[EventRecord]) {
        let text = if self.tty {
            self.block(sample, group, events)
        } else {
            self.plain(sample, group, events)
        };
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    fn block(&mut self, sample: &Sample, group: &GroupInfo, events: &[EventRecord]) -> String {
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse::<usize>().ok())
            .unwrap_or(WIDTH)
            .max(40);
        let mut lines = vec![
            format!(
                "ballast demo {}  {}",
                clock(sample.t),
                match sample.target_rate {
                    Some(rate) => format!("load {rate:.0} req/s (ramp)"),
                    None => "load: yours (Ctrl-C stops)".to_string(),
                }
            ),
            format!(
                "  requests {:>5}/s   p99 {:>7}   errors {}",
                sample.load.ok,
                sample.load.p99.map_or("-".to_string(), |p| format!(
                    "{:.1} ms",
                    p.as_secs_f64() * 1e3
                )),
                sample.errors_total
            ),
            metric_line(sample, group),
            format!(
                "  members  {}/{} {}",
                sample.current,
                group.max_members,
                members_text(events, &sample.states)
            ),
            format!(
                "  phase    {}{}",
                sample.phase,
                sample
                    .time_left
                    .map_or(String::new(), |t| format!(" ({}s left)", t.as_secs()))
            ),
            "  last events".to_string(),
        ];
        let shown: Vec<&EventRecord> = events
            .iter()
            .filter(|e| headline(e.event.kind).is_some())
            .collect();
        let first = shown.len().saturating_sub(EVENT_LINES);
        for record in &shown[first..] {
            lines.push(format!("    {}", event_text(record, self.started)));
        }
        for _ in shown.len() - first..EVENT_LINES {
            lines.push(String::new());
        }
        let mut text = String::from("\x1b[?7l");
        if self.drawn > 0 {
            text.push_str(&format!("\x1b[{}A", self.drawn));
        }
        for line in &lines {
            text.push_str("\r\x1b[2K");
            text.extend(line.chars().take(width - 1));
            text.push('\n');
        }
        text.push_str("\x1b[?7h");
        self.drawn = lines.len();
        text
    }

    fn plain(&mut self, sample: &Sample, group: &GroupInfo, events: &[EventRecord]) -> String {
        let mut text = String::new();
        for record in events.iter().filter(|e| e.seq > self.shown_events) {
            if headline(record.event.kind).is_some() {
                text.push_str(&format!("event {}\n", event_text(record, self.started)));
            }
        }
        if let Some(last) = events.last() {
            self.shown_events = self.shown_events.max(last.seq);
        }
        text.push_str(&format!(
            "t={} rps={} p99_ms={} errors={} {}={} members={}/{} ({}) phase={}\n",
            sample.t.as_secs(),
            sample.load.ok,
            sample
                .load
                .p99
                .map_or("-".to_string(), |p| format!("{:.1}", p.as_secs_f64() * 1e3)),
            sample.errors_total,
            group.metric,
            sample
                .average
                .map_or("-".to_string(), |v| format!("{v:.1}")),
            sample.current,
            group.max_members,
            members_text(events, &sample.states),
            sample.phase,
        ));
        text
    }
}

fn metric_line(sample: &Sample, group: &GroupInfo) -> String {
    const BAR: usize = 30;
    let value = sample.average;
    let filled = value.map_or(0, |v| ((v.clamp(0.0, 100.0) / 100.0) * BAR as f64) as usize);
    let mut bar: Vec<char> = std::iter::repeat_n('#', filled)
        .chain(std::iter::repeat_n('.', BAR - filled))
        .collect();
    for threshold in [group.lower, group.upper].into_iter().flatten() {
        let at = ((threshold.clamp(0.0, 100.0) / 100.0) * BAR as f64) as usize;
        if let Some(cell) = bar.get_mut(at.min(BAR - 1)) {
            *cell = '|';
        }
    }
    let state = match (value, group.upper, group.lower) {
        (Some(v), Some(upper), _) if v > upper => "above upper",
        (Some(v), _, Some(lower)) if v < lower => "below lower",
        (Some(_), _, _) => "in band",
        (None, _, _) => "no reading yet",
    };
    format!(
        "  {:<8} {:>5} % [{}] {} ({}..{})",
        group.metric,
        value.map_or("-".to_string(), |v| format!("{v:.1}")),
        bar.into_iter().collect::<String>(),
        state,
        group.lower.map_or("-".to_string(), |v| format!("{v}")),
        group.upper.map_or("-".to_string(), |v| format!("{v}")),
    )
}

/// Each VM the events name, with its state: `vm-1 up, vm-2 provisioning`; deploys whose VM
/// is not named yet are counted from the engine's status.
fn members_text(events: &[EventRecord], states: &BTreeMap<&'static str, u32>) -> String {
    let mut vms: BTreeMap<String, &'static str> = BTreeMap::new();
    for record in events {
        let Some(vm) = &record.event.vm else {
            continue;
        };
        let state = match record.event.kind {
            EventKind::VmDeployed | EventKind::MemberBound => "provisioning",
            EventKind::MemberUp => "up",
            EventKind::ScaleInStarted => "draining",
            EventKind::DrainFinished | EventKind::MemberUnbound => "leaving",
            EventKind::VmDestroyed | EventKind::MemberReplaced | EventKind::DeployFailed => {
                vms.remove(short(vm));
                continue;
            }
            _ => continue,
        };
        vms.insert(short(vm).to_string(), state);
    }
    let named = vms.values().filter(|s| **s == "provisioning").count() as u32;
    let unnamed = states
        .get("provisioning")
        .copied()
        .unwrap_or(0)
        .saturating_sub(named);
    let mut parts: Vec<String> = vms
        .iter()
        .map(|(vm, state)| format!("{vm} {state}"))
        .collect();
    if unnamed > 0 {
        parts.push(format!("+{unnamed} deploying"));
    }
    if parts.is_empty() {
        "none yet".to_string()
    } else {
        parts.join(", ")
    }
}

/// The events the status shows, by the words it shows them with.
fn headline(kind: EventKind) -> Option<&'static str> {
    Some(match kind {
        EventKind::ScaleOutStarted => "scale-out",
        EventKind::MemberUp => "member up",
        EventKind::CooldownStarted => "cooldown",
        EventKind::ScaleInStarted => "scale-in",
        EventKind::DrainFinished => "drained",
        EventKind::VmDestroyed => "destroyed",
        EventKind::DeployFailed => "deploy failed",
        EventKind::LaunchSuspended => "suspended",
        EventKind::MemberReplaced => "replaced",
        _ => return None,
    })
}

fn event_text(record: &EventRecord, started: SystemTime) -> String {
    let at = record
        .time
        .duration_since(started)
        .unwrap_or(Duration::ZERO);
    let vm = record
        .event
        .vm
        .as_deref()
        .map_or(String::new(), |vm| format!(" {}", short(vm)));
    format!(
        "{} {}{}: {}",
        clock(at),
        headline(record.event.kind).unwrap_or("event"),
        vm,
        record.event.reason
    )
}

/// A VM id's first 8 characters: enough to tell this run's VMs apart on one line.
fn short(vm: &str) -> &str {
    vm.char_indices().nth(8).map_or(vm, |(end, _)| &vm[..end])
}

/// `m:ss`.
pub fn clock(t: Duration) -> String {
    let s = t.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use autoscaler::Event;

    use super::*;

    fn record(seq: u64, kind: EventKind, vm: Option<&str>) -> EventRecord {
        EventRecord {
            seq,
            time: SystemTime::UNIX_EPOCH,
            group: "g".into(),
            event: Event {
                at: Duration::ZERO,
                kind,
                reason: String::new(),
                members: 0,
                vm: vm.map(String::from),
                values: Vec::new(),
                observed: false,
            },
        }
    }

    #[test]
    fn members_follow_their_events_and_unnamed_deploys_are_counted() {
        let events = [
            record(1, EventKind::VmDeployed, Some("11111111-aaaa")),
            record(2, EventKind::MemberUp, Some("11111111-aaaa")),
            record(3, EventKind::VmDeployed, Some("22222222-bbbb")),
            record(4, EventKind::MemberUp, Some("22222222-bbbb")),
            record(5, EventKind::ScaleInStarted, Some("22222222-bbbb")),
            record(6, EventKind::VmDeployed, Some("33333333-cccc")),
            record(7, EventKind::DeployFailed, Some("33333333-cccc")),
        ];
        let states = BTreeMap::from([("provisioning", 1), ("up", 1), ("draining", 1)]);
        assert_eq!(
            members_text(&events, &states),
            "11111111 up, 22222222 draining, +1 deploying"
        );
        assert_eq!(members_text(&[], &BTreeMap::new()), "none yet");
    }

    #[test]
    fn the_plain_fallback_prints_each_event_once_and_one_line_a_second() {
        let mut view = StatusView::new(false, SystemTime::UNIX_EPOCH);
        let group = GroupInfo {
            name: "g".into(),
            vserver: "web".into(),
            metric: "cpu".into(),
            upper: Some(70.0),
            lower: Some(25.0),
            min_members: 1,
            max_members: 5,
        };
        let sample = Sample {
            t: Duration::from_secs(3),
            average: Some(42.0),
            current: 1,
            phase: "watching",
            ..Sample::default()
        };
        let events = [record(1, EventKind::ScaleOutStarted, None)];
        let first = view.plain(&sample, &group, &events);
        assert_eq!(
            first,
            "event 0:00 scale-out: \n\
             t=3 rps=0 p99_ms=- errors=0 cpu=42.0 members=1/5 (none yet) phase=watching\n"
        );
        let second = view.plain(&sample, &group, &events);
        assert_eq!(second.lines().count(), 1, "{second}");
    }
}
