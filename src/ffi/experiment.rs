//! `expman_experiment`: an [`Experiment`] behind a mutex, with its names cached as C strings
//! and its table handles boxed at stable addresses.

use std::collections::HashMap;
use std::ffi::{CString, c_char};
use std::os::unix::ffi::OsStrExt;
use std::ptr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::metrics::expman_metrics;
use super::table::expman_table;
use super::{
    Failure, FfiResult, c_opt_str, c_out, c_path, c_slice, c_str, expman_status, ffi_status,
    ffi_value, to_c_string,
};
use crate::params::{self, ParamValue, Params};
use crate::{ErrorKind, Experiment, RunId, RunState, SyncPolicy};

/// An experiment run: the directory, the run this process works on, and its tables.
///
/// Create with expman_experiment_create(), _open() or _attach(); release with
/// expman_experiment_free(). Thread-safe: any number of threads may call functions on one
/// experiment (and on its tables) at once; the calls are serialised by a lock inside.
pub struct expman_experiment {
    state: Mutex<State>,
    run_id: CString,
    dir: CString,
    name: CString,
    /// The run's own table; its address is stable because the experiment is boxed.
    own_table: expman_table,
}

// The header promises the handle may be used from any thread: the Experiment it locks must be
// Send for that to be sound. This fails to compile if the core ever stops being Send.
const _: () = {
    fn experiment_is_send<T: Send>() {}
    let _ = experiment_is_send::<Experiment>;
};

/// What the lock protects.
pub(crate) struct State {
    pub(crate) exp: Experiment,
    /// Named tables' handles, boxed so their addresses survive the map growing.
    tables: HashMap<String, Box<expman_table>>,
}

impl expman_experiment {
    /// Boxes `exp` and returns the pointer C will own.
    fn into_raw(exp: Experiment) -> *mut expman_experiment {
        let handle = Box::new(expman_experiment {
            run_id: to_c_string(exp.run_id().to_string().as_bytes()),
            dir: to_c_string(exp.dir().as_os_str().as_bytes()),
            name: to_c_string(exp.name().as_bytes()),
            own_table: expman_table::new(ptr::null(), None),
            state: Mutex::new(State {
                exp,
                tables: HashMap::new(),
            }),
        });
        let raw = Box::into_raw(handle);
        // SAFETY: `raw` is the live, unique allocation just made; the back pointer is set before
        // C sees either pointer.
        unsafe { (*raw).own_table = expman_table::new(raw, None) };
        raw
    }

    /// Locks the experiment. A lock poisoned by a panic stays an error: the Rust state may be
    /// half-updated, and the caller has been told of the panic once already.
    pub(crate) fn lock(&self) -> FfiResult<MutexGuard<'_, State>> {
        self.state.lock().map_err(|_| {
            Failure::Panic(
                "an earlier call on this experiment panicked and left it unusable; free it \
                 and open the directory again"
                    .to_string(),
            )
        })
    }
}

/// Borrows the experiment behind a C pointer.
///
/// # Safety
/// `exp` is NULL or a live pointer from expman_experiment_create/_open/_attach.
pub(crate) unsafe fn experiment<'a>(
    exp: *const expman_experiment,
) -> FfiResult<&'a expman_experiment> {
    // SAFETY: forwarded from the caller.
    unsafe { exp.as_ref() }.ok_or(Failure::Null("exp".into()))
}

/// Runs `f` on the Rust experiment behind `exp`, under its lock: the body of every call that
/// only delegates.
///
/// # Safety
/// `exp` is NULL or a live pointer from expman_experiment_create/_open/_attach.
unsafe fn with_experiment<T, E: Into<Failure>>(
    exp: *const expman_experiment,
    f: impl FnOnce(&mut Experiment) -> Result<T, E>,
) -> FfiResult<T> {
    // SAFETY: forwarded from the caller.
    let handle = unsafe { experiment(exp) }?;
    f(&mut handle.lock()?.exp).map_err(Into::into)
}

/// [`with_experiment`] for a call that takes a `message` string, checked first.
///
/// # Safety
/// As for [`with_experiment`]; `message` is NULL or a NUL-terminated string.
unsafe fn with_message(
    exp: *const expman_experiment,
    message: *const c_char,
    f: impl FnOnce(&mut Experiment, &str) -> crate::Result<()>,
) -> FfiResult<()> {
    // SAFETY: forwarded from the caller.
    let handle = unsafe { experiment(exp) }?;
    // SAFETY: forwarded from the caller.
    let message = unsafe { c_str(message, "message") }?;
    Ok(f(&mut handle.lock()?.exp, message)?)
}

