//! The C ABI: `include/expman.h`, generated from this module by cbindgen.
//!
//! These files translate types and delegate to the Rust API; they hold no logic of their own
//! (one file per C "class": `experiment.rs` for `expman_experiment`, `table.rs` for
//! `expman_table`, `metrics.rs` for `expman_metrics`). This module has what they share: status
//! codes, the panic boundary, the per-thread last error, the version and the value type.
//!
//! Every `extern "C"` body runs inside `ffi_status!` or `ffi_value!`, which catch panics and
//! record the message of any failure in the calling thread's last error. Pointers from C are
//! checked before use: NULL, misaligned or over-long arrays and invalid UTF-8 are errors, never
//! undefined behaviour. Outputs are written only on success, after every argument was checked.
#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![allow(non_camel_case_types)]

use std::any::Any;
use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::ErrorKind;

// In the header's order (cbindgen follows these declarations): write, then read back.
mod experiment;

mod table;

mod metrics;

mod columns;

mod server;

mod gpu;

mod arrow;

mod catalog;

pub use arrow::*;
pub use catalog::*;
pub use columns::*;
pub use experiment::*;
pub use gpu::*;
pub use metrics::*;
pub use server::*;
pub use table::*;

/// A status code: `EXPMAN_OK` (0) or one of the `EXPMAN_ERR_*` codes. After an error,
/// `expman_last_error()` describes it.
pub type expman_status = i32;

/// Success.
pub const EXPMAN_OK: expman_status = 0;
/// A required pointer argument was NULL.
pub const EXPMAN_ERR_NULL: expman_status = 1;
/// A string argument was not valid UTF-8.
pub const EXPMAN_ERR_UTF8: expman_status = 2;
/// expman panicked (a bug in expman: please report it with the last error's text). An
/// experiment whose call panicked answers EXPMAN_ERR_PANIC from then on; free it.
pub const EXPMAN_ERR_PANIC: expman_status = 3;
/// An argument is out of range: an index, a field id from another table, an unknown kind or
/// mode, a misaligned array.
pub const EXPMAN_ERR_ARGUMENT: expman_status = 4;
/// An operating-system call failed (disk full, permissions, missing file, ...).
pub const EXPMAN_ERR_IO: expman_status = 10;
/// A name (experiment, table, field, run id) is not acceptable.
pub const EXPMAN_ERR_INVALID_NAME: expman_status = 11;
/// A value cannot be stored.
pub const EXPMAN_ERR_INVALID_VALUE: expman_status = 12;
/// A file exists but is not what expman wrote (a foreign or damaged CSV or JSON file).
pub const EXPMAN_ERR_CORRUPT: expman_status = 13;
/// A directory or run that should exist does not.
pub const EXPMAN_ERR_NOT_FOUND: expman_status = 14;
/// The call is not allowed in the current state.
pub const EXPMAN_ERR_INVALID_STATE: expman_status = 15;
/// A configuration file, argument or environment variable is wrong.
pub const EXPMAN_ERR_CONFIG: expman_status = 16;
/// This build lacks the feature the call needs.
pub const EXPMAN_ERR_UNSUPPORTED: expman_status = 17;

/// The stable status code of an error of the Rust API: one per [`ErrorKind`], explicit and
/// never reused (rustls-ffi's `error.rs`). The core error keeps only kinds; the numbers are the
/// C ABI's, so they live here.
pub fn error_status(error: &crate::Error) -> expman_status {
    kind_status(error.kind())
}

/// The status code of an [`ErrorKind`] (see [`error_status`]).
pub fn kind_status(kind: &ErrorKind) -> expman_status {
    match kind {
        ErrorKind::Io { .. } => EXPMAN_ERR_IO,
        ErrorKind::InvalidName { .. } => EXPMAN_ERR_INVALID_NAME,
        ErrorKind::InvalidValue { .. } => EXPMAN_ERR_INVALID_VALUE,
        ErrorKind::Corrupt { .. } => EXPMAN_ERR_CORRUPT,
        ErrorKind::NotFound { .. } => EXPMAN_ERR_NOT_FOUND,
        ErrorKind::InvalidState(_) => EXPMAN_ERR_INVALID_STATE,
        ErrorKind::Config { .. } => EXPMAN_ERR_CONFIG,
        ErrorKind::Unsupported { .. } => EXPMAN_ERR_UNSUPPORTED,
    }
}

