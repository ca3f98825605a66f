//! The table writer: `set` fields of a pending row, then `save_row` appends it in one write.
//!
//! Protocol, shared by every process that writes a table (they need no other coordination):
//!
//! 1. Open `metrics/<table>.csv` with `O_APPEND` and take the table's lock: on a local
//!    filesystem a lock word in shared memory (`store::shm`, with a record of where the last
//!    acknowledged append ended and of the append in flight), on a network filesystem flock.
//! 2. Fast path (local): the file ends exactly where the last acknowledged append ended (one
//!    `lseek` against the shared record) and every field has a column: write the line with one
//!    `write(2)` and record its end. Nothing else is read.
//! 3. Otherwise look closer. `fstat`: a link count of 0 means the file was replaced (widened)
//!    or deleted while we waited; reopen. A tail that no acknowledged append accounts for is
//!    either provably the torn fragment of an expman append (the shared record says an append
//!    of N bytes began at the committed end and never finished, and the file ends inside it):
//!    then it is cut, because its `save_row` never returned; or anything else (a hand edit,
//!    another tool, a half-copied file, a writer killed on a network filesystem): then not one
//!    byte is removed. The bytes since the last known record boundary are scanned with the CSV
//!    state machine of [`super::framing`], and the new row is preceded by what makes it a
//!    record of its own (a line end, or a closing quote and a line end), with a warning on
//!    stderr naming the file and line.
//! 4. A row with a field the header lacks widens the table: a temporary file gets the new
//!    header, the body (kernel copy), the separator and the row; fsync, rename over the table,
//!    record its end and bump the shared generation at once, fsync the directory. Writers
//!    holding the old file see step 3 (or the generation) and reopen. A failed append cuts the
//!    bytes it wrote.
//! 5. Unlock.
//!
//! Readers take no lock: they see either the old or the new file whole, and leave out a last
//! record that is not complete yet (a write in progress).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::format::{Clock, format_row, parse_header, write_header};
use super::framing::{self, Scanner, Tail};
use super::pad::Padder;
use super::value::write_text;
use super::{FIXED_COLUMNS, Value, validate_field};
use crate::error::{Error, IoContext, Result};
use crate::store::faults::{self, IoOp};
use crate::store::{FlockMark, SharedLock, TableMark, local_filesystem};

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

/// A field registered with a [`TableWriter`]: a cheap handle for the hot path, so callers (and
/// the C ABI) can set values without hashing the name every row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldId(pub(crate) u32);

impl FieldId {
    /// The handle's number (dense from 0, in registration order).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Writes rows to one metrics table. One writer per thread; any number of writers and processes
/// may write the same table at once.
pub struct TableWriter {
    path: PathBuf,
    tmp_path: PathBuf,
    run_id: String,
    names: Vec<String>,
    ids: HashMap<String, FieldId>,
    /// The field `field_id` expects to be asked for next (see there).
    next_guess: usize,
    pending: Vec<Option<Value>>,
    touched: Vec<FieldId>,
    open: Option<OpenTable>,
    coordination: Option<Coordination>,
    sync: SyncPolicy,
    last_sync: Instant,
    unsynced: bool,
    clock: Clock,
    line: Vec<u8>,
}

/// The header as last read or written by us.
struct Layout {
    header_len: u64,
    columns: Vec<String>,
    field_of_column: Vec<Option<FieldId>>,
    column_of_field: Vec<Option<usize>>,
    /// Where our last write ended; if the file is longer, someone else wrote after us.
    end: u64,
}

impl Layout {
    fn new(header_len: u64, columns: Vec<String>, names: &[String], end: u64) -> Layout {
        let mut layout = Layout {
            header_len,
            field_of_column: vec![None; columns.len()],
            column_of_field: Vec::with_capacity(names.len()),
            columns,
            end,
        };
        for (id, name) in names.iter().enumerate() {
            layout.bind(FieldId(id as u32), name);
        }
        layout
    }

    fn bind(&mut self, id: FieldId, name: &str) {
        let column = self.columns.iter().position(|c| c == name);
        if self.column_of_field.len() <= id.index() {
            self.column_of_field.resize(id.index() + 1, None);
        }
        self.column_of_field[id.index()] = column;
        if let Some(column) = column {
            self.field_of_column[column] = Some(id);
        }
    }

