//! The catalog (issue 13): experiment records with effective parameters and the latest run's
//! metric summaries, filtered and sorted by the query language, kept up to date incrementally;
//! over directories made by the real API.

mod catalog_support;

use catalog_support::{make, set_params, sweep};
use expman::catalog::{Catalog, list};
use expman::params::ParamValue;
use expman::query::{Query, SortKey};
use expman::{ErrorKind, Experiment, RunState};
use serde_json::json;

fn names(records: &[expman::catalog::ExperimentRecord]) -> Vec<&str> {
    records.iter().map(|r| r.name.as_str()).collect()
}

#[test]
fn records_hold_effective_params_and_summaries() {
    let base = tempfile::tempdir().unwrap();
    let made = sweep(base.path());
    let records = list(base.path(), None, &[]).unwrap();
    assert_eq!(records.len(), 4);
    let b = records.iter().find(|r| r.id == made[1].id).unwrap();
    assert_eq!(b.status, RunState::Finished);
    assert_eq!(b.params["lr"], ParamValue::Float(0.01));
    assert_eq!(b.params["depth"], ParamValue::Int(18));
    // The config row's columns join the params and are not metrics.
    assert_eq!(b.params["model"], ParamValue::Str("resnet".into()));
    assert_eq!(b.params["batch_size"], ParamValue::Int(32));
    assert!(b.metric("batch_size").is_none());
    let acc = b.metric("val_acc").unwrap();
    assert_eq!(
        (acc.max, acc.max_step, acc.last, acc.count),
        (0.9, 1.0, 0.88, 3)
    );
    assert_eq!(b.command, "python train.py --name resnet_b");
    assert_eq!(b.runs, 1);
    assert!(!b.host.is_empty());
}

#[test]
fn config_params_win_over_config_row_params() {
    let base = tempfile::tempdir().unwrap();
    let m = make(
        base.path(),
        "x",
        json!({"batch_size": 64}),
        &[0.1, 0.2],
        true,
    );
    let records = list(base.path(), None, &[]).unwrap();
    assert_eq!(records[0].id, m.id);
    assert_eq!(records[0].params["batch_size"], ParamValue::Int(64));
}

#[test]
fn queries_and_sorts() {
    let base = tempfile::tempdir().unwrap();
    sweep(base.path());
    let found = list(
        base.path(),
        Some("params.lr < 0.05 and metrics.val_acc.max >= 0.8"),
        &["-metrics.val_acc.max"],
    )
    .unwrap();
    assert_eq!(names(&found), ["resnet_b", "vit_c"]);
    let by_lr = list(base.path(), None, &["params.lr"]).unwrap();
    assert_eq!(names(&by_lr), ["vit_c", "resnet_b", "resnet_a", "empty_d"]);
    let by_lr_desc = list(base.path(), None, &["-params.lr"]).unwrap();
    assert_eq!(
        names(&by_lr_desc),
        ["resnet_a", "resnet_b", "vit_c", "empty_d"],
        "missing values last in both directions"
    );
    let glob = list(
        base.path(),
        Some("name ~ \"resnet*\" and tag = SWEEP"),
        &["name"],
    )
    .unwrap();
    assert_eq!(names(&glob), ["resnet_a", "resnet_b"]);
    let words = list(base.path(), Some("vit"), &[]).unwrap();
    assert_eq!(
        names(&words),
        ["vit_c"],
        "bare words search as the board did"
    );
}

#[test]
fn bad_queries_say_where() {
    let base = tempfile::tempdir().unwrap();
    sweep(base.path());
    let err = list(base.path(), Some("params.lr <<< 1"), &[]).unwrap_err();
    let ErrorKind::Config { message, .. } = err.kind() else {
        panic!("{err}")
    };
    assert!(
        message.contains("column 12") && message.contains('^'),
        "{message}"
    );
    let err = list(base.path(), Some("params.lrr < 1"), &[]).unwrap_err();
    assert!(
        err.to_string().contains("did you mean `params.lr`"),
        "{err}"
    );
    let err = list(base.path(), None, &["-nme"]).unwrap_err();
    assert!(err.to_string().contains("`name`"), "{err}");
}

