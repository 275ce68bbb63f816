//! `lbmetrictable`: metric names, the OIDs they are read from and how to turn the value into a
//! number, plus the built-in `linux` table (net-snmp's UCD-SNMP-MIB).

use std::sync::Arc;

use crate::oid::Oid;
use crate::value::Value;

/// How a metric's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// INTEGER (any numeric type is accepted as is).
    Integer,
    /// Gauge32/Unsigned32 (any numeric type is accepted as is).
    Gauge,
    /// Counter32/Counter64: reported as a rate per second between two polls (wraps handled);
    /// the first poll of a member has no value yet.
    Counter,
    /// A number written as an OCTET STRING, such as UCD's laLoad `"1.09"`.
    String,
}

/// One polled metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: Arc<str>,
    pub oid: Oid,
    pub kind: MetricKind,
}

impl Metric {
    pub fn new(name: &str, oid: Oid, kind: MetricKind) -> Self {
        Self {
            name: name.into(),
            oid,
            kind,
        }
    }
}

/// A metric computed from polled ones after each poll.
#[derive(Debug, Clone, PartialEq)]
pub enum Derived {
    /// `name = total - of` (CPU busy % = 100 - ssCpuIdle).
    Complement {
        name: Arc<str>,
        of: Arc<str>,
        total: f64,
    },
    /// `name = 100 * (1 - available / total)` (memory in use, %).
    UsedPercent {
        name: Arc<str>,
        total: Arc<str>,
        available: Arc<str>,
    },
}

impl Derived {
    pub fn name(&self) -> &Arc<str> {
        match self {
            Derived::Complement { name, .. } | Derived::UsedPercent { name, .. } => name,
        }
    }

    /// Computes the value from the polled ones, if its inputs are there.
    pub fn compute(&self, values: &[(Arc<str>, f64)]) -> Option<f64> {
        let get = |n: &Arc<str>| values.iter().find(|(k, _)| k == n).map(|&(_, v)| v);
        match self {
            Derived::Complement { of, total, .. } => get(of).map(|v| total - v),
            Derived::UsedPercent {
                total, available, ..
            } => {
                let (total, available) = (get(total)?, get(available)?);
                (total > 0.0).then(|| (100.0 * (1.0 - available / total)).clamp(0.0, 100.0))
            }
        }
    }
}

/// An `lbmetrictable`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricTable {
    pub name: String,
    pub metrics: Vec<Metric>,
    pub derived: Vec<Derived>,
}

/// Names of the metrics the built-in `linux` table publishes.
pub mod linux {
    pub const TABLE: &str = "linux";
    /// CPU busy %, `100 - ssCpuIdle`.
    pub const CPU: &str = "cpu";
    /// Memory in use %, `100 * (1 - memAvailReal / memTotalReal)`.
    pub const MEMORY: &str = "memory";
    /// 1-minute load average (laLoad.1).
    pub const LOAD: &str = "load";
    pub const CPU_USER: &str = "cpu_user";
    pub const CPU_SYSTEM: &str = "cpu_system";
    pub const CPU_IDLE: &str = "cpu_idle";
    pub const MEM_TOTAL_KB: &str = "mem_total_kb";
    pub const MEM_AVAIL_KB: &str = "mem_avail_kb";

    pub const OID_CPU_USER: &str = "1.3.6.1.4.1.2021.11.9.0";
    pub const OID_CPU_SYSTEM: &str = "1.3.6.1.4.1.2021.11.10.0";
    pub const OID_CPU_IDLE: &str = "1.3.6.1.4.1.2021.11.11.0";
    pub const OID_MEM_TOTAL: &str = "1.3.6.1.4.1.2021.4.5.0";
    pub const OID_MEM_AVAIL: &str = "1.3.6.1.4.1.2021.4.6.0";
    pub const OID_LOAD_1: &str = "1.3.6.1.4.1.2021.10.1.3.1";
    pub const OID_SYS_UPTIME: &str = "1.3.6.1.2.1.1.3.0";
    pub const OID_SYS_DESCR: &str = "1.3.6.1.2.1.1.1.0";
}

impl MetricTable {
    pub fn new(name: &str, metrics: Vec<Metric>) -> Self {
        Self {
            name: name.to_owned(),
            metrics,
            derived: Vec::new(),
        }
    }

