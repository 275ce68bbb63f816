//! Secrets in the config (the admin password, SNMP communities and v3 passphrases, the
//! CloudStack secret key; cookie keys when a feature needs one): where each came from and its
//! value, which nothing prints.
//!
//! A secret is given in one of three forms, `<key>` inline, `<key>file` (a file whose first line
//! is the value) or `<key>env` (the name of an environment variable): [`SecretForms`] reads
//! whichever was given. The file form of the config keeps what the user wrote, so
//! `nsconfig save` writes that back; an inline value is held there as a [`SecretText`], whose
//! `Debug` is redacted. A [`Secret`] holds the value read, and its `Debug` shows neither. The
//! admin API never returns an inline value (see `api::resources`).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
    /// Only a regular file of at most 1 MiB is read (see [`super::read`]).
    pub fn from_file(path: &Path) -> Result<Secret, String> {
        let text = super::read::text_file(path)?;
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

/// An inline secret as the file form of the config holds it: serialized as the plain string
/// (so a save writes it back), `Debug` redacted.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretText(String);

impl SecretText {
    pub fn new(value: impl Into<String>) -> SecretText {
        SecretText(value.into())
    }

    /// The value as written, for validation to read it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The three forms of one secret field as written: `<key>` (inline), `<key>file` and
/// `<key>env`. At most one may be given.
#[derive(Debug, Clone, Copy)]
pub struct SecretForms<'a> {
    /// The inline key (`sharedsecret`, `snmpauthpassword` ...); the others add `file`, `env`.
    pub key: &'a str,
    pub inline: Option<&'a str>,
    pub file: Option<&'a str>,
    pub env: Option<&'a str>,
}

/// Why a secret field could not be read: the key (one of the three forms) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFormError {
    pub key: String,
    pub message: String,
}

impl SecretForms<'_> {
    /// How many of the three forms were given.
    pub fn given(&self) -> usize {
        [self.inline, self.file, self.env]
            .iter()
            .filter(|form| form.is_some())
            .count()
    }

    /// Reads the form that was given (a relative file beside the config, in `base_dir`):
    /// `Ok(None)` when none was; an error names the key when two were, or the file or the
    /// variable cannot give a value.
    pub fn read(&self, base_dir: &Path) -> Result<Option<Secret>, SecretFormError> {
        let key = self.key;
        let error = |suffix: &str, message: String| SecretFormError {
            key: format!("{key}{suffix}"),
            message,
        };
        match (self.inline, self.file, self.env) {
            (None, None, None) => Ok(None),
            (Some(value), None, None) => Secret::inline(value).map(Some).map_err(|m| error("", m)),
            (None, Some(file), None) => Secret::from_file(&base_dir.join(file))
                .map(Some)
                .map_err(|m| error("file", m)),
            (None, None, Some(name)) => Secret::from_env(name)
                .map(Some)
                .map_err(|m| error("env", m)),
            _ => Err(error(
                "",
                format!("give only one of {key}, {key}file and {key}env"),
            )),
        }
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
    fn secret_text_is_written_as_is_but_never_debugged() {
        let text = SecretText::new("community-do-not-log");
        assert_eq!(format!("{text:?}"), "<redacted>");
        assert_eq!(
            serde_json::to_value(&text).unwrap(),
            serde_json::json!("community-do-not-log")
        );
        let back: SecretText = serde_json::from_str("\"community-do-not-log\"").unwrap();
        assert_eq!(back, text);
    }

    #[test]
    fn forms_read_the_one_given_and_name_the_key_when_wrong() {
        let forms = |inline, file, env| SecretForms {
            key: "snmpauthpassword",
            inline,
            file,
            env,
        };
        let here = Path::new("/nonexistent-config-dir");
        assert_eq!(forms(None, None, None).read(here), Ok(None));
        let inline = forms(Some("authpass123"), None, None).read(here).unwrap();
        assert_eq!(inline.unwrap().expose(), "authpass123");
        let env = forms(None, None, Some("PATH")).read(here).unwrap().unwrap();
        assert_eq!(env.source(), &SecretSource::Env("PATH".to_owned()));

        let two = forms(Some("x"), None, Some("PATH")).read(here).unwrap_err();
        assert_eq!(two.key, "snmpauthpassword");
        assert_eq!(
            two.message,
            "give only one of snmpauthpassword, snmpauthpasswordfile and snmpauthpasswordenv"
        );
        let missing = forms(None, Some("auth.secret"), None)
            .read(here)
            .unwrap_err();
        assert_eq!(missing.key, "snmpauthpasswordfile");
        assert!(
            missing
                .message
                .starts_with("cannot read /nonexistent-config-dir/auth.secret: "),
            "{}",
            missing.message
        );
        let unset = forms(None, None, Some("BALLAST_TEST_NEVER_SET_7F3C"))
            .read(here)
            .unwrap_err();
        assert_eq!(unset.key, "snmpauthpasswordenv");
        assert_eq!(
            unset.message,
            "environment variable BALLAST_TEST_NEVER_SET_7F3C is not set"
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