    fn column(&self, id: FieldId) -> Option<usize> {
        self.column_of_field.get(id.index()).copied().flatten()
    }
}

impl TableWriter {
    /// A writer for the table at `path` whose rows carry `run_id`. Nothing is opened until the
    /// first `save_row`.
    pub fn new(path: impl Into<PathBuf>, run_id: &str, sync: SyncPolicy) -> TableWriter {
        let path = path.into();
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let tmp_path = path.with_file_name(format!(".{file_name}.rewrite.tmp"));
        let mut run_id_cell = Vec::new();
        write_text(run_id, &mut run_id_cell);
        TableWriter {
            path,
            tmp_path,
            run_id: String::from_utf8(run_id_cell).unwrap_or_default(),
            names: Vec::new(),
            ids: HashMap::new(),
            next_guess: 0,
            pending: Vec::new(),
            touched: Vec::new(),
            open: None,
            coordination: None,
            sync,
            last_sync: Instant::now(),
            unsynced: false,
            clock: Clock::default(),
            line: Vec::with_capacity(256),
        }
    }

    /// Changes the durability policy for the following rows.
    pub fn set_sync(&mut self, sync: SyncPolicy) {
        self.sync = sync;
    }

    /// The table's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Registers `name` (once) and returns its handle.
    pub fn field_id(&mut self, name: &str) -> Result<FieldId> {
        // Loops set the same fields in the same order row after row: guess the field after the
        // last one asked for, and compare one string instead of hashing.
        if let Some(guess) = self.names.get(self.next_guess)
            && guess == name
        {
            let id = FieldId(self.next_guess as u32);
            self.next_guess += 1;
            return Ok(id);
        }
        if let Some(&id) = self.ids.get(name) {
            self.next_guess = id.index() + 1;
            return Ok(id);
        }
        validate_field(name)?;
        let id = FieldId(self.names.len() as u32);
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        self.pending.push(None);
        self.next_guess = id.index() + 1;
        if let Some(layout) = self.open.as_mut().and_then(|o| o.layout.as_mut()) {
            layout.bind(id, name);
        }
        Ok(id)
    }

    /// The name of a registered field.
    pub fn field_name(&self, id: FieldId) -> Option<&str> {
        self.names.get(id.index()).map(String::as_str)
    }

    /// Sets a field of the pending row by handle.
    ///
    /// # Panics
    /// If `id` did not come from this writer's [`field_id`](Self::field_id).
    pub fn set_id(&mut self, id: FieldId, value: Value) {
        let slot = &mut self.pending[id.index()];
        if slot.is_none() {
            self.touched.push(id);
        }
        *slot = Some(value);
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
        !self.touched.is_empty()
    }

    /// Drops the pending row without saving it.
    pub fn clear_row(&mut self) {
        for id in self.touched.drain(..) {
            self.pending[id.index()] = None;
        }
    }

    /// Appends the pending row and clears it. When this returns, the line is in the kernel
    /// (and on disk, under an fsync [`SyncPolicy`]). An empty pending row writes nothing.
    pub fn save_row(&mut self) -> Result<()> {
        if self.touched.is_empty() {
            return Ok(());
        }
        if self.coordination.is_none() {
            self.coordination = Some(Coordination::for_table(&self.path)?);
        }
        let coordination = self.coordination.as_ref().expect("chosen above");
        // Set when we took the lock over from a dead owner: its last append may be torn. Kept
        // across a reopen, because the guard that told us is gone by the next try.
        let mut took_over = false;
        loop {
            if self.open.is_none() {
                // Read the generation before opening: a replacement after this read bumps it,
                // so a mismatch under the lock always means our file may be stale.
                let generation = coordination.generation();
                faults::check(IoOp::Open, &self.path).at("open the metrics table", &self.path)?;
                let file = OpenOptions::new()
                    .read(true)
                    .append(true)
                    .create(true)
                    .open(&self.path)
                    .at("open the metrics table", &self.path)?;
                self.open = Some(OpenTable {
                    file,
                    layout: None,
                    inode: 0,
                    generation,
                    checked_second: i64::MIN,
                });
            }
            let open = self.open.as_mut().expect("opened above");
            let row = Row {
                path: &self.path,
                tmp_path: &self.tmp_path,
                names: &self.names,
                pending: &self.pending,
                touched: &self.touched,
                run_id: &self.run_id,
            };
            let outcome = match coordination {
                Coordination::Flock(mark) => {
                    open.file.lock().at("lock", &self.path)?;
                    let held = Held::Flock(mark);
                    let saved = row.save(open, held, &mut self.clock, &mut self.line);
                    // Closing would release it too; an unlock error leaves nothing to act on.
                    let _ = open.file.unlock();
                    saved?
                }
                Coordination::Shared(lock) => {
                    let guard = lock.lock();
                    if guard.took_over {
                        // The dead owner may have renamed a widened file into place and died
                        // before bumping the generation: bump it now, so that every writer
                        // still holding the replaced file reopens instead of appending to it.
                        lock.bump_generation();
                        took_over = true;
                    }
                    if lock.generation() != open.generation {
                        Saved::Stale
                    } else {
                        let held = Held::Shared { lock, took_over };
                        row.save(open, held, &mut self.clock, &mut self.line)?
                    }
                }
            };
            match outcome {
                Saved::Appended => break,
                Saved::Replaced => {
                    // Our row is in the new file; read its header again on the next save.
                    self.open = None;
                    break;
                }
                Saved::Stale => self.open = None,
            }
        }
        self.clear_row();
        self.unsynced = true;
        self.after_write()
    }

