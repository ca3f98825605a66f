//! A table as flat columns ([`FlatTable`]): the same parser as [`super::read_table`] fills
//! them; only the chunks parsed in parallel are joined here, each column on its own thread.
//!
//! ```no_run
//! use expman::FlatColumn;
//! use expman::arrow::read_columns;
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

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;

use super::pool;
use crate::error::Result;
use crate::metrics::{FlatColumn, FlatTable, FlatText};

/// Reads the table at `path` into flat columns with up to `threads` threads (0: the default,
/// see the module docs of [`super`]). Consistent while others write, as [`super::read_table`].
pub fn read_columns(path: impl AsRef<Path>, threads: usize) -> Result<FlatTable> {
    let threads = if threads == 0 {
        pool::default_threads()
    } else {
        threads
    };
    let table = super::read_table_chunks(path, threads)?;
    let schema = table.schema();
    let rows = table.num_rows();
    let batches = table.into_batches();
    let names = schema.fields().iter().map(|f| f.name().clone()).collect();
    // One job per column: joining is memory-bound, and the columns are independent.
    let jobs: Vec<(DataType, Vec<ArrayRef>)> = (0..schema.fields().len())
        .map(|c| {
            let chunks = batches.iter().map(|b| b.column(c).clone()).collect();
            (schema.field(c).data_type().clone(), chunks)
        })
        .collect();
    let columns = pool::map(jobs, threads, |(ty, chunks)| flatten(&ty, &chunks, rows));
    Ok(FlatTable {
        names,
        columns,
        rows,
    })
}

/// Joins one column's chunks (all of type `ty`, `rows` cells in all).
fn flatten(ty: &DataType, chunks: &[ArrayRef], rows: usize) -> FlatColumn {
    match ty {
        DataType::Boolean => {
            let mut values = Vec::with_capacity(rows);
            for chunk in chunks {
                values.extend(chunk.as_boolean().values().iter().map(u8::from));
            }
            let valid = validity(chunks, rows);
            if let Some(valid) = &valid {
                // An empty cell reads 0, whatever the buffer held under the null.
                values.iter_mut().zip(valid).for_each(|(v, &ok)| *v &= ok);
            }
            FlatColumn::Bool { values, valid }
        }
        DataType::Int64 => {
            let mut values = Vec::with_capacity(rows);
            for chunk in chunks {
                values.extend_from_slice(chunk.as_primitive::<Int64Type>().values());
            }
            FlatColumn::Int {
                values,
                valid: validity(chunks, rows),
            }
        }
        DataType::Float64 => {
            let mut values = Vec::with_capacity(rows);
            for chunk in chunks {
                values.extend_from_slice(chunk.as_primitive::<Float64Type>().values());
            }
            let valid = validity(chunks, rows);
            if let Some(valid) = &valid {
                for (v, &ok) in values.iter_mut().zip(valid) {
                    if ok == 0 {
                        *v = f64::NAN;
                    }
                }
            }
            FlatColumn::Float { values, valid }
        }
        DataType::Utf8 => FlatColumn::Text(text(chunks, rows)),
        // Null, and any type this module's parser never makes.
        _ => FlatColumn::Null,
    }
}

/// The validity bytes of a column's chunks, `None` when no cell is empty.
fn validity(chunks: &[ArrayRef], rows: usize) -> Option<Vec<u8>> {
    if chunks.iter().all(|c| c.null_count() == 0) {
        return None;
    }
    let mut valid = Vec::with_capacity(rows);
    for chunk in chunks {
        match chunk.logical_nulls() {
            Some(nulls) => valid.extend(nulls.iter().map(u8::from)),
            None => valid.resize(valid.len() + chunk.len(), 1),
        }
    }
    Some(valid)
}

/// A text column's cells: dictionary-encoded when few distinct values repeat (run ids,
/// phases), one value per cell otherwise (timestamps).
fn text(chunks: &[ArrayRef], rows: usize) -> FlatText {
    let arrays: Vec<_> = chunks.iter().map(|c| c.as_string::<i32>()).collect();
    let valid = validity(chunks, rows);
    let cells = || {
        arrays.iter().flat_map(|a| {
            let offsets = a.value_offsets();
            let data = a.value_data();
            offsets
                .windows(2)
                .map(move |w| &data[w[0] as usize..w[1] as usize])
        })
    };
    let sep = free_byte(arrays.iter().map(|a| a.value_data()));
    // Dictionary encoding pays when a cell's value is found in a small map far more often than
    // a new one is made: give up once there are more than 256 distinct values and they pass an
    // eighth of the cells seen.
    let mut distinct: HashMap<&[u8], i32> = HashMap::new();
    let mut order: Vec<&[u8]> = Vec::new();
    let mut codes: Vec<i32> = Vec::with_capacity(rows);
    let mut last: Option<(&[u8], i32)> = None;
    let valid_at = |i: usize| valid.as_ref().is_none_or(|v| v[i] != 0);
    let mut dictionary = true;
    for (i, cell) in cells().enumerate() {
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
        Box::new(cells())
    };
    let bytes: usize = if dictionary {
        order.iter().map(|v| v.len()).sum()
    } else {
        arrays.iter().map(|a| a.value_data().len()).sum()
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
    use arrow_array::StringArray;
    use std::sync::Arc;

    fn strings(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
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
        let t = text(&[strings(&repeated[..50]), strings(&repeated[50..])], 100);
        let codes = t.codes.as_ref().expect("a dictionary");
        assert_eq!(split(&t), [&b"train"[..], b"eval"]);
        assert_eq!((codes[0], codes[3], codes[5], codes[99]), (0, 1, -1, 0));
        assert_eq!(t.valid.as_ref().map(|v| v[5]), Some(0));

        let unique: Vec<String> = (0..1000).map(|i| format!("t{i}")).collect();
        let cells: Vec<Option<&str>> = unique.iter().map(|s| Some(s.as_str())).collect();
        let t = text(&[strings(&cells)], 1000);
        assert!(t.codes.is_none());
        assert_eq!(split(&t).len(), 1000);
        assert_eq!(split(&t)[42], b"t42");
        assert_eq!(t.sep, Some(0x1f));
    }

    #[test]
    fn the_separator_is_a_byte_no_value_holds() {
        let t = text(&[strings(&[Some("a\x1fb"), Some("c\x1e"), Some("x")])], 3);
        assert_eq!(t.sep, Some(0x1d));
        assert_eq!(split(&t), [&b"a\x1fb"[..], b"c\x1e", b"x"]);
        let all: String = (0u8..32).map(char::from).collect();
        let t = text(&[strings(&[Some(all.as_str())])], 1);
        assert_eq!(t.sep, None);
        assert_eq!(split(&t), [all.as_bytes()]);
    }
}
