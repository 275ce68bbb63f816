//! A config file as the whole binary reads it: the data plane's [`Config`] and the embedded
//! local cloud's `[localcloud]`, which the proxy library keeps as an opaque table and which is
//! checked here by the local cloud's own rules. Both are validated in one pass, so `ballast
//! check` lists every problem of either, the local cloud's prefixed `localcloud: `.

use std::path::Path;

use ballast_proxy::config::{Config, ConfigError, Problem, read, validate};
use cloudstack::localcloud::LocalCloudConfig;

/// A validated config for `ballast run`.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Listeners, servicegroups, monitors, admin API, metrics, autoscale groups.
    pub proxy: Config,
    /// `[localcloud]`: a CloudStack-compatible local cloud to run inside this process.
    pub local_cloud: Option<LocalCloudConfig>,
}

impl AppConfig {
    /// Reads and validates a config file to run; relative paths in it are resolved beside
    /// it. A file that defines no `[[lbvserver]]` would serve nothing (an empty or truncated
    /// file, which on SIGHUP would close every listener) and is refused.
    pub fn load(path: &Path) -> Result<AppConfig, ConfigError> {
        let problem = |path: &str, message: String| ConfigError {
            problems: vec![Problem {
                path: path.to_owned(),
                message,
            }],
        };
        let text = read::text_file(path).map_err(|message| problem("", message))?;
        let config = AppConfig::from_toml(&text, path.parent().unwrap_or(Path::new(".")))?;
        if config.proxy.vservers.is_empty() {
            return Err(problem(
                "lbvserver",
                "the file defines no lbvserver, so Ballast would serve nothing (is it empty \
                 or cut short?)"
                    .to_owned(),
            ));
        }
        Ok(config)
    }

    /// Parses and validates config text. `base_dir` resolves relative paths.
    pub fn from_toml(text: &str, base_dir: &Path) -> Result<AppConfig, ConfigError> {
        let proxy = validate::from_toml(text, base_dir);
        let table = match &proxy {
            Ok(config) => config.local_cloud.clone(),
            // The data plane's problems must not hide the local cloud's: find its table alone.
            Err(_) => local_cloud_table(text),
        };
        let local_cloud = table.as_ref().map(local_cloud).transpose();
        match (proxy, local_cloud) {
            (Ok(proxy), Ok(local_cloud)) => Ok(AppConfig { proxy, local_cloud }),
            (proxy, local_cloud) => Err(ConfigError {
                problems: proxy
                    .err()
                    .map(|error| error.problems)
                    .unwrap_or_default()
                    .into_iter()
                    .chain(local_cloud.err().unwrap_or_default())
                    .collect(),
            }),
        }
    }
}

/// `[localcloud]`, checked by the local cloud's own validation.
fn local_cloud(table: &toml::Table) -> Result<LocalCloudConfig, Vec<Problem>> {
    let problem = |message: String| Problem {
        path: "localcloud".to_owned(),
        message,
    };
    let text = toml::to_string(table).map_err(|error| vec![problem(error.to_string())])?;
    LocalCloudConfig::from_toml_str(&text)
        .map_err(|error| error.problems.into_iter().map(problem).collect())
}

/// The `[localcloud]` table of a file whose other parts may be broken.
fn local_cloud_table(text: &str) -> Option<toml::Table> {
    match toml::from_str::<toml::Table>(text)
        .ok()?
        .remove("localcloud")?
    {
        toml::Value::Table(table) => Some(table),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match AppConfig::from_toml(text, Path::new(".")) {
            Ok(_) => Vec::new(),
            Err(error) => error.problems.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn an_embedded_local_cloud_is_validated_by_its_own_rules() {
        let sparse =
            "[localcloud]\nlisten = \"127.0.0.1:18096\"\n[[localcloud.zone]]\nname = \"z\"\n";
        let found = problems(sparse);
        assert!(
            found.contains(&"localcloud: host: at least one [[host]] is needed".to_owned()),
            "{found:#?}"
        );
        assert_eq!(
            found.len(),
            4,
            "apiuser, host, serviceoffering and template are missing: {found:#?}"
        );
        let bad = "[localcloud]\nlisten = \"nowhere\"\n";
        let found_bad = problems(bad);
        assert!(
            found_bad.iter().all(|p| p.starts_with("localcloud:")),
            "{found_bad:#?}"
        );
        assert!(!found_bad.is_empty());
        // A config without a local cloud has none.
        let empty = AppConfig::from_toml("", Path::new(".")).unwrap();
        assert!(empty.local_cloud.is_none());
    }

    #[test]
    fn the_local_clouds_problems_are_reported_with_the_data_planes() {
        let both = "[ballast]\nworkers = -1\n\n[localcloud]\nlisten = \"nowhere\"\n";
        let found = problems(both);
        assert!(
            found.iter().any(|p| p.starts_with("ballast.workers")),
            "{found:#?}"
        );
        assert!(
            found.iter().any(|p| p.starts_with("localcloud:")),
            "{found:#?}"
        );
    }
}