    /// fsyncs what this writer wrote, whatever the policy.
    pub fn sync(&mut self) -> Result<()> {
        if self.unsynced {
            if let Some(open) = &self.open {
                faults::check(IoOp::Sync, &self.path).at("fsync", &self.path)?;
                open.file.sync_data().at("fsync", &self.path)?;
            }
            self.unsynced = false;
            self.last_sync = Instant::now();
        }
        Ok(())
    }

    /// fsyncs when the policy asks for durability at all (used when a run ends).
    pub(crate) fn sync_if_durable(&mut self) -> Result<()> {
        if self.sync == SyncPolicy::WriteThrough {
            Ok(())
        } else {
            self.sync()
        }
    }

    fn after_write(&mut self) -> Result<()> {
        match self.sync {
            SyncPolicy::WriteThrough => Ok(()),
            SyncPolicy::EveryRow => self.sync(),
            SyncPolicy::Interval(every) if self.last_sync.elapsed() >= every => self.sync(),
            SyncPolicy::Interval(_) => Ok(()),
        }
    }
}

/// How much of a table a widening reads at a time.
const COPY_CHUNK: usize = 1 << 20;

/// The longest header line looked for: past it, a file without a line end is not a table.
const MAX_HEADER_BYTES: u64 = 16 << 20;

/// How the writers of one table exclude each other.
enum Coordination {
    /// Local filesystem: a lock, a generation counter and the table's end in shared memory
    /// (`metrics/.<table>.csv.lock`, see `store::shm`).
    Shared(SharedLock),
    /// Network filesystem: flock on the table file, an fstat after each lock to see whether
    /// it was replaced, and the append record in the lock file (`store::mark`).
    Flock(FlockMark),
}

impl Coordination {
    fn for_table(path: &Path) -> Result<Coordination> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let lock_path = path.with_file_name(format!(".{file_name}.lock"));
        if !local_filesystem(dir) {
            return Ok(Coordination::Flock(FlockMark::open(&lock_path)?));
        }
        faults::check(IoOp::Open, &lock_path).at("open the lock file", &lock_path)?;
        Ok(Coordination::Shared(SharedLock::open(&lock_path)?))
    }

    fn generation(&self) -> u64 {
        match self {
            Coordination::Shared(lock) => lock.generation(),
            Coordination::Flock(_) => 0,
        }
    }
}

/// The lock that is held while a row is saved, and where the append record lives.
#[derive(Clone, Copy)]
enum Held<'a> {
    /// flock on the table file; the record in the lock file.
    Flock(&'a FlockMark),
    /// The shared lock and its page; `took_over` when its previous owner died holding it.
    Shared {
        lock: &'a SharedLock,
        took_over: bool,
    },
}

