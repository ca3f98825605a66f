//! The table writer: `set` fields of a pending row, then `save_row` appends it in one write.
//!
//! A thin façade: the row being built lives in [`super::row`], the line format in
//! [`super::format`], and the cross-process append protocol in [`super::protocol`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::Value;
use super::format::LineBuilder;
use super::protocol::TableFile;
use super::row::{FieldId, PendingRow};
use crate::error::Result;

/// How hard `save_row` works to keep a row through a power loss.
///
/// Every policy is write-through: when `save_row` returns, the whole line is in the kernel, so a
/// killed process loses nothing. The fsync policies also survive a machine crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// Never fsync (the default): rows survive a killed process, not a power cut.
    #[default]
    WriteThrough,
    /// fsync after every row.
    EveryRow,
    /// fsync at most once per interval (on the first save after it elapses, and on drop).
    Interval(Duration),
}

/// Writes rows to one metrics table. One writer per thread; any number of writers and processes
/// may write the same table at once.
pub struct TableWriter {
    file: TableFile,
    row: PendingRow,
    out: LineBuilder,
    durability: Durability,
}

/// The sync policy and where the writer stands with it.
struct Durability {
    policy: SyncPolicy,
    last_sync: Instant,
    unsynced: bool,
}

impl TableWriter {
    /// A writer for the table at `path` whose rows carry `run_id`. Nothing is opened until the
    /// first `save_row`.
    pub fn new(path: impl Into<PathBuf>, run_id: &str, sync: SyncPolicy) -> TableWriter {
        TableWriter {
            file: TableFile::new(path.into()),
            row: PendingRow::new(run_id),
            out: LineBuilder::default(),
            durability: Durability {
                policy: sync,
                last_sync: Instant::now(),
                unsynced: false,
            },
        }
    }

    /// Changes the durability policy for the following rows.
    pub fn set_sync(&mut self, sync: SyncPolicy) {
        self.durability.policy = sync;
    }

    /// The table's file.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Registers `name` (once) and returns its handle.
    pub fn field_id(&mut self, name: &str) -> Result<FieldId> {
        let (id, new) = self.row.field_id(name)?;
        if new {
            self.file.bind(id, name);
        }
        Ok(id)
    }

    /// The name of a registered field.
    pub fn field_name(&self, id: FieldId) -> Option<&str> {
        if !self.row.owns(id) {
            return None;
        }
        self.row.names().get(id.index()).map(String::as_str)
    }

    /// Sets a field of the pending row by handle.
    ///
    /// # Panics
    /// If `id` did not come from this writer's [`field_id`](Self::field_id).
    pub fn set_id(&mut self, id: FieldId, value: Value) {
        self.row.set(id, value);
    }

    /// Sets a field of the pending row by name (the seed's `upd_row` for one field).
    pub fn set(&mut self, name: &str, value: impl Into<Value>) -> Result<()> {
        let id = self.field_id(name)?;
        self.set_id(id, value.into());
        Ok(())
    }

    /// Merges many fields into the pending row.
    pub fn upd_row<K, V>(&mut self, fields: impl IntoIterator<Item = (K, V)>) -> Result<()>
    where
        K: AsRef<str>,
        V: Into<Value>,
    {
        for (name, value) in fields {
            self.set(name.as_ref(), value)?;
        }
        Ok(())
    }

    /// Whether the pending row has any field set.
    pub fn has_pending(&self) -> bool {
        !self.row.is_empty()
    }

    /// Drops the pending row without saving it.
    pub fn clear_row(&mut self) {
        self.row.clear();
    }

    /// Appends the pending row and clears it. When this returns, the line is in the kernel
    /// (and on disk, under an fsync [`SyncPolicy`]). An empty pending row writes nothing.
    pub fn save_row(&mut self) -> Result<()> {
        if self.row.is_empty() {
            return Ok(());
        }
        self.file.append_row(&self.row, &mut self.out)?;
        self.row.clear();
        self.durability.unsynced = true;
        match self.durability.policy {
            SyncPolicy::WriteThrough => Ok(()),
            SyncPolicy::EveryRow => self.sync(),
            SyncPolicy::Interval(every) if self.durability.last_sync.elapsed() >= every => {
                self.sync()
            }
            SyncPolicy::Interval(_) => Ok(()),
        }
    }

    /// fsyncs what this writer wrote, whatever the policy.
    pub fn sync(&mut self) -> Result<()> {
        if self.durability.unsynced {
            self.file.sync()?;
            self.durability.unsynced = false;
            self.durability.last_sync = Instant::now();
        }
        Ok(())
    }

    /// fsyncs when the policy asks for durability at all (used when a run ends).
    pub(crate) fn sync_if_durable(&mut self) -> Result<()> {
        if self.durability.policy == SyncPolicy::WriteThrough {
            Ok(())
        } else {
            self.sync()
        }
    }
}

impl Drop for TableWriter {
    fn drop(&mut self) {
        if self.durability.policy != SyncPolicy::WriteThrough {
            let _ = self.sync();
        }
    }
}
