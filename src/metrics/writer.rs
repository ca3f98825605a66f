//! The table writer: `set` fields of a pending row, then `save_row` appends it in one write.
//!
//! Protocol, shared by every process that writes a table (they need no other coordination):
//!
//! 1. Open `metrics/<table>.csv` with `O_APPEND` and take an exclusive flock on it.
//! 2. `fstat`: a link count of 0 means another writer replaced (widened) or someone deleted the
//!    file while we waited; drop it, reopen the path and start again. So nobody ever appends to an
//!    unlinked file.
//! 3. If the file grew since our own last write (flock), or we took the lock over from a dead
//!    owner (shared lock), find where the last whole row ends (its newline outside quotes: a
//!    quoted cell may hold newlines, so this scans forward from a known row boundary) and
//!    truncate anything after it: a row torn by a writer killed mid-write, never to be glued to
//!    ours. (Its `save_row` never returned, so nothing acknowledged is lost.)
//! 4. If every field of the row has a column: format the line and write it with one `write(2)`.
//!    Otherwise widen: write the new header to a temporary file, let the kernel copy the body
//!    (`copy_file_range` through `std::io::copy`), add the row, fsync, rename over the table,
//!    bump the shared generation at once, fsync the directory. Writers waiting on the old file
//!    see step 2 and reopen. A failed append cuts the bytes it wrote.
//! 5. Unlock.
//!
//! Readers take no lock: they see either the old or the new file whole, and ignore a last row
//! that is not complete yet (no newline outside quotes after it).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::reader::last_row_end;
use super::value::write_text;
use super::{Value, validate_field};
use crate::error::{Error, IoContext, Result};
use crate::store::{SharedLock, local_filesystem};

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
        // Set when we took the lock over from a dead owner: its last write may be torn. Kept
        // across a reopen, because the guard that told us is gone by the next try.
        let mut repair_pending = false;
        loop {
            if self.open.is_none() {
                // Read the generation before opening: a replacement after this read bumps it,
                // so a mismatch under the lock always means our file may be stale.
                let generation = coordination.generation();
                let file = OpenOptions::new()
                    .read(true)
                    .append(true)
                    .create(true)
                    .open(&self.path)
                    .at("open the metrics table", &self.path)?;
                self.open = Some(OpenTable {
                    file,
                    layout: None,
                    generation,
                    checked: Instant::now(),
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
                Coordination::Flock => {
                    open.file.lock().at("lock", &self.path)?;
                    let saved = row.save(open, Check::Flock, None, &mut self.clock, &mut self.line);
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
                        repair_pending = true;
                    }
                    if lock.generation() != open.generation {
                        Saved::Stale
                    } else {
                        let check = Check::Shared {
                            took_over: repair_pending,
                            // A deleted table (rm by hand) gives no generation bump: look at
                            // the link count now and then.
                            stat: open.layout.is_none()
                                || repair_pending
                                || open.checked.elapsed() >= RECHECK_EVERY,
                        };
                        row.save(open, check, Some(lock), &mut self.clock, &mut self.line)?
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

/// How often a writer on a local filesystem checks that its table file still has a name.
const RECHECK_EVERY: Duration = Duration::from_secs(1);

/// How the writers of one table exclude each other.
enum Coordination {
    /// Local filesystem: a lock and a generation counter in shared memory
    /// (`metrics/.<table>.csv.lock`, see `store::shm`).
    Shared(SharedLock),
    /// Network filesystem: flock on the table file, and an fstat after each lock to see whether
    /// it was replaced.
    Flock,
}

impl Coordination {
    fn for_table(path: &Path) -> Result<Coordination> {
        let dir = path.parent().unwrap_or(Path::new("."));
        if !local_filesystem(dir) {
            return Ok(Coordination::Flock);
        }
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let lock_path = path.with_file_name(format!(".{file_name}.lock"));
        Ok(Coordination::Shared(SharedLock::open(&lock_path)?))
    }

    fn generation(&self) -> u64 {
        match self {
            Coordination::Shared(lock) => lock.generation(),
            Coordination::Flock => 0,
        }
    }
}

/// What to verify once the lock is held.
#[derive(Clone, Copy)]
enum Check {
    /// fstat every time; repair the tail when the file grew since our last write.
    Flock,
    /// fstat only when `stat`; repair the tail only when the previous owner died.
    Shared { took_over: bool, stat: bool },
}

/// The open file and what we know of it.
struct OpenTable {
    file: File,
    layout: Option<Layout>,
    /// The shared generation when the file was opened.
    generation: u64,
    /// When the link count was last checked.
    checked: Instant,
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

impl Row<'_> {
    /// The body of `save_row`, run while holding the table's lock.
    fn save(
        &self,
        open: &mut OpenTable,
        check: Check,
        shared: Option<&SharedLock>,
        clock: &mut Clock,
        line: &mut Vec<u8>,
    ) -> Result<Saved> {
        let path = self.path;
        let file = &open.file;
        let stat = match check {
            Check::Flock => true,
            Check::Shared { stat, .. } => stat,
        };
        let mut size = None;
        if stat {
            let meta = file.metadata().at("stat", path)?;
            if meta.nlink() == 0 {
                return Ok(Saved::Stale);
            }
            open.checked = Instant::now();
            size = Some(meta.len());
        }
        if open.layout.is_none() {
            let known = size.expect("a new file is always stat-ed");
            open.layout = read_header(file, path, known, self.names)?;
            if open.layout.is_none() && known > 0 {
                // A header torn by a writer killed while creating the file: start it again.
                file.set_len(0).at("repair the torn header of", path)?;
                size = Some(0);
            }
        }
        let Some(layout) = open.layout.as_mut() else {
            // A new table: the header and the first row go out in one write.
            let columns = self.touched.iter().map(|id| self.names[id.index()].clone());
            let mut layout = Layout::new(0, columns.collect(), self.names, 0);
            line.clear();
            write_header(&layout.columns, line);
            layout.header_len = line.len() as u64;
            format_row(&layout, self.pending, self.run_id, clock, line);
            append(file, path, line)?;
            layout.end = line.len() as u64;
            open.layout = Some(layout);
            return Ok(Saved::Appended);
        };
        let repair = match check {
            Check::Flock => size != Some(layout.end),
            Check::Shared { took_over, .. } => took_over,
        };
        if repair {
            let known = match size {
                Some(known) => known,
                None => file.metadata().at("stat", path)?.len(),
            };
            // Scan from the last row boundary we know of: the end of our own last write when
            // the file still reaches it, else the header.
            let from = if layout.end <= known {
                layout.end
            } else {
                layout.header_len
            };
            size = Some(repair_tail(file, path, known, from)?);
        }
        if self.touched.iter().all(|&id| layout.column(id).is_some()) {
            line.clear();
            format_row(layout, self.pending, self.run_id, clock, line);
            append(file, path, line)?;
            layout.end = size.map_or(u64::MAX, |s| s + line.len() as u64);
            return Ok(Saved::Appended);
        }
        let size = match size {
            Some(known) => known,
            None => file.metadata().at("stat", path)?.len(),
        };
        let mut columns = layout.columns.clone();
        columns.extend(
            self.touched
                .iter()
                .filter(|&&id| layout.column(id).is_none())
                .map(|id| self.names[id.index()].clone()),
        );
        let widened = Layout::new(0, columns, self.names, 0);
        self.widen(file, layout.header_len, size, &widened, shared, clock, line)?;
        Ok(Saved::Replaced)
    }

    /// Rewrites the table with a wider header and the new row, atomically, and tells the
    /// other writers (`shared`'s generation) as soon as the new file is in place.
    #[allow(clippy::too_many_arguments)]
    fn widen(
        &self,
        file: &File,
        header_len: u64,
        size: u64,
        widened: &Layout,
        shared: Option<&SharedLock>,
        clock: &mut Clock,
        line: &mut Vec<u8>,
    ) -> Result<()> {
        let (path, tmp_path) = (self.path, self.tmp_path);
        // The tail is whole here: a torn one was cut when the lock was taken over (shm) or when
        // the file was found longer than our last write (flock), and a failed append cuts its
        // own bytes. A last byte other than `\n` means one of those failed: scan then.
        let mut last = [0u8; 1];
        let body_end = if size > header_len
            && file.read_exact_at(&mut last, size - 1).is_ok()
            && last[0] == b'\n'
        {
            size
        } else {
            complete_end(file, path, size, header_len)?
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        // Opened before anything changes, so running out of descriptors fails cleanly here
        // rather than after the rename.
        let dir_handle = File::open(dir).at("open the directory", dir)?;
        // Only the lock holder rewrites, so a leftover temporary file is from a writer that died.
        let _ = std::fs::remove_file(tmp_path);
        let result = (|| {
            let mut tmp = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(tmp_path)
                .at("create", tmp_path)?;
            line.clear();
            write_header(&widened.columns, line);
            tmp.write_all(line).at("write", tmp_path)?;
            let mut body = file;
            body.seek(SeekFrom::Start(header_len)).at("seek in", path)?;
            // std::io::copy between files uses copy_file_range: the kernel copies the body.
            let copied = std::io::copy(&mut body.take(body_end - header_len), &mut tmp)
                .at("copy the rows of", path)?;
            if copied != body_end - header_len {
                return Err(Error::invalid_state(format!(
                    "{} shrank while being widened under its lock; another program is writing \
                     it without expman's lock",
                    path.display()
                )));
            }
            line.clear();
            format_row(widened, self.pending, self.run_id, clock, line);
            tmp.write_all(line).at("write", tmp_path)?;
            tmp.sync_data().at("fsync", tmp_path)?;
            std::fs::rename(tmp_path, path).at("replace", path)?;
            // Tell the other writers before anything else can fail: from here on the old file
            // is unlinked, and a writer that appended to it would lose its row.
            if let Some(lock) = shared {
                lock.bump_generation();
            }
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

/// Reads and checks the header; `None` when the file has no complete first line yet.
fn read_header(file: &File, path: &Path, size: u64, names: &[String]) -> Result<Option<Layout>> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 8192];
    let newline = loop {
        if head.len() as u64 >= size {
            return Ok(None);
        }
        let n = file
            .read_at(&mut chunk, head.len() as u64)
            .at("read the header of", path)?;
        if n == 0 {
            return Ok(None);
        }
        let start = head.len();
        head.extend_from_slice(&chunk[..n]);
        if let Some(i) = head[start..].iter().position(|&b| b == b'\n') {
            break start + i;
        }
    };
    let columns = parse_header(&head[..newline], path)?;
    Ok(Some(Layout::new(
        newline as u64 + 1,
        columns,
        names,
        u64::MAX,
    )))
}

/// Parses a header line and checks it is one of ours; returns the user columns.
pub(crate) fn parse_header(line: &[u8], path: &Path) -> Result<Vec<String>> {
    // A file that went through a Windows editor ends its lines with CRLF.
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line);
    let mut record = csv::StringRecord::new();
    let ok = reader.read_record(&mut record).unwrap_or(false);
    if !ok
        || record.len() < 2
        || record.get(0) != Some("timestamp")
        || record.get(1) != Some("run_id")
    {
        return Err(Error::corrupt(
            path,
            Some(1),
            "not an expman metrics table: its header must start with `timestamp,run_id`; \
             move this file out of metrics/, or use another table name",
        ));
    }
    Ok(record.iter().skip(2).map(str::to_string).collect())
}

fn write_header(columns: &[String], line: &mut Vec<u8>) {
    line.extend_from_slice(b"timestamp,run_id");
    for column in columns {
        line.push(b',');
        write_text(column, line);
    }
    line.push(b'\n');
}

fn format_row(
    layout: &Layout,
    pending: &[Option<Value>],
    run_id: &str,
    clock: &mut Clock,
    line: &mut Vec<u8>,
) {
    clock.write_now(line);
    line.push(b',');
    line.extend_from_slice(run_id.as_bytes());
    for field in &layout.field_of_column {
        line.push(b',');
        if let Some(Some(value)) = field.map(|id| &pending[id.index()]) {
            value.write_csv(line);
        }
    }
    line.push(b'\n');
}

/// One `write(2)` of a whole line (the loop only continues after a signal or a short write).
/// On failure the part of the line that got in is cut off again, so a failed save leaves no
/// trace: we hold the lock, so those bytes are the last ones of the file.
fn append(file: &File, path: &Path, line: &[u8]) -> Result<()> {
    let mut writer = file;
    let mut written = 0;
    while written < line.len() {
        match writer.write(&line[written..]) {
            Ok(0) => {
                let e = std::io::Error::from(std::io::ErrorKind::WriteZero);
                return Err(undo_append(file, path, written, e));
            }
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(undo_append(file, path, written, e)),
        }
    }
    Ok(())
}

/// Cuts the `written` bytes of a failed append and returns the append's error.
fn undo_append(file: &File, path: &Path, written: usize, e: std::io::Error) -> Error {
    if written > 0 {
        // If this fails too there is nothing more to try here; the error below tells the
        // caller that the row was not saved.
        let _ = file
            .metadata()
            .and_then(|meta| file.set_len(meta.len().saturating_sub(written as u64)));
    }
    Error::io("append a row to", path, e)
}

/// Makes sure the file ends with a whole row, scanning from `from`, a known row boundary;
/// returns its (possibly shortened) size.
fn repair_tail(file: &File, path: &Path, size: u64, from: u64) -> Result<u64> {
    let end = complete_end(file, path, size, from)?;
    if end != size {
        file.set_len(end).at("cut a torn last row from", path)?;
    }
    Ok(end)
}

/// The end of the last whole row between `from` (a known row boundary) and `size`: just past
/// its newline outside quotes. Scanning back to the last `\n` would be wrong: a row torn after
/// a newline inside a quoted cell would keep its head, and the next row would be glued into
/// its open quote. So this reads forward, from the nearest boundary the caller knows.
fn complete_end(file: &File, path: &Path, size: u64, from: u64) -> Result<u64> {
    let mut chunk = vec![0u8; 64 * 1024];
    let (mut pos, mut end, mut quoted) = (from, from, false);
    while pos < size {
        let n = ((size - pos) as usize).min(chunk.len());
        file.read_exact_at(&mut chunk[..n], pos)
            .at("read the end of", path)?;
        if let Some(i) = last_row_end(&chunk[..n], &mut quoted) {
            end = pos + i as u64;
        }
        pos += n as u64;
    }
    Ok(end)
}

/// ISO-8601 local timestamps with microseconds, formatted once per second.
#[derive(Default)]
struct Clock {
    second: i64,
    prefix: Vec<u8>,
}

impl Clock {
    fn write_now(&mut self, out: &mut Vec<u8>) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let second = now.as_secs() as i64;
        if self.prefix.is_empty() || second != self.second {
            self.second = second;
            self.prefix.clear();
            let local = chrono::DateTime::from_timestamp(second, 0)
                .unwrap_or_default()
                .with_timezone(&chrono::Local);
            let _ = write!(self.prefix, "{}", local.format("%Y-%m-%dT%H:%M:%S"));
        }
        out.extend_from_slice(&self.prefix);
        let micros = now.subsec_micros();
        let mut digits = [b'.', b'0', b'0', b'0', b'0', b'0', b'0'];
        let mut buffer = itoa::Buffer::new();
        let text = buffer.format(micros).as_bytes();
        digits[7 - text.len()..].copy_from_slice(text);
        out.extend_from_slice(&digits);
    }
}