impl<'a> Held<'a> {
    fn shared(self) -> Option<&'a SharedLock> {
        match self {
            Held::Shared { lock, .. } => Some(lock),
            Held::Flock(_) => None,
        }
    }

    /// What the last appender recorded about the table.
    fn mark(self) -> Result<TableMark> {
        match self {
            Held::Shared { lock, .. } => Ok(lock.mark()),
            Held::Flock(mark) => mark.read(),
        }
    }

    /// Records an append about to start at `start`, where the file (inode `inode`) ends.
    fn begin_append(self, inode: u64, start: u64, len: u64) -> Result<()> {
        match self {
            Held::Shared { lock, .. } => {
                lock.begin_append(start, len);
                Ok(())
            }
            Held::Flock(mark) => mark.begin_append(inode, start, len),
        }
    }

    /// Records that the file ends, acknowledged, at `end`. (Under flock the begin record says
    /// as much once the file reaches its end: one write per row is enough there.)
    fn commit(self, inode: u64, end: u64) {
        if let Held::Shared { lock, .. } = self {
            lock.commit(inode, end);
        }
    }
}

/// The open file and what we know of it.
struct OpenTable {
    file: File,
    layout: Option<Layout>,
    /// The file's inode, from its last fstat (0 before the first).
    inode: u64,
    /// The shared generation when the file was opened.
    generation: u64,
    /// The Unix second of the last fstat. A writer on a local filesystem looks at the link
    /// count (a table deleted by hand gives no generation bump) once in each second it writes,
    /// reusing the row's own timestamp instead of reading a clock for it.
    checked_second: i64,
}

/// The row being saved and where it goes.
struct Row<'a> {
    path: &'a Path,
    tmp_path: &'a Path,
    names: &'a [String],
    pending: &'a [Option<Value>],
    touched: &'a [FieldId],
    run_id: &'a str,
}

/// What a table's header line says, or why there is none.
enum Header {
    /// An empty file: the first row writes the header.
    Empty,
    /// Bytes without a line end: no header line.
    Unterminated,
    /// A header of ours.
    Found(Layout),
}