/// [`with_experiment`] for a call that stores its answer in `*out` (checked first, written
/// only on success).
///
/// # Safety
/// As for [`with_experiment`]; `out` is NULL or writable.
unsafe fn answer<T>(
    exp: *const expman_experiment,
    out: *mut T,
    f: impl FnOnce(&mut Experiment) -> FfiResult<T>,
) -> FfiResult<()> {
    let out = c_out(out, "out")?;
    // SAFETY: forwarded from the caller.
    let handle = unsafe { experiment(exp) }?;
    let value = f(&mut handle.lock()?.exp)?;
    // SAFETY: checked by c_out; writable by the caller's promise.
    unsafe { out.write(value) };
    Ok(())
}

/// Creates an experiment directory `<base_dir>/<name>_<date>__<time>/` and its first run
/// (run_0001), marked Running in this process, and stores the new handle in `*out`.
///
/// `name` and `base_dir` are required. `command` and `description` may be NULL (empty).
/// `tags` is an array of `n_tags` UTF-8 strings and `gpu_ids` one of `n_gpu_ids` ids; either
/// may be NULL when its count is 0. Paths are byte strings and need not be UTF-8. Like the
/// Rust builder, when the environment variables EXPMAN_EXPERIMENT_DIR and EXPMAN_RUN_ID are
/// both set (the scheduler sets them for the jobs it launches), this attaches to that run
/// instead of creating anything; a run that does not exist there is refused with
/// EXPMAN_ERR_NOT_FOUND. A creation that fails part-way (a full disk) removes the directory
/// it made. The parameters in the environment variable EXPMAN_PARAMS are recorded as
/// described at expman_experiment_create_with_params().
///
/// The caller owns `*out` and releases it with expman_experiment_free(); `*out` is written
/// only on success.
///
/// # Safety
/// Every non-NULL pointer points to what its description says.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn expman_experiment_create(
    name: *const c_char,
    command: *const c_char,
    base_dir: *const c_char,
    tags: *const *const c_char,
    n_tags: usize,
    description: *const c_char,
    gpu_ids: *const u32,
    n_gpu_ids: usize,
    out: *mut *mut expman_experiment,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above; no parameters.
        unsafe {
            create(
                name,
                command,
                base_dir,
                (tags, n_tags),
                description,
                (gpu_ids, n_gpu_ids),
                ptr::null(),
                out,
            )
        }
    }
}

/// expman_experiment_create() that also records hyperparameters: `params_json` is a JSON
/// object (UTF-8) of names to numbers, booleans or strings, nested objects flattened with
/// dots (`{"optimizer": {"lr": 0.01}}` records `optimizer.lr`); NULL records none. Integers
/// stay integers and floats floats in config.json's "params".
///
/// Every parameter is checked before anything is written: text that is not a JSON object,
/// a list or null value, a non-finite number or a bad name fails with
/// EXPMAN_ERR_INVALID_VALUE or EXPMAN_ERR_INVALID_NAME naming the parameter, and no
/// directory is created.
///
/// When the environment variable EXPMAN_PARAMS (a JSON object, set by the scheduler for its
/// jobs) is set, its parameters are recorded too, and `params_json` wins for a name in both.
/// When this attaches to the scheduler's run (see expman_experiment_create()), a parameter of
/// EXPMAN_PARAMS is added only where config.json lacks the name, and `params_json` is logged
/// as expman_experiment_log_params_json() does. A bad EXPMAN_PARAMS fails with
/// EXPMAN_ERR_CONFIG naming the variable.
///
/// The caller owns `*out` and releases it with expman_experiment_free(); `*out` is written
/// only on success.
///
/// # Safety
/// Every non-NULL pointer points to what its description says.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn expman_experiment_create_with_params(
    name: *const c_char,
    command: *const c_char,
    base_dir: *const c_char,
    tags: *const *const c_char,
    n_tags: usize,
    description: *const c_char,
    gpu_ids: *const u32,
    n_gpu_ids: usize,
    params_json: *const c_char,
    out: *mut *mut expman_experiment,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        unsafe {
            create(
                name,
                command,
                base_dir,
                (tags, n_tags),
                description,
                (gpu_ids, n_gpu_ids),
                params_json,
                out,
            )
        }
    }
}

