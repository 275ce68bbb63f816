//! Secrets in the config (the CloudStack secret key, the admin password): where each came from
//! and its value, which nothing prints.
//!
//! A secret is given inline, as a file whose first line is the value, or as the name of an
//! environment variable. The file form of the config keeps what the user wrote (the inline
//! value or the reference), so `nsconfig save` writes that back; a [`Secret`] holds the value
//! read from it, and its `Debug` shows neither.

use std::fmt;
use std::path::{Path, PathBuf};

/// A secret value and where it came from. `Debug` prints `Secret(<redacted>)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    source: SecretSource,
    value: String,
}

/// Where a secret was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// Written in the config itself.
    Inline,
    /// The first line of this file (already resolved against the config's directory).
    File(PathBuf),
    /// This environment variable.
    Env(String),
}

impl Secret {
    /// A value written in the config itself.
    pub fn inline(value: impl Into<String>) -> Result<Secret, String> {
        let value = value.into();
        if value.trim().is_empty() {
            return Err("must not be empty".to_owned());
        }
        Ok(Secret {
            source: SecretSource::Inline,
            value,
        })
    }

    /// The first line of `path` (without its line ending); an empty first line is an error.
    pub fn from_file(path: &Path) -> Result<Secret, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        let value = text.lines().next().unwrap_or("");
        if value.trim().is_empty() {
            return Err(format!("the first line of {} is empty", path.display()));
        }
        Ok(Secret {
            source: SecretSource::File(path.to_owned()),
            value: value.to_owned(),
        })
    }

    /// The value of the environment variable `name`; unset or empty is an error.
    pub fn from_env(name: &str) -> Result<Secret, String> {
        let value = std::env::var(name).map_err(|error| match error {
            std::env::VarError::NotPresent => format!("environment variable {name} is not set"),
            std::env::VarError::NotUnicode(_) => {
                format!("environment variable {name} is not valid UTF-8")
            }
        })?;
        if value.trim().is_empty() {
            return Err(format!("environment variable {name} is empty"));
        }
        Ok(Secret {
            source: SecretSource::Env(name.to_owned()),
            value,
        })
    }

    /// The value, for the one place that needs it (signing a request, checking a password).
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// Where the value came from (safe to show: a path or a variable name, never the value).
    pub fn source(&self) -> &SecretSource {
        &self.source
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::inline("hunter2-do-not-log").unwrap();
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(Secret(<redacted>))");
        assert_eq!(secret.expose(), "hunter2-do-not-log");
        assert_eq!(secret.source(), &SecretSource::Inline);
    }

    #[test]
    fn a_file_gives_its_first_line() {
        let dir = std::env::temp_dir().join(format!("ballast-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cloud.secret");
        std::fs::write(&path, "s3cr3t\r\nignored\n").unwrap();
        let secret = Secret::from_file(&path).unwrap();
        assert_eq!(secret.expose(), "s3cr3t");
        assert_eq!(secret.source(), &SecretSource::File(path.clone()));

        std::fs::write(&path, "\nsecond\n").unwrap();
        assert_eq!(
            Secret::from_file(&path).unwrap_err(),
            format!("the first line of {} is empty", path.display())
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            Secret::from_file(&path)
                .unwrap_err()
                .starts_with(&format!("cannot read {}: ", path.display()))
        );
    }

    #[test]
    fn an_environment_variable_must_be_set() {
        // PATH is set wherever tests run; setting a variable needs `unsafe` in edition 2024.
        let path = Secret::from_env("PATH").unwrap();
        assert_eq!(path.source(), &SecretSource::Env("PATH".to_owned()));
        assert_eq!(
            Secret::from_env("BALLAST_TEST_NEVER_SET_7F3C").unwrap_err(),
            "environment variable BALLAST_TEST_NEVER_SET_7F3C is not set"
        );
    }
}
