//! A servicegroup's `maxclient` (each member's limit of requests or connections at once) and
//! the surge queue in front of it (`maxsurgequeue`, `surgequeuetimeout`): the keys as checked
//! into [`SurgeSettings`]. The queue itself is runtime state (`crate::surge`).

use std::time::Duration;

use super::duration;
use super::file::ServiceGroupFile;
use super::model::SurgeSettings;
use super::problems::Problems;

/// The most `maxclient` may be.
pub const MAX_CLIENT: i64 = 10_000_000;
/// The most requests or connections one surge queue may hold.
pub const MAX_QUEUE: i64 = 1_000_000;

/// Checks `maxclient`, `maxsurgequeue` and `surgequeuetimeout` of the servicegroup at `path`.
pub fn surge_settings(
    file: &ServiceGroupFile,
    path: &str,
    p: &mut Problems,
) -> Option<SurgeSettings> {
    let defaults = SurgeSettings::default();
    let max_client = match file.maxclient {
        None | Some(0) => Some(None),
        Some(n) => p
            .check(format!("{path}.maxclient"), within(n, MAX_CLIENT))
            .map(|n| Some(n as u32)),
    };
    let max_queue = match file.maxsurgequeue {
        None => Some(defaults.max_queue),
        Some(n) => p
            .check(format!("{path}.maxsurgequeue"), within(n, MAX_QUEUE))
            .map(|n| n as u32),
    };
    let timeout_path = format!("{path}.surgequeuetimeout");
    let queue_timeout = match &file.surgequeuetimeout {
        None => Some(defaults.queue_timeout),
        Some(text) => p
            .check(&timeout_path, duration::parse(text))
            .and_then(|timeout| {
                let positive = (timeout > Duration::ZERO).then_some(timeout);
                p.check(
                    &timeout_path,
                    positive.ok_or_else(|| "must be longer than zero".to_owned()),
                )
            }),
    };
    Some(SurgeSettings {
        max_client: max_client?,
        max_queue: max_queue?,
        queue_timeout: queue_timeout?,
    })
}

fn within(value: i64, max: i64) -> Result<i64, String> {
    if (0..=max).contains(&value) {
        Ok(value)
    } else {
        Err(format!("expected 0..={max}, got {value}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(
        maxclient: Option<i64>,
        queue: Option<i64>,
        timeout: Option<&str>,
    ) -> ServiceGroupFile {
        ServiceGroupFile {
            servicegroupname: "pool".into(),
            servicetype: "HTTP".into(),
            maxclient,
            maxsurgequeue: queue,
            surgequeuetimeout: timeout.map(str::to_owned),
            ..ServiceGroupFile::default()
        }
    }

    #[test]
    fn defaults_are_no_limit_a_1024_queue_and_5s() {
        let mut p = Problems::default();
        let settings = surge_settings(&group(None, None, None), "servicegroup[0]", &mut p).unwrap();
        assert_eq!(settings, SurgeSettings::default());
        assert_eq!(settings.max_client, None);
        assert_eq!(settings.max_queue, 1024);
        assert_eq!(settings.queue_timeout, Duration::from_secs(5));
        let zero =
            surge_settings(&group(Some(0), Some(0), None), "servicegroup[0]", &mut p).unwrap();
        assert_eq!((zero.max_client, zero.max_queue), (None, 0));
        assert!(p.is_empty());
    }

    #[test]
    fn bad_values_are_named_by_path() {
        let mut p = Problems::default();
        let bad = group(Some(-1), Some(2_000_000), Some("0s"));
        assert!(surge_settings(&bad, "servicegroup[2]", &mut p).is_none());
        let text = format!("{:?}", p.into_result(|| ()).unwrap_err());
        for path in [
            "servicegroup[2].maxclient",
            "servicegroup[2].maxsurgequeue",
            "servicegroup[2].surgequeuetimeout",
        ] {
            assert!(text.contains(path), "{path} in {text}");
        }
    }
}
