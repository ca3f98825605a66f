//! The parameters part of the C ABI called from Rust as a C caller would:
//! `expman_experiment_create_with_params`, `_set_param_{f64,i64,bool,str}`,
//! `_log_params_json` and `_params_json`, their happy paths and their error paths (NULL,
//! invalid UTF-8, bad JSON, bad names and values: a status, a message naming the parameter,
//! nothing written). The same calls run from real C in `tests/c/params.c`.

use std::ffi::{CStr, CString, c_char};
use std::path::{Path, PathBuf};
use std::ptr;

use expman::ffi::*;
use serde_json::{Value as Json, json};

/// Invalid UTF-8 (a lone continuation byte), NUL-terminated.
const BAD_UTF8: *const c_char = c"bad\xff".as_ptr();

fn last_error() -> String {
    // SAFETY: never NULL; a NUL-terminated string valid until the next call on this thread.
    unsafe { CStr::from_ptr(expman_last_error()) }
        .to_string_lossy()
        .into_owned()
}

#[track_caller]
fn ok(status: expman_status) {
    assert_eq!(status, EXPMAN_OK, "last error: {}", last_error());
}

#[track_caller]
fn assert_fails(status: expman_status, expected: expman_status, needles: &[&str]) {
    let message = last_error();
    assert_eq!(status, expected, "status (last error: {message})");
    for needle in needles {
        assert!(
            message.contains(needle),
            "{message:?} should mention {needle:?}"
        );
    }
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// `expman_experiment_create_with_params` under `base`; the status and the handle.
fn create(base: &Path, params_json: Option<&str>) -> (expman_status, *mut expman_experiment) {
    let base = cstr(base.to_str().unwrap());
    let params = params_json.map(cstr);
    let mut exp = ptr::null_mut();
    // SAFETY: valid strings (or NULL) and out-pointer; no tags or GPUs.
    let status = unsafe {
        expman_experiment_create_with_params(
            c"params".as_ptr(),
            c"train".as_ptr(),
            base.as_ptr(),
            ptr::null(),
            0,
            ptr::null(),
            ptr::null(),
            0,
            params.as_ref().map_or(ptr::null(), |p| p.as_ptr()),
            &mut exp,
        )
    };
    (status, exp)
}

/// An owned experiment handle, freed on drop.
struct Exp(*mut expman_experiment);

impl Exp {
    fn dir(&self) -> PathBuf {
        // SAFETY: a live experiment; the path is copied at once.
        let dir = unsafe { CStr::from_ptr(expman_experiment_dir(self.0)) };
        PathBuf::from(dir.to_str().unwrap())
    }

    fn params(&self) -> Json {
        let mut out = ptr::null_mut();
        // SAFETY: a live experiment and a valid out-pointer.
        ok(unsafe { expman_experiment_params_json(self.0, &mut out) });
        // SAFETY: a NUL-terminated string from expman, freed right after it is copied.
        let text = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_string();
        // SAFETY: the string expman handed over, freed once.
        unsafe { expman_string_free(out) };
        serde_json::from_str(&text).unwrap()
    }

    fn config_text(&self) -> String {
        std::fs::read_to_string(self.dir().join("config.json")).unwrap()
    }

    fn files(&self) -> [Vec<u8>; 2] {
        ["config.json", "status.json"].map(|f| std::fs::read(self.dir().join(f)).unwrap())
    }
}

impl Drop for Exp {
    fn drop(&mut self) {
        // SAFETY: a live experiment, not used again.
        unsafe { expman_experiment_free(self.0) };
    }
}

fn read_json(path: &Path) -> Json {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn create_with_params_records_typed_flattened_params() {
    let base = tempfile::tempdir().unwrap();
    let (status, exp) = create(
        base.path(),
        Some(r#"{"lr": 0.01, "depth": 18, "ratio": 2.0, "opt": {"name": "adam"}, "aug": false}"#),
    );
    ok(status);
    let exp = Exp(exp);
    let expected = json!({"aug": false, "depth": 18, "lr": 0.01, "opt.name": "adam", "ratio": 2.0});
    assert_eq!(exp.params(), expected);
    let config = read_json(&exp.dir().join("config.json"));
    assert_eq!(config["params"], expected);
    assert!(exp.config_text().contains("\"ratio\": 2.0\n"));
    assert!(exp.config_text().contains("\"depth\": 18,\n"));

    // NULL params: none, as expman_experiment_create records.
    let (status, none) = create(base.path(), None);
    ok(status);
    assert_eq!(Exp(none).params(), json!({}));
}

#[test]
fn create_with_bad_params_fails_and_creates_nothing() {
    let base = tempfile::tempdir().unwrap();
    let cases: [(&str, expman_status, &[&str]); 5] = [
        (
            "{not json",
            EXPMAN_ERR_INVALID_VALUE,
            &["params_json", "not valid JSON"],
        ),
        ("[1]", EXPMAN_ERR_INVALID_VALUE, &["JSON object"]),
        (
            r#"{"a": {"b": [1]}}"#,
            EXPMAN_ERR_INVALID_VALUE,
            &["a.b", "list"],
        ),
        (r#"{"x": null}"#, EXPMAN_ERR_INVALID_VALUE, &["parameter x"]),
        (r#"{"a..b": 1}"#, EXPMAN_ERR_INVALID_NAME, &["a..b"]),
    ];
    for (json, code, needles) in cases {
        let (status, exp) = create(base.path(), Some(json));
        assert_fails(status, code, needles);
        assert!(exp.is_null(), "out written on failure");
        assert!(last_error().starts_with("expman_experiment_create_with_params: "));
        assert_eq!(
            std::fs::read_dir(base.path()).unwrap().count(),
            0,
            "{json}: created"
        );
    }
    // SAFETY: BAD_UTF8 is NUL-terminated; the out-pointer is valid; no tags or GPUs.
    let status = unsafe {
        let mut exp = ptr::null_mut();
        expman_experiment_create_with_params(
            c"n".as_ptr(),
            ptr::null(),
            c"/nonexistent-never-created".as_ptr(),
            ptr::null(),
            0,
            ptr::null(),
            ptr::null(),
            0,
            BAD_UTF8,
            &mut exp,
        )
    };
    assert_fails(status, EXPMAN_ERR_UTF8, &["params_json"]);
}

#[test]
fn typed_setters_and_json_log_update_config_and_the_run() {
    let base = tempfile::tempdir().unwrap();
    let (status, exp) = create(base.path(), Some(r#"{"lr": 0.1}"#));
    ok(status);
    let exp = Exp(exp);
    // SAFETY: a live experiment and NUL-terminated strings.
    unsafe {
        ok(expman_experiment_set_param_f64(exp.0, c"lr".as_ptr(), 0.01));
        ok(expman_experiment_set_param_f64(exp.0, c"wd".as_ptr(), 0.0));
        ok(expman_experiment_set_param_i64(
            exp.0,
            c"depth".as_ptr(),
            -18,
        ));
        ok(expman_experiment_set_param_i64(
            exp.0,
            c"big".as_ptr(),
            i64::MAX,
        ));
        ok(expman_experiment_set_param_bool(
            exp.0,
            c"aug".as_ptr(),
            true,
        ));
        ok(expman_experiment_set_param_str(
            exp.0,
            c"opt.name".as_ptr(),
            c"adam, \"v2\"\n".as_ptr(),
        ));
        ok(expman_experiment_log_params_json(
            exp.0,
            cr#"{"sched": {"kind": "cos", "warmup": 5}}"#.as_ptr(),
        ));
    }
    let expected = json!({"aug": true, "big": i64::MAX, "depth": -18, "lr": 0.01,
                          "opt.name": "adam, \"v2\"\n", "sched.kind": "cos",
                          "sched.warmup": 5, "wd": 0.0});
    assert_eq!(exp.params(), expected);
    assert_eq!(
        read_json(&exp.dir().join("config.json"))["params"],
        expected
    );
    assert_eq!(
        read_json(&exp.dir().join("status.json"))["params"],
        expected
    );
    assert!(exp.config_text().contains("\"wd\": 0.0\n"));
}

#[test]
fn setter_errors_name_the_argument_or_parameter_and_write_nothing() {
    let base = tempfile::tempdir().unwrap();
    let (status, exp) = create(base.path(), Some(r#"{"lr": 0.1}"#));
    ok(status);
    let exp = Exp(exp);
    let before = exp.files();
    // SAFETY: a live experiment (or NULL, refused), NUL-terminated strings (or NULL).
    unsafe {
        assert_fails(
            expman_experiment_set_param_f64(exp.0, c"lr".as_ptr(), f64::NAN),
            EXPMAN_ERR_INVALID_VALUE,
            &[
                "expman_experiment_set_param_f64",
                "parameter lr",
                "not finite",
            ],
        );
        assert_fails(
            expman_experiment_set_param_f64(exp.0, c"lr".as_ptr(), f64::NEG_INFINITY),
            EXPMAN_ERR_INVALID_VALUE,
            &["not finite"],
        );
        assert_fails(
            expman_experiment_set_param_i64(exp.0, c"a..b".as_ptr(), 1),
            EXPMAN_ERR_INVALID_NAME,
            &["\"a..b\""],
        );
        assert_fails(
            expman_experiment_set_param_bool(exp.0, c"".as_ptr(), true),
            EXPMAN_ERR_INVALID_NAME,
            &["empty"],
        );
        assert_fails(
            expman_experiment_set_param_str(exp.0, c"x".as_ptr(), ptr::null()),
            EXPMAN_ERR_NULL,
            &["`value`"],
        );
        assert_fails(
            expman_experiment_set_param_str(exp.0, c"x".as_ptr(), BAD_UTF8),
            EXPMAN_ERR_UTF8,
            &["value"],
        );
        assert_fails(
            expman_experiment_set_param_i64(exp.0, ptr::null(), 1),
            EXPMAN_ERR_NULL,
            &["`name`"],
        );
        assert_fails(
            expman_experiment_set_param_i64(exp.0, BAD_UTF8, 1),
            EXPMAN_ERR_UTF8,
            &["name"],
        );
        assert_fails(
            expman_experiment_set_param_f64(ptr::null_mut(), c"lr".as_ptr(), 1.0),
            EXPMAN_ERR_NULL,
            &["`exp`"],
        );
        assert_fails(
            expman_experiment_log_params_json(exp.0, c"{\"ok\": 1, \"bad\": [1]}".as_ptr()),
            EXPMAN_ERR_INVALID_VALUE,
            &["parameter bad"],
        );
        assert_fails(
            expman_experiment_log_params_json(exp.0, c"nope".as_ptr()),
            EXPMAN_ERR_INVALID_VALUE,
            &["\"json\"", "not valid JSON"],
        );
        assert_fails(
            expman_experiment_log_params_json(exp.0, ptr::null()),
            EXPMAN_ERR_NULL,
            &["`json`"],
        );
        assert_fails(
            expman_experiment_params_json(exp.0, ptr::null_mut()),
            EXPMAN_ERR_NULL,
            &["`out`"],
        );
        let mut out = ptr::null_mut();
        assert_fails(
            expman_experiment_params_json(ptr::null(), &mut out),
            EXPMAN_ERR_NULL,
            &["`exp`"],
        );
        assert!(out.is_null());
    }
    assert_eq!(exp.files(), before);
    assert_eq!(exp.params(), json!({"lr": 0.1}));
}
