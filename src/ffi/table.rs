//! `expman_table`: a [`TableWriter`] of an experiment, reached through the experiment's lock.

use std::ffi::c_char;

use super::experiment::expman_experiment;
use super::{
    EXPMAN_VALUE_BOOL, EXPMAN_VALUE_FLOAT, EXPMAN_VALUE_INT, EXPMAN_VALUE_NULL, EXPMAN_VALUE_STR,
    Failure, FfiResult, c_out, c_slice, c_str, expman_status, expman_value, ffi_status,
};
use crate::{FieldId, TableWriter, Value};

/// One metrics table of an experiment: the run's own (expman_experiment_metrics()) or a named
/// one (expman_experiment_table()).
///
/// Borrowed from its experiment: valid until expman_experiment_free(), never freed by itself.
/// Thread-safe: calls take the experiment's lock. The pending row is shared by every thread
/// using the table, so threads that build rows field by field should each use their own table;
/// expman_table_save_row_f64() and expman_table_save_row_values() set and save a row under one
/// lock and are atomic (they also save any fields set before them).
///
/// Saving a row appends one complete line to the CSV file: any number of threads and processes
/// may write the same table at once without losing or tearing a saved row. A field the file
/// has no column for widens the header (an atomic rewrite of the file).
pub struct expman_table {
    exp: *const expman_experiment,
    /// `None` for the run's own table.
    name: Option<String>,
}

impl expman_table {
    pub(crate) fn new(exp: *const expman_experiment, name: Option<String>) -> expman_table {
        expman_table { exp, name }
    }
}

/// Runs `f` on the table's writer, under the experiment's lock.
///
/// # Safety
/// `table` is NULL or a live table (its experiment not yet freed).
unsafe fn with_writer<R>(
    table: *const expman_table,
    f: impl FnOnce(&mut TableWriter) -> FfiResult<R>,
) -> FfiResult<R> {
    // SAFETY: the caller's promise.
    let table = unsafe { table.as_ref() }.ok_or(Failure::Null("table".into()))?;
    // SAFETY: a live table's `exp` is its live experiment (tables are freed with it).
    let exp = unsafe { &*table.exp };
    let mut state = exp.lock()?;
    let writer = match &table.name {
        None => state.exp.metrics(),
        // One lookup of the table's name; the fields are reached by id.
        Some(name) => state.exp.table(name)?,
    };
    f(writer)
}

/// The body of the by-id calls: checks the `ids` and `values` arrays of `n` elements, then runs
/// `f` on them and the table's writer, under the experiment's lock.
///
/// # Safety
/// `table` is NULL or a live table; `ids` and `values` are NULL or point to `n` elements.
unsafe fn by_id<V>(
    table: *const expman_table,
    ids: *const u32,
    values: *const V,
    n: usize,
    f: impl FnOnce(&mut TableWriter, &[u32], &[V]) -> FfiResult<()>,
) -> FfiResult<()> {
    // SAFETY: forwarded from the caller.
    let ids = unsafe { c_slice(ids, n, "ids") }?;
    // SAFETY: forwarded from the caller.
    let values = unsafe { c_slice(values, n, "values") }?;
    // SAFETY: forwarded from the caller.
    unsafe { with_writer(table, |writer| f(writer, ids, values)) }
}

/// Checks that `id` was registered with `writer` (`TableWriter::set_id` would panic).
fn field(writer: &TableWriter, id: u32) -> FfiResult<FieldId> {
    let field = FieldId(id);
    if writer.field_name(field).is_some() {
        Ok(field)
    } else {
        Err(Failure::Argument(format!(
            "field id {id} is unknown to the table {}: use an id that expman_table_field_id() \
             returned for this same table",
            writer.path().display()
        )))
    }
}

/// Registers the field `name` (once; later calls return the same id) and stores its id in
/// `*out`. An id is valid only with the table that gave it. Thread-safe.
///
/// # Safety
/// `table` is NULL or a live table; `name` is NULL or a NUL-terminated string; `out` is NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_table_field_id(
    table: *mut expman_table,
    name: *const c_char,
    out: *mut u32,
) -> expman_status {
    ffi_status! {
        let out = c_out(out, "out")?;
        // SAFETY: the caller's promise above.
        let name = unsafe { c_str(name, "name") }?;
        // SAFETY: the caller's promise above.
        let id = unsafe { with_writer(table, |writer| Ok(writer.field_id(name)?)) }?;
        // SAFETY: checked by c_out; writable by the caller's promise.
        unsafe { out.write(id.0) };
        Ok(())
    }
}

