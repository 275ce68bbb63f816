//! How a [`Record`] is written: `text` or `json`, one line each.
//!
//! `text` follows HAProxy's `httplog` and `tcplog` order; a field that does not apply (no
//! member was reached, so no connect time) is `-`. Times are milliseconds with three decimals:
//!
//! ```text
//! 127.0.0.1:50312 [2026-12-04T19:20:01.123Z] web pool/127.0.0.5:8080 0.012/0.210/1.503/2.004 200 1234 ok "GET /index.html HTTP/1.1"
//! 127.0.0.1:50314 [2026-12-04T19:20:02.500Z] db pool/127.0.0.6:5432 0.008/0.190/5012.330 512 20480 ok
//! ```
//!
//! A request a csvserver switched names both vservers in the vserver field, the csvserver
//! first: `front>shop` (`json`: `vserver` is the csvserver, `target` the lbvserver).
//!
//! `json` has the same fields by name (`time`, `type` (`http`/`tcp`), `client`, `vserver`,
//! `target`, `servicegroup`, `member`, `queue_ms`, `connect_ms`, `first_byte_ms`, `total_ms`, `method`,
//! `uri`, `version`, `status`, `bytes_sent`, `bytes_received`, `termination`); one that does not
//! apply is `null`.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::record::{Kind, Record};
use crate::config::AccessLogFormat;

/// Appends `record` as one line (with its `\n`) to `out`.
pub fn write_line(record: &Record, format: AccessLogFormat, out: &mut String) {
    match format {
        AccessLogFormat::Text => text(record, out),
        AccessLogFormat::Json => {
            out.push_str(&json(record).to_string());
        }
    }
    out.push('\n');
}

fn text(record: &Record, out: &mut String) {
    let (queue, connect, total) = (
        millis_or_dash(record.queue),
        millis_or_dash(record.connect),
        millis(record.total),
    );
    let _ = write!(
        out,
        "{} [{}] {}{} {}/{} ",
        record.client,
        rfc3339(record.time),
        record.vserver,
        record
            .target
            .as_deref()
            .map_or_else(String::new, |target| format!(">{target}")),
        record.servicegroup.as_deref().unwrap_or("-"),
        record.member.as_deref().unwrap_or("-"),
    );
    let _ = match &record.kind {
        Kind::Http(http) => write!(
            out,
            "{queue}/{connect}/{}/{total} {} {} {} \"{} {} {:?}\"",
            millis_or_dash(http.first_byte),
            http.status,
            http.bytes_sent,
            record.termination,
            http.method,
            escaped(&http.uri),
            http.version,
        ),
        Kind::Tcp(tcp) => write!(
            out,
            "{queue}/{connect}/{total} {} {} {}",
            tcp.bytes_received, tcp.bytes_sent, record.termination,
        ),
    };
}

fn json(record: &Record) -> Value {
    let mut line = Map::new();
    line.insert("time".into(), rfc3339(record.time).into());
    let kind = match record.kind {
        Kind::Http(_) => "http",
        Kind::Tcp(_) => "tcp",
    };
    line.insert("type".into(), kind.into());
    line.insert("client".into(), record.client.to_string().into());
    line.insert("vserver".into(), record.vserver.as_ref().into());
    line.insert("target".into(), json!(record.target.as_deref()));
    line.insert("servicegroup".into(), json!(record.servicegroup.as_deref()));
    line.insert("member".into(), json!(record.member.as_deref()));
    line.insert("queue_ms".into(), json!(record.queue.map(millis_value)));
    line.insert("connect_ms".into(), json!(record.connect.map(millis_value)));
    match &record.kind {
        Kind::Http(http) => {
            line.insert(
                "first_byte_ms".into(),
                json!(http.first_byte.map(millis_value)),
            );
            line.insert("total_ms".into(), json!(millis_value(record.total)));
            line.insert("method".into(), http.method.as_str().into());
            line.insert("uri".into(), http.uri.as_str().into());
            line.insert("version".into(), format!("{:?}", http.version).into());
            line.insert("status".into(), http.status.into());
            line.insert("bytes_sent".into(), http.bytes_sent.into());
        }
        Kind::Tcp(tcp) => {
            line.insert("total_ms".into(), json!(millis_value(record.total)));
            line.insert("bytes_received".into(), tcp.bytes_received.into());
            line.insert("bytes_sent".into(), tcp.bytes_sent.into());
        }
    }
    line.insert("termination".into(), record.termination.to_string().into());
    Value::Object(line)
}

