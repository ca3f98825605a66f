//! `expman_arrow_*`: metrics tables as Arrow record batches through the Arrow C stream
//! interface (`struct ArrowArrayStream`, <https://arrow.apache.org/docs/format/CStreamInterface.html>),
//! which pyarrow (`pa.RecordBatchReader._import_from_c`), Arrow C++ (`arrow::ImportRecordBatchReader`),
//! polars and DuckDB import without copying the values.
//!
//! The stream is declared `void *` in this header so that it never clashes with the
//! definition in `arrow/c/abi.h` (which a C++ program may include too); it must point to a
//! `struct ArrowArrayStream` as the Arrow specification lays it out. Answers
//! EXPMAN_ERR_UNSUPPORTED in a build without the `arrow` feature (the symbols exist in every
//! build).

use std::ffi::{c_char, c_void};

use super::{c_opt_str, c_path, expman_status, ffi_status};

/// Reads the metrics table at `csv_path` (a run's `metrics/run_0001.csv` or a named table) and
/// exports it into `*out`, a `struct ArrowArrayStream` of record batches with inferred column
/// types: int64, double (NaN and infinities included), bool, utf8 (`timestamp`, `run_id` and
/// text), and null for columns whose every cell is empty; empty cells are nulls. A large table
/// comes as several batches (parsed in parallel). Safe while others write the file: a last
/// line still being written is left out.
///
/// The whole table is read before this returns, so errors come from here (with
/// expman_last_error()), never from the stream. The caller owns the stream: import it (pyarrow,
/// Arrow C++ move it and release it when done) or call its `release` callback. `*out` is
/// written only on success. Thread-safe; the stream may be consumed on any one thread.
///
/// # Safety
/// `csv_path` is NULL or a NUL-terminated path; `out` is NULL or points to writable memory for
/// a `struct ArrowArrayStream`, whose previous contents are overwritten without being released.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_arrow_read_table(
    csv_path: *const c_char,
    out: *mut c_void,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        let path = unsafe { c_path(csv_path, "csv_path") }?;
        imp::export(out, || crate_read_table(path))
    }
}

/// Reads every run table of the experiments under `dir` (or of the one experiment `dir` if it
/// is an experiment directory) as one long table and exports it into `*out`, a
/// `struct ArrowArrayStream`. Columns: `experiment` (directory name), `name`, `status` (the
/// run's: Pending, Running, Finished or Error) and `tags` (joined with ","), all
/// dictionary-encoded utf8, then the union of the tables' columns (`timestamp`, `run_id`,
/// fields), typed as by expman_arrow_read_table(), with nulls where a table lacks a column.
///
/// Filters, each NULL for "all": `name_glob` matches the experiment's name or directory name
/// (`*` any text, `?` one character); `status` keeps the runs in that state (any case); `tag`
/// keeps the experiments with that tag. Ownership, errors and thread-safety as for
/// expman_arrow_read_table(). A run table that cannot be read (a damaged row, text that is
/// not UTF-8, an unreadable file) is left out rather than failing the call: the stream's
/// schema metadata then lists them under the key `expman:skipped`, a JSON list of messages
/// that each name the file and why.
///
/// # Safety
/// `dir` is NULL or a NUL-terminated path; `name_glob`, `status` and `tag` are NULL or
/// NUL-terminated strings; `out` as for expman_arrow_read_table().
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_arrow_read_dir(
    dir: *const c_char,
    name_glob: *const c_char,
    status: *const c_char,
    tag: *const c_char,
    out: *mut c_void,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        let dir = unsafe { c_path(dir, "dir") }?;
        // SAFETY: the caller's promise above.
        let name_glob = unsafe { c_opt_str(name_glob, "name_glob") }?;
        // SAFETY: the caller's promise above.
        let status = unsafe { c_opt_str(status, "status") }?;
        // SAFETY: the caller's promise above.
        let tag = unsafe { c_opt_str(tag, "tag") }?;
        imp::export(out, || crate_read_dir(dir, name_glob, status, tag))
    }
}

#[cfg(feature = "arrow")]
fn crate_read_table(path: &std::path::Path) -> crate::Result<crate::arrow::Table> {
    crate::arrow::read_table_chunks(path, 0)
}

#[cfg(feature = "arrow")]
fn crate_read_dir(
    dir: &std::path::Path,
    name_glob: Option<&str>,
    status: Option<&str>,
    tag: Option<&str>,
) -> crate::Result<crate::arrow::Table> {
    let mut selection = crate::arrow::Selection::new();
    if let Some(glob) = name_glob {
        selection = selection.name(glob);
    }
    if let Some(status) = status {
        selection = selection.status(crate::arrow::parse_status(status)?);
    }
    if let Some(tag) = tag {
        selection = selection.tag(tag);
    }
    crate::arrow::read_dir(dir, &selection)
}

#[cfg(feature = "arrow")]
mod imp {
    use std::ffi::c_void;

    use arrow_array::ffi_stream::FFI_ArrowArrayStream;

    use super::super::{FfiResult, c_out};

    /// Checks `out`, runs `read`, and moves its table into `*out` as a C stream.
    pub(super) fn export(
        out: *mut c_void,
        read: impl FnOnce() -> crate::Result<crate::arrow::Table>,
    ) -> FfiResult<()> {
        let out = c_out(out.cast::<FFI_ArrowArrayStream>(), "out")?;
        let table = read()?;
        let stream = FFI_ArrowArrayStream::new(Box::new(table.into_reader()));
        // SAFETY: checked by c_out; writable for a stream by the caller's promise. `write`
        // leaves whatever was there unreleased, as documented.
        unsafe { out.write(stream) };
        Ok(())
    }
}

#[cfg(not(feature = "arrow"))]
fn crate_read_table(_path: &std::path::Path) -> crate::Result<()> {
    Err(crate::Error::unsupported("arrow"))
}

#[cfg(not(feature = "arrow"))]
fn crate_read_dir(
    _dir: &std::path::Path,
    _name_glob: Option<&str>,
    _status: Option<&str>,
    _tag: Option<&str>,
) -> crate::Result<()> {
    Err(crate::Error::unsupported("arrow"))
}

#[cfg(not(feature = "arrow"))]
mod imp {
    use std::ffi::c_void;

    use super::super::{FfiResult, c_out};

    /// Without the feature: checks `out` like the real one, then answers "unsupported".
    pub(super) fn export(
        out: *mut c_void,
        read: impl FnOnce() -> crate::Result<()>,
    ) -> FfiResult<()> {
        c_out(out, "out")?;
        read()?;
        Ok(())
    }
}
