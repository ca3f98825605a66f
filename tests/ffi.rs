//! The C ABI called from Rust: every `extern "C"` function, its happy path and its error paths
//! (NULL, invalid UTF-8, foreign field ids, out-of-range indexes), as a C caller would use it.
//!
//! The same ABI is exercised from real C (with sanitizers) by `tests/c/run.sh`.

use std::ffi::{CStr, CString, c_char};
use std::path::Path;
use std::ptr;

use expman::ErrorKind;
use expman::ffi::*;

/// A NUL-terminated string literal as a C pointer.
macro_rules! c {
    ($s:literal) => {
        concat!($s, "\0").as_ptr().cast::<c_char>()
    };
}

/// Invalid UTF-8 (a lone continuation byte), NUL-terminated.
const BAD_UTF8: *const c_char = c"bad\xff".as_ptr();

fn last_error() -> String {
    let message = expman_last_error();
    assert!(!message.is_null(), "expman_last_error never returns NULL");
    // SAFETY: a NUL-terminated string valid until the next expman call on this thread.
    unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned()
}

/// Asserts `status` is `expected` and the last error contains every one of `needles`.
#[track_caller]
fn assert_fails(status: expman_status, expected: expman_status, needles: &[&str]) {
    let message = last_error();
    assert_eq!(status, expected, "status (last error: {message})");
    for needle in needles {
        assert!(
            message.contains(needle),
            "last error {message:?} should mention {needle:?}"
        );
    }
}

#[track_caller]
fn ok(status: expman_status) {
    assert_eq!(status, EXPMAN_OK, "last error: {}", last_error());
}

fn c_path(path: &Path) -> CString {
    CString::new(path.to_str().unwrap()).unwrap()
}

/// A fresh experiment under a temporary directory.
struct Fixture {
    _base: tempfile::TempDir,
    exp: *mut expman_experiment,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let base = tempfile::tempdir().unwrap();
        let name = CString::new(name).unwrap();
        let base_dir = c_path(base.path());
        let mut exp = ptr::null_mut();
        // SAFETY: valid strings and out-pointer; no tags or GPUs.
        ok(unsafe {
            expman_experiment_create(
                name.as_ptr(),
                c!("train --epochs 3"),
                base_dir.as_ptr(),
                ptr::null(),
                0,
                ptr::null(),
                ptr::null(),
                0,
                &mut exp,
            )
        });
        assert!(!exp.is_null());
        Fixture { _base: base, exp }
    }

    fn dir(&self) -> String {
        // SAFETY: a live experiment; the string is copied before it is freed.
        unsafe { CStr::from_ptr(expman_experiment_dir(self.exp)) }
            .to_str()
            .unwrap()
            .to_string()
    }

    fn metrics(&self) -> *mut expman_table {
        let mut table = ptr::null_mut();
        // SAFETY: a live experiment and a valid out-pointer.
        ok(unsafe { expman_experiment_metrics(self.exp, &mut table) });
        table
    }

    fn field(&self, table: *mut expman_table, name: &str) -> u32 {
        let name = CString::new(name).unwrap();
        let mut id = u32::MAX;
        // SAFETY: a live table, a valid string and out-pointer.
        ok(unsafe { expman_table_field_id(table, name.as_ptr(), &mut id) });
        id
    }

    /// Reads a table back (`None`: the run's own).
    fn load(&self, table: Option<&str>) -> Metrics {
        let table = table.map(|t| CString::new(t).unwrap());
        let mut m = ptr::null_mut();
        // SAFETY: a live experiment, a valid optional string and out-pointer.
        ok(unsafe {
            expman_experiment_load_metrics(
                self.exp,
                table.as_ref().map_or(ptr::null(), |t| t.as_ptr()),
                &mut m,
            )
        });
        Metrics(m)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // SAFETY: the experiment is live and not used again.
        unsafe { expman_experiment_free(self.exp) };
    }
}

/// Owned `expman_metrics`, freed on drop.
struct Metrics(*mut expman_metrics);