/// The version of this ABI. It changes only when a declaration of this header changes
/// incompatibly; compare it with `expman_abi_version()` when loading the library at run time.
pub const EXPMAN_ABI_VERSION: u32 = 1;

/// Longest accepted field name, in bytes of UTF-8 (without the terminating NUL). A longer name
/// given to any function that takes a field name fails with EXPMAN_ERR_INVALID_NAME; error
/// messages quote at most the first 200 characters of any name or value they echo.
pub const EXPMAN_MAX_FIELD_NAME_LEN: usize = 256;
const _: () = assert!(EXPMAN_MAX_FIELD_NAME_LEN == crate::metrics::MAX_FIELD_NAME_LEN);

/// `expman_features()` bit: built with GPU discovery (Cargo feature `gpu`).
pub const EXPMAN_FEATURE_GPU: u32 = 1;
/// `expman_features()` bit: built with the batch scheduler (Cargo feature `scheduler`).
pub const EXPMAN_FEATURE_SCHEDULER: u32 = 2;
/// `expman_features()` bit: built with the status server and web UI (Cargo feature `server`).
pub const EXPMAN_FEATURE_SERVER: u32 = 4;
/// `expman_features()` bit: built with Arrow export (Cargo feature `arrow`).
pub const EXPMAN_FEATURE_ARROW: u32 = 8;

/// `expman_value.kind`: an empty cell.
pub const EXPMAN_VALUE_NULL: i32 = 0;
/// `expman_value.kind`: a boolean in `i` (0 is false, anything else true).
pub const EXPMAN_VALUE_BOOL: i32 = 1;
/// `expman_value.kind`: a 64-bit integer in `i`.
pub const EXPMAN_VALUE_INT: i32 = 2;
/// `expman_value.kind`: a double in `f` (NaN and infinities allowed).
pub const EXPMAN_VALUE_FLOAT: i32 = 3;
/// `expman_value.kind`: UTF-8 text, `s_len` bytes at `s`.
pub const EXPMAN_VALUE_STR: i32 = 4;

/// `expman_metrics_column_type()`: every cell of the column is empty.
pub const EXPMAN_TYPE_NULL: i32 = 0;
/// `expman_metrics_column_type()`: booleans.
pub const EXPMAN_TYPE_BOOL: i32 = 1;
/// `expman_metrics_column_type()`: integers that fit int64_t.
pub const EXPMAN_TYPE_INT: i32 = 2;
/// `expman_metrics_column_type()`: numbers, including NaN and infinities.
pub const EXPMAN_TYPE_FLOAT: i32 = 3;
/// `expman_metrics_column_type()`: text (`timestamp` and `run_id` are text).
pub const EXPMAN_TYPE_STR: i32 = 4;

/// One cell value, passed in (`expman_table_set_values`, `expman_table_save_row_values`) or
/// read back (`expman_metrics_get`).
///
/// `kind` is one of the EXPMAN_VALUE_* constants and says which other field holds the value:
/// BOOL and INT use `i`, FLOAT uses `f`, STR uses `s` and `s_len` (UTF-8, `s_len` bytes; as
/// input it need not be NUL-terminated and may be NULL when `s_len` is 0). Fields the kind does
/// not use are ignored as input and zero as output.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct expman_value {
    /// EXPMAN_VALUE_NULL, _BOOL, _INT, _FLOAT or _STR.
    pub kind: i32,
    /// The value of a BOOL (0 or 1 as output) or INT.
    pub i: i64,
    /// The value of a FLOAT.
    pub f: f64,
    /// The bytes of a STR.
    pub s: *const c_char,
    /// The length of a STR in bytes, without any terminating NUL.
    pub s_len: usize,
}

/// The ABI version this library implements (EXPMAN_ABI_VERSION when it was built). Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn expman_abi_version() -> u32 {
    ffi_value!(0, Ok(EXPMAN_ABI_VERSION))
}

const VERSION_C: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(version) => version,
        Err(_) => panic!("the package version contains a NUL byte"),
    };

/// The library's version, such as "0.1.0": a static string, never freed. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn expman_version() -> *const c_char {
    ffi_value!(c"".as_ptr(), Ok(VERSION_C.as_ptr()))
}

