//! The on-disk protocol that lets any number of processes append to one table: locking, the
//! record of each append, checking and repairing the tail, appending, widening.
//!
//! Protocol, shared by every process that writes a table (they need no other coordination):
//!
//! 1. Open `metrics/<table>.csv` with `O_APPEND` and take the table's lock: on a local
//!    filesystem a lock word in shared memory (`store::shm`, with a record of where the last
//!    acknowledged append ended and of the append in flight), on a network filesystem flock
//!    (with the same record in the lock file, `store::mark`).
//! 2. Fast path (local): the file ends exactly where the last acknowledged append ended (one
//!    `statx`, of the size against the shared record and of the link count, which is 0 once
//!    another program renamed a file over the table or deleted it) and every field has a
//!    column: write the line with one `write(2)` and record its end. Nothing else is read.
//! 3. Otherwise look closer. `fstat`: a link count of 0 means the file was replaced (widened)
//!    or deleted while we waited; reopen. A tail that no acknowledged append accounts for is
//!    either provably the torn fragment of an expman append (the record says an append of N
//!    bytes began at the committed end and never finished, and the file ends inside it): then
//!    it is cut, because its `save_row` never returned; or anything else (a hand edit, another
//!    tool, a half-copied file): then not one byte is removed. The bytes since the last known
//!    record boundary are scanned with the CSV state machine of [`super::framing`], and the new
//!    row is preceded by what makes it a record of its own (a line end, or a closing quote and
//!    a line end), with a warning on stderr naming the file and line.
//! 4. A row with a field the header lacks widens the table: a temporary file gets the new
//!    header, the body with every record padded to the new width ([`super::pad`]), the
//!    separator and the row; fsync, rename over the table, record its end and bump the shared
//!    generation at once, fsync the directory. Writers holding the old file see step 3 (or the
//!    generation) and reopen. A failed append cuts the bytes it wrote.
//! 5. Unlock.
//!
//! Every file operation goes through the fault seam of `store::faults`.

use std::fs::{File, OpenOptions};
use std::io::Seek;
use std::ops::Range;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::FIXED_COLUMNS;
use super::coordination::{Coordination, Held, append};
use super::file_ops::{scan_tail, size_and_links, truncate, warn_unterminated, write_all};
use super::format::{LineBuilder, parse_header};
use super::framing::{self, Tail};
use super::pad::Padder;
use super::row::{FieldId, PendingRow};
use crate::error::{Error, IoContext, Result};
use crate::store::faults::{self, IoOp};

/// One table file as one writer holds it: where it is, how its writers coordinate (chosen on
/// the first save), and the open file with what we know of it.
pub(super) struct TableFile {
    paths: Paths,
    coordination: Option<Coordination>,
    open: Option<OpenTable>,
}

/// The table's path and the path of a widening's temporary copy.
struct Paths {
    table: PathBuf,
    tmp: PathBuf,
}

impl TableFile {
    pub(super) fn new(path: PathBuf) -> TableFile {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{file_name}.rewrite.tmp"));
        TableFile {
            paths: Paths { table: path, tmp },
            coordination: None,
            open: None,
        }
    }

    pub(super) fn path(&self) -> &Path {
        &self.paths.table
    }

    /// Tells the header we hold about a newly registered field.
    pub(super) fn bind(&mut self, id: FieldId, name: &str) {
        if let Some(layout) = self.open.as_mut().and_then(|o| o.layout.as_mut()) {
            layout.bind(id, name);
        }
    }

    /// fsyncs the open file (what this writer wrote into it).
    pub(super) fn sync(&self) -> Result<()> {
        let path = &self.paths.table;
        if let Some(open) = &self.open {
            faults::check(IoOp::Sync, path).at("fsync", path)?;
            open.file.sync_data().at("fsync", path)?;
        }
        Ok(())
    }