/// The body of expman_experiment_create() and _create_with_params().
///
/// # Safety
/// As for expman_experiment_create_with_params().
#[allow(clippy::too_many_arguments)]
unsafe fn create(
    name: *const c_char,
    command: *const c_char,
    base_dir: *const c_char,
    (tags, n_tags): (*const *const c_char, usize),
    description: *const c_char,
    (gpu_ids, n_gpu_ids): (*const u32, usize),
    params_json: *const c_char,
    out: *mut *mut expman_experiment,
) -> FfiResult<()> {
    let out = c_out(out, "out")?;
    // SAFETY: the caller's promise (for every argument).
    let name = unsafe { c_str(name, "name") }?;
    // SAFETY: the caller's promise.
    let command = unsafe { c_opt_str(command, "command") }?;
    // SAFETY: the caller's promise.
    let base_dir = unsafe { c_path(base_dir, "base_dir") }?;
    // SAFETY: the caller's promise.
    let description = unsafe { c_opt_str(description, "description") }?;
    // SAFETY: the caller's promise.
    let tags = unsafe { c_slice(tags, n_tags, "tags") }?
        .iter()
        .enumerate()
        .map(|(i, &tag)| {
            // SAFETY: each element of `tags` is a NUL-terminated string (the caller's promise).
            unsafe { c_str(tag, "tags") }.map_err(|f| f.argument(|| format!("tags[{i}]")))
        })
        .collect::<FfiResult<Vec<&str>>>()?;
    // SAFETY: the caller's promise.
    let gpu_ids = unsafe { c_slice(gpu_ids, n_gpu_ids, "gpu_ids") }?;
    // SAFETY: the caller's promise.
    let params = match unsafe { c_opt_str(params_json, "params_json") }? {
        Some(text) => params_from_json(text, "params_json")?,
        None => Params::new(),
    };
    let exp = Experiment::builder(name, base_dir)
        .command(command.unwrap_or_default())
        .tags(tags)
        .description(description.unwrap_or_default())
        .gpu_ids(gpu_ids.iter().copied())
        .params(params)
        .create()?;
    // SAFETY: `out` was checked by c_out; C promises it is writable.
    unsafe { out.write(expman_experiment::into_raw(exp)) };
    Ok(())
}

/// Parses the JSON text of a `*_json` parameters argument and flattens it
/// ([`params::flatten_json`]); the error names the argument.
fn params_from_json(text: &str, what: &str) -> FfiResult<Params> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        crate::Error::from(ErrorKind::InvalidValue {
            field: what.to_string(),
            reason: format!(
                "not valid JSON ({e}); pass a JSON object of parameters such as {{\"lr\": 0.01}}"
            ),
        })
    })?;
    Ok(params::flatten_json(&json)?)
}

/// Starts the next run (resume, retry) in the existing experiment directory `dir` and stores
/// the new handle in `*out`. Run ids are allocated under a lock: concurrent opens, in any
/// number of processes, get distinct consecutive ids. An open that fails (a full disk) gives
/// its run id back.
///
/// The caller owns `*out` and releases it with expman_experiment_free(); `*out` is written
/// only on success.
///
/// # Safety
/// `dir` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_open(
    dir: *const c_char,
    out: *mut *mut expman_experiment,
) -> expman_status {
    ffi_status! {
        let out = c_out(out, "out")?;
        // SAFETY: the caller's promise above.
        let dir = unsafe { c_path(dir, "dir") }?;
        let exp = Experiment::open(dir)?;
        // SAFETY: checked by c_out; writable by the caller's promise.
        unsafe { out.write(expman_experiment::into_raw(exp)) };
        Ok(())
    }
}

