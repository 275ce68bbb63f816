//! The trace: a CSV file of samples. The header names the columns: `t` (seconds since the
//! start of the trace), one column per metric of the group (the group average of that
//! metric at that sample), and optionally `connections` (the open connections each member
//! reports, which decides when a draining member is empty). Each further line is one sample.
//!
//! ```text
//! # t in seconds; cpu is the group's average
//! t,cpu,connections
//! 0,20,4
//! 10,85,30
//! ```
//!
//! Cells are separated by commas and trimmed; there is no quoting. Blank lines and lines
//! starting with `#` are skipped. Every cell is a number: `t` finite, not negative and
//! strictly increasing; metric values finite; `connections` a whole number. (When one of the
//! group's metrics is itself named `connections`, as a metric with `source = "connections"`
//! often is, its column gives both that metric and the open connections, rounded up.)
//! A column that is none of these is an error rather than ignored: a misspelt `connections`
//! or metric name would otherwise change the result without a word. Errors name the line and
//! column (both counted from 1).

use std::fmt;
use std::time::Duration;

use crate::policy::Policy;

/// A parsed trace, its metric values in the policy's metric order.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// The policy's metric names, in the order of [`Sample::values`].
    pub metrics: Vec<String>,
    pub samples: Vec<Sample>,
    /// Whether the trace has a `connections` column.
    pub has_connections: bool,
}

/// One row: one sample of the group.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Since the start of the trace (the engine's origin).
    pub at: Duration,
    /// One value per policy metric, in the policy's order.
    pub values: Vec<f64>,
    /// The open connections each member reports (`None`: no `connections` column).
    pub connections: Option<u64>,
}

/// What is wrong with a trace, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TraceError {
    /// 1-based; 0 when the problem is the whole trace.
    pub line: usize,
    /// 1-based, when one cell is at fault.
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => f.write_str(&self.message),
            (line, Some(column)) => write!(f, "line {line}, column {column}: {}", self.message),
            (line, None) => write!(f, "line {line}: {}", self.message),
        }
    }
}

/// The column `connections` names, besides `t` and the metrics.
pub const CONNECTIONS: &str = "connections";

/// What a header column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Time,
    Metric(usize),
    Connections,
}

impl Trace {
    /// Parses `text` for `policy`: every metric of the policy must have a column.
    pub fn parse(text: &str, policy: &Policy) -> Result<Trace, TraceError> {
        let metrics: Vec<String> = policy.metrics.iter().map(|m| m.name.clone()).collect();
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(index, line)| (index + 1, line.trim()))
            .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'));
        let Some((header_line, header)) = lines.next() else {
            return Err(TraceError {
                line: 0,
                column: None,
                message: "the trace is empty: it needs a header such as `t,cpu` and one line \
                          per sample"
                    .into(),
            });
        };
        let columns = parse_header(header_line, header, &metrics)?;
        let has_connections = columns.contains(&Column::Connections)
            || metrics.iter().any(|name| name == CONNECTIONS);

        let mut samples: Vec<Sample> = Vec::new();
        for (line, text) in lines {
            let cells: Vec<&str> = text.split(',').map(str::trim).collect();
            if cells.len() != columns.len() {
                return Err(TraceError {
                    line,
                    column: None,
                    message: format!(
                        "{} values, but the header has {} columns",
                        cells.len(),
                        columns.len()
                    ),
                });
            }
            let mut at = Duration::ZERO;
            let mut values = vec![0.0; metrics.len()];
            let mut connections = None;
            for (index, (cell, column)) in cells.iter().zip(&columns).enumerate() {
                let error = |message: String| TraceError {
                    line,
                    column: Some(index + 1),
                    message,
                };
                match column {
                    Column::Time => {
                        let seconds = number(cell).map_err(error)?;
                        if !(0.0..=MAX_SECONDS).contains(&seconds) {
                            return Err(error(format!(
                                "t = {cell}: expected seconds from 0 to {MAX_SECONDS}"
                            )));
                        }
                        // Whole nanoseconds, rounded: `10.1` is 10.1 s, not 10.099999999 s.
                        at = Duration::from_nanos((seconds * 1e9).round() as u64);
                        if let Some(previous) = samples.last()
                            && at <= previous.at
                        {
                            return Err(error(format!(
                                "t = {cell} is not after the previous sample's t = {}",
                                previous.at.as_secs_f64()
                            )));
                        }
                    }
                    Column::Metric(metric) => {
                        let value = number(cell).map_err(error)?;
                        values[*metric] = value;
                        if metrics[*metric] == CONNECTIONS {
                            // Also the members' open connections: any at all counts.
                            connections = Some(value.max(0.0).ceil() as u64);
                        }
                    }
                    Column::Connections => {
                        connections = Some(cell.parse::<u64>().map_err(|_| {
                            error(format!("connections `{cell}` is not a whole number"))
                        })?);
                    }
                }
            }
            samples.push(Sample {
                at,
                values,
                connections,
            });
        }
        if samples.is_empty() {
            return Err(TraceError {
                line: header_line,
                column: None,
                message: "the trace has a header but no samples".into(),
            });
        }
        Ok(Trace {
            metrics,
            samples,
            has_connections,
        })
    }

    /// The time of the last sample: where the simulation ends.
    pub fn end(&self) -> Duration {
        self.samples.last().map_or(Duration::ZERO, |s| s.at)
    }
}

/// A year: far beyond any trace, and well inside what a `Duration` holds.
const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

fn parse_header(line: usize, header: &str, metrics: &[String]) -> Result<Vec<Column>, TraceError> {
    let mut columns = Vec::new();
    for (index, name) in header.split(',').map(str::trim).enumerate() {
        let error = |message: String| TraceError {
            line,
            column: Some(index + 1),
            message,
        };
        let column = if name == "t" {
            Column::Time
        } else if let Some(metric) = metrics.iter().position(|m| m == name) {
            Column::Metric(metric)
        } else if name == CONNECTIONS {
            Column::Connections
        } else if name.is_empty() {
            return Err(error("empty column name".into()));
        } else {
            return Err(error(format!(
                "unknown column `{name}`; expected `t`, the group's metrics ({}) or `{CONNECTIONS}`",
                metrics.join(", ")
            )));
        };
        if columns.contains(&column) {
            return Err(error(format!("column `{name}` appears twice")));
        }
        columns.push(column);
    }
    if !columns.contains(&Column::Time) {
        return Err(TraceError {
            line,
            column: None,
            message: "the header has no `t` column (seconds since the start of the trace)".into(),
        });
    }
    let missing: Vec<&str> = metrics
        .iter()
        .enumerate()
        .filter(|(index, _)| !columns.contains(&Column::Metric(*index)))
        .map(|(_, name)| name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(TraceError {
            line,
            column: None,
            message: format!(
                "the header has no column for the group's metric{} {}",
                if missing.len() == 1 { "" } else { "s" },
                missing
                    .iter()
                    .map(|name| format!("`{name}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    Ok(columns)
}

fn number(cell: &str) -> Result<f64, String> {
    match cell.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        _ => Err(format!("`{cell}` is not a number")),
    }
}
