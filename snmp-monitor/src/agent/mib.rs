//! The OIDs the agent serves, in GETNEXT order.

use std::time::Duration;

use crate::oid::Oid;
use crate::table::linux;
use crate::value::Value;

use super::AgentValues;

/// A value the MIB owns (the reply borrows it).
#[derive(Debug, Clone, PartialEq)]
pub enum Owned {
    Integer(i64),
    Text(Vec<u8>),
    TimeTicks(u32),
    NoSuchObject,
    EndOfMibView,
}

impl Owned {
    pub fn as_value(&self) -> Value<'_> {
        match self {
            Owned::Integer(v) => Value::Integer(*v),
            Owned::Text(bytes) => Value::OctetString(bytes),
            Owned::TimeTicks(v) => Value::TimeTicks(*v),
            Owned::NoSuchObject => Value::NoSuchObject,
            Owned::EndOfMibView => Value::EndOfMibView,
        }
    }
}

/// One snapshot of the served objects, sorted by OID.
#[derive(Debug)]
pub struct Mib {
    rows: Vec<(Vec<u8>, Owned)>,
}

impl Mib {
    pub fn new(values: &AgentValues, uptime: Duration) -> Self {
        let ticks = u32::try_from(uptime.as_millis() / 10).unwrap_or(u32::MAX);
        let clamp = |kb: u64| {
            i64::try_from(kb)
                .unwrap_or(i64::MAX)
                .min(i64::from(i32::MAX))
        };
        let mut rows: Vec<(Oid, Owned)> = vec![
            (
                oid(linux::OID_SYS_DESCR),
                Owned::Text(b"Ballast VM agent".to_vec()),
            ),
            (oid(linux::OID_SYS_UPTIME), Owned::TimeTicks(ticks)),
            (
                oid(linux::OID_MEM_TOTAL),
                Owned::Integer(clamp(values.mem_total_kb)),
            ),
            (
                oid(linux::OID_MEM_AVAIL),
                Owned::Integer(clamp(values.mem_avail_kb)),
            ),
            (
                oid(linux::OID_CPU_USER),
                Owned::Integer(values.cpu_user.into()),
            ),
            (
                oid(linux::OID_CPU_SYSTEM),
                Owned::Integer(values.cpu_system.into()),
            ),
            (
                oid(linux::OID_CPU_IDLE),
                Owned::Integer(values.cpu_idle.into()),
            ),
        ];
        if let Some(load) = values.load.filter(|l| l.is_finite()) {
            rows.push((
                oid(linux::OID_LOAD_1),
                Owned::Text(format!("{load:.2}").into_bytes()),
            ));
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        Self {
            rows: rows
                .into_iter()
                .map(|(oid, value)| (oid.to_ber(), value))
                .collect(),
        }
    }

    /// GET: the value at exactly `oid`, else noSuchObject.
    pub fn get(&self, oid: &[u8]) -> Owned {
        self.rows
            .iter()
            .find(|(o, _)| o == oid)
            .map_or(Owned::NoSuchObject, |(_, v)| v.clone())
    }

    /// GETNEXT: the first object after `oid`, else endOfMibView at `oid`.
    pub fn next(&self, oid: &[u8]) -> (Vec<u8>, Owned) {
        let Ok(after) = Oid::from_ber(oid) else {
            return (oid.to_vec(), Owned::EndOfMibView);
        };
        self.rows
            .iter()
            .find(|(o, _)| Oid::from_ber(o).is_ok_and(|o| o > after))
            .map_or_else(
                || (oid.to_vec(), Owned::EndOfMibView),
                |(o, v)| (o.clone(), v.clone()),
            )
    }
}

fn oid(text: &str) -> Oid {
    text.parse().expect("served OIDs are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_in_oid_order_and_ends() {
        let values = AgentValues {
            load: Some(0.5),
            ..AgentValues::default()
        };
        let mib = Mib::new(&values, Duration::from_secs(1));
        let mut cursor = oid("1.3").to_ber();
        let mut seen = Vec::new();
        loop {
            let (next, value) = mib.next(&cursor);
            if value == Owned::EndOfMibView {
                break;
            }
            seen.push(Oid::from_ber(&next).unwrap().to_string());
            cursor = next;
        }
        assert_eq!(seen.len(), 8);
        assert_eq!(seen[0], linux::OID_SYS_DESCR);
        assert_eq!(seen[1], linux::OID_SYS_UPTIME);
        assert_eq!(seen[7], linux::OID_CPU_IDLE);
        assert_eq!(
            mib.get(&oid(linux::OID_SYS_UPTIME).to_ber()),
            Owned::TimeTicks(100)
        );
        assert_eq!(mib.get(&oid("1.3.6.1.9").to_ber()), Owned::NoSuchObject);
    }
}
