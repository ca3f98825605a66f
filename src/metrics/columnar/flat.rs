//! A table as flat columns ([`FlatTable`]): the parser that fills the Arrow tables fills
//! them; only the chunks parsed in parallel are joined here, each column on its own thread.
//!
//! ```no_run
//! use expman::FlatColumn;
//! use expman::metrics::read_columns;
//! # fn main() -> expman::Result<()> {
//! let table = read_columns("experiments/base_2025-09-26__14-30-15/metrics/run_0001.csv", 0)?;
//! for (name, column) in table.names.iter().zip(&table.columns) {
//!     if let FlatColumn::Float { values, .. } = column {
//!         println!("{name}: {} values", values.len());
//!     }
//! }
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::path::Path;

use super::column::{Column, Validity};
use super::{parse, pool};
use crate::ColumnType;
use crate::error::Result;
use crate::metrics::{FlatColumn, FlatTable, FlatText};

/// Reads the table at `path` into flat columns with up to `threads` threads (0: the default,
/// `EXPMAN_THREADS`, else one per core). Consistent while others write, as
/// [`crate::read_table`]: a row being written is left out.
pub fn read_columns(path: impl AsRef<Path>, threads: usize) -> Result<FlatTable> {
    let path = path.as_ref();
    let threads = pool::threads_or_default(threads);
    let parsed = parse::read_file(path, threads)?;
    parse::check_text(&parsed, path)?;
    let types = parse::column_types(&parsed);
    let rows = parsed
        .chunks
        .iter()
        .map(|chunk| chunk.first().map_or(0, Column::len))
        .sum();
    // One job per column: joining is memory-bound, and the columns are independent.
    let mut jobs: Vec<(ColumnType, Vec<Column>)> = types
        .iter()
        .map(|&ty| (ty, Vec::with_capacity(parsed.chunks.len())))
        .collect();
    for chunk in parsed.chunks {
        for (job, column) in jobs.iter_mut().zip(chunk) {
            job.1.push(column);
        }
    }
    let columns = pool::map(jobs, threads, |(ty, chunks)| flatten(ty, chunks, rows));
    Ok(FlatTable {
        names: parsed.names,
        columns,
        rows,
    })
}

/// Joins one column's chunks as type `ty` (`rows` cells in all).
fn flatten(ty: ColumnType, chunks: Vec<Column>, rows: usize) -> FlatColumn {
    let chunks: Vec<Column> = chunks.into_iter().map(|c| c.cast(ty)).collect();
    let valid = validity(&chunks, rows);
    match ty {
        ColumnType::Null => FlatColumn::Null,
        ColumnType::Bool => {
            let mut values = Vec::with_capacity(rows);
            for chunk in &chunks {
                match chunk {
                    Column::Bool(bits, _) => {
                        values.extend((0..bits.len()).map(|i| u8::from(bits.get(i))))
                    }
                    other => values.resize(values.len() + other.len(), 0),
                }
            }
            if let Some(valid) = &valid {
                // An empty cell reads 0, whatever was stored under it.
                values.iter_mut().zip(valid).for_each(|(v, &ok)| *v &= ok);
            }
            FlatColumn::Bool { values, valid }
        }
        ColumnType::Int => {
            let mut values = Vec::with_capacity(rows);
            for chunk in &chunks {
                match chunk {
                    Column::Int(v, _) => values.extend_from_slice(v),
                    other => values.resize(values.len() + other.len(), 0),
                }
            }
            FlatColumn::Int { values, valid }
        }
        ColumnType::Float => {
            let mut values = Vec::with_capacity(rows);
            for chunk in &chunks {
                match chunk {
                    Column::Float(v, ..) => values.extend_from_slice(v),
                    other => values.resize(values.len() + other.len(), f64::NAN),
                }
            }
            if let Some(valid) = &valid {
                for (v, &ok) in values.iter_mut().zip(valid) {
                    if ok == 0 {
                        *v = f64::NAN;
                    }
                }
            }
            FlatColumn::Float { values, valid }
        }
        ColumnType::Str => FlatColumn::Text(text(&chunks, valid, rows)),
    }
}

