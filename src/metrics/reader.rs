//! Reading a table back as typed columns, consistently while others write it.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::FIXED_COLUMNS;
use super::Value;
use super::format::table_columns;
use super::framing::{self, Tail};
use crate::error::{Error, ErrorKind, IoContext, Result};

/// The type inferred for a column from all of its non-empty cells (as pandas does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// Every cell is empty.
    Null,
    /// `true`/`false` (any case).
    Bool,
    /// Integers that fit `i64`.
    Int,
    /// Numbers, including `NaN` and `inf`.
    Float,
    /// Anything else.
    Str,
}

/// A metrics table read back: column names (including `timestamp` and `run_id`), their
/// inferred types, and typed rows. Cells of columns added after a row was written are `Null`.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    /// All column names, `timestamp` and `run_id` first.
    pub columns: Vec<String>,
    /// One inferred type per column.
    pub types: Vec<ColumnType>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Value>>,
}

impl ColumnType {
    /// The narrowest type holding values of both: Int and Float make Float, a column with
    /// nothing but empty cells takes the other's type, anything else mixed is text. The one
    /// rule of every reader (plain, UI tails, Arrow).
    pub fn unify(self, other: ColumnType) -> ColumnType {
        match (self, other) {
            (a, b) if a == b => a,
            (ColumnType::Null, t) | (t, ColumnType::Null) => t,
            (ColumnType::Int, ColumnType::Float) | (ColumnType::Float, ColumnType::Int) => {
                ColumnType::Float
            }
            _ => ColumnType::Str,
        }
    }
}

impl Metrics {
    /// The index of a column.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// One column's values, top to bottom.
    pub fn column(&self, name: &str) -> Option<impl Iterator<Item = &Value>> {
        let i = self.column_index(name)?;
        Some(self.rows.iter().map(move |row| &row[i]))
    }
}

/// The bytes of the table at `path`, if it is a regular file (see [`crate::store::open_regular`]).
fn read_whole(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    crate::store::open_regular(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Reads the table at `path`. A last record without its line end (a write in progress, or one
/// torn by a killed writer) is left out, also when it was cut after a line end inside quotes.
///
/// Records are split as rust-csv, pandas and Python's `csv` split them (see
/// `metrics::framing`): a `"` inside an unquoted cell is a literal character. A
/// quoted cell that opens and never closes, swallowing the lines after it, is an error naming
/// its line, never a silent loss of those lines.
pub fn read_table(path: &Path) -> Result<Metrics> {
    // A writer may be appending a record whose quoted cell spans lines while we read: only
    // an unclosed quote in a file that stopped growing is the file's own.
    let mut attempts = 0;
    loop {
        let bytes = read_whole(path).at("read the metrics table", path)?;
        match parse_table(&bytes, path) {
            Err(e) if attempts < 3 && matches!(e.kind(), ErrorKind::Corrupt { .. }) => {
                let now = std::fs::metadata(path).at("stat", path)?.len();
                if now == bytes.len() as u64 {
                    return Err(e);
                }
                attempts += 1;
            }
            result => return result,
        }
    }
}

/// Parses the bytes of a table file (see [`read_table`]).
pub fn parse_table(bytes: &[u8], path: &Path) -> Result<Metrics> {
    // Field names never hold a newline (they may not contain control characters), so the
    // first one ends the header.
    let Some(header_end) = memchr::memchr(b'\n', bytes) else {
        // Empty, or only a header being written: no rows yet.
        super::check_no_newline(bytes, path)?;
        return Ok(Metrics::empty());
    };
    let columns = table_columns(&bytes[..header_end], path)?;
    let body_start = header_end + 1;
    let body = &bytes[body_start..];
    let complete =
        &body[..complete_records(body, |offset| framing::line_of(bytes, body_start + offset))
            .map_err(|(line, reason)| Error::corrupt(path, Some(line), reason))?];
    let raw = parse_records(complete, columns.len()).map_err(|(line, reason)| {
        // parse_records counts the header as line 1, as the file does.
        Error::corrupt(path, line, reason)
    })?;
    Ok(Metrics::from_cells(columns, raw))
}

/// The cells of the complete records `body` (which follows the header line), each as wide as
/// the header (`width`); the one row parser behind every plain reader (whole tables and the
/// UI's tails). A record wider than the header, or one that is not UTF-8, is an error with its
/// line in the file (counting the header as line 1), never a row dropped in silence.
pub(crate) fn parse_records(
    body: &[u8],
    width: usize,
) -> std::result::Result<Vec<Vec<String>>, (Option<u64>, String)> {
    let mut raw: Vec<Vec<String>> = Vec::new();
    visit_records(body, width, |record| {
        let mut row: Vec<String> = record.iter().map(str::to_string).collect();
        row.resize(width, String::new());
        raw.push(row);
    })?;
    Ok(raw)
}

/// [`parse_records`] without keeping the rows: hands each record to `row` as it is read, for a
/// reader that converts cells at once (the UI's series columns) and must not hold a `String`
/// per cell of a million-row table. A record may be narrower than `width` (cells missing at
/// its end are empty); the same errors as [`parse_records`].
pub(crate) fn visit_records(
    body: &[u8],
    width: usize,
    mut row: impl FnMut(&csv::StringRecord),
) -> std::result::Result<(), (Option<u64>, String)> {
    // The empty line stands for the header line (csv skips it): line numbers come out as the
    // file's, and a byte-order mark at the body's start stays a cell's text, as it is in the
    // file (csv strips one only at the very start of its input).
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(std::io::Read::chain(&b"\n"[..], body));
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| p.line());
                return Err((line, format!("unreadable row: {e}")));
            }
        }
        if record.len() > width {
            let line = record.position().map(|p| p.line());
            return Err((
                line,
                format!(
                    "row has {} cells but the header has {width} columns; the file was edited \
                     by another program",
                    record.len()
                ),
            ));
        }
        row(&record);
    }
    Ok(())
}

