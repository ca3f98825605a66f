//! `expman_metrics`: a table read back ([`Metrics`]), with C strings for its column names.

use std::ffi::{CString, c_char};
use std::ptr;

use super::{
    EXPMAN_TYPE_BOOL, EXPMAN_TYPE_FLOAT, EXPMAN_TYPE_INT, EXPMAN_TYPE_NULL, EXPMAN_TYPE_STR,
    EXPMAN_VALUE_BOOL, EXPMAN_VALUE_FLOAT, EXPMAN_VALUE_INT, EXPMAN_VALUE_NULL, EXPMAN_VALUE_STR,
    Failure, FfiResult, c_out, c_path, c_slice_mut, check_column, expman_status, expman_value,
    ffi_status, ffi_value, to_c_string,
};
use crate::{ColumnType, Metrics, Value, read_table};

/// A metrics table read back: named, typed columns (`timestamp` and `run_id` first) and rows.
///
/// Created by expman_metrics_read() or expman_experiment_load_metrics(); owned by the caller,
/// released with expman_metrics_free(). Immutable: any number of threads may read one at once.
pub struct expman_metrics {
    /// Every text cell carries a trailing NUL (not counted in `s_len`), so C may use it as a
    /// C string.
    metrics: Metrics,
    columns: Vec<CString>,
}

impl expman_metrics {
    /// Boxes `metrics` and returns the pointer C will own.
    pub(crate) fn into_raw(mut metrics: Metrics) -> *mut expman_metrics {
        for cell in metrics.rows.iter_mut().flatten() {
            if let Value::Str(text) = cell {
                text.push('\0');
            }
        }
        let columns = metrics
            .columns
            .iter()
            .map(|name| to_c_string(name.as_bytes()))
            .collect();
        Box::into_raw(Box::new(expman_metrics { metrics, columns }))
    }

    fn column(&self, col: usize) -> FfiResult<()> {
        check_column(col, self.columns.len())
    }
}

/// Borrows the metrics behind a C pointer.
///
/// # Safety
/// `m` is NULL or a live pointer from expman_metrics_read or expman_experiment_load_metrics.
unsafe fn metrics<'a>(m: *const expman_metrics) -> FfiResult<&'a expman_metrics> {
    // SAFETY: forwarded from the caller.
    unsafe { m.as_ref() }.ok_or(Failure::Null("m".into()))
}

/// Reads the metrics table at `csv_path` (a path as bytes) and stores it in `*out`. Safe while
/// others write the file: a last line still being written is skipped. The caller owns `*out`
/// and releases it with expman_metrics_free(); `*out` is written only on success. Thread-safe.
///
/// # Safety
/// `csv_path` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_metrics_read(
    csv_path: *const c_char,
    out: *mut *mut expman_metrics,
) -> expman_status {
    ffi_status! {
        let out = c_out(out, "out")?;
        // SAFETY: the caller's promise above.
        let path = unsafe { c_path(csv_path, "csv_path") }?;
        let metrics = read_table(path)?;
        // SAFETY: checked by c_out; writable by the caller's promise.
        unsafe { out.write(expman_metrics::into_raw(metrics)) };
        Ok(())
    }
}

/// Releases metrics read back, and every string borrowed from them. NULL is a no-op.
///
/// # Safety
/// `m` is NULL or a live pointer from expman_metrics_read or expman_experiment_load_metrics,
/// not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_metrics_free(m: *mut expman_metrics) {
    ffi_value!((), {
        if !m.is_null() {
            // SAFETY: C gives the pointer back, once, as the caller promises.
            drop(unsafe { Box::from_raw(m) });
        }
        Ok(())
    })
}

/// The number of columns, `timestamp` and `run_id` included; 0 if `m` is NULL.
///
/// # Safety
/// `m` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_metrics_n_columns(m: *const expman_metrics) -> usize {
    // SAFETY: the caller's promise above.
    ffi_value!(0, Ok(unsafe { metrics(m) }?.columns.len()))
}

/// The number of rows; 0 if `m` is NULL.
///
/// # Safety
/// `m` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_metrics_n_rows(m: *const expman_metrics) -> usize {
    // SAFETY: the caller's promise above.
    ffi_value!(0, Ok(unsafe { metrics(m) }?.metrics.rows.len()))
}

/// The name of column `col`. Borrowed: valid until expman_metrics_free(). NULL if `m` is NULL
/// or `col` is out of range (expman_last_error() says which).
///
/// # Safety
/// `m` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_metrics_column_name(
    m: *const expman_metrics,
    col: usize,
) -> *const c_char {
    ffi_value!(ptr::null(), {
        // SAFETY: the caller's promise above.
        let m = unsafe { metrics(m) }?;
        m.column(col)?;
        Ok(m.columns[col].as_ptr())
    })
}

