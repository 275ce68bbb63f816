//! The results of `bench all`: tables of figures per scenario, rendered as `BENCHMARKS.md` and
//! flattened to `bench-results.json` (`scenario.figure.target` and
//! `scenario.figure.ratio_vs_peer` keys, plus `meta.*`). Only figures measured in this run are
//! ever present; a missing one is `—` in the Markdown and absent from the JSON.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Column order of every table.
pub const TARGETS: [(&str, &str); 4] = [
    ("ballast", "Ballast"),
    ("haproxy", "HAProxy"),
    ("nginx", "nginx"),
    ("direct", "direct"),
];
/// Peers Ballast is divided by in the ratio columns.
pub const PEERS: [(&str, &str); 2] = [("haproxy", "HAProxy"), ("nginx", "nginx")];

#[derive(Debug, Clone)]
pub enum Row {
    /// One figure measured for some targets.
    Figure {
        label: String,
        /// `max_rps` → `http1.max_rps.ballast`.
        key: String,
        /// `max_rps` → `http1.max_rps.ratio_vs_haproxy`; `None`: no ratio for this figure.
        ratio_key: Option<String>,
        decimals: usize,
        values: BTreeMap<String, f64>,
    },
    /// A figure (or a whole scenario) this run did not measure, and why.
    NotMeasured {
        label: String,
        key: String,
        why: String,
    },
}

impl Row {
    pub fn figure(label: &str, key: &str, ratio_key: Option<&str>, decimals: usize) -> Self {
        Row::Figure {
            label: label.to_string(),
            key: key.to_string(),
            ratio_key: ratio_key.map(str::to_string),
            decimals,
            values: BTreeMap::new(),
        }
    }

    pub fn not_measured(label: &str, key: &str, why: &str) -> Self {
        Row::NotMeasured {
            label: label.to_string(),
            key: key.to_string(),
            why: why.to_string(),
        }
    }

    /// Sets one target's value; NaN and infinities (nothing measured) are left out.
    pub fn set(&mut self, target: &str, value: f64) {
        if let Row::Figure { values, .. } = self
            && value.is_finite()
        {
            values.insert(target.to_string(), value);
        }
    }
}

#[derive(Debug, Clone)]
pub struct Table {
    /// `http1`, the JSON key prefix.
    pub scenario: String,
    pub title: String,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    /// `(key, value)`: `commit`, `mode`, ...; shown in the header and as `meta.key`.
    pub meta: Vec<(String, String)>,
    /// Shown in capitals at the top (debug build, for one).
    pub warnings: Vec<String>,
    pub method: Vec<String>,
    pub tables: Vec<Table>,
}

/// Ballast's value divided by the peer's, if both were measured and the peer's is not zero.
fn ratio(values: &BTreeMap<String, f64>, peer: &str) -> Option<f64> {
    let b = values.get("ballast")?;
    let p = values.get(peer)?;
    (*p != 0.0).then(|| b / p).filter(|r| r.is_finite())
}

fn cell(value: Option<f64>, decimals: usize) -> String {
    value.map_or("—".to_string(), |v| format!("{v:.decimals$}"))
}

