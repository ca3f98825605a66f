//! A column being built from CSV cells: it starts untyped and narrows or widens as cells come,
//! following the rules of [`crate::metrics::reader::infer`] (the same types `read_table` gives).

use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, NullArray, StringArray, new_null_array,
};
use arrow_buffer::{BooleanBufferBuilder, Buffer, NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_schema::DataType;

use crate::{ColumnType, Value};

/// The Arrow type of an inferred column type.
pub(crate) fn data_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Null => DataType::Null,
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Int => DataType::Int64,
        ColumnType::Float => DataType::Float64,
        ColumnType::Str => DataType::Utf8,
    }
}

/// Writes the text of a column's value at an index.
type Formatter = Box<dyn Fn(usize, &mut Vec<u8>)>;

/// One column of a chunk of rows, typed by the cells seen so far.
pub(crate) enum Column {
    /// Only empty cells so far: how many.
    Null(usize),
    /// Integers (empty cells are nulls holding 0).
    Int(Vec<i64>, NullBufferBuilder),
    /// Numbers, NaN and infinities included; once an integer literal is among them, which
    /// values were integer literals (so that, should the column become text, they read as
    /// written: `1`, not `1.0`, whatever else the chunk held).
    Float(Vec<f64>, NullBufferBuilder, Option<BooleanBufferBuilder>),
    /// `true`/`false` in any case.
    Bool(BooleanBufferBuilder, NullBufferBuilder),
    /// Text: Arrow's offsets and bytes. Never narrows again.
    Str(Vec<i32>, Vec<u8>, NullBufferBuilder),
}

impl Column {
    /// An empty text column (`timestamp` and `run_id` are always text, as in `read_table`)
    /// for about `rows` cells of about `bytes` bytes in all.
    pub(crate) fn text(rows: usize, bytes: usize) -> Column {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Column::Str(
            offsets,
            Vec::with_capacity(bytes),
            NullBufferBuilder::new(rows),
        )
    }

    /// The type of the cells seen so far.
    pub(crate) fn column_type(&self) -> ColumnType {
        match self {
            Column::Null(_) => ColumnType::Null,
            Column::Int(..) => ColumnType::Int,
            Column::Float(..) => ColumnType::Float,
            Column::Bool(..) => ColumnType::Bool,
            Column::Str(..) => ColumnType::Str,
        }
    }

    /// The number of cells.
    pub(crate) fn len(&self) -> usize {
        match self {
            Column::Null(n) => *n,
            Column::Int(v, _) => v.len(),
            Column::Float(v, ..) => v.len(),
            Column::Bool(v, _) => v.len(),
            Column::Str(offsets, ..) => offsets.len() - 1,
        }
    }

    /// Appends an empty cell.
    #[inline]
    pub(crate) fn push_null(&mut self) {
        match self {
            Column::Null(n) => *n += 1,
            Column::Int(v, nulls) => {
                v.push(0);
                nulls.append_null();
            }
            Column::Float(v, nulls, ints) => {
                v.push(0.0);
                nulls.append_null();
                if let Some(ints) = ints {
                    ints.append(false);
                }
            }
            Column::Bool(v, nulls) => {
                v.append(false);
                nulls.append_null();
            }
            Column::Str(offsets, data, nulls) => {
                offsets.push(data.len() as i32);
                nulls.append_null();
            }
        }
    }

