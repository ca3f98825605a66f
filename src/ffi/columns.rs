//! `expman_columns`: a table read back as one buffer per column ([`FlatTable`]), for bindings
//! that wrap memory (numpy) instead of asking for one cell at a time. Every build has it.

use std::ffi::{CString, c_char, c_void};
use std::ptr;

use super::{
    EXPMAN_TYPE_BOOL, EXPMAN_TYPE_FLOAT, EXPMAN_TYPE_INT, EXPMAN_TYPE_NULL, EXPMAN_TYPE_STR,
    Failure, FfiResult, c_out, c_path, check_column, expman_status, ffi_status, ffi_value,
    to_c_string,
};
use crate::{ColumnType, FlatColumn, FlatTable};

/// A table read back as columns, each one contiguous buffer: typed as expman_metrics_read()
/// types them, read by the parser behind expman_arrow_read_table() (in parallel for a large
/// file).
///
/// Created by expman_columns_read(); owned by the caller, released with expman_columns_free().
/// Every pointer it hands out is borrowed from it and valid until then. Immutable: any number
/// of threads may read one at once.
pub struct expman_columns {
    table: FlatTable,
    names: Vec<CString>,
}

/// A text column as one buffer (expman_columns_text()). Value `i` is the `offsets[i + 1] -
/// offsets[i] - 1` bytes of UTF-8 at `data + offsets[i]`: every value is followed by one byte,
/// `sep` when `sep` is not -1 (a control character that no value holds, so that the whole
/// buffer can be split on it in one call), else 0.
///
/// When `codes` is NULL there is one value per row (an empty cell is an empty value; see
/// expman_columns_valid()). Otherwise the column is dictionary-encoded, as for text with few
/// distinct values: there are `n_values` distinct values and `codes` holds one int32_t per row,
/// the index of the row's value, or -1 where the cell is empty. All pointers are borrowed from
/// the expman_columns.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct expman_text {
    /// The values, each followed by one separator byte.
    pub data: *const u8,
    /// The length of `data` in bytes, separators included.
    pub data_len: usize,
    /// `n_values + 1` offsets into `data`: where each value starts, then `data_len`.
    pub offsets: *const i64,
    /// The number of values.
    pub n_values: usize,
    /// NULL, or one index into the values per row (-1: empty cell).
    pub codes: *const i32,
    /// The byte after every value (0 to 31), or -1 when every control character occurs in
    /// the text (each value is then followed by a 0 byte that may also occur inside values).
    pub sep: i32,
}

impl expman_columns {
    fn into_raw(table: FlatTable) -> *mut expman_columns {
        let names = table
            .names
            .iter()
            .map(|n| to_c_string(n.as_bytes()))
            .collect();
        Box::into_raw(Box::new(expman_columns { table, names }))
    }

    fn column(&self, col: usize) -> FfiResult<&FlatColumn> {
        check_column(col, self.table.columns.len())?;
        Ok(&self.table.columns[col])
    }
}

/// Borrows the columns behind a C pointer.
///
/// # Safety
/// `c` is NULL or a live pointer from expman_columns_read.
unsafe fn columns<'a>(c: *const expman_columns) -> FfiResult<&'a expman_columns> {
    // SAFETY: forwarded from the caller.
    unsafe { c.as_ref() }.ok_or(Failure::Null("c".into()))
}

/// Reads the metrics table at `csv_path` (a path as bytes) into columns and stores them in
/// `*out`. Safe while others write the file: a last line still being written is left out. The
/// caller owns `*out` and releases it with expman_columns_free(); `*out` is written only on
/// success. Thread-safe.
///
/// # Safety
/// `csv_path` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_columns_read(
    csv_path: *const c_char,
    out: *mut *mut expman_columns,
) -> expman_status {
    ffi_status! {
        let out = c_out(out, "out")?;
        // SAFETY: the caller's promise above.
        let path = unsafe { c_path(csv_path, "csv_path") }?;
        let table = crate::metrics::read_columns(path, 0)?;
        // SAFETY: checked by c_out; writable by the caller's promise.
        unsafe { out.write(expman_columns::into_raw(table)) };
        Ok(())
    }
}

/// Releases columns read back, and every buffer borrowed from them. NULL is a no-op.
///
/// # Safety
/// `c` is NULL or a live pointer from expman_columns_read, not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_columns_free(c: *mut expman_columns) {
    ffi_value!((), {
        if !c.is_null() {
            // SAFETY: C gives the pointer back, once, as the caller promises.
            drop(unsafe { Box::from_raw(c) });
        }
        Ok(())
    })
}

/// The number of columns, `timestamp` and `run_id` included; 0 if `c` is NULL.
///
/// # Safety
/// `c` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_columns_n_columns(c: *const expman_columns) -> usize {
    // SAFETY: the caller's promise above.
    ffi_value!(0, Ok(unsafe { columns(c) }?.names.len()))
}

/// The number of rows; 0 if `c` is NULL.
///
/// # Safety
/// `c` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_columns_n_rows(c: *const expman_columns) -> usize {
    // SAFETY: the caller's promise above.
    ffi_value!(0, Ok(unsafe { columns(c) }?.table.rows))
}

