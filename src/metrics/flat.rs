//! A table as flat columns: one contiguous buffer per column, for bindings that wrap memory
//! (numpy's `frombuffer`, a C array) rather than import Arrow. [`super::read_columns`] makes
//! them, in every build.

use crate::ColumnType;

/// A table read into one buffer per column (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct FlatTable {
    /// Column names, `timestamp` and `run_id` first.
    pub names: Vec<String>,
    /// One column per name, each `rows` cells long.
    pub columns: Vec<FlatColumn>,
    /// The number of rows.
    pub rows: usize,
}

/// One column's cells in one buffer, typed as [`crate::read_table`] types them. `valid` holds
/// one byte per cell, 1 where the cell has a value and 0 where it is empty; `None` when no
/// cell is empty.
#[derive(Debug, Clone, PartialEq)]
pub enum FlatColumn {
    /// Every cell is empty.
    Null,
    /// `true`/`false`: one byte per cell, 1 or 0 (0 where empty).
    Bool {
        /// The values.
        values: Vec<u8>,
        /// Which cells have a value.
        valid: Option<Vec<u8>>,
    },
    /// Integers (0 where empty).
    Int {
        /// The values.
        values: Vec<i64>,
        /// Which cells have a value.
        valid: Option<Vec<u8>>,
    },
    /// Numbers, NaN where empty (a `NaN` cell is NaN too: `valid` tells them apart).
    Float {
        /// The values.
        values: Vec<f64>,
        /// Which cells have a value.
        valid: Option<Vec<u8>>,
    },
    /// Text (see [`FlatText`]).
    Text(FlatText),
}

/// A text column as one byte buffer. Value `i` is `data[offsets[i]..offsets[i + 1] - 1]`:
/// every value is followed by one byte, `sep` where a byte exists that no value holds (a
/// control character, so a binding can split the whole buffer in one call), else 0. The
/// values are every cell's (`codes` is `None`, an empty cell an empty value), or, for a column
/// with few distinct values, each distinct value once and `codes` the index of each cell's
/// value (-1 where the cell is empty).
#[derive(Debug, Clone, PartialEq)]
pub struct FlatText {
    /// The values, each followed by one separator byte.
    pub data: Vec<u8>,
    /// Where each value starts, and the end of `data` last.
    pub offsets: Vec<i64>,
    /// The byte that follows every value when no value holds it.
    pub sep: Option<u8>,
    /// Each cell's index into the values, for a dictionary-encoded column.
    pub codes: Option<Vec<i32>>,
    /// Which cells have a value.
    pub valid: Option<Vec<u8>>,
}

impl FlatColumn {
    /// The column's type.
    pub fn column_type(&self) -> ColumnType {
        match self {
            FlatColumn::Null => ColumnType::Null,
            FlatColumn::Bool { .. } => ColumnType::Bool,
            FlatColumn::Int { .. } => ColumnType::Int,
            FlatColumn::Float { .. } => ColumnType::Float,
            FlatColumn::Text(_) => ColumnType::Str,
        }
    }

    /// Which cells have a value: `None` when all do (never for a [`FlatColumn::Null`] column
    /// with cells).
    pub fn valid(&self) -> Option<&[u8]> {
        match self {
            FlatColumn::Null => None,
            FlatColumn::Bool { valid, .. }
            | FlatColumn::Int { valid, .. }
            | FlatColumn::Float { valid, .. } => valid.as_deref(),
            FlatColumn::Text(text) => text.valid.as_deref(),
        }
    }
}