impl Row<'_> {
    /// Whether every field of the row has a column in `layout`.
    fn fits(&self, layout: &Layout) -> bool {
        self.touched.iter().all(|&id| layout.column(id).is_some())
    }

    /// The body of `save_row`, run while holding the table's lock.
    fn save(
        &self,
        open: &mut OpenTable,
        held: Held<'_>,
        clock: &mut Clock,
        line: &mut Vec<u8>,
    ) -> Result<Saved> {
        let path = self.path;
        if let Held::Shared {
            lock,
            took_over: false,
        } = held
            && let Some(layout) = open.layout.as_mut()
            && self.fits(layout)
        {
            // The fast path: the file ends where the last acknowledged append ended, so it ends
            // with a whole record of ours and the row can follow it directly.
            line.clear();
            let second = format_row(
                &layout.field_of_column,
                self.pending,
                self.run_id,
                clock,
                line,
            );
            if second == open.checked_second {
                let size = seek_end(&open.file, path)?;
                if lock.mark().ends_at(open.inode, size) {
                    append(&open.file, path, held, open.inode, size, line)?;
                    layout.end = size + line.len() as u64;
                    return Ok(Saved::Appended);
                }
            }
        }

        faults::check(IoOp::Stat, path).at("stat", path)?;
        let meta = open.file.metadata().at("stat", path)?;
        if meta.nlink() == 0 {
            return Ok(Saved::Stale);
        }
        open.checked_second = unix_second();
        open.inode = meta.ino();
        let mut size = meta.len();
        if open.layout.is_none() {
            // Only the lock holder widens, so a temporary copy that exists now was left by a
            // writer killed while widening: it is garbage (the table was never replaced by it).
            if self.tmp_path.exists() {
                let _ = faults::check(IoOp::Remove, self.tmp_path)
                    .and_then(|()| std::fs::remove_file(self.tmp_path));
            }
            match read_header(&open.file, path, size, self.names)? {
                Header::Found(layout) => open.layout = Some(layout),
                Header::Empty => {}
                Header::Unterminated => {
                    let mark = held.mark()?;
                    let torn_own_header =
                        mark.committed_end == 0 && mark.unacknowledged(open.inode, size).is_some();
                    if !torn_own_header {
                        return Err(Error::corrupt(
                            path,
                            Some(1),
                            format!(
                                "{size} bytes without a line end, so no header line: not an \
                                 expman metrics table (another program wrote it, or a copy was \
                                 cut short). expman leaves it untouched; move it out of \
                                 metrics/ or log to another table name"
                            ),
                        ));
                    }
                    // The header of a creator that died writing it: start the file again.
                    truncate(&open.file, path, 0)?;
                    size = 0;
                }
            }
        }
        let Some(layout) = open.layout.as_mut() else {
            // A new table: the header and the first row go out in one write.
            let columns = self.touched.iter().map(|id| self.names[id.index()].clone());
            let mut layout = Layout::new(0, columns.collect(), self.names, 0);
            line.clear();
            write_header(&layout.columns, line);
            layout.header_len = line.len() as u64;
            format_row(
                &layout.field_of_column,
                self.pending,
                self.run_id,
                clock,
                line,
            );
            held.commit(open.inode, size);
            append(&open.file, path, held, open.inode, size, line)?;
            layout.end = size + line.len() as u64;
            open.layout = Some(layout);
            return Ok(Saved::Appended);
        };
        let (size, separator) = self.prepare_tail(&open.file, layout, held, open.inode, size)?;
        if separator.is_empty() {
            // The file ends with a whole record here: record it as the boundary, so that a
            // fragment of our append is provably ours. (After bytes we cannot account for,
            // the boundary stays where it was, and a torn append of ours is kept, not cut.)
            held.commit(open.inode, size);
        }
        if self.fits(layout) {
            line.clear();
            line.extend_from_slice(separator);
            format_row(
                &layout.field_of_column,
                self.pending,
                self.run_id,
                clock,
                line,
            );
            append(&open.file, path, held, open.inode, size, line)?;
            layout.end = size + line.len() as u64;
            return Ok(Saved::Appended);
        }
        let mut columns = layout.columns.clone();
        columns.extend(
            self.touched
                .iter()
                .filter(|&&id| layout.column(id).is_none())
                .map(|id| self.names[id.index()].clone()),
        );
        let widened = Layout::new(0, columns, self.names, 0);
        let body = layout.header_len..size;
        self.widen(&open.file, body, separator, &widened, held, clock, line)?;
        Ok(Saved::Replaced)
    }

    /// Makes sure a new record can start at the end of the file: cuts a fragment that is
    /// provably an unacknowledged append of ours; otherwise removes nothing and returns the
    /// bytes that must precede the row (see [`framing::separator`]). Returns the file's size
    /// after any cut and that separator.
    fn prepare_tail(
        &self,
        file: &File,
        layout: &Layout,
        held: Held<'_>,
        inode: u64,
        size: u64,
    ) -> Result<(u64, &'static [u8])> {
        let path = self.path;
        // The nearest record boundary we know: everything before it was there when an append
        // that we (or a writer sharing our record) acknowledged ended.
        let mark = held.mark()?;
        match mark.unacknowledged(inode, size) {
            // A whole line whose writer died before hearing it was saved (or, under flock, the
            // last append of whoever wrote last): keep it.
            Some(true) => return Ok((size, b"")),
            // Torn by a writer killed mid-row: its save never returned, so cut it.
            Some(false) => {
                truncate(file, path, mark.committed_end)?;
                return Ok((mark.committed_end, b""));
            }
            None => {}
        }
        let from = match held {
            Held::Shared { .. } if mark.ends_at(inode, size) => return Ok((size, b"")),
            Held::Flock(_) if layout.end == size => return Ok((size, b"")),
            Held::Flock(_) if (layout.header_len..=size).contains(&layout.end) => layout.end,
            _ if mark.inode == inode
                && (layout.header_len..=size).contains(&mark.committed_end) =>
            {
                mark.committed_end
            }
            _ => layout.header_len,
        };
        let (tail, last_byte) = scan_tail(file, path, from, size)?;
        let swallows = match tail {
            Tail::OpenQuote(start) => {
                faults::check(IoOp::Read, path).at("read the end of", path)?;
                super::reader::open_quote_swallows_rows(file, start, size)
                    .at("read the end of", path)?
            }
            _ => false,
        };
        if tail != Tail::Complete {
            warn_unterminated(file, path, tail, swallows);
        }
        Ok((size, framing::separator(tail, last_byte, swallows)))
    }

    /// Rewrites the table with a wider header, the rows in `body`, `separator` and the new
    /// row, atomically, and tells the other writers (`held`'s generation) as soon as the new
    /// file is in place.
    #[allow(clippy::too_many_arguments)]
    fn widen(
        &self,
        file: &File,
        body: std::ops::Range<u64>,
        separator: &[u8],
        widened: &Layout,
        held: Held<'_>,
        clock: &mut Clock,
        line: &mut Vec<u8>,
    ) -> Result<()> {
        let (path, tmp_path) = (self.path, self.tmp_path);
        let dir = path.parent().unwrap_or(Path::new("."));
        // Opened before anything changes, so running out of descriptors fails cleanly here
        // rather than after the rename.
        faults::check(IoOp::Open, dir).at("open the directory", dir)?;
        let dir_handle = File::open(dir).at("open the directory", dir)?;
        // Only the lock holder rewrites, so a leftover temporary file is from a writer that died.
        let _ = std::fs::remove_file(tmp_path);
        let result = (|| {
            faults::check(IoOp::Open, tmp_path).at("create", tmp_path)?;
            let mut tmp = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(tmp_path)
                .at("create", tmp_path)?;
            line.clear();
            write_header(&widened.columns, line);
            write_all(&mut tmp, tmp_path, line)?;
            faults::check(IoOp::Copy, path).at("copy the rows of", path)?;
            // Every earlier record gains the new columns' empty cells on the way: a table is
            // rectangular, as strict CSV readers require. The separator (if the table ended
            // with a record expman cannot account for) ends that record, padded like the rest.
            let mut padder = Padder::new(widened.columns.len() + FIXED_COLUMNS.len());
            let mut chunk = vec![0u8; COPY_CHUNK];
            let mut padded = Vec::with_capacity(COPY_CHUNK + COPY_CHUNK / 4);
            let mut pos = body.start;
            while pos < body.end {
                let n = ((body.end - pos) as usize).min(COPY_CHUNK);
                file.read_exact_at(&mut chunk[..n], pos).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        Error::invalid_state(format!(
                            "{} shrank while being widened under its lock; another program is \
                             writing it without expman's lock",
                            path.display()
                        ))
                    } else {
                        Error::io("copy the rows of", path, e)
                    }
                })?;
                padded.clear();
                padder.feed(&chunk[..n], &mut padded);
                write_all(&mut tmp, tmp_path, &padded)?;
                pos += n as u64;
            }
            padded.clear();
            padder.feed(separator, &mut padded);
            padder.finish(&mut padded);
            line.clear();
            line.extend_from_slice(&padded);
            format_row(
                &widened.field_of_column,
                self.pending,
                self.run_id,
                clock,
                line,
            );
            write_all(&mut tmp, tmp_path, line)?;
            faults::check(IoOp::Sync, tmp_path).at("fsync", tmp_path)?;
            tmp.sync_data().at("fsync", tmp_path)?;
            let new_end = tmp.stream_position().at("stat", tmp_path)?;
            let new_inode = tmp.metadata().at("stat", tmp_path)?.ino();
            faults::check(IoOp::Rename, path).at("replace", path)?;
            std::fs::rename(tmp_path, path).at("replace", path)?;
            // Tell the other writers before anything else can fail: from here on the old file
            // is unlinked, and a writer that appended to it would lose its row.
            if let Some(lock) = held.shared() {
                lock.commit(new_inode, new_end);
                lock.bump_generation();
            }
            faults::check(IoOp::Sync, dir).at("fsync the directory", dir)?;
            dir_handle.sync_all().at("fsync the directory", dir)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(tmp_path);
        }
        result
    }
}

