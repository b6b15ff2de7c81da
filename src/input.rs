//! Opening the files a campaign reads: audiences, suppression lists, templates, catalogs.
//!
//! # Guarantees
//! - Only regular files are read. A FIFO, a device (`/dev/zero` behind a symlink, say) or a
//!   folder is refused before a byte is read: it is opened without blocking and checked on
//!   the open descriptor, so a file swapped for a FIFO after validation cannot hang herald.
//! - Whole files read into memory (templates, catalogs) are bounded by `MAX_FILE`; streamed
//!   files (audiences, suppression lists) are bounded per record by `MAX_RECORD`, so no input
//!   makes herald's memory grow without bound.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// The largest template or catalog file herald reads.
pub const MAX_FILE: u64 = 10 * 1024 * 1024;
/// The largest audience row or suppression list entry, in bytes.
pub const MAX_RECORD: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read `{}`: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("`{}` is {what}, not a regular file; herald reads only regular files", path.display())]
    NotRegular { path: PathBuf, what: &'static str },
    #[error("`{}` is {size} bytes; herald reads files of at most {limit} bytes here", path.display())]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
}

/// Opens `path` for reading if it is a regular file (symlinks followed).
pub fn open(path: &Path) -> Result<File, InputError> {
    let file = OpenOptions::new()
        .read(true)
        // A FIFO would block `open` until a writer comes; a regular file ignores the flag.
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|source| InputError::Open {
            path: path.to_owned(),
            source,
        })?;
    let kind = file
        .metadata()
        .map_err(|source| InputError::Open {
            path: path.to_owned(),
            source,
        })?
        .file_type();
    if kind.is_file() {
        return Ok(file);
    }
    Err(InputError::NotRegular {
        path: path.to_owned(),
        what: describe(kind),
    })
}

/// The whole text of a regular file of at most `MAX_FILE` bytes.
pub fn read_to_string(path: &Path) -> Result<String, InputError> {
    let bytes = read(path)?;
    String::from_utf8(bytes).map_err(|_| InputError::Open {
        path: path.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidData, "not valid UTF-8"),
    })
}

/// The bytes of a regular file of at most `MAX_FILE` bytes.
pub fn read(path: &Path) -> Result<Vec<u8>, InputError> {
    let file = open(path)?;
    let size = file.metadata().map_or(0, |m| m.len());
    if size > MAX_FILE {
        return Err(InputError::TooLarge {
            path: path.to_owned(),
            size,
            limit: MAX_FILE,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // `take` also bounds a file that grows while it is read.
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| InputError::Open {
            path: path.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(InputError::TooLarge {
            path: path.to_owned(),
            size: bytes.len() as u64,
            limit: MAX_FILE,
        });
    }
    Ok(bytes)
}

/// Whether `path` is a regular file now (symlinks followed), without opening it.
/// The catalogs in `folder`: its `*.yaml` and `*.yml` files, sorted.
pub fn catalog_files(folder: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let path = entry?.path();
        if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

pub fn is_regular(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

/// What a path that is not a regular file is, for messages.
pub fn describe_path(path: &Path) -> &'static str {
    std::fs::metadata(path).map_or("missing", |m| describe(m.file_type()))
}

fn describe(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if kind.is_dir() {
        "a folder"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_folders_and_fifos_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let link = dir.path().join("zero.csv");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        for (path, what) in [
            (fifo.as_path(), "a FIFO"),
            (link.as_path(), "a device"),
            (dir.path(), "a folder"),
        ] {
            let error = open(path).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "`{}` is {what}, not a regular file; herald reads only regular files",
                    path.display()
                )
            );
        }
    }

    #[test]
    fn files_past_the_limit_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.yaml");
        let file = File::create(&path).unwrap();
        file.set_len(MAX_FILE + 1).unwrap();
        assert!(matches!(read(&path), Err(InputError::TooLarge { .. })));
    }
}
