//! A column being built from CSV cells: it starts untyped and narrows or widens as cells come,
//! following the rules of [`crate::metrics::reader::infer`] (the same types `read_table` gives).
//! Values and validity are laid out as Arrow lays them out (bits least significant first), so
//! the `arrow` feature wraps them without a copy.

use crate::{ColumnType, Value};

/// Bits appended one at a time, packed eight to a byte, least significant bit first.
#[derive(Debug, Default)]
pub(crate) struct Bits {
    bytes: Vec<u8>,
    len: usize,
}

impl Bits {
    pub(crate) fn with_capacity(bits: usize) -> Bits {
        Bits {
            bytes: Vec::with_capacity(bits.div_ceil(8)),
            len: 0,
        }
    }

    #[inline]
    pub(crate) fn append(&mut self, bit: bool) {
        if self.len.is_multiple_of(8) {
            self.bytes.push(0);
        }
        if bit && let Some(last) = self.bytes.last_mut() {
            *last |= 1 << (self.len % 8);
        }
        self.len += 1;
    }

    pub(crate) fn append_n(&mut self, mut n: usize, bit: bool) {
        while n > 0 && !self.len.is_multiple_of(8) {
            self.append(bit);
            n -= 1;
        }
        let whole = n / 8;
        self.bytes
            .resize(self.bytes.len() + whole, if bit { 0xff } else { 0 });
        self.len += whole * 8;
        for _ in 0..n % 8 {
            self.append(bit);
        }
    }

    /// Bit `i`.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> bool {
        self.bytes[i / 8] & (1 << (i % 8)) != 0
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The bytes (the last one's unused bits are 0) and the number of bits.
    #[cfg(any(test, feature = "arrow"))]
    pub(crate) fn into_parts(self) -> (Vec<u8>, usize) {
        (self.bytes, self.len)
    }
}

/// Which cells have a value: only a count until the first empty cell, since most columns
/// never have one.
#[derive(Debug)]
pub(crate) struct Validity {
    len: usize,
    capacity: usize,
    bits: Option<Bits>,
}

impl Validity {
    pub(crate) fn new(capacity: usize) -> Validity {
        Validity {
            len: 0,
            capacity,
            bits: None,
        }
    }

    /// The bits, made now: every cell so far has a value.
    fn bits(&mut self) -> &mut Bits {
        let (len, capacity) = (self.len, self.capacity);
        self.bits.get_or_insert_with(|| {
            let mut bits = Bits::with_capacity(capacity.max(len + 1));
            bits.append_n(len, true);
            bits
        })
    }

    #[inline]
    pub(crate) fn append_valid(&mut self) {
        match &mut self.bits {
            Some(bits) => bits.append(true),
            None => self.len += 1,
        }
    }

    #[inline]
    pub(crate) fn append_null(&mut self) {
        self.bits().append(false);
    }

    pub(crate) fn append_n_nulls(&mut self, n: usize) {
        if n > 0 {
            self.bits().append_n(n, false);
        }
    }

    /// Whether a cell is empty.
    pub(crate) fn has_nulls(&self) -> bool {
        self.bits.is_some()
    }

    /// Whether cell `i` has a value.
    pub(crate) fn is_valid(&self, i: usize) -> bool {
        self.bits.as_ref().is_none_or(|bits| bits.get(i))
    }

