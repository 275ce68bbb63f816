//! `[accesslog]`: one line per HTTP request and per TCP connection, as HAProxy's `httplog` and
//! `tcplog` or NetScaler's web log write them. The section as written ([`AccessLogFile`]), its
//! validated form ([`AccessLogSettings`]) and the check between them.
//!
//! The path is checked, never opened: opening a named pipe would wait for a reader, and the
//! file is opened by the access log's own thread (`crate::accesslog`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::lenient;
use super::problems::Problems;

/// Lines waiting for the access log's thread when `bufferlines` is not given.
pub const DEFAULT_BUFFER_LINES: usize = 8192;
/// The most `bufferlines` may be (each waiting line holds a few hundred bytes).
pub const MAX_BUFFER_LINES: i64 = 1_048_576;

/// `[accesslog]` as written. Absent: no access log.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccessLogFile {
    /// `false` keeps the section but writes nothing (default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// A file (relative: beside the config), or `stdout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `text` (default) or `json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Lines that may wait for the writer; more are dropped and counted.
    #[serde(
        default,
        deserialize_with = "lenient::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub bufferlines: Option<i64>,
}

/// A validated `[accesslog]` that is enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogSettings {
    pub target: AccessLogTarget,
    pub format: AccessLogFormat,
    /// Lines that may wait for the writer thread; one more is dropped and counted.
    pub buffer_lines: usize,
}

/// Where access log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    /// The process's standard output (a container's log collector reads it).
    Stdout,
    /// A file, appended to; SIGUSR1 reopens it (after logrotate renamed it).
    File(PathBuf),
}

/// How each line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLogFormat {
    /// One line of space-separated fields, in HAProxy's `httplog` order.
    Text,
    /// One JSON object per line.
    Json,
}

/// Validates `[accesslog]`: `None` inside the outer `Option` is a section with
/// `enabled = false`; the outer `None` means problems were recorded in `p`.
pub fn access_log_settings(
    file: &AccessLogFile,
    base_dir: &Path,
    p: &mut Problems,
) -> Option<Option<AccessLogSettings>> {
    let format = match file.format.as_deref().unwrap_or("text") {
        "text" => Some(AccessLogFormat::Text),
        "json" => Some(AccessLogFormat::Json),
        other => {
            p.add(
                "accesslog.format",
                format!("unknown format `{other}`; expected one of text, json"),
            );
            None
        }
    };
    let buffer_lines = match file.bufferlines {
        None => Some(DEFAULT_BUFFER_LINES),
        Some(lines @ 1..=MAX_BUFFER_LINES) => Some(lines as usize),
        Some(other) => {
            p.add(
                "accesslog.bufferlines",
                format!("expected 1..={MAX_BUFFER_LINES}, got {other}"),
            );
            None
        }
    };
    let target = match file.path.as_deref() {
        None => {
            p.add(
                "accesslog.path",
                "missing: a file to append to, or \"stdout\"",
            );
            None
        }
        Some("stdout") => Some(AccessLogTarget::Stdout),
        Some(path) => p
            .check("accesslog.path", file_target(path, base_dir))
            .map(AccessLogTarget::File),
    };
    let settings = AccessLogSettings {
        target: target?,
        format: format?,
        buffer_lines: buffer_lines?,
    };
    Some(file.enabled.unwrap_or(true).then_some(settings))
}

/// The file `path` names (relative: beside the config): it must be in a directory that
/// exists, and not be a directory itself.
fn file_target(path: &str, base_dir: &Path) -> Result<PathBuf, String> {
    if path.is_empty() {
        return Err("empty: give a file to append to, or \"stdout\"".to_owned());
    }
    let path = base_dir.join(path);
    if path.is_dir() {
        return Err(format!("{} is a directory", path.display()));
    }
    let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty());
    if let Some(dir) = dir
        && !dir.is_dir()
    {
        return Err(format!(
            "{}: directory {} does not exist",
            path.display(),
            dir.display()
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(file: AccessLogFile) -> (Option<Option<AccessLogSettings>>, Vec<String>) {
        let mut p = Problems::default();
        let settings = access_log_settings(&file, Path::new("/tmp"), &mut p);
        let problems = p
            .into_result(|| ())
            .err()
            .map(|e| e.problems.iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        (settings, problems)
    }

    #[test]
    fn defaults_are_text_and_8192_lines_beside_the_config() {
        let (settings, problems) = check(AccessLogFile {
            path: Some("access.log".into()),
            ..AccessLogFile::default()
        });
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            settings,
            Some(Some(AccessLogSettings {
                target: AccessLogTarget::File("/tmp/access.log".into()),
                format: AccessLogFormat::Text,
                buffer_lines: DEFAULT_BUFFER_LINES,
            }))
        );
    }

    #[test]
    fn disabled_is_valid_and_off() {
        let (settings, _) = check(AccessLogFile {
            enabled: Some(false),
            path: Some("stdout".into()),
            ..AccessLogFile::default()
        });
        assert_eq!(settings, Some(None));
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let (settings, problems) = check(AccessLogFile {
            enabled: None,
            path: Some("/no/such/dir/access.log".into()),
            format: Some("combined".into()),
            bufferlines: Some(0),
        });
        assert_eq!(settings, None);
        assert_eq!(
            problems,
            [
                "accesslog.format: unknown format `combined`; expected one of text, json",
                "accesslog.bufferlines: expected 1..=1048576, got 0",
                "accesslog.path: /no/such/dir/access.log: directory /no/such/dir does not exist",
            ]
        );
        let (_, problems) = check(AccessLogFile::default());
        assert_eq!(
            problems,
            ["accesslog.path: missing: a file to append to, or \"stdout\""]
        );
    }
}