impl Metrics {
    /// A table with no rows yet: the fixed columns only.
    pub(crate) fn empty() -> Metrics {
        Metrics {
            columns: FIXED_COLUMNS.iter().map(|c| c.to_string()).collect(),
            types: vec![ColumnType::Str; FIXED_COLUMNS.len()],
            rows: Vec::new(),
        }
    }

    /// Types each column from its cells (see [`infer`]) and converts them; `timestamp` and
    /// `run_id` stay text. Every row is as long as `columns`.
    pub(crate) fn from_cells(columns: Vec<String>, raw: Vec<Vec<String>>) -> Metrics {
        let types: Vec<ColumnType> = (0..columns.len())
            .map(|c| {
                if c < 2 {
                    ColumnType::Str
                } else {
                    infer(raw.iter().map(|row| row[c].as_str()))
                }
            })
            .collect();
        let rows = raw
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .zip(&types)
                    .map(|(cell, &ty)| convert(cell, ty))
                    .collect()
            })
            .collect();
        Metrics {
            columns,
            types,
            rows,
        }
    }
}

/// The length of the complete records at the start of `body`, or, when the body ends inside
/// a quoted cell that spans lines, the line where that cell's record starts (`line_of` turns a
/// body offset into a line) and what to say about it.
pub(crate) fn complete_records(
    body: &[u8],
    line_of: impl Fn(usize) -> u64,
) -> std::result::Result<usize, (u64, String)> {
    let (end, tail) = framing::complete_prefix(body);
    if let Tail::OpenQuote(start) = tail {
        let start = start as usize;
        if swallows_rows(&body[start..]) {
            let swallowed = memchr::memchr_iter(b'\n', &body[start..]).count();
            return Err((line_of(start), unclosed_quote(Some(swallowed))));
        }
    }
    Ok(end)
}

/// Whether an unterminated record that is inside a quoted cell holds lines that look like rows
/// (they start with a date, as every row's timestamp does). A row torn by a killed writer, or
/// being written, is one row whose text may hold line breaks: that is left out quietly. A stray
/// `"` that swallows the rest of the file is not.
pub(crate) fn swallows_rows(open_record: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', open_record).any(|i| starts_with_date(&open_record[i + 1..]))
}

/// [`swallows_rows`] for the bytes of `file` from `start` (where an unterminated record inside
/// a quoted cell begins) to `end`, read until the answer is known: a torn or in-progress row
/// is short, and a swallowed file shows its next row within a line.
pub(crate) fn open_quote_swallows_rows(file: &File, start: u64, end: u64) -> std::io::Result<bool> {
    let mut window = vec![0u8; 64 << 10];
    let mut offset = start;
    while offset < end {
        // Overlap by a line end and a date, so none is split between two reads.
        let from = offset.saturating_sub(10).max(start);
        let n = ((end - from) as usize).min(window.len());
        file.read_exact_at(&mut window[..n], from)?;
        if swallows_rows(&window[..n]) {
            return Ok(true);
        }
        offset = from + n as u64;
    }
    Ok(false)
}

/// `YYYY-MM-DD` at the start of `bytes`.
fn starts_with_date(bytes: &[u8]) -> bool {
    bytes.len() >= 10
        && bytes[..10].iter().enumerate().all(|(i, &b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        })
}

/// What to say about a quoted cell that opens and never closes, swallowing `swallowed` lines
/// (or some) after it.
pub(crate) fn unclosed_quote(swallowed: Option<usize>) -> String {
    let lines = swallowed.map_or("the rows".to_string(), |n| format!("the {n} line(s)"));
    format!(
        "a quoted cell opens on this line and never closes, so {lines} after it would be read \
         as part of it; find the stray `\"` (a hand edit?) and remove it or close the cell"
    )
}

/// The narrowest type that holds every non-empty cell.
pub fn infer<'a>(cells: impl Iterator<Item = &'a str>) -> ColumnType {
    let mut ty = ColumnType::Null;
    for cell in cells.filter(|c| !c.is_empty()) {
        let cell_ty = if cell.parse::<i64>().is_ok() {
            ColumnType::Int
        } else if parse_bool(cell).is_some() {
            ColumnType::Bool
        } else if cell.parse::<f64>().is_ok() {
            ColumnType::Float
        } else {
            return ColumnType::Str;
        };
        ty = ty.unify(cell_ty);
        if ty == ColumnType::Str {
            return ty;
        }
    }
    ty
}

fn parse_bool(cell: &str) -> Option<bool> {
    if cell.eq_ignore_ascii_case("true") {
        Some(true)
    } else if cell.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Converts one cell to the column's type (`infer` guarantees it parses).
pub fn convert(cell: String, ty: ColumnType) -> Value {
    if cell.is_empty() {
        return Value::Null;
    }
    match ty {
        ColumnType::Null => Value::Null,
        ColumnType::Bool => parse_bool(&cell).map_or(Value::Str(cell), Value::Bool),
        ColumnType::Int => cell.parse().map_or(Value::Str(cell), Value::Int),
        ColumnType::Float => match cell.parse() {
            Ok(f) => Value::Float(f),
            Err(_) => Value::Str(cell),
        },
        ColumnType::Str => Value::Str(cell),
    }
}