/// The validity bytes of a column's chunks, `None` when no cell is empty.
fn validity(chunks: &[Column], rows: usize) -> Option<Vec<u8>> {
    if chunks
        .iter()
        .all(|c| c.len() == 0 || nulls(c).is_some_and(|v| !v.has_nulls()))
    {
        return None;
    }
    let mut bytes = Vec::with_capacity(rows);
    for chunk in chunks {
        match nulls(chunk) {
            Some(valid) if valid.has_nulls() => {
                bytes.extend((0..chunk.len()).map(|i| u8::from(valid.is_valid(i))))
            }
            Some(_) => bytes.resize(bytes.len() + chunk.len(), 1),
            None => bytes.resize(bytes.len() + chunk.len(), 0), // an empty column
        }
    }
    Some(bytes)
}

/// Which cells of a typed chunk have a value; `None` for a chunk of empty cells only.
fn nulls(chunk: &Column) -> Option<&Validity> {
    match chunk {
        Column::Null(_) => None,
        Column::Int(_, valid)
        | Column::Float(_, valid, _)
        | Column::Bool(_, valid)
        | Column::Str(_, _, valid) => Some(valid),
    }
}

/// The cells of a text chunk (empty ones too, as empty text).
fn cells(chunk: &Column) -> Box<dyn Iterator<Item = &[u8]> + '_> {
    match chunk {
        Column::Str(offsets, data, _) => Box::new(
            offsets
                .windows(2)
                .map(move |w| &data[w[0] as usize..w[1] as usize]),
        ),
        other => Box::new(std::iter::repeat_n(&b""[..], other.len())),
    }
}

/// The bytes of a text chunk.
fn data(chunk: &Column) -> &[u8] {
    match chunk {
        Column::Str(_, data, _) => data,
        _ => &[],
    }
}

/// A text column's cells: dictionary-encoded when few distinct values repeat (run ids,
/// phases), one value per cell otherwise (timestamps). The parser checked that the text is
/// UTF-8, naming the line of any that is not.
fn text(chunks: &[Column], valid: Option<Vec<u8>>, rows: usize) -> FlatText {
    let all_cells = || chunks.iter().flat_map(|c| cells(c));
    let sep = free_byte(chunks.iter().map(data));
    // Dictionary encoding pays when a cell's value is found in a small map far more often than
    // a new one is made: give up once there are more than 256 distinct values and they pass an
    // eighth of the cells seen.
    let mut distinct: HashMap<&[u8], i32> = HashMap::new();
    let mut order: Vec<&[u8]> = Vec::new();
    let mut codes: Vec<i32> = Vec::with_capacity(rows);
    let mut last: Option<(&[u8], i32)> = None;
    let valid_at = |i: usize| valid.as_ref().is_none_or(|v| v[i] != 0);
    let mut dictionary = true;
    for (i, cell) in all_cells().enumerate() {
        if !valid_at(i) {
            codes.push(-1);
            continue;
        }
        let code = match last {
            Some((value, code)) if value == cell => code,
            _ => {
                let next = order.len() as i32;
                let code = *distinct.entry(cell).or_insert(next);
                if code == next {
                    order.push(cell);
                    if order.len() > 256 && order.len() * 8 > i + 1 {
                        dictionary = false;
                        break;
                    }
                }
                code
            }
        };
        last = Some((cell, code));
        codes.push(code);
    }
    let values: Box<dyn Iterator<Item = &[u8]>> = if dictionary {
        Box::new(order.iter().copied())
    } else {
        Box::new(all_cells())
    };
    let bytes: usize = if dictionary {
        order.iter().map(|v| v.len()).sum()
    } else {
        chunks.iter().map(|c| data(c).len()).sum()
    };
    let n = if dictionary { order.len() } else { rows };
    let mut data = Vec::with_capacity(bytes + n);
    let mut offsets = Vec::with_capacity(n + 1);
    let terminator = sep.unwrap_or(0);
    for value in values {
        offsets.push(data.len() as i64);
        data.extend_from_slice(value);
        data.push(terminator);
    }
    offsets.push(data.len() as i64);
    FlatText {
        data,
        offsets,
        sep,
        codes: dictionary.then_some(codes),
        valid,
    }
}