/// Milliseconds with three decimals (microsecond resolution).
fn millis(duration: Duration) -> String {
    format!("{:.3}", duration.as_secs_f64() * 1000.0)
}

fn millis_or_dash(duration: Option<Duration>) -> String {
    duration.map_or_else(|| "-".to_owned(), millis)
}

fn millis_value(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// A URI cannot hold a space or a quote, but a log line must stay one line whatever comes:
/// `"`, `\` and control characters are escaped.
fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// `2026-12-04T19:20:01.123Z`: UTC, milliseconds.
fn rfc3339(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
    let of_day = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        since_epoch.subsec_millis()
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::accesslog::record::{HttpFields, TcpFields, Termination};
    use crate::http::error::ExchangeError;

    fn at(seconds: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_millis(millis)
    }

    fn http_record() -> Record {
        Record {
            time: at(1_796_412_001, 123),
            client: "127.0.0.1:50312".parse().unwrap(),
            vserver: "web".into(),
            target: None,
            servicegroup: Some(Arc::from("pool")),
            member: Some(Arc::from("127.0.0.5:8080")),
            queue: Some(Duration::from_micros(12)),
            connect: Some(Duration::from_micros(210)),
            total: Duration::from_micros(2004),
            termination: Termination::Complete,
            kind: Kind::Http(HttpFields {
                method: http::Method::GET,
                uri: "/a\"b".into(),
                version: http::Version::HTTP_11,
                status: 200,
                bytes_sent: 1234,
                first_byte: Some(Duration::from_micros(1503)),
            }),
        }
    }

    #[test]
    fn dates_are_utc_rfc3339_with_milliseconds() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(at(951_782_400, 5)), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(at(1_796_412_001, 123)), "2026-12-04T19:20:01.123Z");
    }

    #[test]
    fn an_http_text_line_follows_httplog_order() {
        let mut line = String::new();
        write_line(&http_record(), AccessLogFormat::Text, &mut line);
        assert_eq!(
            line,
            "127.0.0.1:50312 [2026-12-04T19:20:01.123Z] web pool/127.0.0.5:8080 \
             0.012/0.210/1.503/2.004 200 1234 ok \"GET /a\\\"b HTTP/1.1\"\n"
        );
    }

    #[test]
    fn a_failed_tcp_connection_has_dashes_where_nothing_happened() {
        let record = Record {
            servicegroup: None,
            member: None,
            queue: None,
            connect: None,
            termination: Termination::Failed(ExchangeError::NoMemberAvailable),
            kind: Kind::Tcp(TcpFields {
                bytes_received: 0,
                bytes_sent: 0,
            }),
            ..http_record()
        };
        let mut line = String::new();
        write_line(&record, AccessLogFormat::Text, &mut line);
        assert_eq!(
            line,
            "127.0.0.1:50312 [2026-12-04T19:20:01.123Z] web -/- -/-/2.004 0 0 member/unavailable\n"
        );
        line.clear();
        write_line(&record, AccessLogFormat::Json, &mut line);
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["type"], "tcp");
        assert_eq!(value["member"], Value::Null);
        assert_eq!(value["connect_ms"], Value::Null);
        assert_eq!(value["total_ms"], 2.004);
        assert_eq!(value["termination"], "member/unavailable");
    }

    #[test]
    fn a_switched_request_names_the_csvserver_and_its_target() {
        let record = Record {
            vserver: "front".into(),
            target: Some("shop".into()),
            ..http_record()
        };
        let mut line = String::new();
        write_line(&record, AccessLogFormat::Text, &mut line);
        assert!(line.contains("] front>shop pool/127.0.0.5:8080 "), "{line}");
        line.clear();
        write_line(&record, AccessLogFormat::Json, &mut line);
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            (&value["vserver"], &value["target"]),
            (&json!("front"), &json!("shop"))
        );
    }

    #[test]
    fn an_http_json_line_names_every_field() {
        let mut line = String::new();
        write_line(&http_record(), AccessLogFormat::Json, &mut line);
        assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            value,
            json!({
                "time": "2026-12-04T19:20:01.123Z", "type": "http", "client": "127.0.0.1:50312",
                "vserver": "web", "target": null, "servicegroup": "pool", "member": "127.0.0.5:8080",
                "queue_ms": 0.012, "connect_ms": 0.21, "first_byte_ms": 1.503, "total_ms": 2.004,
                "method": "GET", "uri": "/a\"b", "version": "HTTP/1.1", "status": 200,
                "bytes_sent": 1234, "termination": "ok",
            })
        );
    }
}