/// Attaches to the existing run `run_id` (such as "run_0003") of the experiment in `dir`, as a
/// job launched by the scheduler does; the run's status stays with whoever created it. A run
/// that was never allocated in `dir` is refused with EXPMAN_ERR_NOT_FOUND (nothing is created).
///
/// The caller owns `*out` and releases it with expman_experiment_free(); `*out` is written
/// only on success.
///
/// # Safety
/// `dir` and `run_id` are NULL or NUL-terminated strings; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_attach(
    dir: *const c_char,
    run_id: *const c_char,
    out: *mut *mut expman_experiment,
) -> expman_status {
    ffi_status! {
        let out = c_out(out, "out")?;
        // SAFETY: the caller's promise above.
        let dir = unsafe { c_path(dir, "dir") }?;
        // SAFETY: the caller's promise above.
        let run: RunId = unsafe { c_str(run_id, "run_id") }?.parse()?;
        let exp = Experiment::attach(dir, run)?;
        // SAFETY: checked by c_out; writable by the caller's promise.
        unsafe { out.write(expman_experiment::into_raw(exp)) };
        Ok(())
    }
}

/// Releases an experiment and every table handle it gave out (those pointers become invalid).
/// Rows already saved are in the files; a pending row that was never saved is dropped. Under an
/// fsync policy, the tables are synced first. Its output capture, if any, stops (see
/// expman_experiment_capture_output()). NULL is a no-op. Must not race with other calls
/// on the same experiment or its tables.
///
/// # Safety
/// `exp` is NULL or a live pointer from expman_experiment_create/_open/_attach, not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_free(exp: *mut expman_experiment) {
    ffi_value!((), {
        if !exp.is_null() {
            // SAFETY: C gives the pointer back, once, as the caller promises.
            let handle = unsafe { Box::from_raw(exp) };
            // Dropping stops the experiment's output capture: C stdio's buffers go first.
            if handle.lock().is_ok_and(|state| state.exp.is_capturing()) {
                flush_c_stdio();
            }
            drop(handle);
        }
        Ok(())
    })
}

/// The run id, such as "run_0001". Borrowed: valid until expman_experiment_free(). NULL if
/// `exp` is NULL. Thread-safe.
///
/// # Safety
/// `exp` is NULL or a live experiment.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_run_id(exp: *const expman_experiment) -> *const c_char {
    ffi_value!(ptr::null(), {
        // SAFETY: the caller's promise above.
        Ok(unsafe { experiment(exp) }?.run_id.as_ptr())
    })
}

/// The experiment directory (a path as bytes). Borrowed: valid until expman_experiment_free().
/// NULL if `exp` is NULL. Thread-safe.
///
/// # Safety
/// `exp` is NULL or a live experiment.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_dir(exp: *const expman_experiment) -> *const c_char {
    ffi_value!(ptr::null(), {
        // SAFETY: the caller's promise above.
        Ok(unsafe { experiment(exp) }?.dir.as_ptr())
    })
}

/// The experiment's name. Borrowed: valid until expman_experiment_free(). NULL if `exp` is
/// NULL. Thread-safe.
///
/// # Safety
/// `exp` is NULL or a live experiment.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_name(exp: *const expman_experiment) -> *const c_char {
    ffi_value!(ptr::null(), {
        // SAFETY: the caller's promise above.
        Ok(unsafe { experiment(exp) }?.name.as_ptr())
    })
}

/// `expman_experiment_set_sync()` mode: write-through, the default (a saved row survives a
/// killed process, not a power cut).
pub const EXPMAN_SYNC_WRITE_THROUGH: i32 = 0;
/// `expman_experiment_set_sync()` mode: fsync every row.
pub const EXPMAN_SYNC_EVERY_ROW: i32 = 1;
/// `expman_experiment_set_sync()` mode: fsync at most every `interval_ms` milliseconds.
pub const EXPMAN_SYNC_INTERVAL: i32 = 2;

/// Sets how hard saving a row works to keep it through a power loss, for the run's table and
/// every named table. `mode` is one of the EXPMAN_SYNC_* constants: EXPMAN_SYNC_WRITE_THROUGH
/// (0, the default; a saved row survives a killed process, not a power cut),
/// EXPMAN_SYNC_EVERY_ROW (1: fsync every row) or EXPMAN_SYNC_INTERVAL (2: fsync at most every
/// `interval_ms` milliseconds). `interval_ms` is ignored unless `mode` is
/// EXPMAN_SYNC_INTERVAL. Thread-safe.
///
/// # Safety
/// `exp` is NULL or a live experiment.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_set_sync(
    exp: *mut expman_experiment,
    mode: i32,
    interval_ms: u64,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        unsafe {
            with_experiment(exp, |exp| {
                let policy = match mode {
                    EXPMAN_SYNC_WRITE_THROUGH => SyncPolicy::WriteThrough,
                    EXPMAN_SYNC_EVERY_ROW => SyncPolicy::EveryRow,
                    EXPMAN_SYNC_INTERVAL => {
                        SyncPolicy::Interval(Duration::from_millis(interval_ms))
                    }
                    _ => {
                        return Err(Failure::Argument(format!(
                            "unknown sync mode {mode}; use 0 (write-through), 1 (fsync every \
                             row) or 2 (fsync every interval_ms)"
                        )));
                    }
                };
                exp.set_sync(policy);
                Ok(())
            })
        }
    }
}

