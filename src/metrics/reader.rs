//! Reading a table back as typed columns, consistently while others write it.

use std::path::Path;

use super::Value;
use super::writer::parse_header;
use crate::error::{Error, IoContext, Result};

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

/// Reads the table at `path`. A last row without its closing newline (a write in progress, or
/// one torn by a killed writer) is skipped, also when it was cut after a newline inside quotes.
pub fn read_table(path: &Path) -> Result<Metrics> {
    let bytes = std::fs::read(path).at("read the metrics table", path)?;
    parse_table(&bytes, path)
}

/// Parses the bytes of a table file (see [`read_table`]).
pub fn parse_table(bytes: &[u8], path: &Path) -> Result<Metrics> {
    // Field names never hold a newline (they may not contain control characters), so the
    // first one ends the header.
    let header_end = bytes.iter().position(|&b| b == b'\n');
    let Some(header_end) = header_end else {
        // Empty, or only a header being written: no rows yet.
        return Ok(Metrics {
            columns: vec!["timestamp".into(), "run_id".into()],
            types: vec![ColumnType::Str, ColumnType::Str],
            rows: Vec::new(),
        });
    };
    let mut columns = vec!["timestamp".to_string(), "run_id".to_string()];
    columns.extend(parse_header(&bytes[..header_end], path)?);
    let width = columns.len();

    let body = &bytes[header_end + 1..];
    let complete = &body[..last_row_end(body, &mut false).unwrap_or(0)];
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(complete);
    let mut raw: Vec<Vec<String>> = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| p.line() + 1);
                return Err(Error::corrupt(path, line, format!("unreadable row: {e}")));
            }
        }
        if record.len() > width {
            let line = record.position().map(|p| p.line() + 1);
            return Err(Error::corrupt(
                path,
                line,
                format!(
                    "row has {} cells but the header has {width} columns; the file was edited \
                     by another program",
                    record.len()
                ),
            ));
        }
        let mut row: Vec<String> = record.iter().map(str::to_string).collect();
        row.resize(width, String::new());
        raw.push(row);
    }

    Ok(Metrics::from_cells(columns, raw))
}

impl Metrics {
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

/// Where the last whole row in `chunk` ends: just past its last newline outside quotes.
///
/// A newline inside a quoted cell ends no row, so a tail cut after one (a write in progress, or
/// one torn by a killed writer) is not taken for a row. `quoted` carries the state from the
/// previous chunk and must start `false` at a row boundary. Exact for what expman writes, where
/// a `"` only ever appears in a quoted cell (and there doubled).
pub(crate) fn last_row_end(chunk: &[u8], quoted: &mut bool) -> Option<usize> {
    let mut end = None;
    for (i, &b) in chunk.iter().enumerate() {
        match b {
            b'"' => *quoted = !*quoted,
            b'\n' if !*quoted => end = Some(i + 1),
            _ => {}
        }
    }
    end
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
        ty = match (ty, cell_ty) {
            (ColumnType::Null, t) => t,
            (a, b) if a == b => a,
            (ColumnType::Int, ColumnType::Float) | (ColumnType::Float, ColumnType::Int) => {
                ColumnType::Float
            }
            _ => return ColumnType::Str,
        };
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
