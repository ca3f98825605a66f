//! CSV bytes to typed columns, straight into column buffers (no `Value` per cell). A large
//! file is parsed by all threads at once, each reading its part in cache-sized blocks.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use memchr::{memchr, memchr2, memchr3};

use crate::metrics::framing;

use super::column::Column;
use super::pool;
use crate::ColumnType;
use crate::error::{Error, IoContext, Result};

/// Files larger than this are split across threads.
const PARALLEL_MIN_BYTES: usize = 4 << 20;
/// No chunk is larger than this (plus one row), so a text column of one chunk always fits
/// Arrow's 32-bit offsets.
const MAX_CHUNK_BYTES: usize = 256 << 20;
/// A large file is read in blocks of this size, each parsed while it is in the cache.
const BLOCK_BYTES: usize = 1 << 20;

/// A table file parsed into chunks of rows with the same columns.
pub(crate) struct Parsed {
    /// All column names, `timestamp` and `run_id` first.
    pub names: Vec<String>,
    /// Chunks in file order; each holds one column per name, all of the chunk's length.
    pub chunks: Vec<Vec<Column>>,
}

impl Parsed {
    fn empty(names: Vec<String>) -> Parsed {
        Parsed {
            names,
            chunks: Vec::new(),
        }
    }
}

/// The type of each column of `parsed`: the one that holds all of its chunks' cells
/// (`timestamp` and `run_id` are always text).
pub(crate) fn column_types(parsed: &Parsed) -> Vec<ColumnType> {
    let mut types = vec![ColumnType::Null; parsed.names.len()];
    types[..2].fill(ColumnType::Str);
    for chunk in &parsed.chunks {
        for (ty, column) in types.iter_mut().zip(chunk) {
            *ty = ty.unify(column.column_type());
        }
    }
    types
}

/// What every table has before its header is written.
fn fixed_names() -> Vec<String> {
    crate::metrics::FIXED_COLUMNS
        .iter()
        .map(|c| c.to_string())
        .collect()
}

/// Reads and parses the table at `path` with up to `threads` threads.
///
/// Consistent while others write: the file is opened once (a widening replaces it by a rename,
/// so every byte read is of one version), read up to the size it had then, and a last line
/// without its newline (a row being written, or torn by a killed writer) is left out.
pub(crate) fn read_file(path: &Path, threads: usize) -> Result<Parsed> {
    let file = crate::store::open_regular(path).at("open the metrics table", path)?;
    let len = file.metadata().at("read the metrics table", path)?.len();
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len < PARALLEL_MIN_BYTES {
        let mut bytes = Vec::new();
        (&file)
            .read_to_end(&mut bytes)
            .at("read the metrics table", path)?;
        return parse_bytes(&bytes, path, 1);
    }
    read_parallel(&file, len, path, threads)
}

/// Checks that every text cell of `parsed` is UTF-8, naming the first that is not by its row
/// and column (a check of a whole buffer, as Arrow's, says only "from index 3"). Cells end at
/// ASCII delimiters, never inside a character, so checking a column's bytes whole checks every
/// cell. The column reader calls it; the Arrow reader, whose arrays check their text anyway,
/// only once one refused it (see [`text_error`]).
pub(crate) fn check_text(parsed: &Parsed, path: &Path) -> Result<()> {
    let mut rows_before = 0;
    for chunk in &parsed.chunks {
        for (column, name) in chunk.iter().zip(&parsed.names) {
            let Column::Str(offsets, data, _) = column else {
                continue;
            };
            if let Err(e) = std::str::from_utf8(data) {
                let at = e.valid_up_to() as i32;
                let row = offsets
                    .partition_point(|&start| start <= at)
                    .saturating_sub(1);
                // The header is line 1; a cell spanning lines would put the row further down.
                let line = (rows_before + row) as u64 + 2;
                return Err(Error::corrupt(
                    path,
                    Some(line),
                    format!(
                        "column {name:?} holds text that is not UTF-8 ({e}); save the file as \
                         UTF-8 (a spreadsheet's \"CSV UTF-8\"), or convert it with iconv"
                    ),
                ));
            }
        }
        rows_before += chunk.first().map_or(0, Column::len);
    }
    Ok(())
}

