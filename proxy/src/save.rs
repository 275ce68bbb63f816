//! `nsconfig save`: what is written ([`file_to_save`]), laid onto the file that is there so its
//! comments and layout stay ([`merge`]), and writing it so that a crash at any moment leaves
//! either the old or the new version, never a torn one ([`atomic_write`]: write a temporary
//! file in the same directory, fsync it, rename it over the target, then fsync the directory so
//! the rename itself is durable).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use toml_edit::DocumentMut;

use crate::config::Config;
use crate::config::file::FileConfig;

pub mod merge;

/// The running config's file form without the members the autoscaler bound: they are runtime
/// state, and after a restart the autoscaler's reconcile adopts them again from the cloud.
/// (Their marks and scale-in protection are never serialized, so the file gains no key.)
pub fn file_to_save(config: &Config) -> FileConfig {
    let mut file = config.to_file();
    for group in &mut file.servicegroup {
        group.members.retain(|member| member.autoscale.is_none());
    }
    file
}

/// Writes `file` to `path`: onto the document already there when it is a config file that
/// can be read (keeping its comments), else afresh.
pub fn save(path: &Path, file: &FileConfig) -> io::Result<()> {
    let fresh = toml::to_string(file).map_err(io::Error::other)?;
    let text = onto_existing(path, &fresh).unwrap_or(fresh);
    atomic_write(path, text.as_bytes())
}

/// `fresh` laid onto the file at `path`; `None` when there is no readable TOML file there, or
/// (a safety net) when the result would not read back as exactly `fresh`.
fn onto_existing(path: &Path, fresh: &str) -> Option<String> {
    let existing = crate::config::read::text_file(path).ok()?;
    let mut document: DocumentMut = existing.parse().ok()?;
    merge::onto(&mut document, fresh.parse().ok()?);
    let text = document.to_string();
    let reread: FileConfig = toml::from_str(&text).ok()?;
    let same = toml::to_string(&reread).ok()? == fresh;
    if !same {
        tracing::warn!(path = %path.display(), "the saved config could not keep the file's layout; written afresh");
    }
    same.then_some(text)
}

pub fn atomic_write(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = std::env::temp_dir().join(format!("ballast-save-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ballast.toml");
        fs::write(&path, "old").unwrap();
        atomic_write(&path, b"new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        let leftovers: Vec<_> = fs::read_dir(&dir).unwrap().filter_map(Result::ok).collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