impl Metrics {
    fn n_rows(&self) -> usize {
        // SAFETY: live metrics.
        unsafe { expman_metrics_n_rows(self.0) }
    }
    fn columns(&self) -> Vec<String> {
        // SAFETY: live metrics; names are copied before the metrics are freed.
        let n = unsafe { expman_metrics_n_columns(self.0) };
        (0..n)
            .map(|c| {
                let name = unsafe { expman_metrics_column_name(self.0, c) };
                unsafe { CStr::from_ptr(name) }
                    .to_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }
    fn col(&self, name: &str) -> usize {
        self.columns().iter().position(|c| c == name).unwrap()
    }
    fn get(&self, row: usize, col: usize) -> expman_value {
        let mut value = empty_value();
        // SAFETY: live metrics and a valid out-pointer.
        ok(unsafe { expman_metrics_get(self.0, row, col, &mut value) });
        value
    }
    fn text(&self, row: usize, col: usize) -> String {
        let value = self.get(row, col);
        assert_eq!(value.kind, EXPMAN_VALUE_STR);
        // SAFETY: `s_len` bytes borrowed from live metrics, NUL-terminated after them.
        let bytes = unsafe { std::slice::from_raw_parts(value.s.cast::<u8>(), value.s_len + 1) };
        assert_eq!(bytes[value.s_len], 0, "text cells are NUL-terminated");
        String::from_utf8(bytes[..value.s_len].to_vec()).unwrap()
    }
    fn column_f64(&self, col: usize) -> Vec<f64> {
        let mut out = vec![0.0; self.n_rows()];
        // SAFETY: live metrics, `out` has n_rows doubles.
        ok(unsafe { expman_metrics_column_f64(self.0, col, out.as_mut_ptr(), out.len()) });
        out
    }
}

impl Drop for Metrics {
    fn drop(&mut self) {
        // SAFETY: live metrics, not used again.
        unsafe { expman_metrics_free(self.0) };
    }
}

fn empty_value() -> expman_value {
    expman_value {
        kind: -7,
        i: -7,
        f: -7.0,
        s: ptr::null(),
        s_len: 7,
    }
}

fn value_str(s: &[u8]) -> expman_value {
    expman_value {
        kind: EXPMAN_VALUE_STR,
        i: 0,
        f: 0.0,
        s: s.as_ptr().cast(),
        s_len: s.len(),
    }
}

fn value_i(kind: i32, i: i64) -> expman_value {
    expman_value {
        kind,
        i,
        f: 0.0,
        s: ptr::null(),
        s_len: 0,
    }
}

fn value_f(f: f64) -> expman_value {
    expman_value {
        kind: EXPMAN_VALUE_FLOAT,
        i: 0,
        f,
        s: ptr::null(),
        s_len: 0,
    }
}

#[test]
fn version_features_and_abi() {
    assert_eq!(expman_abi_version(), EXPMAN_ABI_VERSION);
    // SAFETY: a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(expman_version()) };
    assert_eq!(version.to_str().unwrap(), expman::VERSION);
    let features = expman_features();
    assert_eq!(features & EXPMAN_FEATURE_GPU != 0, cfg!(feature = "gpu"));
    assert_eq!(
        features & EXPMAN_FEATURE_SCHEDULER != 0,
        cfg!(feature = "scheduler")
    );
    assert_eq!(
        features & EXPMAN_FEATURE_SERVER != 0,
        cfg!(feature = "server")
    );
    assert_eq!(
        features & EXPMAN_FEATURE_ARROW != 0,
        cfg!(feature = "arrow")
    );
    assert_eq!(features & !15, 0, "no undefined bits");
}

#[test]
fn each_error_kind_has_its_own_status_code() {
    let io = std::io::Error::other("x");
    let kinds = [
        (
            ErrorKind::Io {
                action: "read",
                path: "p".into(),
                source: io,
            },
            EXPMAN_ERR_IO,
        ),
        (
            ErrorKind::InvalidName {
                what: "field name",
                value: "v".into(),
                reason: "r".into(),
            },
            EXPMAN_ERR_INVALID_NAME,
        ),
        (
            ErrorKind::InvalidValue {
                field: "f".into(),
                reason: "r".into(),
            },
            EXPMAN_ERR_INVALID_VALUE,
        ),
        (
            ErrorKind::Corrupt {
                path: "p".into(),
                line: None,
                reason: "r".into(),
            },
            EXPMAN_ERR_CORRUPT,
        ),
        (
            ErrorKind::NotFound {
                path: "p".into(),
                reason: "r".into(),
            },
            EXPMAN_ERR_NOT_FOUND,
        ),
        (
            ErrorKind::InvalidState("s".into()),
            EXPMAN_ERR_INVALID_STATE,
        ),
        (
            ErrorKind::Config {
                origin: "o".into(),
                message: "m".into(),
            },
            EXPMAN_ERR_CONFIG,
        ),
        (
            ErrorKind::Unsupported { feature: "gpu" },
            EXPMAN_ERR_UNSUPPORTED,
        ),
    ];
    for (kind, status) in kinds {
        assert_eq!(kind_status(&kind), status, "{kind:?}");
    }
    // The ABI's own codes are below the core's and distinct.
    let own = [
        EXPMAN_OK,
        EXPMAN_ERR_NULL,
        EXPMAN_ERR_UTF8,
        EXPMAN_ERR_PANIC,
        EXPMAN_ERR_ARGUMENT,
    ];
    assert_eq!(own, [0, 1, 2, 3, 4]);
}

#[test]
fn last_error_starts_empty_on_a_new_thread() {
    std::thread::spawn(|| assert_eq!(last_error(), ""))
        .join()
        .unwrap();
}

#[test]
fn create_log_and_read_back() {
    let base = tempfile::tempdir().unwrap();
    let base_dir = c_path(base.path());
    let tags = [c!("cnn"), c!("baseline")];
    let gpus = [0u32, 3];
    let mut exp = ptr::null_mut();
    // SAFETY: valid strings, arrays of the given lengths, and out-pointer.
    ok(unsafe {
        expman_experiment_create(
            c!("mnist"),
            c!("python train.py"),
            base_dir.as_ptr(),
            tags.as_ptr(),
            tags.len(),
            c!("a first try"),
            gpus.as_ptr(),
            gpus.len(),
            &mut exp,
        )
    });
    let fixture = Fixture { _base: base, exp };
    // SAFETY: a live experiment; its strings are borrowed from it.
    unsafe {
        assert_eq!(
            CStr::from_ptr(expman_experiment_run_id(exp)).to_str(),
            Ok("run_0001")
        );
        assert_eq!(
            CStr::from_ptr(expman_experiment_name(exp)).to_str(),
            Ok("mnist")
        );
    }
    let dir = fixture.dir();
    assert!(Path::new(&dir).join("config.json").is_file());
    let config = std::fs::read_to_string(Path::new(&dir).join("config.json")).unwrap();
    for needle in ["python train.py", "baseline", "a first try"] {
        assert!(
            config.contains(needle),
            "config.json lacks {needle}: {config}"
        );
    }

    let table = fixture.metrics();
    let mut again = ptr::null_mut();
    // SAFETY: a live experiment and out-pointer.
    ok(unsafe { expman_experiment_metrics(exp, &mut again) });
    assert_eq!(table, again, "one handle per table");

    // By name, one field at a time.
    // SAFETY (this block): a live table and valid NUL-terminated strings.
    unsafe {
        ok(expman_table_set_str(
            table,
            c!("model"),
            c!("ResNet, \"v2\"\nsecond line"),
        ));
        ok(expman_table_set_i64(table, c!("batch_size"), 128));
        ok(expman_table_set_bool(table, c!("augment"), true));
        ok(expman_table_set_null(table, c!("note")));
        ok(expman_table_save_row(table));
    }
    // By id, the hot path.
    let epoch = fixture.field(table, "epoch");
    let loss = fixture.field(table, "loss");
    assert_eq!(fixture.field(table, "epoch"), epoch, "ids are stable");
    for (e, l) in [(1.0, 0.5), (2.0, f64::NAN), (3.0, f64::INFINITY)] {
        // SAFETY: two ids and two values.
        ok(unsafe { expman_table_save_row_f64(table, [epoch, loss].as_ptr(), [e, l].as_ptr(), 2) });
    }
    // Typed values: a string that is not NUL-terminated, a negative infinity, a bool.
    let model = fixture.field(table, "model");
    let augment = fixture.field(table, "augment");
    let text = b"a,b\"c\nd -- not NUL-terminated";
    let values = [
        value_str(&text[..7]),
        value_f(f64::NEG_INFINITY),
        value_i(EXPMAN_VALUE_BOOL, 0),
    ];
    // SAFETY: three ids and three values whose strings point to s_len bytes.
    ok(unsafe {
        expman_table_save_row_values(table, [model, loss, augment].as_ptr(), values.as_ptr(), 3)
    });
    // An empty row writes nothing.
    // SAFETY: a live table; NULL arrays are allowed with n = 0.
    ok(unsafe { expman_table_save_row_f64(table, ptr::null(), ptr::null(), 0) });
    ok(unsafe { expman_table_save_row(table) });

    let m = fixture.load(None);
    assert_eq!(m.n_rows(), 5);
    assert_eq!(
        m.columns(),
        [
            "timestamp",
            "run_id",
            "model",
            "batch_size",
            "augment",
            "note",
            "epoch",
            "loss"
        ]
    );
    let col_type = |c: usize| unsafe { expman_metrics_column_type(m.0, c) };
    assert_eq!(col_type(m.col("model")), EXPMAN_TYPE_STR);
    assert_eq!(col_type(m.col("batch_size")), EXPMAN_TYPE_INT);
    assert_eq!(col_type(m.col("augment")), EXPMAN_TYPE_BOOL);
    assert_eq!(col_type(m.col("note")), EXPMAN_TYPE_NULL);
    assert_eq!(col_type(m.col("loss")), EXPMAN_TYPE_FLOAT);
    assert_eq!(m.text(0, m.col("run_id")), "run_0001");
    assert_eq!(m.text(0, m.col("model")), "ResNet, \"v2\"\nsecond line");
    assert_eq!(m.text(4, m.col("model")), "a,b\"c\nd");
    let batch = m.get(0, m.col("batch_size"));
    assert_eq!(
        (batch.kind, batch.i, batch.s_len),
        (EXPMAN_VALUE_INT, 128, 0)
    );
    assert!(batch.s.is_null());
    let augment = m.get(0, m.col("augment"));
    assert_eq!((augment.kind, augment.i), (EXPMAN_VALUE_BOOL, 1));
    assert_eq!(m.get(1, m.col("batch_size")).kind, EXPMAN_VALUE_NULL);
    let loss_col = m.column_f64(m.col("loss"));
    assert!(loss_col[0].is_nan(), "row 0 has no loss");
    assert_eq!(loss_col[1], 0.5);
    assert!(loss_col[2].is_nan());
    assert_eq!(loss_col[3], f64::INFINITY);
    assert_eq!(loss_col[4], f64::NEG_INFINITY);
    assert_eq!(m.column_f64(m.col("augment"))[..1], [1.0]);
    let epochs = m.column_f64(m.col("epoch"));
    assert_eq!(epochs[1..4], [1.0, 2.0, 3.0]);

    // The same file through expman_metrics_read.
    let csv = c_path(&Path::new(&dir).join("metrics/run_0001.csv"));
    let mut read = ptr::null_mut();
    // SAFETY: a valid path and out-pointer.
    ok(unsafe { expman_metrics_read(csv.as_ptr(), &mut read) });
    let read = Metrics(read);
    assert_eq!(read.n_rows(), 5);

    // Status and log.
    // SAFETY: a live experiment and valid strings.
    unsafe {
        ok(expman_experiment_append_log(exp, c!("epoch 3 done")));
        ok(expman_experiment_set_running(exp, std::process::id()));
        ok(expman_experiment_set_sync(exp, 2, 50));
        ok(expman_experiment_set_sync(exp, 1, 0));
        ok(expman_table_sync(table));
        ok(expman_experiment_set_finished(exp));
    }
    let log = std::fs::read_to_string(Path::new(&dir).join("logs/experiment.log")).unwrap();
    assert!(log.contains("[run_0001] epoch 3 done"), "{log}");
    let status = std::fs::read_to_string(Path::new(&dir).join("status.json")).unwrap();
    assert!(status.contains("Finished"), "{status}");
}

#[test]
fn named_tables_open_and_attach() {
    let fixture = Fixture::new("tables");
    let exp = fixture.exp;
    let mut progress = ptr::null_mut();
    let mut again = ptr::null_mut();
    // SAFETY (this block): a live experiment, valid strings and out-pointers.
    unsafe {
        ok(expman_experiment_table(exp, c!("progress"), &mut progress));
        ok(expman_experiment_table(exp, c!("progress"), &mut again));
        assert_eq!(progress, again, "the same name gives the same handle");
        ok(expman_table_set_f64(progress, c!("step"), 1.0));
        ok(expman_table_save_row(progress));

        let mut refused = ptr::null_mut();
        assert_fails(
            expman_experiment_table(exp, c!("run_0001"), &mut refused),
            EXPMAN_ERR_INVALID_NAME,
            &["expman_experiment_table", "run_0001"],
        );
        assert!(refused.is_null(), "no output on failure");
        assert_fails(
            expman_experiment_table(exp, c!("../escape"), &mut refused),
            EXPMAN_ERR_INVALID_NAME,
            &["../escape"],
        );
    }
    let m = fixture.load(Some("progress"));
    assert_eq!(m.n_rows(), 1);
    assert_eq!(m.text(0, m.col("run_id")), "run_0001");

    // The next runs of the same directory, then an attach to one of them.
    let dir = CString::new(fixture.dir()).unwrap();
    for expected in ["run_0002", "run_0003"] {
        let mut next = ptr::null_mut();
        // SAFETY: a valid path and out-pointer; the handle is freed below.
        unsafe {
            ok(expman_experiment_open(dir.as_ptr(), &mut next));
            assert_eq!(
                CStr::from_ptr(expman_experiment_run_id(next)).to_str(),
                Ok(expected)
            );
            expman_experiment_free(next);
        }
    }
    let mut attached = ptr::null_mut();
    // SAFETY: valid strings and out-pointers.
    unsafe {
        ok(expman_experiment_attach(
            dir.as_ptr(),
            c!("run_0002"),
            &mut attached,
        ));
        assert_eq!(
            CStr::from_ptr(expman_experiment_run_id(attached)).to_str(),
            Ok("run_0002")
        );
        let mut table = ptr::null_mut();
        ok(expman_experiment_metrics(attached, &mut table));
        ok(expman_table_set_i64(table, c!("x"), 7));
        ok(expman_table_save_row(table));
        expman_experiment_free(attached);

        let mut none = ptr::null_mut();
        assert_fails(
            expman_experiment_attach(dir.as_ptr(), c!("run_x"), &mut none),
            EXPMAN_ERR_INVALID_NAME,
            &["run_x"],
        );
        // A run that was never allocated: refused, and neither its log nor its table appears.
        assert_fails(
            expman_experiment_attach(dir.as_ptr(), c!("run_0009"), &mut none),
            EXPMAN_ERR_NOT_FOUND,
            &[
                "expman_experiment_attach",
                "run_0009",
                &fixture.dir(),
                "run_0003",
            ],
        );
        assert!(none.is_null());
        let run_dir = fixture.dir();
        let run_dir = Path::new(&run_dir);
        assert!(!run_dir.join("logs/run_0009.log").exists());
        assert!(!run_dir.join("metrics/run_0009.csv").exists());
        assert_fails(
            expman_experiment_open(c!("/nonexistent/expman-test"), &mut none),
            EXPMAN_ERR_NOT_FOUND,
            &["expman_experiment_open", "/nonexistent/expman-test"],
        );
        assert!(none.is_null());
    }
    // Another run's table, through this experiment.
    let other = fixture.load(Some("run_0002"));
    assert_eq!(other.n_rows(), 1);
    assert_eq!(other.text(0, other.col("run_id")), "run_0002");
}

#[test]
fn null_arguments_are_errors_and_leave_outputs_alone() {
    let fixture = Fixture::new("nulls");
    let exp = fixture.exp;
    let table = fixture.metrics();
    let sentinel = 0x5a5a as *mut expman_experiment;
    let mut out = sentinel;
    // SAFETY (this block): every pointer is NULL or valid.
    unsafe {
        let create = |name, base: *const c_char, out| {
            expman_experiment_create(
                name,
                ptr::null(),
                base,
                ptr::null(),
                0,
                ptr::null(),
                ptr::null(),
                0,
                out,
            )
        };
        assert_fails(
            create(ptr::null(), c!("/tmp"), &mut out),
            EXPMAN_ERR_NULL,
            &["`name`"],
        );
        assert_fails(
            create(c!("n"), ptr::null(), &mut out),
            EXPMAN_ERR_NULL,
            &["`base_dir`"],
        );
        assert_fails(
            create(c!("n"), c!("/tmp"), ptr::null_mut()),
            EXPMAN_ERR_NULL,
            &["`out`"],
        );
        // Arrays: NULL with a nonzero count, and a NULL element.
        assert_fails(
            expman_experiment_create(
                c!("n"),
                ptr::null(),
                c!("/tmp"),
                ptr::null(),
                2,
                ptr::null(),
                ptr::null(),
                0,
                &mut out,
            ),
            EXPMAN_ERR_NULL,
            &["`tags`"],
        );
        let tags = [c!("ok"), ptr::null()];
        assert_fails(
            expman_experiment_create(
                c!("n"),
                ptr::null(),
                c!("/tmp"),
                tags.as_ptr(),
                2,
                ptr::null(),
                ptr::null(),
                0,
                &mut out,
            ),
            EXPMAN_ERR_NULL,
            &["`tags[1]`"],
        );
        assert_fails(
            expman_experiment_create(
                c!("n"),
                ptr::null(),
                c!("/tmp"),
                ptr::null(),
                0,
                ptr::null(),
                ptr::null(),
                1,
                &mut out,
            ),
            EXPMAN_ERR_NULL,
            &["`gpu_ids`"],
        );
        assert_eq!(out, sentinel, "outputs are written only on success");
        assert_fails(
            expman_experiment_open(ptr::null(), &mut out),
            EXPMAN_ERR_NULL,
            &["`dir`"],
        );
        assert_fails(
            expman_experiment_attach(c!("/tmp"), ptr::null(), &mut out),
            EXPMAN_ERR_NULL,
            &["`run_id`"],
        );
        assert_eq!(out, sentinel);

        assert!(expman_experiment_run_id(ptr::null()).is_null());
        assert!(last_error().contains("`exp`"));
        assert!(expman_experiment_dir(ptr::null()).is_null());
        assert!(expman_experiment_name(ptr::null()).is_null());
        let null_exp = ptr::null_mut();
        assert_fails(
            expman_experiment_set_sync(null_exp, 0, 0),
            EXPMAN_ERR_NULL,
            &["`exp`"],
        );
        assert_fails(
            expman_experiment_set_running(null_exp, 1),
            EXPMAN_ERR_NULL,
            &["`exp`"],
        );
        assert_fails(
            expman_experiment_set_finished(null_exp),
            EXPMAN_ERR_NULL,
            &["`exp`"],
        );
        assert_fails(
            expman_experiment_set_error(exp, ptr::null()),
            EXPMAN_ERR_NULL,
            &["`message`"],
        );
        assert_fails(
            expman_experiment_append_log(exp, ptr::null()),
            EXPMAN_ERR_NULL,
            &["`message`"],
        );
        assert_fails(
            expman_experiment_capture_output(null_exp),
            EXPMAN_ERR_NULL,
            &["`exp`"],
        );
        assert_fails(
            expman_experiment_stop_capture(null_exp),
            EXPMAN_ERR_NULL,
            &["`exp`"],
        );
        // Stopping a capture that never started does nothing.
        ok(expman_experiment_stop_capture(exp));
        assert_fails(
            expman_experiment_metrics(exp, ptr::null_mut()),
            EXPMAN_ERR_NULL,
            &["`out`"],
        );
        assert_fails(
            expman_experiment_metrics(null_exp, &mut ptr::null_mut()),
            EXPMAN_ERR_NULL,
            &["`exp`"],
        );
        assert_fails(
            expman_experiment_table(exp, ptr::null(), &mut ptr::null_mut()),
            EXPMAN_ERR_NULL,
            &["`name`"],
        );
        assert_fails(
            expman_experiment_load_metrics(exp, ptr::null(), ptr::null_mut()),
            EXPMAN_ERR_NULL,
            &["`out`"],
        );

        let null_table = ptr::null_mut();
        let mut id = 99u32;
        assert_fails(
            expman_table_field_id(null_table, c!("x"), &mut id),
            EXPMAN_ERR_NULL,
            &["`table`"],
        );
        assert_fails(
            expman_table_field_id(table, ptr::null(), &mut id),
            EXPMAN_ERR_NULL,
            &["`name`"],
        );
        assert_fails(
            expman_table_field_id(table, c!("x"), ptr::null_mut()),
            EXPMAN_ERR_NULL,
            &["`out`"],
        );
        assert_eq!(id, 99);
        assert_fails(
            expman_table_set_f64(null_table, c!("x"), 1.0),
            EXPMAN_ERR_NULL,
            &["expman_table_set_f64", "`table`"],
        );
        assert_fails(
            expman_table_set_f64(table, ptr::null(), 1.0),
            EXPMAN_ERR_NULL,
            &["`name`"],
        );
        assert_fails(
            expman_table_set_i64(table, ptr::null(), 1),
            EXPMAN_ERR_NULL,
            &["`name`"],
        );
        assert_fails(
            expman_table_set_bool(table, ptr::null(), true),
            EXPMAN_ERR_NULL,
            &["`name`"],
        );
        assert_fails(
            expman_table_set_null(table, ptr::null()),
            EXPMAN_ERR_NULL,
            &["`name`"],
        );
        assert_fails(
            expman_table_set_str(table, c!("x"), ptr::null()),
            EXPMAN_ERR_NULL,
            &["`v`"],
        );
        assert_fails(
            expman_table_save_row(null_table),
            EXPMAN_ERR_NULL,
            &["`table`"],
        );
        assert_fails(
            expman_table_clear_row(null_table),
            EXPMAN_ERR_NULL,
            &["`table`"],
        );
        assert_fails(expman_table_sync(null_table), EXPMAN_ERR_NULL, &["`table`"]);
        assert_fails(
            expman_table_save_row_f64(table, ptr::null(), [1.0].as_ptr(), 1),
            EXPMAN_ERR_NULL,
            &["`ids`"],
        );
        assert_fails(
            expman_table_save_row_f64(table, [0].as_ptr(), ptr::null(), 1),
            EXPMAN_ERR_NULL,
            &["`values`"],
        );
        assert_fails(
            expman_table_save_row_values(table, [0].as_ptr(), ptr::null(), 1),
            EXPMAN_ERR_NULL,
            &["`values`"],
        );
        assert_fails(
            expman_table_set_values(table, ptr::null(), ptr::null(), 1),
            EXPMAN_ERR_NULL,
            &["`ids`"],
        );
        // A STR value with NULL bytes but a nonzero length; NULL with length 0 is "".
        let x = fixture.field(table, "x");
        let bad = expman_value {
            s: ptr::null(),
            ..value_str(b"abc")
        };
        assert_fails(
            expman_table_set_values(table, [x].as_ptr(), &bad, 1),
            EXPMAN_ERR_NULL,
            &["values[0].s", "\"x\""],
        );
        let empty = expman_value {
            s: ptr::null(),
            s_len: 0,
            ..bad
        };
        ok(expman_table_set_values(table, [x].as_ptr(), &empty, 1));
        ok(expman_table_clear_row(table));

        let mut m = ptr::null_mut();
        assert_fails(
            expman_metrics_read(ptr::null(), &mut m),
            EXPMAN_ERR_NULL,
            &["`csv_path`"],
        );
        assert_eq!(expman_metrics_n_rows(ptr::null()), 0);
        assert_eq!(expman_metrics_n_columns(ptr::null()), 0);
        assert!(expman_metrics_column_name(ptr::null(), 0).is_null());
        assert_eq!(expman_metrics_column_type(ptr::null(), 0), -1);
        let mut value = empty_value();
        assert_fails(
            expman_metrics_get(ptr::null(), 0, 0, &mut value),
            EXPMAN_ERR_NULL,
            &["`m`"],
        );
        assert_eq!(value.kind, -7, "outputs are written only on success");
        assert_fails(
            expman_metrics_column_f64(ptr::null(), 0, ptr::null_mut(), 0),
            EXPMAN_ERR_NULL,
            &["`m`"],
        );
    }
}

#[test]
fn invalid_utf8_is_an_error_naming_the_argument() {
    let fixture = Fixture::new("utf8");
    let exp = fixture.exp;
    let table = fixture.metrics();
    let mut out = ptr::null_mut();
    // SAFETY (this block): every pointer is valid.
    unsafe {
        assert_fails(
            expman_experiment_create(
                BAD_UTF8,
                ptr::null(),
                c!("/tmp"),
                ptr::null(),
                0,
                ptr::null(),
                ptr::null(),
                0,
                &mut out,
            ),
            EXPMAN_ERR_UTF8,
            &["expman_experiment_create", "`name`", "UTF-8"],
        );
        let tags = [c!("fine"), BAD_UTF8];
        assert_fails(
            expman_experiment_create(
                c!("n"),
                ptr::null(),
                c!("/tmp"),
                tags.as_ptr(),
                2,
                ptr::null(),
                ptr::null(),
                0,
                &mut out,
            ),
            EXPMAN_ERR_UTF8,
            &["tags[1]"],
        );
        assert!(out.is_null());
        assert_fails(
            expman_experiment_set_error(exp, BAD_UTF8),
            EXPMAN_ERR_UTF8,
            &["`message`"],
        );
        assert_fails(
            expman_experiment_table(exp, BAD_UTF8, &mut ptr::null_mut()),
            EXPMAN_ERR_UTF8,
            &["`name`"],
        );
        assert_fails(
            expman_table_set_f64(table, BAD_UTF8, 1.0),
            EXPMAN_ERR_UTF8,
            &["`name`"],
        );
        assert_fails(
            expman_table_set_str(table, c!("note"), BAD_UTF8),
            EXPMAN_ERR_UTF8,
            &["`v`"],
        );
        let mut id = 0;
        assert_fails(
            expman_table_field_id(table, BAD_UTF8, &mut id),
            EXPMAN_ERR_UTF8,
            &["`name`"],
        );

        // In a typed value: nothing of the row is set, and the message names the field.
        let a = fixture.field(table, "a");
        let note = fixture.field(table, "note");
        let values = [value_f(1.0), value_str(b"ok\xfe")];
        assert_fails(
            expman_table_save_row_values(table, [a, note].as_ptr(), values.as_ptr(), 2),
            EXPMAN_ERR_UTF8,
            &["values[1]", "\"note\"", "UTF-8"],
        );
        ok(expman_table_save_row(table));
    }
    assert!(
        !Path::new(&fixture.dir())
            .join("metrics/run_0001.csv")
            .exists(),
        "the failed row left nothing pending"
    );
}

#[test]
fn field_ids_must_belong_to_the_table() {
    let fixture = Fixture::new("ids");
    let exp = fixture.exp;
    let table = fixture.metrics();
    let mut other = ptr::null_mut();
    // SAFETY: a live experiment, a valid string and out-pointer.
    ok(unsafe { expman_experiment_table(exp, c!("other"), &mut other) });
    let a = fixture.field(table, "a");
    let foreign = fixture.field(other, "b");
    let foreign2 = fixture.field(other, "c");
    let foreign2_text = format!("field id {foreign2}");
    // SAFETY (this block): valid tables and arrays.
    unsafe {
        // An id of `other`: refused before anything is set.
        assert_fails(
            expman_table_save_row_f64(table, [a, foreign2].as_ptr(), [1.0, 2.0].as_ptr(), 2),
            EXPMAN_ERR_ARGUMENT,
            &["expman_table_save_row_f64", &foreign2_text, "run_0001.csv"],
        );
        // The first field of each table has the same number: its id still names its own
        // table (it used to set `a` here, silently).
        assert_fails(
            expman_table_save_row_f64(table, [foreign].as_ptr(), [1.0].as_ptr(), 1),
            EXPMAN_ERR_ARGUMENT,
            &["field id", "run_0001.csv"],
        );
        assert_fails(
            expman_table_set_values(table, [u32::MAX].as_ptr(), [value_f(1.0)].as_ptr(), 1),
            EXPMAN_ERR_ARGUMENT,
            &["field id 4294967295", "run_0001.csv"],
        );
        assert_fails(
            expman_table_save_row_values(table, [a].as_ptr(), [value_i(9, 0)].as_ptr(), 1),
            EXPMAN_ERR_ARGUMENT,
            &["values[0].kind is 9"],
        );
        assert_fails(
            expman_experiment_set_sync(exp, 7, 0),
            EXPMAN_ERR_ARGUMENT,
            &["sync mode 7"],
        );
        // Misaligned arrays are refused, not read.
        let bytes = [0u8; 16];
        assert_fails(
            expman_table_save_row_f64(table, bytes.as_ptr().add(1).cast(), [1.0].as_ptr(), 1),
            EXPMAN_ERR_ARGUMENT,
            &["`ids`", "aligned"],
        );
        ok(expman_table_save_row(table));
        // In its own table it is fine.
        ok(expman_table_save_row_f64(
            other,
            [foreign].as_ptr(),
            [3.0].as_ptr(),
            1,
        ));
    }
    assert!(
        !Path::new(&fixture.dir())
            .join("metrics/run_0001.csv")
            .exists(),
        "refused rows set nothing"
    );
    assert_eq!(fixture.load(Some("other")).n_rows(), 1);
}

#[test]
fn out_of_range_indexes() {
    let fixture = Fixture::new("ranges");
    let table = fixture.metrics();
    // SAFETY: a live table and valid strings.
    unsafe {
        ok(expman_table_set_str(table, c!("model"), c!("cnn")));
        ok(expman_table_set_f64(table, c!("acc"), 0.5));
        ok(expman_table_save_row(table));
    }
    let m = fixture.load(None);
    assert_eq!(m.columns(), ["timestamp", "run_id", "model", "acc"]);
    let mut value = empty_value();
    let mut doubles = [7.0; 1];
    // SAFETY (this block): live metrics and valid out-pointers.
    unsafe {
        assert!(expman_metrics_column_name(m.0, 4).is_null());
        assert!(last_error().contains("column 4 is out of range"));
        assert_eq!(expman_metrics_column_type(m.0, usize::MAX), -1);
        assert_fails(
            expman_metrics_get(m.0, 1, 0, &mut value),
            EXPMAN_ERR_ARGUMENT,
            &["row 1", "1 rows"],
        );
        assert_fails(
            expman_metrics_get(m.0, 0, 4, &mut value),
            EXPMAN_ERR_ARGUMENT,
            &["column 4", "4 columns"],
        );
        assert_eq!(value.kind, -7, "outputs are written only on success");
        assert_fails(
            expman_metrics_column_f64(m.0, 3, doubles.as_mut_ptr(), 2),
            EXPMAN_ERR_ARGUMENT,
            &["n is 2", "1 rows"],
        );
        assert_fails(
            expman_metrics_column_f64(m.0, 2, doubles.as_mut_ptr(), 1),
            EXPMAN_ERR_ARGUMENT,
            &["\"model\"", "text"],
        );
        assert_fails(
            expman_metrics_column_f64(m.0, 9, doubles.as_mut_ptr(), 1),
            EXPMAN_ERR_ARGUMENT,
            &["column 9"],
        );
        assert_eq!(doubles, [7.0], "nothing written on failure");
        ok(expman_metrics_column_f64(m.0, 3, doubles.as_mut_ptr(), 1));
        assert_eq!(doubles, [0.5]);
    }
}

#[test]
fn core_errors_carry_their_code_and_message() {
    let missing = c!("/nonexistent/expman/metrics.csv");
    let mut m = ptr::null_mut();
    // SAFETY: a valid path and out-pointer.
    assert_fails(
        unsafe { expman_metrics_read(missing, &mut m) },
        EXPMAN_ERR_IO,
        &["expman_metrics_read", "/nonexistent/expman/metrics.csv"],
    );
    assert!(m.is_null());
    let fixture = Fixture::new("core");
    let table = fixture.metrics();
    // SAFETY: a live table and experiment, valid strings.
    unsafe {
        assert_fails(
            expman_table_set_f64(table, c!("run_id"), 1.0),
            EXPMAN_ERR_INVALID_NAME,
            &["\"run_id\""],
        );
        assert_fails(
            expman_table_set_f64(table, c!("tab\there"), 1.0),
            EXPMAN_ERR_INVALID_NAME,
            &["control"],
        );
        // A run that saved no row has no file yet: its table, and a named table never
        // written, read as empty (the core's rule, the same in every binding).
        for table in [ptr::null(), c!("never_written")] {
            ok(expman_experiment_load_metrics(fixture.exp, table, &mut m));
            assert_eq!(expman_metrics_n_rows(m), 0);
            assert_eq!(expman_metrics_n_columns(m), 2);
            expman_metrics_free(m);
        }
        ok(expman_experiment_set_error(
            fixture.exp,
            c!("diverged: loss is NaN"),
        ));
    }
    let status = std::fs::read_to_string(Path::new(&fixture.dir()).join("status.json")).unwrap();
    assert!(status.contains("diverged: loss is NaN"), "{status}");
}

#[test]
fn free_null_is_a_no_op() {
    // SAFETY: NULL is documented as a no-op.
    unsafe {
        expman_experiment_free(ptr::null_mut());
        expman_metrics_free(ptr::null_mut());
    }
}

/// Raw pointers are not `Send`; the experiment is documented as thread-safe.
#[derive(Clone, Copy)]
struct Shared(*mut expman_table);
// SAFETY: expman_table calls take the experiment's lock.
unsafe impl Send for Shared {}

#[test]
fn threads_share_one_experiment() {
    const THREADS: usize = 8;
    const ROWS: usize = 200;
    let fixture = Fixture::new("threads");
    let table = Shared(fixture.metrics());
    let thread = fixture.field(table.0, "thread");
    let step = fixture.field(table.0, "step");
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            scope.spawn(move || {
                let table = table;
                for s in 0..ROWS {
                    let values = [t as f64, s as f64];
                    // SAFETY: a live table; two ids and two values.
                    ok(unsafe {
                        expman_table_save_row_f64(
                            table.0,
                            [thread, step].as_ptr(),
                            values.as_ptr(),
                            2,
                        )
                    });
                }
            });
        }
    });
    let m = fixture.load(None);
    assert_eq!(m.n_rows(), THREADS * ROWS);
    let threads = m.column_f64(m.col("thread"));
    let steps = m.column_f64(m.col("step"));
    for t in 0..THREADS {
        let mine: Vec<f64> = threads
            .iter()
            .zip(&steps)
            .filter(|(th, _)| **th == t as f64)
            .map(|(_, s)| *s)
            .collect();
        let expected: Vec<f64> = (0..ROWS).map(|s| s as f64).collect();
        assert_eq!(mine, expected, "thread {t}'s rows, whole and in order");
    }
}

