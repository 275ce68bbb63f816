//! Ballast's config: the TOML file as written ([`file`]), the validated model ([`model`]),
//! and the one-pass validation between them ([`validate`]); [`secret`] holds the values that
//! nothing may print; [`read`] reads the files a config names, safely.
//!
//! Resource and field names follow NetScaler's NITRO names (`lbvserver`, `servicegroup`,
//! `lbmonitor`, `sslcertkey`), so what a NetScaler admin knows carries over.

pub mod accesslog;
pub mod backup;
pub mod content_switch;
pub mod duration;
pub mod file;
pub mod http_monitor;
pub mod lenient;
pub mod member_tls;
pub mod model;
pub mod persistence;
pub mod problems;
pub mod proxy_protocol;
pub mod read;
pub mod secret;
pub mod surge;
pub mod validate;

use std::path::Path;

pub use accesslog::{AccessLogFormat, AccessLogSettings, AccessLogTarget};
pub use content_switch::{CsBinding, CsPolicy, CsVserver};
pub use model::*;
pub use persistence::{Persistence, PersistenceType};
pub use problems::{ConfigError, Problem};
pub use secret::{Secret, SecretSource};

impl Config {
    /// Reads and validates a config file; relative certificate paths are resolved beside it.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read::text_file(path).map_err(|message| ConfigError {
            problems: vec![Problem {
                path: String::new(),
                message,
            }],
        })?;
        let base_dir = path.parent().unwrap_or(Path::new("."));
        validate::from_toml(&text, base_dir)
    }
}

#[cfg(test)]
mod tests;