/// The error for text an Arrow array refused with `reason`: parsed again by `reparse`, the
/// first cell that is not UTF-8 is named by line and column ([`check_text`]); `reason` as it
/// is when none is found (text too large for Arrow's offsets).
#[cfg(feature = "arrow")]
pub(crate) fn text_error(
    path: &Path,
    reason: String,
    reparse: impl FnOnce() -> Result<Parsed>,
) -> Error {
    match reparse().and_then(|parsed| check_text(&parsed, path)) {
        Err(e) => e,
        Ok(()) => Error::corrupt(path, None, reason),
    }
}

/// [`read_file`] on one thread through `buffer`, a scratch buffer reused across files (its
/// pages are mapped already, which saves the kernel zeroing fresh ones for every file).
#[cfg(feature = "arrow")]
pub(crate) fn read_file_into(path: &Path, buffer: &mut Vec<u8>) -> Result<Parsed> {
    buffer.clear();
    let mut file = crate::store::open_regular(path).at("open the metrics table", path)?;
    file.read_to_end(buffer)
        .at("read the metrics table", path)?;
    parse_bytes(buffer, path, 1)
}

/// Parses the bytes of a table file, with up to `threads` threads. A last line without its
/// newline is left out, as `read_table` does.
pub(crate) fn parse_bytes(bytes: &[u8], path: &Path, threads: usize) -> Result<Parsed> {
    // Field names hold no line break (control characters are refused), so the first newline
    // ends the header.
    let Some(header_end) = memchr(b'\n', bytes) else {
        crate::metrics::check_no_newline(bytes, path)?;
        return Ok(Parsed::empty(fixed_names()));
    };
    let names = parse_header(&bytes[..header_end], path)?;
    let body_start = header_end + 1;
    let body = &bytes[body_start..];
    let complete = crate::metrics::complete_records(body, |offset| {
        framing::line_of(bytes, body_start + offset)
    })
    .map_err(|(line, reason)| Error::corrupt(path, Some(line), reason))?;
    let body = &body[..complete];
    if body.is_empty() {
        return Ok(Parsed::empty(names));
    }
    let width = names.len();
    let rows = estimate_rows(body, body.len());
    let parse = |(start, end): (usize, usize), text: &[bool]| {
        let part = &body[start..end];
        let rows = rows * part.len() / body.len() + 16;
        let mut columns = new_columns(width, rows, text);
        let mut widened = vec![false; width];
        parse_rows(part, &mut columns, usize::MAX, rows, &mut widened)
            .map(|_| (columns, widened))
            .map_err(|(offset, reason)| {
                let at = body_start + start + offset;
                Error::corrupt(path, Some(line_at(&bytes[..at])), reason)
            })
    };
    let ranges = split(body, threads);
    let chunks = pool::map(ranges.clone(), threads, |range| {
        let (columns, widened) = parse(range, &[])?;
        match widened.contains(&true) {
            false => Ok(columns),
            true => parse(range, &widened).map(|(columns, _)| columns),
        }
    })
    .into_iter()
    .collect::<Result<Vec<_>>>()?;
    let chunks = text_as_written(chunks, |k, text| parse(ranges[k], text).map(|(c, _)| c))?;
    Ok(Parsed { names, chunks })
}

/// Chunks whose column holds numbers or booleans where another chunk made it text, parsed
/// again (with `parse(chunk index, columns to read as text)`) with that column as text: so the
/// column's text is the file's (`007`, `1e5`), not numbers formatted again. Only a column
/// whose type changes between parts of the file pays for this.
fn text_as_written(
    mut chunks: Vec<Vec<Column>>,
    parse: impl Fn(usize, &[bool]) -> Result<Vec<Column>>,
) -> Result<Vec<Vec<Column>>> {
    let Some(width) = chunks.first().map(Vec::len) else {
        return Ok(chunks);
    };
    let mut types = vec![ColumnType::Null; width];
    for chunk in &chunks {
        for (ty, column) in types.iter_mut().zip(chunk) {
            *ty = ty.unify(column.column_type());
        }
    }
    for (k, chunk) in chunks.iter_mut().enumerate() {
        let text: Vec<bool> = chunk
            .iter()
            .zip(&types)
            .map(|(column, &ty)| {
                ty == ColumnType::Str
                    && !matches!(column.column_type(), ColumnType::Str | ColumnType::Null)
            })
            .collect();
        if text.contains(&true) {
            *chunk = parse(k, &text)?;
        }
    }
    Ok(chunks)
}

