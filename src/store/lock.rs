//! An advisory lock file from `std::fs::File::lock` (flock(2) on Unix), held by an RAII guard.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};

/// A dedicated lock file (`.expman.lock`) held exclusively while this value lives.
pub(crate) struct LockFile {
    file: File,
    path: PathBuf,
}

impl LockFile {
    /// Creates `path` if needed and blocks until it is exclusively locked.
    pub(crate) fn acquire(path: &Path) -> Result<LockFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .at("open the lock file", path)?;
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
