//! The record of a table's last append, kept in the table's lock file with plain reads and
//! writes under flock: the network-filesystem twin of the shared page of [`super::shm`].
//!
//! Shared memory is not coherent between hosts, but reads and writes made under a flock are
//! (NFS revalidates on lock and flushes on unlock). Before each append the writer records the
//! table's inode, where the append starts and its length; after a writer is killed mid-row,
//! the next one finds the file ending inside that recorded append and can prove the fragment
//! is an unacknowledged expman row, which it cuts, exactly as on a local disk. The record sits
//! at the offsets the shared page uses, so one lock file describes its table in either mode.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::faults::{self, IoOp};
use super::lock::open_lock_file;
use super::shm::{MARK_OFFSET, PREFIX_MAX, TableMark};
use crate::error::{IoContext, Result};

/// A table's append record in its lock file, read and written only under the table's flock.
pub(crate) struct FlockMark {
    file: File,
    path: PathBuf,
}

impl FlockMark {
    /// Opens (creating if needed) the lock file at `path`.
    pub(crate) fn open(path: &Path) -> Result<FlockMark> {
        let file = open_lock_file(path)?;
        Ok(FlockMark {
            file,
            path: path.to_path_buf(),
        })
    }

    /// What the last appender recorded (all zeros where nothing was).
    pub(crate) fn read(&self) -> Result<TableMark> {
        let mut bytes = [0u8; 32];
        faults::check(IoOp::Read, &self.path).at("read the lock file", &self.path)?;
        let mut got = 0;
        while got < bytes.len() {
            let n = self
                .file
                .read_at(&mut bytes[got..], MARK_OFFSET + got as u64)
                .at("read the lock file", &self.path)?;
            if n == 0 {
                break;
            }
            got += n;
        }
        let word =
            |i: usize| u64::from_ne_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        Ok(TableMark {
            inode: word(0),
            committed_end: word(1),
            inflight: (word(2), word(3)),
        })
    }

    /// Records that an append of `bytes` to file `inode` starts at `start`, which the file ends
    /// at (so `start` is also where the acknowledged rows end), with its first bytes: one write.
    pub(crate) fn begin_append(&self, inode: u64, start: u64, bytes: &[u8]) -> Result<()> {
        let prefix = &bytes[..bytes.len().min(PREFIX_MAX)];
        let mut record = Vec::with_capacity(32 + prefix.len());
        for word in [inode, start, start, bytes.len() as u64] {
            record.extend_from_slice(&word.to_ne_bytes());
        }
        record.extend_from_slice(prefix);
        faults::check(IoOp::Write, &self.path).at("write the lock file", &self.path)?;
        self.file
            .write_all_at(&record, MARK_OFFSET)
            .at("write the lock file", &self.path)
    }

    /// The first bytes of the last recorded append.
    pub(crate) fn inflight_prefix(&self) -> Result<Vec<u8>> {
        let mark = self.read()?;
        let len = (mark.inflight.1 as usize).min(PREFIX_MAX);
        let mut prefix = vec![0u8; len];
        faults::check(IoOp::Read, &self.path).at("read the lock file", &self.path)?;
        let got = self
            .file
            .read_at(&mut prefix, MARK_OFFSET + 32)
            .at("read the lock file", &self.path)?;
        prefix.truncate(got);
        Ok(prefix)
    }
}
