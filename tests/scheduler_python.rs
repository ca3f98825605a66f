//! Jobs that write metrics back through the Python binding: `Experiment(...)` in a job launched
//! by the scheduler attaches to the scheduler's run (EXPMAN_EXPERIMENT_DIR, EXPMAN_RUN_ID), and
//! a retried run writes into the same directory. The toy demos run end to end, as documented,
//! in `scheduler_examples.rs`.
//!
//! These tests need the binding installed where the project's test runner installs it:
//! `<repo>/.venv` (`scripts/setup-test-deps`, then `pip install ./bindings/python`). Without
//! it they fail and say so.

#![cfg(feature = "ui")]

mod scheduler_support;

use std::path::Path;
use std::process::Command;

use scheduler_support::*;

/// Rows of a metrics CSV as (header, rows), split on commas (the values here hold none).
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    let mut lines = text
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect());
    let header: Vec<String> = lines.next().expect("a header line");
    (header, lines.collect())
}

fn column<'a>(header: &[String], row: &'a [String], name: &str) -> &'a str {
    let i = header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    &row[i]
}

/// `EXP run --config <config>` started in `cwd`, with `<repo>/.venv/bin` first on the PATH so
/// `python3` in a job command is the interpreter that has the binding.
fn scheduler_in(cwd: &Path, config: &Path, python: &Path) -> Command {
    let venv_bin = python.parent().expect("the venv's bin dir");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![venv_bin.to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    let mut cmd = exp();
    cmd.arg("run")
        .arg("--config")
        .arg(config)
        .current_dir(cwd)
        .env("PATH", std::env::join_paths(dirs).expect("a PATH"));
    cmd
}

/// The seed's one-liner, run by the scheduler: its row lands in `metrics/run_0001.csv` of the
/// scheduler's experiment (not in a new directory under the job's `base_dir`), and a retried
/// run writes `metrics/run_0002.csv` of the same directory. The status stays the scheduler's.
#[test]
fn python_job_writes_metrics_into_the_schedulers_run() {
    let python = python_with_expman();
    let sb = Sandbox::new();
    let script = "from expman import Experiment; e = Experiment('x', 'cmd', '.'); \
                  e.upd_row(loss=0.5); e.save_row()";
    let config = sb.write(
        "python.toml",
        format!(
            r#"[scheduler]
base_dir = "experiments"
gpus = []

[[experiments]]
name = "py_metrics"
command = {}
"#,
            toml_str(&format!("{} -c \"{script}\"", python.display()))
        ),
    );
    run(scheduler_in(sb.path(), &config, &python)).expect_code(0);

    let dir = experiment(&sb.base(), "py_metrics");
    let check_run = |run: &str| {
        let (header, rows) = read_csv(&dir.join(format!("metrics/{run}.csv")));
        assert_eq!(rows.len(), 1, "one row in {run}: {rows:?}");
        assert_eq!(column(&header, &rows[0], "loss"), "0.5");
        assert_eq!(column(&header, &rows[0], "run_id"), run);
        let status = status(&dir);
        assert_eq!(status["status"], "Finished", "{status}");
        assert_eq!(status["run_id"], run, "{status}");
    };
    check_run("run_0001");
    // The job attached instead of creating `./x_<date>` in its working directory.
    let strays: Vec<_> = std::fs::read_dir(sb.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("x_"))
        .collect();
    assert!(
        strays.is_empty(),
        "the job created its own experiment: {strays:?}"
    );

    control("retry", &dir).expect_code(0);
    wait_until("run_0002 to finish", LIMIT, || {
        let status = status(&dir);
        (status["run_id"] == "run_0002" && status["status"] == "Finished").then_some(())
    });
    check_run("run_0002");
}