/// A control character none of `buffers` holds, if any: a separator that splitting on cannot
/// mistake for text. Tabs and line feeds come last since text holds them most often.
fn free_byte<'a>(buffers: impl Iterator<Item = &'a [u8]> + Clone) -> Option<u8> {
    const CANDIDATES: [u8; 32] = [
        0x1f, 0x1e, 0x1d, 0x1c, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x0b, 0x0c,
        0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x0d,
        0x0a, 0x09,
    ];
    CANDIDATES.into_iter().find(|&b| {
        buffers
            .clone()
            .all(|data| memchr::memchr(b, data).is_none())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[Option<&str>]) -> Column {
        let mut column = Column::text(values.len(), 0);
        for value in values {
            match value {
                Some(v) => {
                    column.push(v.as_bytes(), values.len());
                }
                None => column.push_null(),
            }
        }
        column
    }

    fn text_of(chunks: &[Column], rows: usize) -> FlatText {
        text(chunks, validity(chunks, rows), rows)
    }

    fn split(text: &FlatText) -> Vec<&[u8]> {
        text.offsets
            .windows(2)
            .map(|w| &text.data[w[0] as usize..w[1] as usize - 1])
            .collect()
    }

    #[test]
    fn repeated_text_is_a_dictionary_and_unique_text_is_not() {
        let mut repeated = vec![Some("train"); 100];
        repeated[3] = Some("eval");
        repeated[5] = None;
        let t = text_of(&[strings(&repeated[..50]), strings(&repeated[50..])], 100);
        let codes = t.codes.as_ref().expect("a dictionary");
        assert_eq!(split(&t), [&b"train"[..], b"eval"]);
        assert_eq!((codes[0], codes[3], codes[5], codes[99]), (0, 1, -1, 0));
        assert_eq!(t.valid.as_ref().map(|v| v[5]), Some(0));

        let unique: Vec<String> = (0..1000).map(|i| format!("t{i}")).collect();
        let cells: Vec<Option<&str>> = unique.iter().map(|s| Some(s.as_str())).collect();
        let t = text_of(&[strings(&cells)], 1000);
        assert!(t.codes.is_none());
        assert_eq!(split(&t).len(), 1000);
        assert_eq!(split(&t)[42], b"t42");
        assert_eq!(t.sep, Some(0x1f));
    }

    fn numbers(cells: &[&str]) -> Column {
        let mut column = Column::Null(0);
        for cell in cells {
            column.push(cell.as_bytes(), cells.len());
        }
        column
    }

    /// A part of a file parsed on its own may hold no value of a column (or ints where another
    /// part has floats): joined, its cells are empty ones of the column's type.
    #[test]
    fn parts_of_other_types_join_as_the_columns_type() {
        let joined = flatten(
            ColumnType::Int,
            vec![Column::Null(3), numbers(&["1", "2"])],
            5,
        );
        assert_eq!(
            joined,
            FlatColumn::Int {
                values: vec![0, 0, 0, 1, 2],
                valid: Some(vec![0, 0, 0, 1, 1]),
            }
        );
        let joined = flatten(
            ColumnType::Float,
            vec![numbers(&["1", ""]), Column::Null(1), numbers(&["2.5"])],
            4,
        );
        let FlatColumn::Float { values, valid } = joined else {
            panic!("{joined:?}");
        };
        assert_eq!(valid, Some(vec![1, 0, 0, 1]));
        assert_eq!(values[0], 1.0);
        assert!(values[1].is_nan() && values[2].is_nan());
        assert_eq!(values[3], 2.5);
        let joined = flatten(
            ColumnType::Str,
            vec![numbers(&["007"]), strings(&[Some("x")])],
            2,
        );
        let FlatColumn::Text(text) = joined else {
            panic!("{joined:?}");
        };
        assert_eq!(split(&text), [&b"7"[..], b"x"]);
        assert_eq!(
            flatten(ColumnType::Bool, vec![numbers(&["true", ""])], 2),
            FlatColumn::Bool {
                values: vec![1, 0],
                valid: Some(vec![1, 0]),
            }
        );
    }

    #[test]
    fn the_separator_is_a_byte_no_value_holds() {
        let t = text_of(&[strings(&[Some("a\x1fb"), Some("c\x1e"), Some("x")])], 3);
        assert_eq!(t.sep, Some(0x1d));
        assert_eq!(split(&t), [&b"a\x1fb"[..], b"c\x1e", b"x"]);
        let all: String = (0u8..32).map(char::from).collect();
        let t = text_of(&[strings(&[Some(all.as_str())])], 1);
        assert_eq!(t.sep, None);
        assert_eq!(split(&t), [all.as_bytes()]);
    }
}
