//! An advisory lock file from `std::fs::File::lock` (flock(2) on Unix), held by an RAII guard.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::faults::{self, IoOp};
use crate::error::{IoContext, Result};

/// A dedicated lock file (`.expman.lock`) held exclusively while this value lives.
pub(crate) struct LockFile {
    file: File,
    path: PathBuf,
}

impl LockFile {
    /// Creates `path` if needed and blocks until it is exclusively locked.
    pub(crate) fn acquire(path: &Path) -> Result<LockFile> {
        let file = open_lock_file(path)?;
        file.lock().at("lock", path)?;
        Ok(LockFile {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The lock file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The locked file, for small state kept inside it.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }
}

/// Opens a lock file for reading and writing, creating it if needed and never truncating it
/// (another process may hold it, and some keep state inside: a run-id hint, a table's record).
pub(crate) fn open_lock_file(path: &Path) -> Result<File> {
    faults::check(IoOp::Open, path).at("open the lock file", path)?;
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .at("open the lock file", path)
}
