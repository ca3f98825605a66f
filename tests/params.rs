//! Hyperparameters through the Rust API, in real files: the builder's `.params()`,
//! `Experiment::log_params` (atomic, per run, never losing another writer's), `params()`, and
//! `EXPMAN_PARAMS` picked up by `create()` in a child process (new experiment and attached).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{MARK, child_command, report};
use expman::params::{ENV_PARAMS, ParamValue, Params};
use expman::{ENV_EXPERIMENT_DIR, ENV_RUN_ID, ErrorKind, Experiment, RunId};
use serde_json::{Value as Json, json};

/// Entry point of the child processes (a no-op in a normal test run).
#[test]
fn child() {
    common::child_main(|role| match role {
        // `create()` as a job's script calls it, with one explicit parameter.
        "create" => {
            let result = Experiment::builder("job", common::env("EXPMAN_TEST_BASE"))
                .params([("depth", 18)])
                .create();
            match result {
                Ok(mut exp) => {
                    exp.log_params([("batch", 32)]).unwrap();
                    report(format!("attached={}", exp.is_attached()));
                    report(serde_json::to_string(exp.params()).unwrap());
                    report(exp.dir().display().to_string());
                }
                Err(e) => {
                    let config = matches!(e.kind(), ErrorKind::Config { .. });
                    report(format!("error config={config}: {e}"));
                }
            }
        }
        other => panic!("unknown role {other}"),
    });
}

/// The child's reports, after it exited successfully.
fn reports(output: &Output) -> Vec<String> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(MARK))
        .map(str::to_string)
        .collect()
}

