//! Run-id allocation.
//!
//! Allocation holds the experiment's `.expman.lock` and then claims `logs/<run>.log` with an
//! atomic create-if-absent. The lock keeps ids dense on a local disk; the exclusive create is a
//! second guard that cannot lie, so even a filesystem whose locks are advisory-only across hosts
//! never hands the same id to two processes (it may then skip one).
//!
//! The last id handed out is kept as text inside the lock file, so allocation does not list a
//! directory that may hold thousands of runs. The hint needs no fsync: if it is lost or stale,
//! the exclusive create skips ids already taken, and a missing hint falls back to a scan. The
//! hint only says where to start looking: an id whose run file (`logs/<run>.log`, or its table
//! `metrics/<run>.csv`) another tool created meanwhile is skipped, never handed out.

use std::fs::OpenOptions;
use std::io::ErrorKind as IoErrorKind;
use std::os::unix::fs::FileExt;

use super::run_id::RunId;
use super::{ExperimentDir, LockFile};
use crate::error::{Error, IoContext, Result};

/// Allocates the next run id in `dir` and creates its `logs/<run>.log`.
pub fn allocate(dir: &ExperimentDir) -> Result<RunId> {
    allocate_and(dir, |_, _| Ok(()))
}

/// Allocates the next run id and runs `record` (which writes the new run into `status.json`)
/// under the same hold of the lock. If anything fails after the id was claimed, the claim is
/// undone: the run log is removed and the hint restored, so a failed open (a full disk)
/// consumes no id, and nobody else can have taken the next one meanwhile.
pub(crate) fn allocate_and(
    dir: &ExperimentDir,
    record: impl FnOnce(&LockFile, RunId) -> Result<()>,
) -> Result<RunId> {
    let lock = LockFile::acquire(&dir.lock_path())?;
    let hint = read_hint(&lock);
    let mut run = match hint {
        Some(last) => last.next(),
        None => dir.runs()?.last().map_or(RunId::FIRST, |last| last.next()),
    };
    let log = loop {
        let log = dir.run_log(run);
        // A run is its log or its table: another tool (a copy, a hand-made table) may have
        // written either since the hint was recorded, and neither must be handed out again.
        if dir.table_path(&run.to_string()).exists() {
            run = run.next();
            continue;
        }
        match OpenOptions::new().write(true).create_new(true).open(&log) {
            Ok(_) => break log,
            // Someone outside our lock (another host, an old expman) took it: take the next.
            Err(e) if e.kind() == IoErrorKind::AlreadyExists => run = run.next(),
            Err(e) => return Err(Error::io("create the run log", &log, e)),
        }
    };
    let result = write_hint(&lock, Some(run)).and_then(|()| record(&lock, run));
    if let Err(e) = result {
        // Best effort: the error to report is the one that made the allocation fail.
        let _ = std::fs::remove_file(&log);
        let _ = write_hint(&lock, hint);
        return Err(e);
    }
    Ok(run)
}

/// Records `last` as the last allocated run in the lock file (`None`: no hint, so the next
/// allocation scans the directory).
fn write_hint(lock: &LockFile, last: Option<RunId>) -> Result<()> {
    match last {
        // Fixed width, so a shorter number never leaves digits of a longer one behind.
        Some(run) => lock
            .file()
            .write_all_at(format!("{:>10}\n", run.number()).as_bytes(), 0),
        None => lock.file().set_len(0),
    }
    .at("record the last run id in", lock.path())
}

/// The last allocated run recorded in the lock file, if it holds a readable one.
fn read_hint(lock: &LockFile) -> Option<RunId> {
    let mut buf = [0u8; 11];
    let n = lock.file().read_at(&mut buf, 0).ok()?;
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    RunId::new(text.trim().parse().ok()?).ok()
}
