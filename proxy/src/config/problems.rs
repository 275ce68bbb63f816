//! Collecting every problem of a config in one pass, each with the path to its key.

use std::fmt;

/// One thing wrong with a config, e.g. `servicegroup[1].members[0].port: expected 1..=65535, got 0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a config; never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        write!(
            f,
            "{count} problem{} in config",
            if count == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

/// The collector that validation writes into.
#[derive(Debug, Default)]
pub struct Problems(Vec<Problem>);

impl Problems {
    pub fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Records the error of `result` at `path` and turns it into an `Option`.
    pub fn check<T>(&mut self, path: impl Into<String>, result: Result<T, String>) -> Option<T> {
        result.map_err(|message| self.add(path, message)).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_result<T>(self, value: impl FnOnce() -> T) -> Result<T, ConfigError> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(ConfigError { problems: self.0 })
        }
    }
}

impl ConfigError {
    /// Rewrites `lbvserver[3].port` as ``lbvserver `web`.port`` (what API users know objects by).
    pub fn name_objects(mut self, file: &super::file::FileConfig) -> ConfigError {
        for problem in &mut self.problems {
            let Some((section, rest)) = problem.path.split_once('[') else {
                continue;
            };
            let Some((index, tail)) = rest.split_once(']') else {
                continue;
            };
            let Ok(index) = index.parse::<usize>() else {
                continue;
            };
            let name = match section {
                "lbvserver" => file.lbvserver.get(index).map(|v| v.name.as_str()),
                "servicegroup" => file
                    .servicegroup
                    .get(index)
                    .map(|g| g.servicegroupname.as_str()),
                "lbmonitor" => file.lbmonitor.get(index).map(|m| m.monitorname.as_str()),
                "sslcertkey" => file.sslcertkey.get(index).map(|c| c.certkey.as_str()),
                "lbmetrictable" => file
                    .lbmetrictable
                    .get(index)
                    .map(|t| t.metrictable.as_str()),
                "autoscaleprofile" => file.autoscaleprofile.get(index).map(|a| a.name.as_str()),
                "autoscalegroup" => file.autoscalegroup.get(index).map(|a| a.name.as_str()),
                "csvserver" => file.csvserver.get(index).map(|v| v.name.as_str()),
                "cspolicy" => file.cspolicy.get(index).map(|c| c.policyname.as_str()),
                _ => None,
            };
            if let Some(name) = name {
                problem.path = format!("{section} `{name}`{tail}");
            }
        }
        self
    }
}