/// The 1-based line at the end of `before`.
fn line_at(before: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', before).count() as u64 + 1
}

/// About how many rows `len` bytes of rows hold, judging by the first 64 KiB of `sample`
/// (which starts at a row), with a margin so that columns are allocated once.
fn estimate_rows(sample: &[u8], len: usize) -> usize {
    let sample = &sample[..sample.len().min(64 << 10)];
    if sample.is_empty() {
        return 16;
    }
    let rows = memchr::memchr_iter(b'\n', sample).count().max(1);
    len * rows / sample.len() * 21 / 20 + 16
}

/// Columns for a chunk of about `rows` rows: `timestamp` and `run_id` are always text, and so
/// is column `c` where `text[c]`; the others start untyped.
fn new_columns(width: usize, rows: usize, text: &[bool]) -> Vec<Column> {
    (0..width)
        .map(|c| match c {
            _ if c > 1 && text.get(c) == Some(&true) => Column::text(rows, rows * 8),
            // An ISO-8601 timestamp with microseconds, and run_NNNN.
            0 => Column::text(rows, rows * 26),
            1 => Column::text(rows, rows * 8),
            _ => Column::Null(0),
        })
        .collect()
}

/// Reads a large file with `threads` threads, each parsing its own part in blocks of
/// [`BLOCK_BYTES`]: the block just read is still in the cache, the memory stays small (no copy
/// of the whole file), and no step is serial.
///
/// Parts start at the first newline after an even split of the bytes: a guess, since a quoted
/// cell may hold a newline. Each part parses the rows that start before the next part's
/// start, and ends at a row boundary; where that is not the next part's start, the guess was
/// wrong and the next part is parsed again from the right place (only tables whose text holds
/// line breaks can pay for that, and rarely).
fn read_parallel(file: &File, len: usize, path: &Path, threads: usize) -> Result<Parsed> {
    let read_failed = |e| Error::io("read the metrics table", path, e);
    // The header, and a sample of rows to size the columns.
    let mut head = Vec::new();
    let header_end = loop {
        if let Some(i) = memchr(b'\n', &head) {
            break i;
        }
        let got = read_block(
            file,
            head.len(),
            (64 << 10).min(len - head.len()),
            &mut head,
        )
        .map_err(read_failed)?;
        if got == 0 {
            crate::metrics::check_no_newline(&head, path)?;
            return Ok(Parsed::empty(fixed_names()));
        }
    };
    let names = parse_header(&head[..header_end], path)?;
    let width = names.len();
    let body_start = header_end + 1;
    let body_len = len - body_start;
    let parts = threads.max(1).max(body_len.div_ceil(MAX_CHUNK_BYTES));
    let rows = estimate_rows(&head[body_start..], body_len / parts);

    let mut starts = vec![body_start];
    for k in 1..parts {
        let target = body_start + body_len / parts * k;
        match next_line(file, target, len).map_err(read_failed)? {
            Some(start) if start > *starts.last().unwrap_or(&0) && start < len => {
                starts.push(start)
            }
            _ => break,
        }
    }
    let part_as = |start: usize, stop: Option<usize>, text: &[bool]| {
        parse_part(file, start, stop, len, width, rows, text)
            .map_err(|failure| failure.into_error(file, path))
    };
    let part = |start: usize, stop: Option<usize>| {
        let (columns, end, widened) = part_as(start, stop, &[])?;
        match widened.contains(&true) {
            false => Ok((columns, end)),
            true => part_as(start, stop, &widened).map(|(columns, end, _)| (columns, end)),
        }
    };
    let ranges: Vec<(usize, Option<usize>)> = starts
        .iter()
        .enumerate()
        .map(|(k, &start)| (start, starts.get(k + 1).copied()))
        .collect();
    let mut results = pool::map(ranges, threads, |(start, stop)| part(start, stop));
    let mut chunks = Vec::with_capacity(results.len());
    let mut spans = Vec::with_capacity(results.len());
    let mut end = body_start;
    for (k, result) in results.drain(..).enumerate() {
        let stop = starts.get(k + 1).copied();
        let (columns, part_end) = if starts[k] == end {
            result?
        } else if stop.is_some_and(|stop| end >= stop) {
            continue; // the previous part's last row covers all of this one
        } else {
            // The guessed start was inside a quoted cell: parse again from the true row start.
            part(end, stop)?
        };
        spans.push((end, stop));
        end = part_end;
        chunks.push(columns);
    }
    if end < len
        && crate::metrics::open_quote_swallows_rows(file, end as u64, len as u64)
            .map_err(read_failed)?
    {
        let failure = PartFailure::Row(end, crate::metrics::unclosed_quote(None));
        return Err(failure.into_error(file, path));
    }
    let mut chunks = text_as_written(chunks, |k, text| {
        let (start, stop) = spans[k];
        part_as(start, stop, text).map(|(columns, _, _)| columns)
    })?;
    chunks.retain(|c| c.first().is_some_and(|c| c.len() > 0));
    Ok(Parsed { names, chunks })
}

