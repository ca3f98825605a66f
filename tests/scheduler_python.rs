//! Jobs that write metrics back through the Python binding: `Experiment(...)` in a job launched
//! by the scheduler attaches to the scheduler's run (EXPMAN_EXPERIMENT_DIR, EXPMAN_RUN_ID), and
//! the toy demo (`examples/toy/fast_config.toml`) runs end to end.
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
        &format!(
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

/// `examples/toy/fast_config.toml` (copied into a temp dir with its base_dir pointed there):
/// three toy tasks finish and fill `metrics/progress.csv` up to fraction 1, the one that fails
/// on purpose is Error with exit code 1 at about half way, the run logs hold the progress
/// lines, and no more than two ran at once.
#[test]
fn toy_fast_config_runs_end_to_end() {
    let python = python_with_expman();
    let sb = Sandbox::new();
    let toy = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/toy");
    std::fs::copy(toy.join("toy_task.py"), sb.join("toy_task.py")).unwrap();
    let original = std::fs::read_to_string(toy.join("fast_config.toml")).unwrap();
    let from = "base_dir = \"../../experiments_fast_demo\"";
    assert!(
        original.contains(from),
        "fast_config.toml changed its base_dir"
    );
    let config = sb.write(
        "fast_config.toml",
        &original.replace(from, "base_dir = \"experiments\""),
    );

    let out = run(scheduler_in(sb.path(), &config, &python));
    out.expect_code(1);

    let dirs = experiments(&sb.base());
    assert_eq!(dirs.len(), 4, "{dirs:?}");
    let mut spans = Vec::new();
    for (name, dir) in &dirs {
        let status = status(dir);
        let (header, rows) = read_csv(&dir.join("metrics/progress.csv"));
        assert!(rows.len() >= 2, "{name}: progress rows {rows:?}");
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(column(&header, row, "step"), (i + 1).to_string(), "{name}");
            assert_eq!(column(&header, row, "run_id"), "run_0001", "{name}");
        }
        let last: f64 = column(&header, rows.last().unwrap(), "fraction")
            .parse()
            .unwrap();
        let log = std::fs::read_to_string(dir.join("logs/run_0001.log")).unwrap();
        assert!(log.contains("[toy] step 1:"), "{name}: {log}");
        if name == "fails_on_purpose" {
            assert_eq!(status["status"], "Error", "{status}");
            assert_eq!(status["exit_code"], 1, "{status}");
            assert!((0.45..0.7).contains(&last), "{name} stopped at {last}");
            assert!(log.contains("failing on purpose"), "{log}");
        } else {
            assert_eq!(status["status"], "Finished", "{name}: {status}\n{log}");
            assert_eq!(last, 1.0, "{name}");
        }
        let time = |field: &str| {
            chrono::DateTime::parse_from_rfc3339(status[field].as_str().unwrap())
                .unwrap()
                .timestamp_nanos_opt()
                .unwrap() as u128
        };
        spans.push(Record {
            name: name.clone(),
            start: time("started_at"),
            end: time("finished_at"),
            gpus: None,
            device_order: String::new(),
            run_id: String::new(),
            experiment_dir: String::new(),
        });
    }
    assert!(max_overlap(&spans) <= 2, "{spans:#?}");
}