/// Sets field `name` of the pending row by name (registering the field on first use).
///
/// # Safety
/// `table` is NULL or a live table; `name` is NULL or a NUL-terminated string.
unsafe fn set_named(table: *mut expman_table, name: *const c_char, value: Value) -> FfiResult<()> {
    // SAFETY: forwarded from the caller.
    let name = unsafe { c_str(name, "name") }?;
    // SAFETY: the caller's promise above.
    unsafe { with_writer(table, |writer| Ok(writer.set(name, value)?)) }
}

/// Sets field `name` of the pending row to a double (NaN and infinities allowed). Thread-safe.
///
/// # Safety
/// `table` is NULL or a live table; `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_table_set_f64(
    table: *mut expman_table,
    name: *const c_char,
    v: f64,
) -> expman_status {
    // SAFETY: the caller's promise above.
    ffi_status! { unsafe { set_named(table, name, Value::Float(v)) } }
}

/// Sets field `name` of the pending row to an integer. Thread-safe.
///
/// # Safety
/// `table` is NULL or a live table; `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_table_set_i64(
    table: *mut expman_table,
    name: *const c_char,
    v: i64,
) -> expman_status {
    // SAFETY: the caller's promise above.
    ffi_status! { unsafe { set_named(table, name, Value::Int(v)) } }
}

/// Sets field `name` of the pending row to a boolean. Thread-safe.
///
/// # Safety
/// `table` is NULL or a live table; `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_table_set_bool(
    table: *mut expman_table,
    name: *const c_char,
    v: bool,
) -> expman_status {
    // SAFETY: the caller's promise above.
    ffi_status! { unsafe { set_named(table, name, Value::Bool(v)) } }
}

/// Sets field `name` of the pending row to the UTF-8 text `v` (copied; commas, quotes and
/// newlines are quoted in the file). Thread-safe.
///
/// # Safety
/// `table` is NULL or a live table; `name` and `v` are NULL or NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_table_set_str(
    table: *mut expman_table,
    name: *const c_char,
    v: *const c_char,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        let v = unsafe { c_str(v, "v") }?;
        // SAFETY: the caller's promise above.
        unsafe { set_named(table, name, Value::Str(v.to_string())) }
    }
}

/// Sets field `name` of the pending row to an empty cell. Thread-safe.
///
/// # Safety
/// `table` is NULL or a live table; `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_table_set_null(
    table: *mut expman_table,
    name: *const c_char,
) -> expman_status {
    // SAFETY: the caller's promise above.
    ffi_status! { unsafe { set_named(table, name, Value::Null) } }
}

/// Appends the pending row to the table's file and clears it. When this returns EXPMAN_OK the
/// whole line is in the kernel (on disk too under an fsync policy). An empty pending row
/// writes nothing. On failure the row stays pending: retry, or drop it with
/// expman_table_clear_row(). Thread-safe.
///
/// # Safety
/// `table` is NULL or a live table.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_table_save_row(table: *mut expman_table) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        unsafe { with_writer(table, |writer| Ok(writer.save_row()?)) }
    }
}

/// Drops the pending row without saving it. Thread-safe.
///
/// # Safety
/// `table` is NULL or a live table.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_table_clear_row(table: *mut expman_table) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        unsafe {
            with_writer(table, |writer| {
                writer.clear_row();
                Ok(())
            })
        }
    }
}

/// fsyncs the rows this table has written, whatever the sync policy. Thread-safe.
///
/// # Safety
/// `table` is NULL or a live table.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_table_sync(table: *mut expman_table) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        unsafe { with_writer(table, |writer| Ok(writer.sync()?)) }
    }
}

/// Sets `n` fields by id to doubles and saves the row, in one call: the hot path for bindings.
/// `ids[k]` (from expman_table_field_id() on this table) gets `values[k]`. Every id is checked
/// before anything is set, so an unknown id changes nothing. `ids` and `values` may be NULL
/// when `n` is 0. On a failed save the row stays pending, as with expman_table_save_row().
/// Thread-safe.
///
/// # Safety
/// `table` is NULL or a live table; `ids` and `values` are NULL or point to `n` elements.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_table_save_row_f64(
    table: *mut expman_table,
    ids: *const u32,
    values: *const f64,
    n: usize,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        unsafe {
            by_id(table, ids, values, n, |writer, ids, values| {
                for &id in ids {
                    field(writer, id)?;
                }
                for (&id, &value) in ids.iter().zip(values) {
                    writer.set_id(FieldId(id), Value::Float(value));
                }
                Ok(writer.save_row()?)
            })
        }
    }
}