impl Drop for TableWriter {
    fn drop(&mut self) {
        if self.sync != SyncPolicy::WriteThrough {
            let _ = self.sync();
        }
    }
}

enum Saved {
    Appended,
    Replaced,
    Stale,
}

/// Reads and checks the header of a file of `size` bytes.
fn read_header(file: &File, path: &Path, size: u64, names: &[String]) -> Result<Header> {
    if size == 0 {
        return Ok(Header::Empty);
    }
    let mut head = Vec::new();
    let mut chunk = [0u8; 8192];
    let newline = loop {
        if head.len() as u64 >= size.min(MAX_HEADER_BYTES) {
            return Ok(Header::Unterminated);
        }
        faults::check(IoOp::Read, path).at("read the header of", path)?;
        let n = file
            .read_at(&mut chunk, head.len() as u64)
            .at("read the header of", path)?;
        if n == 0 {
            return Ok(Header::Unterminated);
        }
        let start = head.len();
        head.extend_from_slice(&chunk[..n]);
        if let Some(i) = memchr::memchr(b'\n', &head[start..]) {
            break start + i;
        }
    };
    let columns = parse_header(&head[..newline], path)?;
    Ok(Header::Found(Layout::new(
        newline as u64 + 1,
        columns,
        names,
        u64::MAX,
    )))
}

