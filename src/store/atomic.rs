//! Atomic file replacement: write a temporary file, fsync it, rename it over the target, fsync
//! the directory. A crash at any instant leaves either the old or the new file whole.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::faults::{self, IoOp};
use crate::error::{IoContext, Result};

/// Replaces `path` with `bytes` atomically and durably.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    // Unique per process and call, so concurrent writers never share a temporary file.
    let tmp = dir.join(format!(
        ".{file_name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        faults::check(IoOp::Open, &tmp).at("create", &tmp)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .at("create", &tmp)?;
        let mut written = 0;
        while written < bytes.len() {
            let limit = faults::write_limit(&tmp, bytes.len() - written).at("write", &tmp)?;
            file.write_all(&bytes[written..written + limit])
                .at("write", &tmp)?;
            written += limit;
        }
        faults::check(IoOp::Sync, &tmp).at("fsync", &tmp)?;
        file.sync_data().at("fsync", &tmp)?;
        faults::check(IoOp::Rename, path).at("replace", path)?;
        std::fs::rename(&tmp, path).at("replace", path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Makes a rename or file creation in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    faults::check(IoOp::Sync, dir).at("fsync the directory", dir)?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .at("fsync the directory", dir)
}