pub fn render_markdown(report: &Report) -> String {
    let mut md = String::from("# Benchmarks: Ballast, HAProxy, nginx and direct\n\n");
    for warning in &report.warnings {
        md.push_str(&format!("> **{warning}**\n\n"));
    }
    for (key, value) in &report.meta {
        md.push_str(&format!("* {key}: {value}\n"));
    }
    md.push_str("\n## Method\n\n");
    for line in &report.method {
        md.push_str(&format!("{line}\n"));
    }
    for table in &report.tables {
        md.push_str(&format!("\n## {} (`{}`)\n\n", table.title, table.scenario));
        md.push_str("| figure |");
        for (_, title) in TARGETS {
            md.push_str(&format!(" {title} |"));
        }
        for (_, title) in PEERS {
            md.push_str(&format!(" Ballast/{title} |"));
        }
        md.push_str("\n|---|");
        md.push_str(&"---:|".repeat(TARGETS.len() + PEERS.len()));
        md.push('\n');
        for row in &table.rows {
            match row {
                Row::Figure {
                    label,
                    ratio_key,
                    decimals,
                    values,
                    ..
                } => {
                    md.push_str(&format!("| {label} |"));
                    for (target, _) in TARGETS {
                        md.push_str(&format!(
                            " {} |",
                            cell(values.get(target).copied(), *decimals)
                        ));
                    }
                    for (peer, _) in PEERS {
                        let r = ratio_key.as_ref().and_then(|_| ratio(values, peer));
                        md.push_str(&format!(" {} |", cell(r, 2)));
                    }
                }
                Row::NotMeasured { label, why, .. } => {
                    md.push_str(&format!("| {label} | not yet measured: {why} |"));
                    md.push_str(&" |".repeat(TARGETS.len() + PEERS.len() - 1));
                }
            }
            md.push('\n');
        }
        for note in &table.notes {
            md.push_str(&format!("\n{note}\n"));
        }
    }
    md
}

/// Every figure and ratio under one flat key, plus `meta.*` and `<scenario>.<key>.not_measured`.
pub fn flat_json(report: &Report) -> Value {
    let mut map = Map::new();
    for (key, value) in &report.meta {
        map.insert(format!("meta.{key}"), Value::from(value.clone()));
    }
    map.insert(
        "meta.warnings".to_string(),
        Value::from(report.warnings.clone()),
    );
    for table in &report.tables {
        let s = &table.scenario;
        for row in &table.rows {
            match row {
                Row::Figure {
                    key,
                    ratio_key,
                    values,
                    ..
                } => {
                    for (target, value) in values {
                        map.insert(format!("{s}.{key}.{target}"), Value::from(*value));
                    }
                    if let Some(ratio_key) = ratio_key {
                        for (peer, _) in PEERS {
                            if let Some(r) = ratio(values, peer) {
                                map.insert(
                                    format!("{s}.{ratio_key}.ratio_vs_{peer}"),
                                    Value::from(r),
                                );
                            }
                        }
                    }
                }
                Row::NotMeasured { key, why, .. } => {
                    map.insert(format!("{s}.{key}.not_measured"), Value::from(why.clone()));
                }
            }
        }
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let mut rps = Row::figure("max req/s", "max_rps", Some("max_rps"), 0);
        rps.set("ballast", 30000.0);
        rps.set("haproxy", 40000.0);
        rps.set("nginx", f64::NAN);
        rps.set("direct", 60000.0);
        Report {
            meta: vec![("commit".into(), "abc1234".into())],
            warnings: vec![],
            method: vec!["one line".into()],
            tables: vec![Table {
                scenario: "http1".into(),
                title: "HTTP/1.1".into(),
                rows: vec![
                    rps,
                    Row::not_measured("h2c req/s", "max_rps_h2", "no h2c client yet"),
                ],
                notes: vec![],
            }],
        }
    }

    #[test]
    fn missing_peer_is_a_dash_and_absent_from_json() {
        let r = report();
        let md = render_markdown(&r);
        assert!(
            md.contains("| max req/s | 30000 | 40000 | — | 60000 | 0.75 | — |"),
            "{md}"
        );
        assert!(md.contains("not yet measured: no h2c client yet"));
        let json = flat_json(&r);
        assert_eq!(json["http1.max_rps.ballast"], 30000.0);
        assert_eq!(json["http1.max_rps.ratio_vs_haproxy"], 0.75);
        assert!(json.get("http1.max_rps.nginx").is_none());
        assert!(json.get("http1.max_rps.ratio_vs_nginx").is_none());
        assert_eq!(json["meta.commit"], "abc1234");
        assert_eq!(json["http1.max_rps_h2.not_measured"], "no h2c client yet");
    }
}