#[test]
fn refresh_reads_only_what_changed() {
    let base = tempfile::tempdir().unwrap();
    let made = sweep(base.path());
    let mut catalog = Catalog::new(base.path());
    assert_eq!(catalog.refresh().unwrap(), 4);
    assert_eq!(catalog.refresh().unwrap(), 0, "nothing changed");
    // A new run appends to its own table: only that experiment changes.
    let mut exp = Experiment::open(&made[2].dir).unwrap();
    exp.upd_row([
        ("step", expman::Value::from(2i64)),
        ("val_acc", 0.95.into()),
    ])
    .unwrap();
    exp.save_row().unwrap();
    assert_eq!(catalog.refresh().unwrap(), 1);
    let vit = catalog.get(&made[2].id).unwrap();
    assert_eq!(vit.metric("val_acc").unwrap().max, 0.95);
    assert_eq!(vit.runs, 2, "opening started a second run");
    assert!(
        !vit.params.contains_key("model"),
        "the new run has no config row of its own"
    );
    set_params(&made[0].dir, json!({"lr": 0.5}));
    assert_eq!(catalog.refresh().unwrap(), 1);
    assert_eq!(
        catalog.get(&made[0].id).unwrap().params["lr"],
        ParamValue::Float(0.5)
    );
    std::fs::remove_dir_all(&made[3].dir).unwrap();
    assert_eq!(catalog.refresh().unwrap(), 1);
    assert_eq!(catalog.records().len(), 3);
    let q = Query::parse("metrics.val_acc.max > 0.9").unwrap();
    let key = SortKey::parse("name").unwrap();
    let hits: Vec<&str> = catalog
        .select(&q, &[key])
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(hits, ["vit_c"]);
}

#[test]
fn json_shape() {
    let base = tempfile::tempdir().unwrap();
    let m = make(
        base.path(),
        "nan",
        json!({"lr": 0.1, "depth": 18}),
        &[f64::NAN, 1.0],
        true,
    );
    let mut exp = Experiment::open(&m.dir).unwrap();
    exp.upd_row([("loss", expman::Value::from(f64::INFINITY))])
        .unwrap();
    exp.save_row().unwrap();
    exp.upd_row([("loss", expman::Value::from(f64::NEG_INFINITY))])
        .unwrap();
    exp.save_row().unwrap();
    let records = list(base.path(), None, &[]).unwrap();
    let v = serde_json::to_value(&records[0]).unwrap();
    assert_eq!(v["params"], json!({"lr": 0.1, "depth": 18}), "{v}");
    let loss = &v["metrics"]["loss"];
    assert_eq!(
        (&loss["max"], &loss["min"], &loss["last"], &loss["count"]),
        (&json!("inf"), &json!("-inf"), &json!("-inf"), &json!(2))
    );
    assert_eq!(v["status"], json!("Running"));
    assert!(v["command"].is_string() && v["host"].is_string());
}

/// The C ABI's listing: NULL where/sort mean none, errors through the last error, the output
/// written only on success.
#[test]
fn c_abi_lists_as_json() {
    use std::ffi::{CStr, CString, c_char};

    use expman::ffi::{EXPMAN_ERR_CONFIG, EXPMAN_ERR_NULL, EXPMAN_OK, expman_last_error};
    use expman::ffi::{expman_list_experiments_json, expman_string_free};

    let base = tempfile::tempdir().unwrap();
    sweep(base.path());
    let base_c = CString::new(base.path().to_str().unwrap()).unwrap();
    let mut out: *mut c_char = std::ptr::null_mut();
    // SAFETY: valid strings and a writable out-pointer.
    let status = unsafe {
        expman_list_experiments_json(
            base_c.as_ptr(),
            std::ptr::null(),
            std::ptr::null(),
            &mut out,
        )
    };
    assert_eq!(status, EXPMAN_OK);
    // SAFETY: written on success, NUL-terminated.
    let json: serde_json::Value =
        serde_json::from_str(unsafe { CStr::from_ptr(out) }.to_str().unwrap()).unwrap();
    // SAFETY: owned by us, freed once.
    unsafe { expman_string_free(out) };
    assert_eq!(json.as_array().unwrap().len(), 4);

    let query = CString::new("params.lr <= 0.01").unwrap();
    let sort = CString::new("-params.lr, name").unwrap();
    let mut out: *mut c_char = std::ptr::null_mut();
    // SAFETY: as above.
    let status = unsafe {
        expman_list_experiments_json(base_c.as_ptr(), query.as_ptr(), sort.as_ptr(), &mut out)
    };
    assert_eq!(status, EXPMAN_OK);
    // SAFETY: as above.
    let json: serde_json::Value =
        serde_json::from_str(unsafe { CStr::from_ptr(out) }.to_str().unwrap()).unwrap();
    // SAFETY: as above.
    unsafe { expman_string_free(out) };
    let names: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["resnet_b", "vit_c"]);

    let bad = CString::new("params.lr <<< 1").unwrap();
    let mut out: *mut c_char = std::ptr::null_mut();
    // SAFETY: as above.
    let status = unsafe {
        expman_list_experiments_json(base_c.as_ptr(), bad.as_ptr(), std::ptr::null(), &mut out)
    };
    assert_eq!(status, EXPMAN_ERR_CONFIG);
    assert!(out.is_null(), "written only on success");
    // SAFETY: the last error is a NUL-terminated string owned by the library.
    let message = unsafe { CStr::from_ptr(expman_last_error()) }
        .to_str()
        .unwrap();
    assert!(
        message.contains("column 12") && message.contains('^'),
        "{message}"
    );
    // SAFETY: a NULL base_dir is an error, not UB.
    let status = unsafe {
        expman_list_experiments_json(
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
            &mut out,
        )
    };
    assert_eq!(status, EXPMAN_ERR_NULL);
}