/// A failure while parsing part of a file: an I/O error, or a bad row at a byte offset.
enum PartFailure {
    Io(std::io::Error),
    Row(usize, String),
}

impl PartFailure {
    fn into_error(self, file: &File, path: &Path) -> Error {
        match self {
            PartFailure::Io(e) => Error::io("read the metrics table", path, e),
            PartFailure::Row(offset, reason) => {
                // Count the lines before the row (only on this error path).
                let mut before = Vec::new();
                let line = read_block(file, 0, offset, &mut before)
                    .ok()
                    .map(|_| line_at(&before));
                Error::corrupt(path, line, reason)
            }
        }
    }
}

/// What [`parse_part`] returns.
type Part = (Vec<Column>, usize, Vec<bool>);

/// Parses the rows starting in `[start, stop)` (to the end of the file's whole rows when
/// `stop` is `None`), reading from `start` in blocks, with column `c` as text where `text[c]`.
/// Returns the columns, the offset just past the last row parsed (`stop` itself when `stop` is
/// where a row starts), and which columns turned from numbers into text (see
/// [`Column::push`]).
fn parse_part(
    file: &File,
    start: usize,
    stop: Option<usize>,
    len: usize,
    width: usize,
    rows: usize,
    text: &[bool],
) -> std::result::Result<Part, PartFailure> {
    let mut columns = new_columns(width, rows, text);
    let mut widened = vec![false; width];
    // Zeroed once (fresh pages from the kernel), then only read into: the rows a block leaves
    // unfinished move to the front, and the next block is read behind them.
    let mut buffer = vec![0u8; 2 * BLOCK_BYTES];
    let mut filled = 0;
    let mut at = start; // the file offset of buffer[0], always a row start
    let mut read_to = start;
    while stop.is_none_or(|stop| at < stop) && read_to < len {
        let want = BLOCK_BYTES.min(len - read_to);
        if buffer.len() < filled + want {
            buffer.resize(filled + want, 0); // a row longer than a block
        }
        let got = read_at_most(file, read_to, &mut buffer[filled..filled + want])
            .map_err(PartFailure::Io)?;
        read_to += got;
        filled += got;
        let complete = framing::complete_len(&buffer[..filled]);
        let limit = stop.map_or(usize::MAX, |stop| stop - at);
        let end = parse_rows(&buffer[..complete], &mut columns, limit, rows, &mut widened)
            .map_err(|(offset, reason)| PartFailure::Row(at + offset, reason))?;
        at += end;
        buffer.copy_within(end..filled, 0);
        filled -= end;
        if got < want {
            break; // the file shrank: only a torn last line can go
        }
    }
    Ok((columns, at, widened))
}

/// Appends up to `n` bytes read at `offset` to `buffer`; fewer only at the end of the file.
fn read_block(
    file: &File,
    offset: usize,
    n: usize,
    buffer: &mut Vec<u8>,
) -> std::io::Result<usize> {
    let old = buffer.len();
    buffer.resize(old + n, 0);
    let result = read_at_most(file, offset, &mut buffer[old..]);
    buffer.truncate(old + *result.as_ref().unwrap_or(&0));
    result
}