    /// The bits, `None` when every cell has a value.
    #[cfg(any(test, feature = "arrow"))]
    pub(crate) fn finish(self) -> Option<Bits> {
        self.bits
    }
}

/// Writes the text of a column's value at an index.
type Formatter = Box<dyn Fn(usize, &mut Vec<u8>)>;

/// One column of a chunk of rows, typed by the cells seen so far.
pub(crate) enum Column {
    /// Only empty cells so far: how many.
    Null(usize),
    /// Integers (empty cells hold 0).
    Int(Vec<i64>, Validity),
    /// Numbers, NaN and infinities included; once an integer literal is among them, which
    /// values were integer literals (so that, should the column become text, they read as
    /// written: `1`, not `1.0`, whatever else the chunk held).
    Float(Vec<f64>, Validity, Option<Bits>),
    /// `true`/`false` in any case.
    Bool(Bits, Validity),
    /// Text: offsets and bytes as Arrow's. Never narrows again.
    Str(Vec<i32>, Vec<u8>, Validity),
}

impl Column {
    /// An empty text column (`timestamp` and `run_id` are always text, as in `read_table`)
    /// for about `rows` cells of about `bytes` bytes in all.
    pub(crate) fn text(rows: usize, bytes: usize) -> Column {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Column::Str(offsets, Vec::with_capacity(bytes), Validity::new(rows))
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
                nulls.append_valid();
            }
            Column::Float(v, nulls, ints) => match parse_f64(cell) {
                Some(f) => {
                    note_literal(ints, v.len(), parse_i64(cell).is_some());
                    v.push(f);
                    nulls.append_valid();
                }
                None => return self.widen_to_text(cell),
            },
            Column::Int(v, nulls) => match parse_i64(cell) {
                Some(i) => {
                    v.push(i);
                    nulls.append_valid();
                }
                None => match parse_f64(cell) {
                    Some(f) => {
                        let mut floats = Vec::with_capacity(v.capacity());
                        floats.extend(v.iter().map(|&i| i as f64));
                        floats.push(f);
                        let mut ints = Bits::with_capacity(v.capacity());
                        ints.append_n(v.len(), true);
                        ints.append(false);
                        let mut nulls = std::mem::replace(nulls, Validity::new(0));
                        nulls.append_valid();
                        *self = Column::Float(floats, nulls, Some(ints));
                    }
                    None => return self.widen_to_text(cell),
                },
            },
            Column::Bool(v, nulls) => match parse_bool(cell) {
                Some(b) => {
                    v.append(b);
                    nulls.append_valid();
                }
                None => return self.widen_to_text(cell),
            },
            Column::Null(n) => {
                let n = *n;
                let capacity = rows.max(n + 1);
                let mut nulls = Validity::new(capacity);
                nulls.append_n_nulls(n);
                nulls.append_valid();
                *self = if let Some(i) = parse_i64(cell) {
                    let mut v = Vec::with_capacity(capacity);
                    v.resize(n, 0);
                    v.push(i);
                    Column::Int(v, nulls)
                } else if let Some(b) = parse_bool(cell) {
                    let mut v = Bits::with_capacity(capacity);
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
                nulls.append_valid();
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
                nulls.append_valid();
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
        let (nulls, format): (Validity, Formatter) = match self {
            Column::Str(..) => return self,
            Column::Null(n) => {
                let mut nulls = Validity::new(n);
                nulls.append_n_nulls(n);
                (nulls, Box::new(|_, _| {}))
            }
            Column::Int(v, nulls) => (
                nulls,
                Box::new(move |i, out| Value::Int(v[i]).write_csv(out)),
            ),
            Column::Float(v, nulls, ints) => (
                nulls,
                Box::new(move |i, out| {
                    if ints.as_ref().is_some_and(|ints| ints.get(i)) {
                        // Exact below 2^53; an integer beyond that mixed with floats in one
                        // chunk was rounded when the column became Float.
                        Value::Int(v[i] as i64).write_csv(out)
                    } else {
                        Value::Float(v[i]).write_csv(out)
                    }
                }),
            ),
            Column::Bool(v, nulls) => (
                nulls,
                Box::new(move |i, out| Value::Bool(v.get(i)).write_csv(out)),
            ),
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
        Column::Str(offsets, data, nulls)
    }

    /// The column as type `ty`, which must be `unify(self's type, ty)`: integers become floats,
    /// anything becomes text as expman writes it. An empty column stays [`Column::Null`]: its
    /// cells are empty whatever the type.
    pub(crate) fn cast(self, ty: ColumnType) -> Column {
        match (self.column_type(), ty) {
            (a, b) if a == b => self,
            (ColumnType::Null, _) => self,
            (ColumnType::Int, ColumnType::Float) => match self {
                Column::Int(v, nulls) => {
                    Column::Float(v.iter().map(|&i| i as f64).collect(), nulls, None)
                }
                _ => unreachable!("matched on the type"),
            },
            (_, ColumnType::Str) => self.into_text(),
            (a, b) => unreachable!("a {a:?} column cannot become {b:?}"),
        }
    }
}

/// Records whether the value about to be appended at `index` of a Float column was an integer
/// literal; the flags exist only once one was.
#[inline]
fn note_literal(ints: &mut Option<Bits>, index: usize, integer: bool) {
    match ints {
        Some(ints) => ints.append(integer),
        None if integer => {
            let mut flags = Bits::with_capacity(index + 1024);
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

    /// Cell `i` of a text column, `None` where empty.
    fn text_at(column: &Column, i: usize) -> Option<&str> {
        match column {
            Column::Str(offsets, data, nulls) => nulls.is_valid(i).then(|| {
                std::str::from_utf8(&data[offsets[i] as usize..offsets[i + 1] as usize]).unwrap()
            }),
            _ => panic!("not text"),
        }
    }

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
                Column::Float(Vec::new(), Validity::new(0), None),
                Column::Int(Vec::new(), Validity::new(0)),
            ] {
                let float = matches!(column, Column::Float(..));
                let mut fast = column;
                let line = format!("{cell},next");
                let taken = fast.push_number(line.as_bytes());
                if let Some(n) = taken {
                    assert_eq!(n, cell.len(), "{cell:?}");
                    match &fast {
                        Column::Float(v, nulls, _) if float => {
                            if cell.is_empty() {
                                assert!(!nulls.is_valid(0));
                            } else {
                                let got = v[0];
                                let want: f64 = cell
                                    .parse()
                                    .unwrap_or_else(|_| panic!("std refuses {cell:?}"));
                                assert!(
                                    got.to_bits() == want.to_bits()
                                        || (got.is_nan() && want.is_nan()),
                                    "{cell:?}: {got} != {want}"
                                );
                            }
                        }
                        Column::Int(v, nulls) if !float => {
                            if cell.is_empty() {
                                assert!(!nulls.is_valid(0));
                            } else {
                                assert_eq!(Some(v[0]), cell.parse::<i64>().ok(), "{cell:?}");
                            }
                        }
                        _ => panic!("{cell:?} changed the column's type"),
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
        assert_eq!(text_at(&c, 0), None);
        let values: Vec<_> = (1..6).map(|i| text_at(&c, i).unwrap()).collect();
        assert_eq!(values, ["1", "2.5", "NaN", "-inf", "x"]);
    }

    #[test]
    fn bits_pack_as_arrow_packs_them() {
        let mut bits = Bits::with_capacity(0);
        bits.append(true);
        bits.append_n(10, false);
        bits.append_n(13, true);
        bits.append(false);
        let got: Vec<bool> = (0..bits.len()).map(|i| bits.get(i)).collect();
        let mut want = vec![true];
        want.extend([false; 10]);
        want.extend([true; 13]);
        want.push(false);
        assert_eq!(got, want);
        assert_eq!(
            bits.into_parts(),
            (vec![0b0000_0001, 0b1111_1000, 0xff, 0], 25)
        );

        let mut nulls = Validity::new(4);
        nulls.append_valid();
        nulls.append_valid();
        assert!(nulls.is_valid(1));
        nulls.append_null();
        nulls.append_n_nulls(2);
        nulls.append_valid();
        let (bytes, len) = nulls.finish().unwrap().into_parts();
        assert_eq!((bytes, len), (vec![0b0010_0011], 6));
        assert!(Validity::new(3).finish().is_none());
    }

    #[test]
    fn booleans_mixed_with_numbers_are_text() {
        let mut c = Column::Null(0);
        c.push(b"True", 0);
        c.push(b"false", 0);
        assert_eq!(c.column_type(), ColumnType::Bool);
        c.push(b"1", 0);
        assert_eq!(c.column_type(), ColumnType::Str);
        assert_eq!(text_at(&c, 0), Some("true"));
        assert_eq!(text_at(&c, 2), Some("1"));
    }
}
