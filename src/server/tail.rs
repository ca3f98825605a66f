//! Reading the ends of large files without reading them whole: the last rows of a metrics table,
//! the tail of a log, and log bytes from an offset.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::metrics::Metrics;

/// How far back from the end a tail reads at most. Rows are appended whole, so a line still
/// without its newline is at most one row being written; a file whose end has no newline for
/// this long was not written that way, and reading further would make every request (and the
/// listing's refresh) pay for the whole file.
pub const TAIL_WINDOW: u64 = 16 << 20;
/// The longest header line read (a table's first line): far more than any set of field names.
pub const HEADER_MAX: u64 = 4 << 20;

/// The columns and the last `n` complete rows of the table at `path`, typed per column like
/// [`crate::read_table`] (over those rows). Reads at most [`HEADER_MAX`] bytes from the start
/// and [`TAIL_WINDOW`] from the end, each byte once: fewer than `n` rows come back when they
/// do not fit in that window. A last line without its newline is a write in progress and is
/// skipped; when the whole window holds no newline after the header, that is an error naming
/// the file, not an empty table.
pub fn table_tail(path: &Path, n: usize) -> Result<Metrics> {
    let file = crate::store::open_regular(path).at("open the metrics table", path)?;
    let size = file.metadata().at("stat", path)?.len();
    let header = read_first_line(&file, path, size)?;
    let Some((header, header_len)) = header else {
        return Ok(Metrics::empty());
    };
    let columns = crate::metrics::table_columns(&header, path)?;
    let body = last_lines(&file, path, header_len, size, n)?;
    // A row being written (or torn) may end just after a newline inside a quoted cell: end at
    // the last record end outside quotes. (Exact when the window starts at a row boundary, as
    // it does whenever the whole body was read.) A window that does not parse cleanly (a
    // malformed row, a stray quote, or a window that began inside a quoted cell) is read again
    // by the full reader, which either names the bad line or frames the rows exactly: a tail
    // never drops a row silently.
    let Ok(complete) = crate::metrics::complete_records(&body, |_| 0) else {
        return whole_table_tail(path, n);
    };
    let Ok(mut raw) = crate::metrics::parse_records(&body[..complete], columns.len()) else {
        return whole_table_tail(path, n);
    };
    let start = raw.len().saturating_sub(n);
    let raw = raw.split_off(start);
    Ok(Metrics::from_cells(columns, raw))
}

/// The last `n` rows through the full reader: its error names the line of a malformed row.
fn whole_table_tail(path: &Path, n: usize) -> Result<Metrics> {
    let mut table = crate::metrics::read_table(path)?;
    let start = table.rows.len().saturating_sub(n);
    table.rows.drain(..start);
    Ok(table)
}

/// The first line (without its newline) and the offset after it; `None` if it is incomplete
/// (a header being written). Reads at most [`HEADER_MAX`] bytes.
fn read_first_line(file: &File, path: &Path, size: u64) -> Result<Option<(Vec<u8>, u64)>> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 8192];
    let limit = size.min(HEADER_MAX);
    while (head.len() as u64) < limit {
        let want = chunk.len().min((limit - head.len() as u64) as usize);
        let n = file
            .read_at(&mut chunk[..want], head.len() as u64)
            .at("read", path)?;
        if n == 0 {
            break;
        }
        let start = head.len();
        head.extend_from_slice(&chunk[..n]);
        if let Some(i) = head[start..].iter().position(|&b| b == b'\n') {
            head.truncate(start + i);
            let len = head.len() as u64 + 1;
            return Ok(Some((head, len)));
        }
    }
    crate::metrics::check_no_newline(&head, path)?;
    if size > HEADER_MAX {
        return Err(Error::corrupt(
            path,
            Some(1),
            format!(
                "the first {HEADER_MAX} bytes hold no newline: this is not a header expman wrote; \
                 check what wrote this file"
            ),
        ));
    }
    Ok(None)
}

