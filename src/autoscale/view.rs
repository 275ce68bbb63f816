//! The engine as the admin API shows it ([`AutoscaleView`]): `config/autoscaleevent` objects
//! and the live figures of `stat/autoscalegroup`.

use std::time::UNIX_EPOCH;

use autoscaler::{EventRecord, GroupRecord};
use ballast_proxy::api::autoscale::AutoscaleView;
use serde_json::{Map, Value, json};

use super::engine::Autoscale;

impl AutoscaleView for Autoscale {
    fn events(&self) -> Vec<Value> {
        self.history()
            .events(|_| true)
            .iter()
            .map(event_json)
            .collect()
    }

    fn group_stats(&self, group: &str) -> Option<Map<String, Value>> {
        self.history()
            .group(group)
            .map(|record| stats_json(&record))
    }

    fn resume(&self, group: &str) -> bool {
        Autoscale::resume(self, group)
    }
}

/// One `autoscaleevent`: `time` is seconds since the Unix epoch (UTC, with milliseconds).
fn event_json(record: &EventRecord) -> Value {
    let event = &record.event;
    let time = record
        .time
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| (d.as_millis() as f64) / 1000.0);
    let values: Map<String, Value> = event
        .values
        .iter()
        .map(|(name, value)| (name.clone(), json!(round(*value))))
        .collect();
    let mut object = json!({
        "seq": record.seq,
        "time": time,
        "group": record.group,
        "kind": event.kind.as_str(),
        "reason": event.reason,
        "members": event.members,
        "values": values,
    });
    if let Some(vm) = &event.vm {
        object["vmid"] = json!(vm);
    }
    if event.observed {
        object["observed"] = json!(true);
    }
    object
}

fn stats_json(record: &GroupRecord) -> Map<String, Value> {
    let status = &record.status;
    let averages: Map<String, Value> = status
        .averages
        .iter()
        .map(|(name, value)| (name.clone(), value.map_or(Value::Null, |v| json!(round(v)))))
        .collect();
    let by_state: Map<String, Value> = status
        .members
        .iter()
        .map(|(state, count)| ((*state).to_string(), json!(count)))
        .collect();
    let mut stats = Map::new();
    stats.insert("phase".into(), json!(status.phase.as_str()));
    stats.insert(
        "phasetimeleft".into(),
        status
            .time_left
            .map_or(Value::Null, |left| json!(round(left.as_secs_f64()))),
    );
    stats.insert("currentmembers".into(), json!(status.current));
    stats.insert("desiredmembers".into(), json!(status.desired));
    stats.insert("membersbystate".into(), Value::Object(by_state));
    stats.insert("averages".into(), Value::Object(averages));
    stats.insert(
        "consecutivefailures".into(),
        json!(status.consecutive_failures),
    );
    stats.insert(
        "lastscaleoutseconds".into(),
        status
            .last_scale_out
            .map_or(Value::Null, |d| json!(round(d.as_secs_f64()))),
    );
    stats.insert("observe".into(), json!(status.observe));
    stats
}

fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