/// The optional features compiled into this library: a bitmask of EXPMAN_FEATURE_*. Every
/// function exists in every build; one whose feature is missing returns EXPMAN_ERR_UNSUPPORTED.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn expman_features() -> u32 {
    ffi_value!(0, {
        let mut features = 0;
        if cfg!(feature = "gpu") {
            features |= EXPMAN_FEATURE_GPU;
        }
        if cfg!(feature = "scheduler") {
            features |= EXPMAN_FEATURE_SCHEDULER;
        }
        if cfg!(feature = "server") {
            features |= EXPMAN_FEATURE_SERVER;
        }
        if cfg!(feature = "arrow") {
            features |= EXPMAN_FEATURE_ARROW;
        }
        Ok(features)
    })
}

/// The message of the last failed expman call on this thread, naming the function and the
/// path, field or value concerned; "" if no call has failed on this thread. Successful calls
/// leave it as it is. The string belongs to expman and stays valid until the second failed
/// expman call after it on this thread, so `printf("%d %s", expman_f(...), expman_last_error())`
/// is safe whichever argument C evaluates first; copy it to keep it longer. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn expman_last_error() -> *const c_char {
    LAST_ERROR
        .try_with(|last| {
            last.borrow()
                .as_ref()
                .map_or(c"".as_ptr(), |message| message.as_ptr())
        })
        .unwrap_or(c"".as_ptr())
}

/// Releases a string that expman handed over to the caller (expman_experiment_status_json()).
/// NULL is a no-op.
///
/// # Safety
/// `s` is NULL or a string from expman that was not freed yet, not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_string_free(s: *mut c_char) {
    ffi_value!((), {
        if !s.is_null() {
            // SAFETY: a pointer from CString::into_raw, given back once, as the caller promises.
            drop(unsafe { CString::from_raw(s) });
        }
        Ok(())
    })
}

thread_local! {
    /// This thread's last error message (libgit2's `git_error_last`, the easiest shape for
    /// ctypes: no out-parameter, no free function).
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
    /// The message before it, kept alive one failure longer: a pointer to it taken before a
    /// call (C leaves the order of a function's arguments open) stays valid through that call.
    static PREVIOUS_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

fn set_last_error(message: String) {
    let message = CString::new(message).unwrap_or_else(|e| {
        // A NUL inside a user's value: cut the message there rather than lose it.
        let end = e.nul_position();
        let mut bytes = e.into_vec();
        bytes.truncate(end);
        CString::new(bytes).unwrap_or_default()
    });
    // During thread teardown the slot may be gone; the status code still tells the caller.
    let _ = LAST_ERROR.try_with(|last| {
        let previous = last.borrow_mut().replace(message);
        let _ = PREVIOUS_ERROR.try_with(|slot| *slot.borrow_mut() = previous);
    });
}

/// Why a call failed: the ABI's own argument errors, or an error of the Rust API.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A required pointer was NULL; names the argument.
    Null(Cow<'static, str>),
    /// Text that is not UTF-8: what it was, and the error.
    Utf8(Cow<'static, str>, std::str::Utf8Error),
    /// An index, id, kind or array that is out of range.
    Argument(String),
    /// The Rust API refused.
    Core(crate::Error),
    /// A panic, caught at the boundary (or found as a poisoned lock).
    Panic(String),
}

/// The result of an ABI function's body.
pub(crate) type FfiResult<T> = Result<T, Failure>;

impl From<crate::Error> for Failure {
    fn from(error: crate::Error) -> Failure {
        Failure::Core(error)
    }
}

impl Failure {
    fn status(&self) -> expman_status {
        match self {
            Failure::Null(_) => EXPMAN_ERR_NULL,
            Failure::Utf8(..) => EXPMAN_ERR_UTF8,
            Failure::Argument(_) => EXPMAN_ERR_ARGUMENT,
            Failure::Core(error) => error_status(error),
            Failure::Panic(_) => EXPMAN_ERR_PANIC,
        }
    }

    /// Renames the argument of a NULL or UTF-8 failure (`tags` -> `tags[3]`).
    pub(crate) fn argument(self, name: impl FnOnce() -> String) -> Failure {
        match self {
            Failure::Null(_) => Failure::Null(name().into()),
            Failure::Utf8(_, error) => Failure::Utf8(name().into(), error),
            other => other,
        }
    }

    fn from_panic(payload: Box<dyn Any + Send>) -> Failure {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_string());
        Failure::Panic(message)
    }

    /// Stores the message as this thread's last error and returns the status code.
    fn record(self, function: &str) -> expman_status {
        let status = self.status();
        let message = match self {
            Failure::Null(what) => {
                format!("{function}: argument `{what}` is NULL; pass a valid pointer")
            }
            Failure::Utf8(what, error) => {
                format!("{function}: {what} is not valid UTF-8 ({error}); pass UTF-8 text")
            }
            Failure::Argument(message) => format!("{function}: {message}"),
            Failure::Core(error) => format!("{function}: {error}"),
            Failure::Panic(message) => format!(
                "{function}: expman panicked ({message}); this is a bug in expman, please \
                 report it with this message"
            ),
        };
        set_last_error(message);
        status
    }
}

/// The name of the ABI function whose body defined the item `H` (see the boundary macros).
fn function_name<H>() -> &'static str {
    let path = std::any::type_name::<H>();
    let path = path.strip_suffix("::here").unwrap_or(path);
    path.rsplit("::").next().unwrap_or(path)
}