    /// Appends `row` under the table's lock, reopening as often as the file was replaced.
    pub(super) fn append_row(&mut self, row: &PendingRow, out: &mut LineBuilder) -> Result<()> {
        if self.coordination.is_none() {
            self.coordination = Some(Coordination::for_table(&self.paths.table)?);
        }
        let coordination = self.coordination.as_ref().expect("chosen above");
        let paths = &self.paths;
        // Set when we took the lock over from a dead owner: its last append may be torn. Kept
        // across a reopen, because the guard that told us is gone by the next try.
        let mut took_over = false;
        loop {
            if self.open.is_none() {
                // Read the generation before opening: a replacement after this read bumps it,
                // so a mismatch under the lock always means our file may be stale.
                let generation = coordination.generation();
                faults::check(IoOp::Open, &paths.table)
                    .at("open the metrics table", &paths.table)?;
                let file = OpenOptions::new()
                    .read(true)
                    .append(true)
                    .create(true)
                    .open(&paths.table)
                    .at("open the metrics table", &paths.table)?;
                self.open = Some(OpenTable {
                    file,
                    layout: None,
                    inode: 0,
                    generation,
                });
            }
            let open = self.open.as_mut().expect("opened above");
            let outcome = match coordination {
                Coordination::Flock(mark) => {
                    open.file.lock().at("lock", &paths.table)?;
                    let held = Held::Flock(mark);
                    let saved = paths.save(open, held, row, out);
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
                        paths.save(open, held, row, out)?
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
        Ok(())
    }
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

    /// Whether every field of `row` has a column.
    fn fits(&self, row: &PendingRow) -> bool {
        row.touched().iter().all(|&id| self.column(id).is_some())
    }
}

/// How much of a table a widening reads at a time.
const COPY_CHUNK: usize = 1 << 20;

/// The longest header line looked for: past it, a file without a line end is not a table.
const MAX_HEADER_BYTES: u64 = 16 << 20;

/// The open file and what we know of it.
struct OpenTable {
    file: File,
    layout: Option<Layout>,
    /// The file's inode, from its last fstat (0 before the first).
    inode: u64,
    /// The shared generation when the file was opened.
    generation: u64,
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

impl Paths {
    /// The body of `save_row`, run while holding the table's lock.
    fn save(
        &self,
        open: &mut OpenTable,
        held: Held<'_>,
        row: &PendingRow,
        out: &mut LineBuilder,
    ) -> Result<Saved> {
        if self.append_fast(open, held, row, out)? {
            return Ok(Saved::Appended);
        }
        let path = &self.table;
        faults::check(IoOp::Stat, path).at("stat", path)?;
        let meta = open.file.metadata().at("stat", path)?;
        if meta.nlink() == 0 {
            return Ok(Saved::Stale);
        }
        open.inode = meta.ino();
        let mut size = meta.len();
        if open.layout.as_ref().is_some_and(|l| size < l.header_len) {
            // Cut by another program (truncated in place) to less than its header: read it
            // again, so that an empty file gets a header before the row instead of rows alone.
            open.layout = None;
        }
        if open.layout.is_none() {
            size = self.first_look(open, held, row, size)?;
        }
        let Some(layout) = open.layout.as_mut() else {
            // A new table: the header and the first row go out in one write.
            let columns = row
                .touched()
                .iter()
                .map(|id| row.names()[id.index()].clone());
            let mut layout = Layout::new(0, columns.collect(), row.names(), 0);
            out.start(b"").header(&layout.columns);
            layout.header_len = out.line.len() as u64;
            out.row(&layout.field_of_column, row);
            held.commit(open.inode, size);
            append(&open.file, path, held, open.inode, size, &out.line)?;
            layout.end = size + out.line.len() as u64;
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
        if layout.fits(row) {
            out.start(separator).row(&layout.field_of_column, row);
            append(&open.file, path, held, open.inode, size, &out.line)?;
            layout.end = size + out.line.len() as u64;
            return Ok(Saved::Appended);
        }
        let mut columns = layout.columns.clone();
        columns.extend(
            row.touched()
                .iter()
                .filter(|&&id| layout.column(id).is_none())
                .map(|id| row.names()[id.index()].clone()),
        );
        let widened = Layout::new(0, columns, row.names(), 0);
        let kept = Kept {
            body: layout.header_len..size,
            separator,
            width: layout.columns.len(),
        };
        self.widen(&open.file, kept, &widened, held, row, out)?;
        Ok(Saved::Replaced)
    }

    /// The fast path: when the file ends where the last acknowledged append ended (so with a
    /// whole record of ours) and every field has a column, appends the row and says so.
    fn append_fast(
        &self,
        open: &mut OpenTable,
        held: Held<'_>,
        row: &PendingRow,
        out: &mut LineBuilder,
    ) -> Result<bool> {
        let Held::Shared {
            lock,
            took_over: false,
        } = held
        else {
            return Ok(false);
        };
        let Some(layout) = open.layout.as_mut().filter(|layout| layout.fits(row)) else {
            return Ok(false);
        };
        out.start(b"").row(&layout.field_of_column, row);
        // One statx gives the end to check against the record and the link count: a table
        // replaced (an editor's or `sed -i`'s save is a rename over it) or deleted by another
        // program has no link, and a row appended to it would be lost.
        let (size, links) = size_and_links(&open.file, &self.table)?;
        if links == 0 || !lock.mark().ends_at(open.inode, size) {
            return Ok(false);
        }
        append(&open.file, &self.table, held, open.inode, size, &out.line)?;
        layout.end = size + out.line.len() as u64;
        Ok(true)
    }

    /// The first look at a file under the lock: removes a dead widening's temporary copy and
    /// reads the header (into `open.layout`; none for an empty file). Returns the file's size,
    /// 0 after cutting the torn header of a creator that died writing it.
    fn first_look(
        &self,
        open: &mut OpenTable,
        held: Held<'_>,
        row: &PendingRow,
        size: u64,
    ) -> Result<u64> {
        let path = &self.table;
        // Only the lock holder widens, so a temporary copy that exists now was left by a
        // writer killed while widening: it is garbage (the table was never replaced by it).
        if self.tmp.exists() {
            let _ = faults::check(IoOp::Remove, &self.tmp)
                .and_then(|()| std::fs::remove_file(&self.tmp));
        }
        match read_header(&open.file, path, size, row.names())? {
            Header::Found(layout) => open.layout = Some(layout),
            Header::Empty => {}
            Header::Unterminated => {
                let mark = held.mark()?;
                let torn_own_header = mark.committed_end == 0
                    && held.torn_fragment(&open.file, path, &mark, open.inode, size)?;
                if !torn_own_header {
                    return Err(Error::corrupt(
                        path,
                        Some(1),
                        format!(
                            "{size} bytes without a line end, so no header line: not an expman \
                             metrics table (another program wrote it, or a copy was cut short). \
                             expman leaves it untouched; move it out of metrics/ or log to \
                             another table name"
                        ),
                    ));
                }
                truncate(&open.file, path, 0)?;
                return Ok(0);
            }
        }
        Ok(size)
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
        let path = &self.table;
        let mark = held.mark()?;
        if mark.unacknowledged(inode, size) == Some(true) {
            // A whole line whose writer died before hearing it was saved (or, under flock, the
            // last append of whoever wrote last): keep it.
            return Ok((size, b""));
        }
        if held.torn_fragment(file, path, &mark, inode, size)? {
            // Torn by a writer killed mid-row: its save never returned, so cut it.
            truncate(file, path, mark.committed_end)?;
            return Ok((mark.committed_end, b""));
        }
        match held {
            Held::Shared { .. } if mark.ends_at(inode, size) => return Ok((size, b"")),
            Held::Flock(_) if layout.end == size => return Ok((size, b"")),
            _ => {}
        }
        // Something other than an expman append changed the file (a hand edit, another
        // program, a copy): no offset we recorded is known to be a record boundary any more,
        // so the scan starts at the header. This is the rare path; it reads the file once.
        let from = layout.header_len;
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

    /// Rewrites the table with a wider header, the `kept` rows padded to its width and the new
    /// row, atomically, and tells the other writers (`held`'s generation) as soon as the new
    /// file is in place.
    fn widen(
        &self,
        file: &File,
        kept: Kept,
        widened: &Layout,
        held: Held<'_>,
        row: &PendingRow,
        out: &mut LineBuilder,
    ) -> Result<()> {
        let (path, tmp_path) = (&self.table, &self.tmp);
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
            write_all(
                &mut tmp,
                tmp_path,
                &out.start(b"").header(&widened.columns).line,
            )?;
            faults::check(IoOp::Copy, path).at("copy the rows of", path)?;
            // Every earlier record gains the new columns' empty cells on the way: a table is
            // rectangular, as strict CSV readers require. The separator (if the table ended
            // with a record expman cannot account for) ends that record, padded like the rest.
            let mut padder = Padder::new(
                kept.width + FIXED_COLUMNS.len(),
                widened.columns.len() + FIXED_COLUMNS.len(),
            );
            let mut chunk = vec![0u8; COPY_CHUNK];
            let mut padded = Vec::with_capacity(COPY_CHUNK + COPY_CHUNK / 4);
            let mut pos = kept.body.start;
            while pos < kept.body.end {
                let n = ((kept.body.end - pos) as usize).min(COPY_CHUNK);
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
            padder.feed(kept.separator, &mut padded);
            padder.finish(&mut padded);
            if let Some((line, cells)) = padder.too_wide() {
                // Its extra cells would land under the new columns, as if they were values.
                return Err(Error::corrupt(
                    path,
                    Some(line + 1),
                    format!(
                        "row has {cells} cells but the header has {}; the file was edited by \
                         another program: remove the extra cells, then save again (a new \
                         column would have taken them as its values; the row is kept)",
                        kept.width + FIXED_COLUMNS.len()
                    ),
                ));
            }
            out.start(&padded).row(&widened.field_of_column, row);
            write_all(&mut tmp, tmp_path, &out.line)?;
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

/// The rows a widening keeps: the body's bytes and what ends a record expman could not
/// account for (see [`framing::separator`]).
struct Kept {
    body: Range<u64>,
    separator: &'static [u8],
    /// How many fields the header had (without the fixed columns).
    width: usize,
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
            super::check_no_newline(&head, path)?;
            return Ok(Header::Unterminated);
        }
        faults::check(IoOp::Read, path).at("read the header of", path)?;
        let n = file
            .read_at(&mut chunk, head.len() as u64)
            .at("read the header of", path)?;
        if n == 0 {
            super::check_no_newline(&head, path)?;
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