/// Fills `out` with the bytes at `offset`; fewer only at the end of the file.
fn read_at_most(file: &File, offset: usize, out: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < out.len() {
        match file.read_at(&mut out[done..], (offset + done) as u64) {
            Ok(0) => break,
            Ok(got) => done += got,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// The offset just past the first newline at or after `offset`, if one comes before `len`.
fn next_line(file: &File, mut offset: usize, len: usize) -> std::io::Result<Option<usize>> {
    let mut window = Vec::with_capacity(64 << 10);
    while offset < len {
        window.clear();
        let got = read_block(file, offset, (64 << 10).min(len - offset), &mut window)?;
        if got == 0 {
            break;
        }
        if let Some(i) = memchr(b'\n', &window) {
            return Ok(Some(offset + i + 1));
        }
        offset += got;
    }
    Ok(None)
}

/// All the columns of a header line (the table writer's check, plus the two fixed columns).
fn parse_header(line: &[u8], path: &Path) -> Result<Vec<String>> {
    crate::metrics::table_columns(line, path)
}

/// Splits whole rows into `(start, end)` ranges for `threads` threads, at newlines outside
/// quotes; one range for small inputs.
fn split(body: &[u8], threads: usize) -> Vec<(usize, usize)> {
    // Counting quotes finds row starts only in files quoted as expman quotes; one stray `"`
    // (a hand edit) and only a scan from the start can tell where rows begin.
    let parts =
        if threads <= 1 || body.len() < PARALLEL_MIN_BYTES || !framing::quotes_are_regular(body) {
            1
        } else {
            threads
        };
    let parts = parts.max(body.len().div_ceil(MAX_CHUNK_BYTES));
    let mut bounds = Vec::with_capacity(parts);
    let mut start = 0;
    for part in 1..parts {
        let target = (body.len() / parts * part).max(start);
        // `start` begins a row, outside quotes: the parity of the quotes from there says
        // whether `target` is inside a quoted cell.
        let mut inside = memchr::memchr_iter(b'"', &body[start..target]).count() % 2 == 1;
        // The first newline at or after `target` outside quotes ends this part.
        let mut i = target;
        let end = loop {
            match memchr2(b'\n', b'"', &body[i..]) {
                None => break body.len(),
                Some(k) if body[i + k] == b'"' => {
                    inside = !inside;
                    i += k + 1;
                }
                Some(k) if inside => i += k + 1,
                Some(k) => break i + k + 1,
            }
        };
        if end >= body.len() {
            break;
        }
        bounds.push((start, end));
        start = end;
    }
    bounds.push((start, body.len()));
    bounds
}

/// Where the record that ends at `chunk[at]` continues: just past `\n`, `\r\n` or a lone `\r`
/// (csv and pandas end records at each of them); `None` when `chunk[at]` is a delimiter.
fn line_end(chunk: &[u8], at: usize) -> Option<usize> {
    match chunk[at] {
        b'\r' if chunk.get(at + 1) == Some(&b'\n') => Some(at + 2),
        b'\r' | b'\n' => Some(at + 1),
        _ => None,
    }
}

/// Parses the whole rows of `chunk` (which ends with a newline outside quotes) that start
/// before `limit` into `columns`, each of which gets one cell per row (`rows` is about how many
/// rows they will hold in the end). Returns the offset where parsing stopped (a row start), or
/// the offset of a bad row and what is wrong with it. Sets `widened[c]` when column `c` turned
/// from numbers or booleans into text (see [`Column::push`]).
fn parse_rows(
    chunk: &[u8],
    columns: &mut [Column],
    limit: usize,
    rows: usize,
    widened: &mut [bool],
) -> std::result::Result<usize, (usize, String)> {
    let width = columns.len();
    let n = chunk.len();
    let mut unquoted = Vec::new();
    let mut pos = 0;
    while pos < n && pos < limit {
        if matches!(chunk[pos], b'\n' | b'\r') {
            pos += 1; // an empty line, as the csv crate skips them
            continue;
        }
        let row_start = pos;
        let mut col = 0;
        loop {
            let (cell, terminator, next, quoted): (&[u8], u8, usize, bool) = if chunk[pos] == b'"' {
                // A quoted cell: "" stands for ", and any text after the closing quote up to
                // the delimiter belongs to the cell (as the csv crate reads it).
                unquoted.clear();
                let mut i = pos + 1;
                loop {
                    let Some(k) = memchr(b'"', &chunk[i..]) else {
                        return Err((row_start, "a quoted cell never ends".into()));
                    };
                    unquoted.extend_from_slice(&chunk[i..i + k]);
                    i += k + 1;
                    if chunk.get(i) == Some(&b'"') {
                        unquoted.push(b'"');
                        i += 1;
                    } else {
                        break;
                    }
                }
                let (k, terminator, next) = match memchr3(b',', b'\n', b'\r', &chunk[i..]) {
                    Some(k) => {
                        line_end(chunk, i + k).map_or((k, b',', i + k + 1), |next| (k, b'\n', next))
                    }
                    None => (n - i, b'\n', n),
                };
                // A line break after the closing quote may be \r\n; a \r inside the quotes
                // is the cell's own.
                let after = &chunk[i..i + k];
                let after = if terminator == b'\n' {
                    after.strip_suffix(b"\r").unwrap_or(after)
                } else {
                    after
                };
                unquoted.extend_from_slice(after);
                (&unquoted[..], terminator, next, true)
            } else if let Some(k) = columns
                .get_mut(col)
                .and_then(|c| c.push_number(&chunk[pos..]))
            {
                // A number parsed where it stood: no need to find the cell's end first.
                col += 1;
                let terminator = chunk[pos + k];
                pos += k + 1;
                if terminator == b'\n' {
                    break;
                }
                if pos >= n {
                    break;
                }
                continue;
            } else {
                match memchr3(b',', b'\n', b'\r', &chunk[pos..]) {
                    Some(k) => {
                        let (terminator, next) = line_end(chunk, pos + k)
                            .map_or((b',', pos + k + 1), |next| (b'\n', next));
                        (&chunk[pos..pos + k], terminator, next, false)
                    }
                    None => (&chunk[pos..], b'\n', n, false),
                }
            };
            let cell = if terminator == b'\n' && !quoted {
                cell.strip_suffix(b"\r").unwrap_or(cell)
            } else {
                cell
            };
            let Some(column) = columns.get_mut(col) else {
                let mut cells = col + 1;
                if terminator == b',' {
                    // Count the rest of the row for the message.
                    let rest = memchr(b'\n', &chunk[next..]).map_or(n, |k| next + k);
                    cells += chunk[next..rest].iter().filter(|&&b| b == b',').count() + 1;
                }
                return Err((
                    row_start,
                    format!(
                        "row has {cells} cells but the header has {width} columns; the file \
                         was edited by another program"
                    ),
                ));
            };
            if column.push(cell, rows) {
                widened[col] = true;
            }
            col += 1;
            pos = next;
            if terminator == b'\n' {
                break;
            }
            if pos >= n {
                // A row ending in a delimiter without a newline: its last cell is empty.
                break;
            }
        }
        for column in &mut columns[col..] {
            column.push_null();
        }
    }
    Ok(pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_end_skips_a_torn_last_line_and_newlines_in_quotes() {
        assert_eq!(framing::complete_len(b""), 0);
        assert_eq!(framing::complete_len(b"a,b"), 0);
        assert_eq!(framing::complete_len(b"a,b\nc,d"), 4);
        assert_eq!(framing::complete_len(b"a,b\n"), 4);
        assert_eq!(framing::complete_len(b"a,\"x\ny\"\n"), 8);
        assert_eq!(framing::complete_len(b"a,b\nc,\"x\ny"), 4);
        assert_eq!(framing::complete_len(b"a,\"\"\"\n\"\"\"\nb"), 10);
    }

    #[test]
    fn split_points_are_row_starts_outside_quotes() {
        let mut body = Vec::new();
        for i in 0..200_000 {
            if i % 7 == 0 {
                body.extend_from_slice(format!("t,r,\"a\n,\"\"{i}\"\"\"\n").as_bytes());
            } else {
                body.extend_from_slice(format!("t,r,{i}\n").as_bytes());
            }
        }
        let body = body.repeat(4);
        let bounds = split(&body, 3);
        assert!(bounds.len() >= 3, "{bounds:?}");
        let mut at = 0;
        for &(start, end) in &bounds {
            assert_eq!(start, at);
            assert_eq!(framing::complete_len(&body[start..end]), end - start);
            assert!(body[start..].starts_with(b"t,r,"));
            at = end;
        }
        assert_eq!(at, body.len());
    }
}