/// Marks the run Running in process `pid` (in status.json). Thread-safe.
///
/// # Safety
/// `exp` is NULL or a live experiment.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_set_running(
    exp: *mut expman_experiment,
    pid: u32,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        unsafe { with_experiment(exp, |exp| exp.set_running(pid)) }
    }
}

/// Marks the run Finished (after syncing the tables under an fsync policy). Thread-safe.
///
/// # Safety
/// `exp` is NULL or a live experiment.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_set_finished(
    exp: *mut expman_experiment,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        unsafe { with_experiment(exp, Experiment::set_finished) }
    }
}

/// Marks the run Error with `message` (UTF-8). Thread-safe.
///
/// # Safety
/// `exp` is NULL or a live experiment; `message` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_set_error(
    exp: *mut expman_experiment,
    message: *const c_char,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        unsafe { with_message(exp, message, Experiment::set_error) }
    }
}

/// Appends a timestamped line with `message` (UTF-8) to logs/experiment.log. Thread-safe.
///
/// # Safety
/// `exp` is NULL or a live experiment; `message` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_append_log(
    exp: *mut expman_experiment,
    message: *const c_char,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        unsafe { with_message(exp, message, |exp, message| exp.append_log(message)) }
    }
}

/// Tees this process's stdout and stderr (file descriptors 1 and 2, so output of C stdio,
/// other libraries and child processes counts too) into the run's log, `logs/<run_id>.log`,
/// while they still reach the terminal; the UI shows that log for the run. A run launched by
/// `EXP run` has its output there already: then this does nothing.
///
/// The descriptors are the process's, so one capture runs at a time: this stops any earlier
/// one (of any experiment). The capture stops with expman_experiment_stop_capture(),
/// expman_experiment_free(), a later capture, or the process's exit (an `atexit` hook flushes
/// C stdio and copies the rest), so nothing printed before is lost. Thread-safe.
///
/// # Safety
/// `exp` is NULL or a live experiment.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_capture_output(
    exp: *mut expman_experiment,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        unsafe {
            with_experiment(exp, |exp| {
                // What C stdio buffered so far was printed before the capture: it goes out
                // first.
                flush_c_stdio();
                exp.capture_output()
            })
        }?;
        register_exit_hook();
        Ok(())
    }
}

/// Stops the capture started by expman_experiment_capture_output() (flushing C stdio first),
/// returning once everything printed before is in the log. Nothing happens when this
/// experiment is not capturing. Thread-safe.
///
/// # Safety
/// `exp` is NULL or a live experiment.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_stop_capture(
    exp: *mut expman_experiment,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        unsafe {
            with_experiment(exp, |exp| {
                if exp.is_capturing() {
                    flush_c_stdio();
                }
                exp.stop_capture()
            })
        }
    }
}

/// Starts sampling this process and its descendants (CPU, memory, disk I/O) and the GPUs
/// named by CUDA_VISIBLE_DEVICES into the run's table "system" (`metrics/system.csv`), every
/// `interval_s` seconds (10 is the usual choice) on a background thread; the first row is
/// written at once. A sampler already running for this experiment is replaced. Failures
/// while sampling are reported once into the run's log, never to the caller.
///
/// Fails with EXPMAN_ERR_ARGUMENT when `interval_s` is negative, NaN or infinite, and
/// EXPMAN_ERR_INVALID_VALUE when it is below 0.01. The sampler stops with
/// expman_experiment_stop_system_metrics() or expman_experiment_free(). Thread-safe.
///
/// # Safety
/// `exp` is NULL or a live experiment.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_start_system_metrics(
    exp: *mut expman_experiment,
    interval_s: f64,
) -> expman_status {
    ffi_status! {
        // Negative, NaN, infinite, or past what a Duration holds (~5.8e11 years).
        let Ok(interval) = Duration::try_from_secs_f64(interval_s) else {
            return Err(Failure::Argument(format!(
                "interval_s = {interval_s} is not a number of seconds; pass e.g. 10.0"
            )));
        };
        // SAFETY: the caller's promise above.
        unsafe { with_experiment(exp, |exp| exp.start_system_metrics(interval)) }
    }
}