fn read_json(path: &Path) -> Json {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn config_params(dir: &Path) -> Json {
    read_json(&dir.join("config.json"))["params"].clone()
}

fn status(dir: &Path) -> Json {
    read_json(&dir.join("status.json"))
}

fn experiments(base: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(base) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

fn builder(name: &str, base: &Path) -> expman::ExperimentBuilder {
    // Whatever the environment of `cargo test` holds, these tests create their own.
    Experiment::builder(name, base)
        .attach_from_env(false)
        .params_from_env(false)
}

#[test]
fn builder_params_round_trip_typed_into_config_json_and_the_first_run() {
    let base = tempfile::tempdir().unwrap();
    let exp = builder("typed", base.path())
        .params([("lr", 0.01), ("ratio", 2.0)])
        .params([("depth", 18)])
        .params([("pretrained", true)])
        .params([("optimizer.name", "adam")])
        .params([("lr", 0.02)]) // a later value wins
        .create()
        .unwrap();
    let expected = json!({"depth": 18, "lr": 0.02, "optimizer.name": "adam",
                          "pretrained": true, "ratio": 2.0});
    assert_eq!(config_params(exp.dir()), expected);
    // Ints stay ints and floats floats, in the file's own text.
    let text = std::fs::read_to_string(exp.dir().join("config.json")).unwrap();
    assert!(text.contains("\"depth\": 18,\n"), "{text}");
    assert!(text.contains("\"ratio\": 2.0\n"), "{text}");
    assert_eq!(status(exp.dir())["params"], expected);
    assert_eq!(exp.params()["depth"], ParamValue::Int(18));
    assert_eq!(exp.params()["ratio"], ParamValue::Float(2.0));
    assert_eq!(exp.config().params, *exp.params());
}

#[test]
fn a_built_params_map_and_flattened_json_are_accepted_as_they_are() {
    let base = tempfile::tempdir().unwrap();
    let nested = json!({"opt": {"lr": 1e-3, "betas": {"b1": 0.9}}, "epochs": 90});
    let params: Params = expman::params::flatten_json(&nested).unwrap();
    let mut exp = builder("built", base.path())
        .params(params.clone())
        .create()
        .unwrap();
    assert_eq!(*exp.params(), params);
    exp.log_params(params.clone()).unwrap();
    assert_eq!(
        config_params(exp.dir()),
        json!({"epochs": 90, "opt.betas.b1": 0.9, "opt.lr": 0.001})
    );
}

#[test]
fn log_params_updates_config_and_the_runs_record_and_a_second_run_keeps_the_first_runs_value() {
    let base = tempfile::tempdir().unwrap();
    let mut first = builder("runs", base.path())
        .params([("lr", 0.1)])
        .create()
        .unwrap();
    first.log_params([("depth", 18)]).unwrap();
    first.log_params([("seed", 1)]).unwrap();
    assert_eq!(
        config_params(first.dir()),
        json!({"lr": 0.1, "depth": 18, "seed": 1})
    );
    assert_eq!(
        status(first.dir())["params"],
        json!({"lr": 0.1, "depth": 18, "seed": 1})
    );
    first.set_finished().unwrap();

    let mut second = Experiment::open(first.dir()).unwrap();
    assert_eq!(second.run_id(), RunId::new(2).unwrap());
    assert_eq!(second.params(), first.params());
    second.log_params([("lr", 0.01)]).unwrap();
    assert_eq!(second.params()["lr"], ParamValue::Float(0.01));
    assert_eq!(second.params()["depth"], ParamValue::Int(18));

    assert_eq!(
        config_params(first.dir()),
        json!({"lr": 0.01, "depth": 18, "seed": 1})
    );
    let status = status(first.dir());
    assert_eq!(status["run_id"], "run_0002");
    assert_eq!(status["params"], json!({"lr": 0.01}));
    assert_eq!(status["history"][0]["run_id"], "run_0001");
    assert_eq!(
        status["history"][0]["params"],
        json!({"lr": 0.1, "depth": 18, "seed": 1})
    );

    // The first run's handle, still open, records into its own history entry.
    first.log_params([("note", "late")]).unwrap();
    let status = self::status(first.dir());
    assert_eq!(status["params"], json!({"lr": 0.01}));
    assert_eq!(status["history"][0]["params"]["note"], "late");
    assert_eq!(first.params()["lr"], ParamValue::Float(0.1));

    // Attaching to the first run sees its own values over config.json's.
    let attached = Experiment::attach(first.dir(), RunId::new(1).unwrap()).unwrap();
    assert_eq!(attached.params()["lr"], ParamValue::Float(0.1));
    assert_eq!(attached.params()["note"], ParamValue::Str("late".into()));
}

#[test]
fn bad_names_and_values_are_refused_naming_the_parameter_and_write_nothing() {
    let base = tempfile::tempdir().unwrap();
    let cases: [(&str, ParamValue, &str); 5] = [
        ("a..b", ParamValue::Int(1), "empty part"),
        ("", ParamValue::Int(1), "empty"),
        ("tab\there", ParamValue::Int(1), "control character"),
        ("lr", ParamValue::Float(f64::NAN), "not finite"),
        ("lr", ParamValue::Float(f64::INFINITY), "not finite"),
    ];
    let fresh = base.path().join("fresh");
    for (name, value, reason) in &cases {
        let err = builder("bad", &fresh)
            .params([("ok", ParamValue::Int(1)), (*name, value.clone())])
            .create()
            .map(drop)
            .expect_err("a bad parameter");
        let message = err.to_string();
        assert!(message.contains(reason), "{message}");
        assert!(
            message.contains(&format!("{name:?}")) || message.contains(name),
            "{message}"
        );
        assert!(
            experiments(&fresh).is_empty(),
            "created {:?}",
            experiments(&fresh)
        );
    }

    let mut exp = builder("good", base.path())
        .params([("lr", 0.1)])
        .create()
        .unwrap();
    let files =
        |dir: &Path| ["config.json", "status.json"].map(|f| std::fs::read(dir.join(f)).unwrap());
    let before = files(exp.dir());
    for (name, value, reason) in cases {
        let err = exp
            .log_params([("ok", ParamValue::Int(2)), (name, value)])
            .expect_err("a bad parameter");
        assert!(err.to_string().contains(reason), "{err}");
        assert_eq!(files(exp.dir()), before, "log_params wrote despite {err}");
    }
    assert_eq!(exp.params()["lr"], ParamValue::Float(0.1));
    assert!(!exp.params().contains_key("ok"));
}

#[test]
fn concurrent_writers_never_lose_each_others_params() {
    let base = tempfile::tempdir().unwrap();
    let exp = builder("concurrent", base.path()).create().unwrap();
    let (dir, run) = (exp.dir().to_path_buf(), exp.run_id());
    std::thread::scope(|s| {
        for who in 0..4 {
            let dir = &dir;
            s.spawn(move || {
                // Separate handles, as separate processes have: each locks the file itself.
                let mut exp = Experiment::attach(dir, run).unwrap();
                for i in 0..25 {
                    exp.log_params([(format!("w{who}.p{i}"), i)]).unwrap();
                }
            });
        }
    });
    let params = config_params(&dir);
    assert_eq!(params.as_object().unwrap().len(), 100, "{params}");
    assert_eq!(status(&dir)["params"], params);
}

#[test]
fn env_params_are_recorded_by_a_new_experiment_with_explicit_params_winning() {
    let base = tempfile::tempdir().unwrap();
    let output = child_command("child", "create")
        .env("EXPMAN_TEST_BASE", base.path())
        .env(
            ENV_PARAMS,
            r#"{"lr": 0.001, "depth": 50, "opt": {"name": "sgd"}}"#,
        )
        .output()
        .unwrap();
    let lines = reports(&output);
    assert_eq!(lines[0], "attached=false");
    let expected = json!({"batch": 32, "depth": 18, "lr": 0.001, "opt.name": "sgd"});
    assert_eq!(serde_json::from_str::<Json>(&lines[1]).unwrap(), expected);
    let dir = Path::new(&lines[2]);
    assert_eq!(config_params(dir), expected);
    assert_eq!(status(dir)["params"], expected);
}

#[test]
fn an_attached_job_keeps_the_schedulers_params_and_env_params_only_fill_gaps() {
    let base = tempfile::tempdir().unwrap();
    // What the scheduler records: the experiment's params, and the job's run.
    let sched = builder("sched", base.path())
        .params([("lr", 0.1), ("wd", 1e-4)])
        .pending()
        .create()
        .unwrap();
    let output = child_command("child", "create")
        .env("EXPMAN_TEST_BASE", base.path().join("unused"))
        .env(ENV_EXPERIMENT_DIR, sched.dir())
        .env(ENV_RUN_ID, sched.run_id().to_string())
        .env(ENV_PARAMS, r#"{"lr": 0.5, "seed": 7}"#)
        .output()
        .unwrap();
    let lines = reports(&output);
    assert_eq!(lines[0], "attached=true");
    let expected = json!({"batch": 32, "depth": 18, "lr": 0.1, "seed": 7, "wd": 0.0001});
    assert_eq!(serde_json::from_str::<Json>(&lines[1]).unwrap(), expected);
    assert_eq!(config_params(sched.dir()), expected);
    assert_eq!(status(sched.dir())["params"], expected);
    assert!(experiments(&base.path().join("unused")).is_empty());
}

#[test]
fn bad_env_params_fail_naming_the_variable_and_create_nothing() {
    for (value, needle) in [
        ("not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        (r#"{"layers": [1, 2]}"#, "layers"),
        (r#"{"a..b": 1}"#, "a..b"),
    ] {
        let base = tempfile::tempdir().unwrap();
        let output = child_command("child", "create")
            .env("EXPMAN_TEST_BASE", base.path())
            .env(ENV_PARAMS, value)
            .output()
            .unwrap();
        let lines = reports(&output);
        assert!(
            lines[0].starts_with("error config=true: EXPMAN_PARAMS: "),
            "{lines:?}"
        );
        assert!(lines[0].contains(needle), "{lines:?}");
        assert!(
            experiments(base.path()).is_empty(),
            "{value}: created something"
        );
    }
}

/// A run that recorded nothing of its own (a retry, a run opened by hand) ran with
/// config.json's values: when a later run changes one, the old value is pinned on it, so its
/// effective parameters stay what it ran with.
#[test]
fn changing_a_param_never_changes_another_runs_effective_value() {
    let base = tempfile::tempdir().unwrap();
    let first = builder("pin", base.path())
        .params([("lr", 0.1)])
        .params([("depth", 18)])
        .create()
        .unwrap();
    let dir = first.dir().to_path_buf();
    drop(first);
    let second = Experiment::open(&dir).unwrap(); // records nothing of its own
    assert_eq!(status(&dir)["params"], json!(null));
    drop(second);
    let mut third = Experiment::open(&dir).unwrap();
    third
        .log_params([("lr", ParamValue::from(0.01)), ("new", 1.into())])
        .unwrap();

    let status = status(&dir);
    assert_eq!(status["params"], json!({"lr": 0.01, "new": 1}));
    assert_eq!(
        status["history"][0]["params"],
        json!({"lr": 0.1, "depth": 18})
    );
    // Only the changed name is pinned; a name config.json did not have pins nothing.
    assert_eq!(status["history"][1]["params"], json!({"lr": 0.1}));
    assert_eq!(
        config_params(&dir),
        json!({"lr": 0.01, "depth": 18, "new": 1})
    );
    let second = Experiment::attach(&dir, RunId::new(2).unwrap()).unwrap();
    assert_eq!(second.params()["lr"], ParamValue::Float(0.1));
}