#[test]
fn status_json_is_read_by_the_library_and_sync_modes_are_named() {
    let fixture = Fixture::new("status_json");
    let mut json: *mut c_char = ptr::null_mut();
    // SAFETY: a live experiment, a writable out-pointer; the string is freed once.
    let text = unsafe {
        ok(expman_experiment_status_json(fixture.exp, &mut json));
        let text = CStr::from_ptr(json).to_str().unwrap().to_string();
        expman_string_free(json);
        expman_string_free(ptr::null_mut());
        text
    };
    let status: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(status["status"], "Running", "{text}");
    assert_eq!(status["run_id"], "run_0001", "{text}");
    assert_eq!(
        [
            EXPMAN_SYNC_WRITE_THROUGH,
            EXPMAN_SYNC_EVERY_ROW,
            EXPMAN_SYNC_INTERVAL
        ],
        [0, 1, 2]
    );
    // SAFETY: a live experiment.
    unsafe {
        for mode in [
            EXPMAN_SYNC_EVERY_ROW,
            EXPMAN_SYNC_INTERVAL,
            EXPMAN_SYNC_WRITE_THROUGH,
        ] {
            ok(expman_experiment_set_sync(fixture.exp, mode, 10));
        }
        assert_fails(
            expman_experiment_set_sync(fixture.exp, 3, 0),
            EXPMAN_ERR_ARGUMENT,
            &["unknown sync mode 3"],
        );
    }
}

/// An interval of seconds too large for a Duration (1e300) panicked inside the call: the
/// panic was caught at the boundary, but it poisoned the handle, and every later call on the
/// experiment (set_finished included) returned PANIC. Now it is an argument error.
#[test]
fn a_huge_sampling_interval_is_an_argument_error_not_a_panic() {
    let fixture = Fixture::new("interval");
    let exp = fixture.exp;
    // SAFETY: a live experiment.
    unsafe {
        for bad in [1e300, f64::INFINITY, f64::NAN, -1.0] {
            assert_fails(
                expman_experiment_start_system_metrics(exp, bad),
                EXPMAN_ERR_ARGUMENT,
                &["interval_s", "pass e.g. 10.0"],
            );
        }
        ok(expman_experiment_set_finished(exp));
    }
}