/// Stops the sampler started by expman_experiment_start_system_metrics() and waits for its
/// thread, which is woken at once (this returns within one sample's time, whatever the
/// interval). Nothing happens without one. Thread-safe.
///
/// # Safety
/// `exp` is NULL or a live experiment.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_stop_system_metrics(
    exp: *mut expman_experiment,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        unsafe {
            with_experiment(exp, |exp| {
                exp.stop_system_metrics();
                Ok::<(), Failure>(())
            })
        }
    }
}

/// Flushes every C stdio output stream, so `printf` output buffered in this process reaches
/// the descriptors before a capture changes them.
pub(crate) fn flush_c_stdio() {
    // SAFETY: fflush(NULL) flushes all open output streams; it has no preconditions.
    unsafe {
        libc::fflush(ptr::null_mut());
    }
}

/// Registers [`stop_capture_at_exit`] with `atexit`, once per process.
fn register_exit_hook() {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        // SAFETY: the hook is a plain `extern "C" fn()` that lives as long as this library,
        // which C and ctypes never unload.
        unsafe {
            libc::atexit(stop_capture_at_exit);
        }
    });
}

/// At `exit`: C stdio's buffers are flushed into the pipes, then the capture stops and copies
/// what they hold, so the end of the output (an uncaught Python exception's traceback, the
/// last `printf`) is in the log. Runs after Python's own finalisation has flushed its streams.
extern "C" fn stop_capture_at_exit() {
    // Never unwind into libc's exit.
    let _ = std::panic::catch_unwind(|| {
        flush_c_stdio();
        let _ = crate::capture::stop_any();
    });
}

/// Stores in `*out` the run's own table, `metrics/<run_id>.csv`. The table is borrowed from the
/// experiment: valid until expman_experiment_free(), never freed by itself. Every call returns
/// the same pointer. Thread-safe.
///
/// # Safety
/// `exp` is NULL or a live experiment; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_metrics(
    exp: *mut expman_experiment,
    out: *mut *mut expman_table,
) -> expman_status {
    ffi_status! {
        let out = c_out(out, "out")?;
        // SAFETY: the caller's promise above.
        let exp = unsafe { experiment(exp) }?;
        // SAFETY: checked by c_out; writable by the caller's promise.
        unsafe { out.write(ptr::from_ref(&exp.own_table).cast_mut()) };
        Ok(())
    }
}

/// Stores in `*out` the named table `metrics/<name>.csv` (for example "progress"), whose rows
/// carry this run's id; the file is created on the first saved row. Names like "run_0001" are
/// the runs' own tables and are refused. The table is borrowed from the experiment: valid
/// until expman_experiment_free(), never freed by itself; the same name gives the same
/// pointer. Thread-safe.
///
/// # Safety
/// `exp` is NULL or a live experiment; `name` is NULL or a NUL-terminated string; `out` is
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_table(
    exp: *mut expman_experiment,
    name: *const c_char,
    out: *mut *mut expman_table,
) -> expman_status {
    ffi_status! {
        let out = c_out(out, "out")?;
        // SAFETY: the caller's promise above.
        let handle = unsafe { experiment(exp) }?;
        // SAFETY: the caller's promise above.
        let name = unsafe { c_str(name, "name") }?;
        let mut state = handle.lock()?;
        let table = match state.tables.get(name) {
            Some(table) => ptr::from_ref(&**table),
            None => {
                // The Rust API checks the name and makes the writer.
                state.exp.table(name)?;
                let table = Box::new(expman_table::new(handle, Some(name.to_string())));
                let pointer = ptr::from_ref(&*table);
                state.tables.insert(name.to_string(), table);
                pointer
            }
        };
        // SAFETY: checked by c_out; writable by the caller's promise.
        unsafe { out.write(table.cast_mut()) };
        Ok(())
    }
}

