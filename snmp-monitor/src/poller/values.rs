//! Turning a Response PDU into metric values: check that it answers exactly the OIDs asked,
//! read numbers, turn counters into rates, add derived metrics.

use std::sync::Arc;

use tokio::time::Instant;

use crate::pdu::Pdu;
use crate::spec::LoadMonitor;
use crate::table::{Raw, read_number};

/// The previous reading of a counter metric.
pub(crate) type CounterState = Option<(Raw, Instant)>;

/// The reply does not answer the request (wrong count, wrong OID, undecodable varbind).
#[derive(Debug)]
pub(crate) struct Mismatch;

pub(crate) fn read_values(
    monitor: &LoadMonitor,
    pdu: &Pdu<'_>,
    counters: &mut [CounterState],
    now: Instant,
) -> Result<Vec<(Arc<str>, f64)>, Mismatch> {
    let table = &monitor.spec().table;
    let mut values = Vec::with_capacity(table.metrics.len() + table.derived.len());
    let mut answered = 0;
    for (i, varbind) in pdu.varbinds.clone().enumerate() {
        let varbind = varbind.map_err(|_| Mismatch)?;
        let (Some(metric), Some(oid)) = (table.metrics.get(i), monitor.oids.get(i)) else {
            return Err(Mismatch);
        };
        if varbind.oid != oid.as_slice() {
            return Err(Mismatch);
        }
        answered += 1;
        let value = match read_number(metric.kind, &varbind.value) {
            Some(Raw::Number(v)) => Some(v),
            Some(raw) => counter_rate(counters.get_mut(i), raw, now),
            None => None,
        };
        if let Some(value) = value {
            values.push((metric.name.clone(), value));
        }
    }
    if answered != table.metrics.len() {
        return Err(Mismatch);
    }
    for derived in &table.derived {
        if let Some(value) = derived.compute(&values) {
            values.push((derived.name().clone(), value));
        }
    }
    Ok(values)
}

/// Per-second rate since the previous reading, allowing one wrap of the counter.
fn counter_rate(state: Option<&mut CounterState>, raw: Raw, now: Instant) -> Option<f64> {
    let state = state?;
    let previous = state.replace((raw, now));
    let (old, then) = previous?;
    let seconds = now.checked_duration_since(then)?.as_secs_f64();
    let delta = match (old, raw) {
        (Raw::Counter32(a), Raw::Counter32(b)) => f64::from(b.wrapping_sub(a)),
        (Raw::Counter64(a), Raw::Counter64(b)) => b.wrapping_sub(a) as f64,
        _ => return None,
    };
    (seconds > 0.0).then(|| delta / seconds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn counters_become_rates_across_a_wrap() {
        let t0 = Instant::now();
        let mut state = None;
        assert_eq!(
            counter_rate(Some(&mut state), Raw::Counter32(u32::MAX - 9), t0),
            None
        );
        let rate = counter_rate(
            Some(&mut state),
            Raw::Counter32(10),
            t0 + Duration::from_secs(2),
        );
        assert_eq!(rate, Some(10.0));
    }
}