/// Scans the bytes from `from` (a record boundary) to `size`: how they end, and their last
/// byte (`None` when there are none).
fn scan_tail(file: &File, path: &Path, from: u64, size: u64) -> Result<(Tail, Option<u8>)> {
    let mut scanner = Scanner::new(from);
    let mut chunk = vec![0u8; 64 * 1024];
    let (mut pos, mut last) = (from, None);
    while pos < size {
        let n = ((size - pos) as usize).min(chunk.len());
        faults::check(IoOp::Read, path).at("read the end of", path)?;
        file.read_exact_at(&mut chunk[..n], pos)
            .at("read the end of", path)?;
        scanner.feed(&chunk[..n]);
        last = Some(chunk[n - 1]);
        pos += n as u64;
    }
    Ok((scanner.tail(), last))
}

/// Tells the user that the table ends with a record expman cannot account for, which it keeps.
/// Best effort: a closed stderr is no reason to fail a save.
fn warn_unterminated(file: &File, path: &Path, tail: Tail, swallows_rows: bool) {
    let (start, what) = match tail {
        Tail::Complete => return,
        Tail::OpenRecord(start) => (start, "has no line end"),
        Tail::OpenQuote(start) if swallows_rows => (
            start,
            "opens a quoted cell that never closes and holds the rows after it: a stray `\"`? \
             Readers will name this line until it is removed",
        ),
        Tail::OpenQuote(start) => (
            start,
            "opens a quoted cell that never closes (expman adds the closing `\"`)",
        ),
    };
    let line = line_number(file, start).map_or(String::new(), |n| format!(" line {n}"));
    let _ = writeln!(
        std::io::stderr(),
        "expman: warning: {}{line}: the last record {what}; it was not written by expman's \
         protocol (a hand edit, another program, or a writer killed on a network filesystem). \
         Every byte of it is kept; new rows start on the next line.",
        path.display()
    );
}

/// The 1-based line on which byte `offset` of `file` lies.
fn line_number(file: &File, offset: u64) -> Option<u64> {
    let mut chunk = vec![0u8; 64 * 1024];
    let (mut pos, mut lines) = (0u64, 1u64);
    while pos < offset {
        let n = ((offset - pos) as usize).min(chunk.len());
        file.read_exact_at(&mut chunk[..n], pos).ok()?;
        lines += memchr::memchr_iter(b'\n', &chunk[..n]).count() as u64;
        pos += n as u64;
    }
    Some(lines)
}

fn unix_second() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The file's size, by `lseek`: the cheapest question a writer can ask the kernel.
fn seek_end(file: &File, path: &Path) -> Result<u64> {
    faults::check(IoOp::Stat, path).at("find the end of", path)?;
    let mut file = file;
    file.seek(SeekFrom::End(0)).at("find the end of", path)
}

fn truncate(file: &File, path: &Path, len: u64) -> Result<()> {
    faults::check(IoOp::Truncate, path).at("cut a torn last row from", path)?;
    file.set_len(len).at("cut a torn last row from", path)
}

/// Writes all of `bytes` to a file nobody else sees yet (a widening's temporary copy).
fn write_all(file: &mut File, path: &Path, bytes: &[u8]) -> Result<()> {
    let mut written = 0;
    while written < bytes.len() {
        let limit = faults::write_limit(path, bytes.len() - written).at("write", path)?;
        match file.write(&bytes[written..written + limit]) {
            Ok(0) => {
                return Err(Error::io(
                    "write",
                    path,
                    std::io::ErrorKind::WriteZero.into(),
                ));
            }
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("write", path, e)),
        }
    }
    Ok(())
}

/// Appends `line` (one `write(2)`; the loop only continues after a signal or a short write) to
/// a file that ends at `start`, recording the append in flight (shared page or lock file) so that
/// whoever takes the lock over from a dead us can prove a fragment of it ours. On failure the
/// part of the line that got in is cut off again, so a failed save leaves no trace: we hold the
/// lock, so those bytes are the last ones of the file.
fn append(
    file: &File,
    path: &Path,
    held: Held<'_>,
    inode: u64,
    start: u64,
    line: &[u8],
) -> Result<()> {
    held.begin_append(inode, start, line.len() as u64)?;
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