    /// The built-in `linux` table: UCD CPU user/system/idle %, memTotalReal/memAvailReal (kB),
    /// laLoad.1, and the derived `cpu` and `memory` percentages.
    pub fn linux() -> Self {
        let oid = |text: &str| text.parse::<Oid>().expect("built-in OIDs are valid");
        let metrics = vec![
            Metric::new(
                linux::CPU_USER,
                oid(linux::OID_CPU_USER),
                MetricKind::Integer,
            ),
            Metric::new(
                linux::CPU_SYSTEM,
                oid(linux::OID_CPU_SYSTEM),
                MetricKind::Integer,
            ),
            Metric::new(
                linux::CPU_IDLE,
                oid(linux::OID_CPU_IDLE),
                MetricKind::Integer,
            ),
            Metric::new(
                linux::MEM_TOTAL_KB,
                oid(linux::OID_MEM_TOTAL),
                MetricKind::Integer,
            ),
            Metric::new(
                linux::MEM_AVAIL_KB,
                oid(linux::OID_MEM_AVAIL),
                MetricKind::Integer,
            ),
            Metric::new(linux::LOAD, oid(linux::OID_LOAD_1), MetricKind::String),
        ];
        let derived = vec![
            Derived::Complement {
                name: linux::CPU.into(),
                of: linux::CPU_IDLE.into(),
                total: 100.0,
            },
            Derived::UsedPercent {
                name: linux::MEMORY.into(),
                total: linux::MEM_TOTAL_KB.into(),
                available: linux::MEM_AVAIL_KB.into(),
            },
        ];
        Self {
            name: linux::TABLE.to_owned(),
            metrics,
            derived,
        }
    }

    /// Every name a sample of this table can carry (polled, then derived).
    pub fn metric_names(&self) -> impl Iterator<Item = &Arc<str>> {
        self.metrics
            .iter()
            .map(|m| &m.name)
            .chain(self.derived.iter().map(Derived::name))
    }
}

/// Reads a value as a number for `kind`. Counters come back raw; the poller turns them into
/// rates. Exceptions (noSuchInstance...) and non-numeric values give `None`.
pub fn read_number(kind: MetricKind, value: &Value<'_>) -> Option<Raw> {
    match (kind, *value) {
        (MetricKind::Counter, Value::Counter32(v)) => Some(Raw::Counter32(v)),
        (MetricKind::Counter, Value::Counter64(v)) => Some(Raw::Counter64(v)),
        (MetricKind::Counter, _) => None,
        (_, Value::Integer(v)) => Some(Raw::Number(v as f64)),
        (_, Value::Gauge32(v) | Value::Counter32(v) | Value::TimeTicks(v)) => {
            Some(Raw::Number(v.into()))
        }
        (_, Value::Counter64(v)) => Some(Raw::Number(v as f64)),
        (_, Value::OctetString(text) | Value::Opaque(text)) => parse_number(text).map(Raw::Number),
        _ => None,
    }
}

/// A number read from a varbind, before counter rates are applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Raw {
    Number(f64),
    Counter32(u32),
    Counter64(u64),
}

/// `"1.09"`, `" 42 "`: ASCII decimal numbers only; NaN and infinities are refused.
fn parse_number(text: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(text)
        .ok()?
        .trim_matches(|c: char| c.is_whitespace() || c == '\0');
    if text.is_empty()
        || text.len() > 64
        || !text
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
    {
        return None;
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_from_every_numeric_type_and_la_load_strings() {
        let n = |kind, value| read_number(kind, &value);
        assert_eq!(
            n(MetricKind::Integer, Value::Integer(-3)),
            Some(Raw::Number(-3.0))
        );
        assert_eq!(
            n(MetricKind::Gauge, Value::Gauge32(7)),
            Some(Raw::Number(7.0))
        );
        assert_eq!(
            n(MetricKind::String, Value::OctetString(b"1.09")),
            Some(Raw::Number(1.09))
        );
        assert_eq!(n(MetricKind::String, Value::OctetString(b"nan")), None);
        assert_eq!(n(MetricKind::String, Value::OctetString(b"inf")), None);
        assert_eq!(n(MetricKind::Integer, Value::NoSuchInstance), None);
        assert_eq!(
            n(MetricKind::Counter, Value::Counter32(5)),
            Some(Raw::Counter32(5))
        );
        assert_eq!(n(MetricKind::Counter, Value::Integer(5)), None);
    }

    #[test]
    fn linux_table_derives_cpu_and_memory_percentages() {
        let table = MetricTable::linux();
        let values: Vec<(Arc<str>, f64)> = vec![
            (linux::CPU_IDLE.into(), 70.0),
            (linux::MEM_TOTAL_KB.into(), 1000.0),
            (linux::MEM_AVAIL_KB.into(), 250.0),
        ];
        let computed: Vec<_> = table.derived.iter().map(|d| d.compute(&values)).collect();
        assert_eq!(computed, [Some(30.0), Some(75.0)]);
        let names: Vec<_> = table.metric_names().map(|n| n.to_string()).collect();
        assert!(names.contains(&"cpu".to_owned()) && names.contains(&"load".to_owned()));
    }
}
