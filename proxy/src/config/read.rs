//! Reading the files a config names (certificates, private keys, secret files): only regular
//! files, and at most [`MAX_FILE_BYTES`] of them.
//!
//! A named pipe would block its reader until something writes to it, and `/dev/zero` never
//! ends; either, named as a certificate, once hung the config writer or grew the process by
//! gigabytes. Here the file is opened without blocking, checked to be a regular file on the
//! opened descriptor (no window between the check and the read), and read up to the cap; each
//! refusal is a message that names the file.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::fcntl::OFlag;

/// The largest file a config may name: certificate chains and keys are a few KiB.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The whole content of the regular file `path`, if it is at most [`MAX_FILE_BYTES`].
pub fn regular_file(path: &Path) -> Result<Vec<u8>, String> {
    let cannot = |error: std::io::Error| format!("cannot read {}: {error}", path.display());
    let file = open_without_blocking(path).map_err(cannot)?;
    let metadata = file.metadata().map_err(cannot)?;
    if !metadata.is_file() {
        return Err(format!(
            "{} is not a regular file (a {})",
            path.display(),
            kind(&metadata.file_type())
        ));
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(too_large(path));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    // The file may grow between the check and the read: never take more than the cap.
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(path));
    }
    Ok(bytes)
}

/// [`regular_file`] as UTF-8 text.
pub fn text_file(path: &Path) -> Result<String, String> {
    String::from_utf8(regular_file(path)?)
        .map_err(|_| format!("cannot read {}: not UTF-8 text", path.display()))
}

/// Opening a FIFO for reading blocks until a writer comes; `O_NONBLOCK` returns at once (and
/// changes nothing for a regular file).
fn open_without_blocking(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NONBLOCK.bits())
        .open(path)
}

fn too_large(path: &Path) -> String {
    format!(
        "{} is larger than {} KiB, too large for a file a config names",
        path.display(),
        MAX_FILE_BYTES / 1024
    )
}

fn kind(file_type: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_dir() {
        "directory"
    } else if file_type.is_fifo() {
        "named pipe"
    } else if file_type.is_char_device() {
        "character device"
    } else if file_type.is_block_device() {
        "block device"
    } else if file_type.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_refused_at_once() {
        let error = regular_file(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(
            error,
            "/dev/zero is not a regular file (a character device)"
        );
        let error = regular_file(Path::new("/")).unwrap_err();
        assert!(error.contains("(a directory)"), "{error}");
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = std::env::temp_dir().join(format!("ballast-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("cert.pem");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let error = regular_file(&fifo).unwrap_err();
        assert!(
            error.ends_with("is not a regular file (a named pipe)"),
            "{error}"
        );

        let big = dir.join("big.pem");
        std::fs::write(&big, vec![b'a'; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert!(regular_file(&big).unwrap_err().contains("too large"));
        let small = dir.join("small.pem");
        std::fs::write(&small, "pem").unwrap();
        assert_eq!(text_file(&small).unwrap(), "pem");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