/// Runs the body of a status-returning ABI function; see `ffi_status!`.
#[inline(always)]
pub(crate) fn run_status<H: Fn()>(_here: H, body: impl FnOnce() -> FfiResult<()>) -> expman_status {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(Ok(())) => EXPMAN_OK,
        Ok(Err(failure)) => failure.record(function_name::<H>()),
        Err(payload) => Failure::from_panic(payload).record(function_name::<H>()),
    }
}

/// Runs the body of a value-returning ABI function; see `ffi_value!`.
#[inline(always)]
pub(crate) fn run_value<H: Fn(), T>(
    _here: H,
    on_error: T,
    body: impl FnOnce() -> FfiResult<T>,
) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(Ok(value)) => value,
        Ok(Err(failure)) => {
            failure.record(function_name::<H>());
            on_error
        }
        Err(payload) => {
            Failure::from_panic(payload).record(function_name::<H>());
            on_error
        }
    }
}

/// The boundary of every ABI function that returns an `expman_status`: runs the body (which
/// returns `FfiResult<()>`) under `catch_unwind`; a failure or a panic becomes its status code
/// and this thread's last error, prefixed with the function's name.
macro_rules! ffi_status {
    ($($body:tt)*) => {{
        // An item named after nothing but its place: its type name is the function's path.
        fn here() {}
        $crate::ffi::run_status(here, move || -> $crate::ffi::FfiResult<()> { $($body)* })
    }};
}
pub(crate) use ffi_status;

/// The boundary of every other ABI function: like `ffi_status!`, but the body returns
/// `FfiResult<T>` and a failure or panic returns `$on_error` (NULL, 0, -1, ...) after recording
/// the last error.
macro_rules! ffi_value {
    ($on_error:expr, $($body:tt)*) => {{
        fn here() {}
        $crate::ffi::run_value(here, $on_error, move || { $($body)* })
    }};
}
pub(crate) use ffi_value;

/// Borrows a NUL-terminated UTF-8 string from C.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn c_str<'a>(ptr: *const c_char, what: &'static str) -> FfiResult<&'a str> {
    if ptr.is_null() {
        return Err(Failure::Null(what.into()));
    }
    // SAFETY: non-NULL, and the caller promises a NUL-terminated string.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    std::str::from_utf8(bytes).map_err(|e| Failure::Utf8(format!("argument `{what}`").into(), e))
}

/// Like [`c_str`], but NULL is `None` (an optional argument).
///
/// # Safety
/// As for [`c_str`].
pub(crate) unsafe fn c_opt_str<'a>(
    ptr: *const c_char,
    what: &'static str,
) -> FfiResult<Option<&'a str>> {
    if ptr.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded from the caller.
        unsafe { c_str(ptr, what) }.map(Some)
    }
}

/// Borrows a path from C: a NUL-terminated byte string, as Unix paths are (not necessarily
/// UTF-8).
///
/// # Safety
/// As for [`c_str`].
pub(crate) unsafe fn c_path<'a>(ptr: *const c_char, what: &'static str) -> FfiResult<&'a Path> {
    if ptr.is_null() {
        return Err(Failure::Null(what.into()));
    }
    // SAFETY: non-NULL, and the caller promises a NUL-terminated string.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    Ok(Path::new(std::ffi::OsStr::from_bytes(bytes)))
}