/// The bytes of (at least) the last `n` complete lines after `floor`, starting at a line start
/// and ending with a newline, read backward from `size` through at most [`TAIL_WINDOW`] bytes.
/// Each byte is read and scanned once (chunks double in size), so the cost is linear in what
/// is read, however long the unterminated last line.
fn last_lines(file: &File, path: &Path, floor: u64, size: u64, n: usize) -> Result<Vec<u8>> {
    let limit = size.saturating_sub(TAIL_WINDOW).max(floor);
    // Bytes [pos, size) read so far; `end`: just past the last newline, once seen.
    let mut buf: Vec<u8> = Vec::new();
    let mut pos = size;
    let mut end: Option<u64> = None;
    let mut newlines = 0usize;
    let mut chunk_len = 16 * 1024u64;
    while pos > limit && newlines <= n {
        let start = pos.saturating_sub(chunk_len).max(limit);
        let mut chunk = vec![0u8; (pos - start) as usize];
        file.read_exact_at(&mut chunk, start).at("read", path)?;
        let counted = match end {
            Some(_) => &chunk[..],
            None => match chunk.iter().rposition(|&b| b == b'\n') {
                Some(i) => {
                    end = Some(start + i as u64 + 1);
                    &chunk[..=i]
                }
                None => &[][..],
            },
        };
        newlines += counted.iter().filter(|&&b| b == b'\n').count();
        chunk.extend_from_slice(&buf);
        buf = chunk;
        pos = start;
        chunk_len = chunk_len.saturating_mul(2);
    }
    let Some(end) = end else {
        if pos > floor {
            return Err(Error::corrupt(
                path,
                None,
                format!(
                    "the last {} bytes (from byte {pos} to the end) hold no newline: that is no \
                     row being written (rows are appended whole), so the rows before it are not \
                     shown; check what wrote this file",
                    size - pos
                ),
            ));
        }
        // Nothing after the header but a row being written.
        return Ok(Vec::new());
    };
    buf.truncate((end - pos) as usize);
    if pos > floor {
        // Start after the first newline: the bytes before it may be half a row.
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                buf.drain(..=i);
            }
            None => buf.clear(),
        }
    }
    Ok(buf)
}

/// A slice of a log file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogChunk {
    /// Offset of the first byte returned.
    pub start: u64,
    /// Offset after the last byte returned (pass it back as `offset` to follow the file).
    pub end: u64,
    /// The file's size now.
    pub size: u64,
    /// The bytes, as text (invalid UTF-8 replaced).
    pub text: String,
    /// For a page read back (`before=`): whether `start` is the first byte of a line (false
    /// when the page is a piece of a line longer than the page).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_start: Option<bool>,
}

/// Reads a log: from `offset` (at most `max` bytes), or its tail (the last `max` bytes, starting
/// at a line) when `offset` is `None` or beyond the end (the file was truncated).
pub fn log_chunk(path: &Path, offset: Option<u64>, max: u64) -> Result<LogChunk> {
    let mut file = crate::store::open_regular(path).at("open the log", path)?;
    let size = file.metadata().at("stat", path)?.len();
    let (start, from_tail) = match offset {
        Some(offset) if offset <= size => (offset, false),
        _ => (size.saturating_sub(max), true),
    };
    let len = (size - start).min(max);
    let mut bytes = vec![0u8; len as usize];
    file.seek(SeekFrom::Start(start)).at("seek in", path)?;
    file.read_exact(&mut bytes).at("read", path)?;
    let mut start = start;
    if from_tail
        && start > 0
        && let Some(i) = bytes.iter().position(|&b| b == b'\n')
    {
        bytes.drain(..=i);
        start += i as u64 + 1;
    }
    // Do not split a UTF-8 character at the end: leave its bytes for the next read.
    let valid = match std::str::from_utf8(&bytes) {
        Ok(_) => bytes.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => bytes.len(),
    };
    bytes.truncate(valid);
    Ok(LogChunk {
        start,
        end: start + bytes.len() as u64,
        size,
        text: String::from_utf8_lossy(&bytes).into_owned(),
        line_start: None,
    })
}