/// Reads a table back: this run's own table when `table` is NULL, else `metrics/<table>.csv`
/// (a named table, or another run's table such as "run_0002"). The caller owns `*out` and
/// releases it with expman_metrics_free(); `*out` is written only on success. Thread-safe.
///
/// # Safety
/// `exp` is NULL or a live experiment; `table` is NULL or a NUL-terminated string; `out` is
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_load_metrics(
    exp: *mut expman_experiment,
    table: *const c_char,
    out: *mut *mut expman_metrics,
) -> expman_status {
    ffi_status! {
        let out = c_out(out, "out")?;
        // SAFETY: the caller's promise above.
        let exp = unsafe { experiment(exp) }?;
        // SAFETY: the caller's promise above.
        let table = unsafe { c_opt_str(table, "table") }?;
        let metrics = {
            let state = exp.lock()?;
            match table {
                None => state.exp.load_metrics()?,
                Some(name) => state.exp.load_table(name)?,
            }
        };
        // SAFETY: checked by c_out; writable by the caller's promise.
        unsafe { out.write(expman_metrics::into_raw(metrics)) };
        Ok(())
    }
}

/// `expman_experiment_state()`: queued, not started.
pub const EXPMAN_STATE_PENDING: i32 = 0;
/// `expman_experiment_state()`: a process is working on the run.
pub const EXPMAN_STATE_RUNNING: i32 = 1;
/// `expman_experiment_state()`: ended successfully.
pub const EXPMAN_STATE_FINISHED: i32 = 2;
/// `expman_experiment_state()`: ended with an error, was terminated, or its process vanished.
pub const EXPMAN_STATE_ERROR: i32 = 3;

/// Stores in `*out` whether this handle attached to a run created by someone else (the
/// scheduler, through EXPMAN_EXPERIMENT_DIR/EXPMAN_RUN_ID): such a run's status belongs to its
/// creator, so bindings do not mark it Finished or Error themselves. Thread-safe.
///
/// # Safety
/// `exp` is NULL or a live experiment; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_attached(
    exp: *const expman_experiment,
    out: *mut bool,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        unsafe { answer(exp, out, |exp| Ok(exp.is_attached())) }
    }
}

/// Stores in `*out` the state of this handle's run as status.json says, with a Running run
/// whose process is gone reported as EXPMAN_STATE_ERROR: one of the `EXPMAN_STATE_*` values.
/// Once a later run has started (another handle opened one), the state its history records.
/// Thread-safe.
///
/// # Safety
/// `exp` is NULL or a live experiment; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_state(
    exp: *const expman_experiment,
    out: *mut i32,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        unsafe {
            answer(exp, out, |exp| {
                Ok(match exp.run_state()? {
                    RunState::Pending => EXPMAN_STATE_PENDING,
                    RunState::Running => EXPMAN_STATE_RUNNING,
                    RunState::Finished => EXPMAN_STATE_FINISHED,
                    RunState::Error => EXPMAN_STATE_ERROR,
                })
            })
        }
    }
}

/// Stores in `*out` the experiment's `status.json` as the library reads it: a JSON object
/// (UTF-8, NUL-terminated) with the current run's `status`, `run_id`, `pid`, `error`, ... and
/// the earlier runs' `history`; a missing file reads as a Pending experiment. A file that is not
/// what expman wrote fails with EXPMAN_ERR_CORRUPT naming it. Bindings read the status through
/// this call, never the file themselves. The caller owns `*out` and releases it with
/// expman_string_free(); `*out` is written only on success. Thread-safe.
///
/// # Safety
/// `exp` is NULL or a live experiment; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_status_json(
    exp: *const expman_experiment,
    out: *mut *mut c_char,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        unsafe {
            answer(exp, out, |exp| {
                let json = serde_json::to_string(&exp.status()?).map_err(|e| {
                    crate::Error::invalid_state(format!("cannot encode status.json: {e}"))
                })?;
                Ok(to_c_string(json.as_bytes()).into_raw())
            })
        }
    }
}

/// [`with_experiment`] logging one parameter `name` (UTF-8, checked first) with `value`.
///
/// # Safety
/// As for [`with_experiment`]; `name` is NULL or a NUL-terminated string.
unsafe fn set_param(
    exp: *mut expman_experiment,
    name: *const c_char,
    value: impl FnOnce() -> FfiResult<ParamValue>,
) -> FfiResult<()> {
    // SAFETY: the caller's promise.
    let name = unsafe { c_str(name, "name") }?;
    let value = value()?;
    // SAFETY: the caller's promise.
    unsafe { with_experiment(exp, |exp| exp.log_params([(name, value)])) }
}