/// Checks an array argument of `n` elements that is not empty: not NULL, aligned, not too
/// long for a slice.
fn check_array<T>(ptr: *const T, n: usize, what: &'static str) -> FfiResult<()> {
    if ptr.is_null() {
        return Err(Failure::Null(what.into()));
    }
    if !ptr.is_aligned() {
        return Err(Failure::Argument(format!(
            "array `{what}` at {ptr:p} is not aligned for its element type"
        )));
    }
    if n > isize::MAX as usize / size_of::<T>().max(1) {
        return Err(Failure::Argument(format!(
            "array `{what}` cannot have {n} elements"
        )));
    }
    Ok(())
}

/// Borrows an array of `n` elements from C; NULL is allowed when `n` is 0.
///
/// # Safety
/// `ptr` is NULL or points to `n` initialised elements that outlive `'a`.
pub(crate) unsafe fn c_slice<'a, T>(
    ptr: *const T,
    n: usize,
    what: &'static str,
) -> FfiResult<&'a [T]> {
    if n == 0 {
        return Ok(&[]);
    }
    check_array(ptr, n, what)?;
    // SAFETY: non-NULL, aligned, not too long, and the caller promises `n` elements.
    Ok(unsafe { std::slice::from_raw_parts(ptr, n) })
}

/// Borrows a writable array of `n` elements from C; NULL is allowed when `n` is 0.
///
/// # Safety
/// `ptr` is NULL or points to `n` writable elements, not otherwise borrowed, that outlive `'a`.
pub(crate) unsafe fn c_slice_mut<'a, T>(
    ptr: *mut T,
    n: usize,
    what: &'static str,
) -> FfiResult<&'a mut [T]> {
    if n == 0 {
        return Ok(&mut []);
    }
    check_array(ptr.cast_const(), n, what)?;
    // SAFETY: non-NULL, aligned, not too long, and the caller promises `n` writable elements
    // that nothing else borrows.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, n) })
}

/// Checks an out-parameter before any work is done, so a NULL one fails without side effects.
pub(crate) fn c_out<T>(ptr: *mut T, what: &'static str) -> FfiResult<Out<T>> {
    if ptr.is_null() {
        Err(Failure::Null(what.into()))
    } else if !ptr.is_aligned() {
        Err(Failure::Argument(format!(
            "out-parameter `{what}` at {ptr:p} is not aligned for its type"
        )))
    } else {
        Ok(Out(ptr))
    }
}

/// A checked out-parameter; written once, at the end of a successful call.
pub(crate) struct Out<T>(*mut T);

impl<T> Out<T> {
    /// Writes the result.
    ///
    /// # Safety
    /// The pointer given to [`c_out`] points to writable memory for a `T`.
    pub(crate) unsafe fn write(self, value: T) {
        // SAFETY: non-NULL and aligned (checked by c_out); writable by the caller's promise.
        // `write` does not drop whatever was there, which C may have left uninitialised.
        unsafe { self.0.write(value) }
    }
}

/// Checks a column index the caller passed against a table of `columns` columns.
pub(crate) fn check_column(col: usize, columns: usize) -> FfiResult<()> {
    if col < columns {
        return Ok(());
    }
    Err(Failure::Argument(format!(
        "column {col} is out of range: the table has {columns} columns (0 to {})",
        columns.saturating_sub(1)
    )))
}

/// A C string from text expman produced (a path, a name, a cell), cut at a NUL byte should one
/// ever be there, so it never fails.
pub(crate) fn to_c_string(bytes: &[u8]) -> CString {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    CString::new(&bytes[..end]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> String {
        // SAFETY: never NULL, NUL-terminated, valid until the next call on this thread.
        unsafe { CStr::from_ptr(expman_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_becomes_a_status_and_the_last_error() {
        fn panics() -> expman_status {
            ffi_status! { panic!("boom {}", 42) }
        }
        fn panics_with_value() -> i32 {
            ffi_value!(-1, panic!("bang"))
        }
        assert_eq!(panics(), EXPMAN_ERR_PANIC);
        let message = last_error();
        assert!(
            message.starts_with("panics: expman panicked (boom 42)"),
            "{message}"
        );
        assert_eq!(panics_with_value(), -1);
        assert!(last_error().starts_with("panics_with_value: expman panicked (bang)"));
    }

    #[test]
    fn failures_name_the_function_and_are_cut_at_a_nul() {
        fn fails() -> expman_status {
            ffi_status! { Err(Failure::Argument("value \"a\0b\" refused".to_string())) }
        }
        assert_eq!(fails(), EXPMAN_ERR_ARGUMENT);
        assert_eq!(last_error(), "fails: value \"a");
    }
}
