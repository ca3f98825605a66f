//! How the writers of one table exclude each other, and the record of each append that lets the
//! next writer prove a torn fragment its own: the shared page on a local disk, the lock file
//! under flock elsewhere.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::store::faults::{self, IoOp};
use crate::store::{FlockMark, SharedLock, TableMark, local_filesystem};

/// How the writers of one table exclude each other.
pub(super) enum Coordination {
    /// Local filesystem: a lock, a generation counter and the table's end in shared memory
    /// (`metrics/.<table>.csv.lock`, see `store::shm`).
    Shared(SharedLock),
    /// Network filesystem: flock on the table file, an fstat after each lock to see whether
    /// it was replaced, and the append record in the lock file (`store::mark`).
    Flock(FlockMark),
}

impl Coordination {
    pub(super) fn for_table(path: &Path) -> Result<Coordination> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let lock_path = path.with_file_name(format!(".{file_name}.lock"));
        if !local_filesystem(dir) {
            return Ok(Coordination::Flock(FlockMark::open(&lock_path)?));
        }
        Ok(Coordination::Shared(SharedLock::open(&lock_path)?))
    }

    pub(super) fn generation(&self) -> u64 {
        match self {
            Coordination::Shared(lock) => lock.generation(),
            Coordination::Flock(_) => 0,
        }
    }
}

/// The lock that is held while a row is saved, and where the append record lives.
#[derive(Clone, Copy)]
pub(super) enum Held<'a> {
    /// flock on the table file; the record in the lock file.
    Flock(&'a FlockMark),
    /// The shared lock and its page; `took_over` when its previous owner died holding it.
    Shared {
        lock: &'a SharedLock,
        took_over: bool,
    },
}

impl<'a> Held<'a> {
    pub(super) fn shared(self) -> Option<&'a SharedLock> {
        match self {
            Held::Shared { lock, .. } => Some(lock),
            Held::Flock(_) => None,
        }
    }

    /// What the last appender recorded about the table.
    pub(super) fn mark(self) -> Result<TableMark> {
        match self {
            Held::Shared { lock, .. } => Ok(lock.mark()),
            Held::Flock(mark) => mark.read(),
        }
    }

    /// Records an append about to start at `start`, where the file (inode `inode`) ends.
    pub(super) fn begin_append(self, inode: u64, start: u64, bytes: &[u8]) -> Result<()> {
        match self {
            Held::Shared { lock, .. } => {
                lock.begin_append(start, bytes);
                Ok(())
            }
            Held::Flock(mark) => mark.begin_append(inode, start, bytes),
        }
    }

    /// Whether the bytes of `file` from `mark`'s append start to `size` are a torn fragment of
    /// that append: the record says the append began there and never finished (see
    /// [`TableMark::unacknowledged`]), and the bytes are the append's own first bytes. A hand
    /// edit that changed the file's length while the writer lay dead fails the second test.
    pub(super) fn torn_fragment(
        self,
        file: &File,
        path: &Path,
        mark: &TableMark,
        inode: u64,
        size: u64,
    ) -> Result<bool> {
        if mark.unacknowledged(inode, size) != Some(false) {
            return Ok(false);
        }
        let prefix = match self {
            Held::Shared { lock, .. } => lock.inflight_prefix(),
            Held::Flock(record) => record.inflight_prefix()?,
        };
        let start = mark.inflight.0;
        let n = ((size - start) as usize).min(prefix.len());
        if n == 0 {
            return Ok(false);
        }
        let mut found = vec![0u8; n];
        faults::check(IoOp::Read, path).at("read the end of", path)?;
        file.read_exact_at(&mut found, start)
            .at("read the end of", path)?;
        Ok(found == prefix[..n])
    }

    /// Records that the file ends, acknowledged, at `end`. (Under flock the begin record says
    /// as much once the file reaches its end: one write per row is enough there.)
    pub(super) fn commit(self, inode: u64, end: u64) {
        if let Held::Shared { lock, .. } = self {
            lock.commit(inode, end);
        }
    }
}

/// Appends `line` (one `write(2)`; the loop only continues after a signal or a short write) to
/// a file that ends at `start`, recording the append in flight (shared page or lock file) so that
/// whoever takes the lock over from a dead us can prove a fragment of it ours. On failure the
/// part of the line that got in is cut off again, so a failed save leaves no trace: we hold the
/// lock, so those bytes are the last ones of the file.
pub(super) fn append(
    file: &File,
    path: &Path,
    held: Held<'_>,
    inode: u64,
    start: u64,
    line: &[u8],
) -> Result<()> {
    held.begin_append(inode, start, line)?;
    let mut writer = file;
    let mut written = 0;
    while written < line.len() {
        let attempt = faults::write_limit(path, line.len() - written)
            .and_then(|limit| writer.write(&line[written..written + limit]));
        match attempt {
            Ok(0) => {
                let e = std::io::Error::from(std::io::ErrorKind::WriteZero);
                return Err(undo_append(file, path, start, written, e));
            }
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(undo_append(file, path, start, written, e)),
        }
    }
    held.commit(inode, start + line.len() as u64);
    Ok(())
}

/// Cuts the `written` bytes of a failed append that started at `start` and returns the
/// append's error. If the cut fails too, the shared record still proves those bytes an
/// unacknowledged fragment, and the next writer cuts them.
fn undo_append(file: &File, path: &Path, start: u64, written: usize, e: std::io::Error) -> Error {
    if written > 0 {
        let _ = faults::check(IoOp::Truncate, path).and_then(|()| file.set_len(start));
    }
    Error::io("append a row to", path, e)
}