    /// Appends the cell `cell` (its text, unquoted), changing the column's type if the cell
    /// does not fit it. `rows` is the expected number of cells, to allocate once. Returns
    /// whether the column turned from numbers or booleans into text: their text is then as
    /// expman writes them, which may not be the file's (`007` reads `7`), so the caller parses
    /// the rows again with the column as text from the start.
    #[inline]
    pub(crate) fn push(&mut self, cell: &[u8], rows: usize) -> bool {
        if cell.is_empty() {
            self.push_null();
            return false;
        }
        match self {
            Column::Str(offsets, data, nulls) => {
                data.extend_from_slice(cell);
                offsets.push(data.len() as i32);
                nulls.append_non_null();
            }
            Column::Float(v, nulls, ints) => match parse_f64(cell) {
                Some(f) => {
                    note_literal(ints, v.len(), parse_i64(cell).is_some());
                    v.push(f);
                    nulls.append_non_null();
                }
                None => return self.widen_to_text(cell),
            },
            Column::Int(v, nulls) => match parse_i64(cell) {
                Some(i) => {
                    v.push(i);
                    nulls.append_non_null();
                }
                None => match parse_f64(cell) {
                    Some(f) => {
                        let mut floats = Vec::with_capacity(v.capacity());
                        floats.extend(v.iter().map(|&i| i as f64));
                        floats.push(f);
                        let mut ints = BooleanBufferBuilder::new(v.capacity());
                        ints.append_n(v.len(), true);
                        ints.append(false);
                        let mut nulls = std::mem::replace(nulls, NullBufferBuilder::new(0));
                        nulls.append_non_null();
                        *self = Column::Float(floats, nulls, Some(ints));
                    }
                    None => return self.widen_to_text(cell),
                },
            },
            Column::Bool(v, nulls) => match parse_bool(cell) {
                Some(b) => {
                    v.append(b);
                    nulls.append_non_null();
                }
                None => return self.widen_to_text(cell),
            },
            Column::Null(n) => {
                let n = *n;
                let capacity = rows.max(n + 1);
                let mut nulls = NullBufferBuilder::new(capacity);
                nulls.append_n_nulls(n);
                nulls.append_non_null();
                *self = if let Some(i) = parse_i64(cell) {
                    let mut v = Vec::with_capacity(capacity);
                    v.resize(n, 0);
                    v.push(i);
                    Column::Int(v, nulls)
                } else if let Some(b) = parse_bool(cell) {
                    let mut v = BooleanBufferBuilder::new(capacity);
                    v.append_n(n, false);
                    v.append(b);
                    Column::Bool(v, nulls)
                } else if let Some(f) = parse_f64(cell) {
                    let mut v = Vec::with_capacity(capacity);
                    v.resize(n, 0.0);
                    v.push(f);
                    Column::Float(v, nulls, None)
                } else {
                    let mut offsets = Vec::with_capacity(capacity + 1);
                    offsets.resize(n + 1, 0);
                    offsets.push(cell.len() as i32);
                    Column::Str(offsets, cell.to_vec(), nulls)
                };
            }
        }
        false
    }

    /// The fast path for a number column: parses the unquoted cell at the start of `rest`
    /// while finding its end, and appends it if it ends at a `,` or a newline; returns its
    /// length. `None` (nothing appended) sends the cell down the general path, which finds
    /// its end first: text, a `\r`, a value that changes the column's type.
    #[inline]
    pub(crate) fn push_number(&mut self, rest: &[u8]) -> Option<usize> {
        let ends_cell = |n: usize| matches!(rest.get(n), Some(b',' | b'\n'));
        match self {
            Column::Float(v, nulls, ints) => {
                if ends_cell(0) {
                    v.push(0.0);
                    nulls.append_null();
                    if let Some(ints) = ints {
                        ints.append(false);
                    }
                    return Some(0);
                }
                let (f, n) = fast_float2::parse_partial::<f64, _>(rest).ok()?;
                if !ends_cell(n) {
                    return None;
                }
                // Stops at the `.` of almost every float: cheap.
                let sign = usize::from(matches!(rest[0], b'-' | b'+'));
                let integer = n > sign && rest[sign..n].iter().all(u8::is_ascii_digit);
                if integer || ints.is_some() {
                    note_literal(ints, v.len(), integer);
                }
                v.push(f);
                nulls.append_non_null();
                Some(n)
            }
            Column::Int(v, nulls) => {
                if ends_cell(0) {
                    v.push(0);
                    nulls.append_null();
                    return Some(0);
                }
                let n = rest
                    .iter()
                    .skip(usize::from(matches!(rest.first(), Some(b'-' | b'+'))))
                    .position(|b| !b.is_ascii_digit())
                    .map(|p| p + usize::from(matches!(rest.first(), Some(b'-' | b'+'))))?;
                if !ends_cell(n) {
                    return None;
                }
                v.push(parse_i64(&rest[..n])?);
                nulls.append_non_null();
                Some(n)
            }
            _ => None,
        }
    }

    /// Turns the column into text (formatting the values read so far as expman writes them)
    /// and appends `cell`.
    #[cold]
    fn widen_to_text(&mut self, cell: &[u8]) -> bool {
        let column = std::mem::replace(self, Column::Null(0));
        *self = column.into_text();
        self.push(cell, 0);
        true
    }