/// Records the hyperparameter `name` = `value` (a double; NaN and infinities are refused with
/// EXPMAN_ERR_INVALID_VALUE) in config.json's "params" and in this run's own record in
/// status.json, as expman_experiment_log_params_json() does. `name` is UTF-8; dots nest
/// (`optimizer.lr`). Thread-safe.
///
/// # Safety
/// `exp` is NULL or a live experiment; `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_set_param_f64(
    exp: *mut expman_experiment,
    name: *const c_char,
    value: f64,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        unsafe { set_param(exp, name, || Ok(ParamValue::Float(value))) }
    }
}

/// Records the hyperparameter `name` = `value` (an integer, written without a fraction), as
/// expman_experiment_set_param_f64() does. Thread-safe.
///
/// # Safety
/// `exp` is NULL or a live experiment; `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_set_param_i64(
    exp: *mut expman_experiment,
    name: *const c_char,
    value: i64,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        unsafe { set_param(exp, name, || Ok(ParamValue::Int(value))) }
    }
}

/// Records the hyperparameter `name` = `value` (true or false), as
/// expman_experiment_set_param_f64() does. Thread-safe.
///
/// # Safety
/// `exp` is NULL or a live experiment; `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_set_param_bool(
    exp: *mut expman_experiment,
    name: *const c_char,
    value: bool,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        unsafe { set_param(exp, name, || Ok(ParamValue::Bool(value))) }
    }
}

/// Records the hyperparameter `name` = `value` (UTF-8 text), as
/// expman_experiment_set_param_f64() does. Thread-safe.
///
/// # Safety
/// `exp` is NULL or a live experiment; `name` and `value` are NULL or NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_set_param_str(
    exp: *mut expman_experiment,
    name: *const c_char,
    value: *const c_char,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        unsafe {
            set_param(exp, name, || {
                // SAFETY: the caller's promise above.
                Ok(ParamValue::Str(c_str(value, "value")?.to_string()))
            })
        }
    }
}

/// Records hyperparameters given as a JSON object (UTF-8) of names to numbers, booleans or
/// strings; nested objects are flattened with dots (`{"optimizer": {"lr": 0.01}}` records
/// `optimizer.lr`), integers stay integers and floats floats. They are merged into
/// config.json's "params" (other names keep their values, whoever recorded them) and into
/// this run's own record in status.json (`params`, kept in `history` when later runs start),
/// both rewritten atomically under the experiment's lock.
///
/// Everything is checked before anything is written: text that is not a JSON object, a list
/// or null value, or a bad name fails with EXPMAN_ERR_INVALID_VALUE or
/// EXPMAN_ERR_INVALID_NAME naming the parameter. Thread-safe.
///
/// # Safety
/// `exp` is NULL or a live experiment; `json` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_log_params_json(
    exp: *mut expman_experiment,
    json: *const c_char,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        let params = params_from_json(unsafe { c_str(json, "json") }?, "json")?;
        // SAFETY: the caller's promise above.
        unsafe { with_experiment(exp, |exp| exp.log_params(params)) }
    }
}

/// Stores in `*out` the run's effective hyperparameters as a JSON object (UTF-8,
/// NUL-terminated) of flattened names to values, sorted by name: config.json's "params"
/// overridden by what this run recorded as its own, as of this handle's last read or write.
/// Integers are written without a fraction, floats with one (`18` vs `18.0`). The caller owns
/// `*out` and releases it with expman_string_free(); `*out` is written only on success.
/// Thread-safe.
///
/// # Safety
/// `exp` is NULL or a live experiment; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn expman_experiment_params_json(
    exp: *const expman_experiment,
    out: *mut *mut c_char,
) -> expman_status {
    ffi_status! {
        // SAFETY: the caller's promise above.
        unsafe {
            answer(exp, out, |exp| {
                let json = serde_json::to_string(exp.params()).map_err(|e| {
                    crate::Error::invalid_state(format!("cannot encode the parameters: {e}"))
                })?;
                Ok(to_c_string(json.as_bytes()).into_raw())
            })
        }
    }
}
