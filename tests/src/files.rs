//! Temporary directories (no `tempfile` crate in the workspace): unique under
//! `std::env::temp_dir()`, removed with everything in them on drop.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A directory that exists for as long as this value lives.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

impl TempDir {
    /// Creates `<tmp>/ballast-tests-<pid>-<n>-<prefix>`.
    pub fn new(prefix: &str) -> TempDir {
        let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("ballast-tests-{}-{n}-{prefix}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` to `name` inside the directory and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path.join(name);
        std::fs::write(&path, contents)
            .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
        path
    }

    /// Replaces `name` atomically (write a sibling, then rename), so a reader never sees half a
    /// file.
    pub fn replace(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let staged = self.write(&format!(".{name}.new"), contents);
        let path = self.path.join(name);
        std::fs::rename(&staged, &path)
            .unwrap_or_else(|error| panic!("cannot rename to {}: {error}", path.display()));
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