/// A first listing of many directories reads them on several threads: every one is there, once,
/// with its own values.
#[test]
fn many_experiments_are_read_in_parallel_and_whole() {
    let base = tempfile::tempdir().unwrap();
    let made = make(base.path(), "seed", json!({"lr": 0.5}), &[0.1, 0.2], true);
    // Copies of a directory the API made, each with its own lr (as a sweep would record).
    for i in 0..300 {
        let copy = base.path().join(format!("copy_{i:04}"));
        std::fs::create_dir_all(copy.join("metrics")).unwrap();
        for file in ["config.json", "status.json", "metrics/run_0001.csv"] {
            std::fs::copy(made.dir.join(file), copy.join(file)).unwrap();
        }
        set_params(&copy, json!({"lr": i}));
    }
    let records = list(base.path(), Some("params.lr >= 150"), &["-params.lr"]).unwrap();
    assert_eq!(records.len(), 150);
    assert_eq!(records[0].params["lr"], ParamValue::Int(299));
    assert_eq!(records[0].id, "copy_0299");
    assert!(
        records
            .iter()
            .all(|r| r.metric("val_acc").is_some_and(|m| m.max == 0.2))
    );
    assert_eq!(list(base.path(), None, &[]).unwrap().len(), 301);
}

/// Params recorded through the real API: the builder's, then a later run's `log_params`; each
/// run keeps its own values (details' runs), the listing shows the latest run's.
#[test]
fn logged_params_per_run() {
    use expman::catalog::{State, run_infos};

    let base = tempfile::tempdir().unwrap();
    let mut exp = Experiment::builder("p", base.path())
        .params([
            ("lr", ParamValue::Float(0.1)),
            ("depth", ParamValue::Int(18)),
        ])
        .create()
        .unwrap();
    exp.upd_row([("acc", expman::Value::from(0.5))]).unwrap();
    exp.save_row().unwrap();
    exp.set_finished().unwrap();
    let dir = exp.dir().to_path_buf();
    drop(exp);
    let mut second = Experiment::open(&dir).unwrap();
    second.log_params([("lr", 0.2)]).unwrap();
    second.upd_row([("acc", expman::Value::from(0.7))]).unwrap();
    second.save_row().unwrap();
    second.set_finished().unwrap();

    let records = list(base.path(), None, &[]).unwrap();
    assert_eq!(records[0].params["lr"], ParamValue::Float(0.2));
    assert_eq!(records[0].params["depth"], ParamValue::Int(18));
    assert_eq!(records[0].metric("acc").unwrap().last, 0.7);

    let opened = expman::ExperimentDir::open(&dir).unwrap();
    let state = State::read(&opened, &|_| Ok(()));
    let runs = ["run_0001".to_string(), "run_0002".to_string()];
    let infos = run_infos(&state, &runs, |run| Some(opened.table_path(run)));
    assert_eq!(
        infos[0].params["lr"],
        ParamValue::Float(0.1),
        "run 1 keeps its own lr"
    );
    assert_eq!(infos[1].params["lr"], ParamValue::Float(0.2));
    assert_eq!(infos[0].metrics["acc"].0.last, 0.5);
    assert_eq!(infos[1].metrics["acc"].0.last, 0.7);
}

/// An unreadable `status.json` put the experiment in Error (right) and dropped its metric
/// summaries (`runs: 0`, NaN in `EXP ls`), although the metrics were intact and the message
/// said so. The latest run with a table is summarised now.
#[test]
fn an_unreadable_status_keeps_the_metric_summaries() {
    let base = tempfile::tempdir().unwrap();
    let made = sweep(base.path());
    let dir = base.path().join(&made[1].id);
    std::fs::write(dir.join("status.json"), "{\"status\": \"Runn").unwrap();
    let records = list(base.path(), None, &[]).unwrap();
    let b = records.iter().find(|r| r.id == made[1].id).unwrap();
    assert_eq!(b.status, RunState::Error);
    assert!(
        b.error
            .as_deref()
            .unwrap_or_default()
            .contains("status.json")
    );
    let acc = b
        .metric("val_acc")
        .expect("the metrics are still summarised");
    assert_eq!((acc.last, acc.count), (0.88, 3));
}