/// A value from C, checked and borrowed (no allocation).
enum Cell<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

impl Cell<'_> {
    fn into_value(self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Bool(b) => Value::Bool(b),
            Cell::Int(i) => Value::Int(i),
            Cell::Float(f) => Value::Float(f),
            Cell::Str(s) => Value::Str(s.to_string()),
        }
    }
}

/// Checks `value` (the `k`th, for field `id`).
///
/// # Safety
/// A STR value's `s` is NULL or points to `s_len` bytes that outlive `'a`.
unsafe fn cell<'a>(
    writer: &TableWriter,
    k: usize,
    id: FieldId,
    value: &'a expman_value,
) -> FfiResult<Cell<'a>> {
    Ok(match value.kind {
        EXPMAN_VALUE_NULL => Cell::Null,
        EXPMAN_VALUE_BOOL => Cell::Bool(value.i != 0),
        EXPMAN_VALUE_INT => Cell::Int(value.i),
        EXPMAN_VALUE_FLOAT => Cell::Float(value.f),
        EXPMAN_VALUE_STR => {
            let field = writer.field_name(id).unwrap_or_default();
            // SAFETY: forwarded from the caller.
            let bytes = unsafe { c_slice(value.s.cast::<u8>(), value.s_len, "values[].s") }
                .map_err(|f| f.argument(|| format!("values[{k}].s (field {field:?})")))?;
            let text = std::str::from_utf8(bytes).map_err(|e| {
                Failure::Utf8(format!("values[{k}] (text for field {field:?})").into(), e)
            })?;
            Cell::Str(text)
        }
        kind => {
            return Err(Failure::Argument(format!(
                "values[{k}].kind is {kind}; use EXPMAN_VALUE_NULL (0), _BOOL (1), _INT (2), \
                 _FLOAT (3) or _STR (4)"
            )));
        }
    })
}

/// Sets fields by id from typed values: every id and value is checked before any is set.
///
/// # Safety
/// `ids` and `values` have `n` elements; STR values point to `s_len` bytes.
unsafe fn set_values(
    writer: &mut TableWriter,
    ids: &[u32],
    values: &[expman_value],
) -> FfiResult<()> {
    for (k, (&id, value)) in ids.iter().zip(values).enumerate() {
        let id = field(writer, id)?;
        // SAFETY: forwarded from the caller.
        unsafe { cell(writer, k, id, value) }?;
    }
    for (k, (&id, value)) in ids.iter().zip(values).enumerate() {
        // SAFETY: forwarded from the caller; checked above, so this cannot fail.
        let value = unsafe { cell(writer, k, FieldId(id), value) }?.into_value();
        writer.set_id(FieldId(id), value);
    }
    Ok(())
}

/// Sets `n` fields by id to typed values (see expman_value) and saves the row, in one call.
/// Every id, kind and string is checked before anything is set, so an error changes nothing.
/// Strings are copied. `ids` and `values` may be NULL when `n` is 0. On a failed save the row
/// stays pending, as with expman_table_save_row(). Thread-safe.
///
/// # Safety
/// `table` is NULL or a live table; `ids` and `values` are NULL or point to `n` elements; each
/// STR value's `s` is NULL or points to `s_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_table_save_row_values(
    table: *mut expman_table,
    ids: *const u32,
    values: *const expman_value,
    n: usize,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        unsafe {
            by_id(table, ids, values, n, |writer, ids, values| {
                set_values(writer, ids, values)?;
                Ok(writer.save_row()?)
            })
        }
    }
}

/// Sets `n` fields of the pending row by id to typed values, without saving. Checked as in
/// expman_table_save_row_values(): an error changes nothing. Thread-safe.
///
/// # Safety
/// As for expman_table_save_row_values().
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_table_set_values(
    table: *mut expman_table,
    ids: *const u32,
    values: *const expman_value,
    n: usize,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        // Each STR value's bytes, too (set_values reads them).
        unsafe { by_id(table, ids, values, n, |writer, ids, values| set_values(writer, ids, values)) }
    }
}