/// The name of column `col`. Borrowed: valid until expman_columns_free(). NULL if `c` is NULL
/// or `col` is out of range (expman_last_error() says which).
///
/// # Safety
/// `c` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_columns_name(
    c: *const expman_columns,
    col: usize,
) -> *const c_char {
    ffi_value!(ptr::null(), {
        // SAFETY: the caller's promise above.
        let c = unsafe { columns(c) }?;
        c.column(col)?;
        Ok(c.names[col].as_ptr())
    })
}

/// The type of column `col`: EXPMAN_TYPE_NULL, _BOOL, _INT, _FLOAT or _STR (the rules of
/// expman_metrics_column_type()); -1 if `c` is NULL or `col` is out of range.
///
/// # Safety
/// `c` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_columns_type(c: *const expman_columns, col: usize) -> i32 {
    ffi_value!(-1, {
        // SAFETY: the caller's promise above.
        let c = unsafe { columns(c) }?;
        Ok(match c.column(col)?.column_type() {
            ColumnType::Null => EXPMAN_TYPE_NULL,
            ColumnType::Bool => EXPMAN_TYPE_BOOL,
            ColumnType::Int => EXPMAN_TYPE_INT,
            ColumnType::Float => EXPMAN_TYPE_FLOAT,
            ColumnType::Str => EXPMAN_TYPE_STR,
        })
    })
}

/// Stores in `*out` the values of column `col`, one per row: `uint8_t` 0 or 1 for a BOOL
/// column, `int64_t` for INT, `double` for FLOAT (NaN where a cell is empty, and where it
/// holds NaN: expman_columns_valid() tells them apart); empty cells of BOOL and INT columns
/// read 0. NULL for a NULL column and for a table without rows. Borrowed: valid until
/// expman_columns_free(). A STR column is an EXPMAN_ERR_ARGUMENT (use expman_columns_text());
/// `*out` is written only on success.
///
/// # Safety
/// `c` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_columns_values(
    c: *const expman_columns,
    col: usize,
    out: *mut *const c_void,
) -> expman_status {
    ffi_status! {
        let out = c_out(out, "out")?;
        // SAFETY: the caller's promise above.
        let c = unsafe { columns(c) }?;
        let values: *const c_void = match c.column(col)? {
            FlatColumn::Null => ptr::null(),
            FlatColumn::Bool { values, .. } => nonempty(values),
            FlatColumn::Int { values, .. } => nonempty(values),
            FlatColumn::Float { values, .. } => nonempty(values),
            FlatColumn::Text(_) => {
                return Err(Failure::Argument(format!(
                    "column {col} ({:?}) holds text; read it with expman_columns_text()",
                    c.table.names[col]
                )));
            }
        };
        // SAFETY: checked by c_out; writable by the caller's promise.
        unsafe { out.write(values) };
        Ok(())
    }
}

/// A buffer's address for C, NULL when it is empty (a dangling pointer is no use to C).
fn nonempty<T>(values: &[T]) -> *const c_void {
    if values.is_empty() {
        ptr::null()
    } else {
        values.as_ptr().cast()
    }
}

/// Stores in `*out` which cells of column `col` hold a value: one `uint8_t` per row, 1 for a
/// value and 0 for an empty cell. NULL when no cell is empty, and for a NULL column (where
/// every cell is). Borrowed: valid until expman_columns_free(). `*out` is written only on
/// success.
///
/// # Safety
/// `c` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_columns_valid(
    c: *const expman_columns,
    col: usize,
    out: *mut *const u8,
) -> expman_status {
    ffi_status! {
        let out = c_out(out, "out")?;
        // SAFETY: the caller's promise above.
        let c = unsafe { columns(c) }?;
        let valid = c.column(col)?.valid().map_or(ptr::null(), <[u8]>::as_ptr);
        // SAFETY: checked by c_out; writable by the caller's promise.
        unsafe { out.write(valid) };
        Ok(())
    }
}

/// Stores in `*out` the text of column `col` (see expman_text). The buffers are borrowed:
/// valid until expman_columns_free(). A column that is not STR is an EXPMAN_ERR_ARGUMENT;
/// `*out` is written only on success.
///
/// # Safety
/// `c` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_columns_text(
    c: *const expman_columns,
    col: usize,
    out: *mut expman_text,
) -> expman_status {
    ffi_status! {
        let out = c_out(out, "out")?;
        // SAFETY: the caller's promise above.
        let c = unsafe { columns(c) }?;
        let FlatColumn::Text(text) = c.column(col)? else {
            return Err(Failure::Argument(format!(
                "column {col} ({:?}) does not hold text; read it with expman_columns_values()",
                c.table.names[col]
            )));
        };
        let value = expman_text {
            data: text.data.as_ptr(),
            data_len: text.data.len(),
            offsets: text.offsets.as_ptr(),
            n_values: text.offsets.len() - 1,
            codes: text.codes.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
            sep: text.sep.map_or(-1, i32::from),
        };
        // SAFETY: checked by c_out; writable by the caller's promise.
        unsafe { out.write(value) };
        Ok(())
    }
}