    /// The column as text. Numbers and booleans are formatted as expman writes them, which is
    /// the text they were read from for every table expman wrote.
    fn into_text(self) -> Column {
        let len = self.len();
        let (mut nulls, format): (NullBufferBuilder, Formatter) = match self {
            Column::Str(..) => return self,
            Column::Null(n) => {
                let mut nulls = NullBufferBuilder::new(n);
                nulls.append_n_nulls(n);
                (nulls, Box::new(|_, _| {}))
            }
            Column::Int(v, nulls) => (
                nulls,
                Box::new(move |i, out| Value::Int(v[i]).write_csv(out)),
            ),
            Column::Float(v, nulls, ints) => {
                let ints = ints.map(|mut ints| ints.finish());
                (
                    nulls,
                    Box::new(move |i, out| {
                        if ints.as_ref().is_some_and(|ints| ints.value(i)) {
                            // Exact below 2^53; an integer beyond that mixed with floats in
                            // one chunk was rounded when the column became Float.
                            Value::Int(v[i] as i64).write_csv(out)
                        } else {
                            Value::Float(v[i]).write_csv(out)
                        }
                    }),
                )
            }
            Column::Bool(mut v, nulls) => {
                let v = v.finish();
                (
                    nulls,
                    Box::new(move |i, out| Value::Bool(v.value(i)).write_csv(out)),
                )
            }
        };
        let mut offsets = Vec::with_capacity(len + 1);
        offsets.push(0);
        let mut data = Vec::new();
        for i in 0..len {
            if nulls.is_valid(i) {
                format(i, &mut data);
            }
            offsets.push(data.len() as i32);
        }
        let nulls = {
            let mut fresh = NullBufferBuilder::new(len);
            if let Some(buffer) = nulls.finish() {
                fresh.append_buffer(&buffer);
            } else {
                fresh.append_n_non_nulls(len);
            }
            fresh
        };
        Column::Str(offsets, data, nulls)
    }

    /// The column as an Arrow array of type `ty`, which must be `unify(self's type, ty) == ty`.
    /// Errors only when text does not fit Arrow's 32-bit offsets or is not UTF-8.
    pub(crate) fn finish(self, ty: ColumnType) -> Result<ArrayRef, String> {
        let column = match (self.column_type(), ty) {
            (a, b) if a == b => self,
            (ColumnType::Null, _) => return Ok(new_null_array(&data_type(ty), self.len())),
            (ColumnType::Int, ColumnType::Float) => match self {
                Column::Int(v, nulls) => {
                    Column::Float(v.iter().map(|&i| i as f64).collect(), nulls, None)
                }
                _ => unreachable!("matched on the type"),
            },
            (_, ColumnType::Str) => self.into_text(),
            (a, b) => unreachable!("a {a:?} column cannot become {b:?}"),
        };
        Ok(match column {
            Column::Null(n) => Arc::new(NullArray::new(n)),
            Column::Int(v, mut nulls) => Arc::new(Int64Array::new(v.into(), nulls.finish())),
            Column::Float(v, mut nulls, _) => Arc::new(Float64Array::new(v.into(), nulls.finish())),
            Column::Bool(mut v, mut nulls) => {
                Arc::new(BooleanArray::new(v.finish(), nulls.finish()))
            }
            Column::Str(offsets, data, mut nulls) => {
                if i32::try_from(data.len()).is_err() {
                    return Err(format!(
                        "a text column holds {} bytes, more than an Arrow string array can \
                         (2 GiB)",
                        data.len()
                    ));
                }
                let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
                Arc::new(
                    StringArray::try_new(offsets, Buffer::from_vec(data), nulls.finish())
                        .map_err(|e| format!("text that is not UTF-8 ({e})"))?,
                )
            }
        })
    }
}

/// Records whether the value about to be appended at `index` of a Float column was an integer
/// literal; the flags exist only once one was.
#[inline]
fn note_literal(ints: &mut Option<BooleanBufferBuilder>, index: usize, integer: bool) {
    match ints {
        Some(ints) => ints.append(integer),
        None if integer => {
            let mut flags = BooleanBufferBuilder::new(index + 1024);
            flags.append_n(index, false);
            flags.append(true);
            *ints = Some(flags);
        }
        None => {}
    }
}