/// The type inferred for column `col` from all its cells: EXPMAN_TYPE_NULL, _BOOL, _INT,
/// _FLOAT or _STR; -1 if `m` is NULL or `col` is out of range.
///
/// # Safety
/// `m` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_metrics_column_type(m: *const expman_metrics, col: usize) -> i32 {
    ffi_value!(-1, {
        // SAFETY: the caller's promise above.
        let m = unsafe { metrics(m) }?;
        m.column(col)?;
        Ok(match m.metrics.types[col] {
            ColumnType::Null => EXPMAN_TYPE_NULL,
            ColumnType::Bool => EXPMAN_TYPE_BOOL,
            ColumnType::Int => EXPMAN_TYPE_INT,
            ColumnType::Float => EXPMAN_TYPE_FLOAT,
            ColumnType::Str => EXPMAN_TYPE_STR,
        })
    })
}

/// Stores the cell at (`row`, `col`) in `*out`. A text cell's `s` is borrowed from `m` (valid
/// until expman_metrics_free()) and is NUL-terminated; `s_len` is its exact length in bytes
/// (text may itself hold NUL bytes). Cells of columns added after the row was written are
/// EXPMAN_VALUE_NULL. `*out` is written only on success.
///
/// # Safety
/// `m` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_metrics_get(
    m: *const expman_metrics,
    row: usize,
    col: usize,
    out: *mut expman_value,
) -> expman_status {
    ffi_status! {
        let out = c_out(out, "out")?;
        // SAFETY: the caller's promise above.
        let m = unsafe { metrics(m) }?;
        m.column(col)?;
        let rows = &m.metrics.rows;
        let cells = rows.get(row).ok_or_else(|| {
            Failure::Argument(format!(
                "row {row} is out of range: the table has {} rows",
                rows.len()
            ))
        })?;
        let mut value = expman_value {
            kind: EXPMAN_VALUE_NULL,
            i: 0,
            f: 0.0,
            s: ptr::null(),
            s_len: 0,
        };
        match &cells[col] {
            Value::Null => {}
            Value::Bool(b) => {
                value.kind = EXPMAN_VALUE_BOOL;
                value.i = i64::from(*b);
            }
            Value::Int(i) => {
                value.kind = EXPMAN_VALUE_INT;
                value.i = *i;
            }
            Value::Float(f) => {
                value.kind = EXPMAN_VALUE_FLOAT;
                value.f = *f;
            }
            Value::Str(text) => {
                value.kind = EXPMAN_VALUE_STR;
                value.s = text.as_ptr().cast();
                // Without the NUL that into_raw appended.
                value.s_len = text.len() - 1;
            }
        }
        // SAFETY: checked by c_out; writable by the caller's promise.
        unsafe { out.write(value) };
        Ok(())
    }
}

/// Copies column `col` into `out` as doubles: the bulk path to numpy. Integers are converted,
/// booleans become 1.0 and 0.0, empty cells NaN. `n` must equal expman_metrics_n_rows() (`out`
/// may be NULL when it is 0). A text column is an EXPMAN_ERR_ARGUMENT; nothing is written on
/// failure.
///
/// # Safety
/// `m` is NULL or live; `out` is NULL or points to `n` writable doubles.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_metrics_column_f64(
    m: *const expman_metrics,
    col: usize,
    out: *mut f64,
    n: usize,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        let m = unsafe { metrics(m) }?;
        // SAFETY: the caller's promise above.
        let out = unsafe { c_slice_mut(out, n, "out") }?;
        m.column(col)?;
        let rows = &m.metrics.rows;
        if n != rows.len() {
            return Err(Failure::Argument(format!(
                "n is {n} but the table has {} rows; pass expman_metrics_n_rows()",
                rows.len()
            )));
        }
        let number = |cell: &Value| match cell {
            Value::Null => Some(f64::NAN),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            Value::Int(_) | Value::Float(_) => cell.as_f64(),
            Value::Str(_) => None,
        };
        if let Some(k) = rows.iter().position(|cells| number(&cells[col]).is_none()) {
            return Err(Failure::Argument(format!(
                "column {col} ({:?}) holds text (row {k}); read it with expman_metrics_get()",
                m.metrics.columns[col]
            )));
        }
        for (slot, cells) in out.iter_mut().zip(rows) {
            *slot = number(&cells[col]).unwrap_or(f64::NAN);
        }
        Ok(())
    }
}
