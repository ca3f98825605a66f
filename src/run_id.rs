//! Run ids (`run_0001`, `run_0002`, ..., `run_9999`, `run_10000`) and their allocation.
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

use std::fmt;
use std::fs::OpenOptions;
use std::io::ErrorKind as IoErrorKind;
use std::os::unix::fs::FileExt;
use std::str::FromStr;

use crate::error::{Error, IoContext, Result};
use crate::store::{ExperimentDir, LockFile};

/// A run number, displayed as `run_0001` (at least four digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(u32);

impl RunId {
    /// The first run.
    pub const FIRST: RunId = RunId(1);

    /// A run id from its number (1-based).
    pub fn new(number: u32) -> Result<RunId> {
        if number == 0 {
            return Err(Error::invalid_name(
                "run id",
                "run_0000",
                "run numbers start at 1",
            ));
        }
        Ok(RunId(number))
    }

    /// The run's number.
    pub fn number(self) -> u32 {
        self.0
    }

    /// The run after this one.
    pub fn next(self) -> RunId {
        RunId(self.0.saturating_add(1))
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "run_{:04}", self.0)
    }
}

impl FromStr for RunId {
    type Err = Error;

    fn from_str(s: &str) -> Result<RunId> {
        let bad = |reason: &str| Error::invalid_name("run id", s, reason);
        let digits = s
            .strip_prefix("run_")
            .ok_or_else(|| bad("run ids look like run_0001"))?;
        if digits.len() < 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(
                "run ids are run_ followed by at least four digits, e.g. run_0001",
            ));
        }
        if digits.len() > 4 && digits.starts_with('0') {
            return Err(bad(
                "run numbers above 9999 have no leading zeros, e.g. run_10000",
            ));
        }
        let number = digits
            .parse::<u32>()
            .map_err(|_| bad("the run number is too large"))?;
        RunId::new(number)
    }
}

impl serde::Serialize for RunId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for RunId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<RunId, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

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