/// `i64::from_str` on bytes: an optional sign and decimal digits, within range.
#[inline]
pub(crate) fn parse_i64(cell: &[u8]) -> Option<i64> {
    let (negative, digits) = match cell {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, cell),
    };
    if digits.is_empty() {
        return None;
    }
    // Leading zeros do not count towards the 19 digits that fit.
    let zeros = digits.iter().take_while(|&&b| b == b'0').count();
    let digits = &digits[zeros.min(digits.len() - 1)..];
    if digits.len() > 19 {
        return None;
    }
    let mut magnitude: u64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        // 19 digits fit a u64 without overflow.
        magnitude = magnitude * 10 + u64::from(d);
    }
    if negative {
        if magnitude <= i64::MAX as u64 + 1 {
            Some((magnitude as i64).wrapping_neg())
        } else {
            None
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// `f64::from_str` on bytes: decimal and exponent forms, `NaN`, `inf`, `infinity`.
#[inline]
pub(crate) fn parse_f64(cell: &[u8]) -> Option<f64> {
    std::str::from_utf8(cell).ok()?.parse().ok()
}

/// `true`/`false` in any case.
#[inline]
pub(crate) fn parse_bool(cell: &[u8]) -> Option<bool> {
    if cell.eq_ignore_ascii_case(b"true") {
        Some(true)
    } else if cell.eq_ignore_ascii_case(b"false") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;

    #[test]
    fn parse_i64_agrees_with_std() {
        for text in [
            "0",
            "-0",
            "+7",
            "-",
            "+",
            "",
            "12a",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "99999999999999999999",
            "0000000000000000000001",
            " 1",
            "1.0",
        ] {
            assert_eq!(
                parse_i64(text.as_bytes()),
                text.parse::<i64>().ok(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn the_number_fast_path_agrees_with_std() {
        let cells = [
            "0",
            "-0",
            "+1",
            "1.5",
            "-1.5",
            "+1.5",
            ".5",
            "5.",
            "-.5",
            "1e5",
            "1E5",
            "1e-5",
            "1e+5",
            "1e",
            "e5",
            ".",
            "-",
            "+",
            "",
            "NaN",
            "nan",
            "-nan",
            "+nan",
            "inf",
            "-inf",
            "+inf",
            "Infinity",
            "-infinity",
            "INF",
            "infinit",
            "infx",
            "nanx",
            "1.5.5",
            "1..5",
            "0x10",
            "1_000",
            " 1",
            "1 ",
            "1e400",
            "-1e400",
            "1e-400",
            "4.9e-324",
            "0.30000000000000004",
            "179769313486231570000000000000000000000000000000000000000000\
             00000000000000000000000000000000000000000000000000000000000000000000000000000000000\
             00000000000000000000000000000000000000000000000000000000000000000000000000000000000\
             00000000000000000000000000000000000000000000000000000000000000000000000000000000000",
            "123456789012345678901234567890",
            "0.1234567890123456789012345",
            "true",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "00012",
        ];
        for cell in cells {
            for column in [
                Column::Float(Vec::new(), NullBufferBuilder::new(0), None),
                Column::Int(Vec::new(), NullBufferBuilder::new(0)),
            ] {
                let float = matches!(column, Column::Float(..));
                let mut fast = column;
                let line = format!("{cell},next");
                let taken = fast.push_number(line.as_bytes());
                if let Some(n) = taken {
                    assert_eq!(n, cell.len(), "{cell:?}");
                    let array = fast
                        .finish(if float {
                            ColumnType::Float
                        } else {
                            ColumnType::Int
                        })
                        .unwrap();
                    if cell.is_empty() {
                        assert!(array.is_null(0));
                    } else if float {
                        let got = array
                            .as_any()
                            .downcast_ref::<Float64Array>()
                            .unwrap()
                            .value(0);
                        let want: f64 = cell
                            .parse()
                            .unwrap_or_else(|_| panic!("std refuses {cell:?}"));
                        assert!(
                            got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                            "{cell:?}: {got} != {want}"
                        );
                    } else {
                        let got = array
                            .as_any()
                            .downcast_ref::<Int64Array>()
                            .unwrap()
                            .value(0);
                        assert_eq!(Some(got), cell.parse::<i64>().ok(), "{cell:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_column_widens_as_cells_come() {
        let mut c = Column::Null(0);
        c.push(b"", 0);
        c.push(b"1", 0);
        assert_eq!(c.column_type(), ColumnType::Int);
        c.push(b"2.5", 0);
        assert_eq!(c.column_type(), ColumnType::Float);
        c.push(b"NaN", 0);
        c.push(b"-inf", 0);
        assert_eq!(c.column_type(), ColumnType::Float);
        c.push(b"x", 0);
        assert_eq!(c.column_type(), ColumnType::Str);
        let array = c.finish(ColumnType::Str).unwrap();
        let text = array.as_any().downcast_ref::<StringArray>().unwrap();
        assert!(text.is_null(0));
        let values: Vec<_> = (1..6).map(|i| text.value(i)).collect();
        assert_eq!(values, ["1", "2.5", "NaN", "-inf", "x"]);
    }

    #[test]
    fn booleans_mixed_with_numbers_are_text() {
        let mut c = Column::Null(0);
        c.push(b"True", 0);
        c.push(b"false", 0);
        assert_eq!(c.column_type(), ColumnType::Bool);
        c.push(b"1", 0);
        assert_eq!(c.column_type(), ColumnType::Str);
        let array = c.finish(ColumnType::Str).unwrap();
        let text = array.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(text.value(0), "true");
        assert_eq!(text.value(2), "1");
    }
}
